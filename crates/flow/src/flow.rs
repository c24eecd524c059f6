//! The compiled flow: what the interpreter runs. Every template is parsed, every path and regex
//! compiled and every step target resolved to an index, so a turn does no parsing of flow text.
//!
//! Invariant: a `Flow` only exists when its file validated without errors; every `Target::Step`
//! index is in bounds.

use std::time::Duration;

use serde_json::Value;

use crate::condition::Condition;
use crate::path::ResponsePath;
use crate::template::Template;

/// A validated, compiled flow.
#[derive(Clone, Debug)]
pub struct Flow {
    pub name: String,
    pub description: Option<String>,
    /// The file it came from, as given to the loader.
    pub file: String,
    /// Normalised keywords (lower case, single spaces).
    pub keywords: Vec<String>,
    pub is_default: bool,
    pub session_timeout: Duration,
    pub session_expired_text: Option<Template>,
    pub vars: serde_json::Map<String, Value>,
    pub steps: Vec<Step>,
}

impl Flow {
    /// The index of the step with this id.
    pub fn step_index(&self, id: &str) -> Option<usize> {
        self.steps.iter().position(|step| step.id == id)
    }

    /// Resolves a target as seen from step `from`.
    pub fn resolve(&self, from: usize, target: Target) -> Option<usize> {
        match target {
            Target::Following => (from + 1 < self.steps.len()).then_some(from + 1),
            Target::Step(index) => Some(index),
            Target::End => None,
        }
    }
}

/// One step.
#[derive(Clone, Debug)]
pub struct Step {
    pub id: String,
    pub kind: StepKind,
    /// Where to go after the step (for kinds that go on).
    pub next: Target,
}

/// Where execution goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The step below (the end after the last one).
    Following,
    Step(usize),
    End,
}

#[derive(Clone, Debug)]
pub enum StepKind {
    Say(Message),
    Ask(Box<Ask>),
    Branch(Branch),
    Set(Vec<(String, ValueTemplate)>),
    Goto,
    End(Option<Template>),
    Handoff(Option<Template>),
    ApiRequest(Box<ApiRequest>),
    ZohoSearch(Box<ZohoSearch>),
}

impl StepKind {
    pub fn name(&self) -> &'static str {
        match self {
            StepKind::Say(_) => "say",
            StepKind::Ask(_) => "ask",
            StepKind::Branch(_) => "branch",
            StepKind::Set(_) => "set",
            StepKind::Goto => "goto",
            StepKind::End(_) => "end",
            StepKind::Handoff(_) => "handoff",
            StepKind::ApiRequest(_) => "api_request",
            StepKind::ZohoSearch(_) => "zoho_search",
        }
    }
}

/// Text with optional buttons or list.
#[derive(Clone, Debug)]
pub struct Message {
    pub text: Template,
    pub options: Options,
}

#[derive(Clone, Debug)]
pub enum Options {
    None,
    Buttons(Vec<Choice>),
    List {
        button: String,
        sections: Vec<Section>,
    },
}

impl Options {
    /// Every option, buttons or list rows, in order.
    pub fn choices(&self) -> Vec<&Choice> {
        match self {
            Options::None => Vec::new(),
            Options::Buttons(buttons) => buttons.iter().collect(),
            Options::List { sections, .. } => sections.iter().flat_map(|s| s.rows.iter()).collect(),
        }
    }
}

/// A button or list row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Choice {
    pub id: String,
    pub title: String,
    pub description: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Section {
    pub title: Option<String>,
    pub rows: Vec<Choice>,
}

#[derive(Clone, Debug)]
pub struct Ask {
    pub prompt: Message,
    pub expect: Expect,
    /// An extra rule a valid answer must match (whole answer, trimmed).
    pub pattern: Option<regex::Regex>,
    pub retry: Option<Template>,
    pub max_attempts: u32,
    /// `None`: a polite message and the end.
    pub on_fail: Option<Target>,
    pub save: Option<String>,
}

/// What an `ask` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Any message with text (a typed text, a tapped option, a caption).
    Text,
    Number,
    Email,
    Phone,
    /// One of the ask's options, by id, title or number.
    Choice,
    /// Any message at all (an image without caption too).
    Any,
}

impl Expect {
    pub fn name(self) -> &'static str {
        match self {
            Expect::Text => "text",
            Expect::Number => "number",
            Expect::Email => "email",
            Expect::Phone => "phone",
            Expect::Choice => "choice",
            Expect::Any => "any",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Branch {
    pub arms: Vec<(Condition, Target)>,
    pub otherwise: Target,
}

/// A YAML value whose strings are templates; a string that is exactly one placeholder keeps the
/// variable's type.
#[derive(Clone, Debug)]
pub enum ValueTemplate {
    Literal(Value),
    Text(Template),
    Variable(String),
    Array(Vec<ValueTemplate>),
    Object(Vec<(String, ValueTemplate)>),
}

/// Outcome branches of outside calls; `None` means "not handled" (a polite fallback and the end).
#[derive(Clone, Copy, Debug, Default)]
pub struct Outcomes {
    pub empty: Option<Target>,
    pub error: Option<Target>,
    pub timeout: Option<Target>,
}

/// `save:` of an outside call: variable and where its value comes from.
pub type SaveMap = Vec<(String, ResponsePath)>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }

    /// Whether repeating the request is safe without `retry_unsafe`.
    pub fn is_idempotent(self) -> bool {
        !matches!(self, Method::Post | Method::Patch)
    }
}

/// The compiled External API Request step.
#[derive(Clone, Debug)]
pub struct ApiRequest {
    pub method: Method,
    pub url: UrlTemplate,
    pub auth: Auth,
    pub headers: Vec<(String, Template)>,
    pub query: Vec<(String, Template)>,
    pub body: Body,
    pub response: ResponseKind,
    pub timeout: Duration,
    pub max_response: u64,
    pub retry_attempts: u32,
    pub retry_backoff: Duration,
    pub retry_unsafe: bool,
    pub save: SaveMap,
    pub outcomes: Outcomes,
}

/// A URL: an optional base taken whole from a trusted variable (`{{secrets.shop_base}}`), then
/// the rest, where every inserted value is percent-encoded.
#[derive(Clone, Debug)]
pub struct UrlTemplate {
    pub base: Option<String>,
    pub rest: Template,
}

#[derive(Clone, Debug)]
pub enum Auth {
    None,
    Bearer(Template),
    Basic { user: Template, password: Template },
    ApiKeyHeader { name: String, value: Template },
    ApiKeyQuery { name: String, value: Template },
}

#[derive(Clone, Debug)]
pub enum Body {
    None,
    Json(ValueTemplate),
    Form(Vec<(String, Template)>),
    Raw {
        content_type: String,
        text: Template,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseKind {
    Json,
    Text,
}

/// The compiled Zoho CRM search step.
#[derive(Clone, Debug)]
pub struct ZohoSearch {
    pub connection: String,
    pub module: String,
    pub query: ZohoQuery,
    pub fields: Vec<String>,
    pub save: SaveMap,
    pub outcomes: Outcomes,
}

#[derive(Clone, Debug)]
pub enum ZohoQuery {
    Phone(Template),
    Email(Template),
    Word(Template),
    Criteria(Template),
}
