//! Templates: the `{{name}}` placeholders of flow text, compiled once at load.
//!
//! Owns parsing (with the `{{{x}}}` / `{{{{x}}}}` rules), rendering for each place a value lands
//! (message text as-is, URL parts percent-encoded), the template helpers authors use in replies
//! (`first_word`, `upper`, `lower`, `trim`, `default`), and the list of variables a
//! template reads, for validation. It never HTML-escapes and never evaluates data: a customer's text
//! that contains `{{...}}` is a value, not a template.
//!
//! Plain templates (literal text and `{{a.b}}` references only) render without handlebars, which is
//! the common case and the fast one; anything with helpers or blocks is rendered by handlebars.

use std::sync::LazyLock;

use handlebars::{
    handlebars_helper, Context, Handlebars, JsonValue, RenderContext, Renderable, StringOutput,
};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::Value;

/// Characters left as they are in a URL component: the unreserved set of RFC 3986.
const URL_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The helpers a template may call, with what each does (for hints and documentation).
pub const HELPERS: &[(&str, &str)] = &[
    (
        "first_word",
        "the first word: {{first_word assigned_to}} → Ravi",
    ),
    ("first_name", "same as first_word, for names"),
    ("upper", "upper case"),
    ("lower", "lower case"),
    ("trim", "removes surrounding spaces"),
    (
        "default",
        "a fallback for an empty value: {{default name \"there\"}}",
    ),
];

/// A compiled template.
#[derive(Clone, Debug)]
pub struct Template {
    source: String,
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    /// Literal pieces and variable references only.
    Plain(Vec<Piece>),
    /// Helpers or blocks: rendered by handlebars.
    Handlebars(Box<handlebars::Template>, Vec<String>),
}

#[derive(Clone, Debug)]
enum Piece {
    Literal(String),
    Variable(String),
}

/// Why a template did not compile; line and column count inside the template text, from 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateError {
    pub message: String,
    pub line: usize,
    pub column: usize,
    pub hint: Option<String>,
}

/// Where a rendered value lands; decides how it is escaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Escape {
    /// Message text, header values, JSON string leaves (serialized afterwards): as-is.
    None,
    /// A URL path segment or query value: percent-encoded (RFC 3986 unreserved kept).
    UrlComponent,
}

impl Template {
    /// Compiles a template. `{{{x}}}` means `{{x}}`; `{{{{x}}}}` is rejected with a hint.
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        if let Some(offset) = source.find("{{{{") {
            let (line, column) = line_column(source, offset);
            return Err(TemplateError {
                message: "`{{{{` opens a raw block, which flow templates do not use".into(),
                line,
                column,
                hint: Some("write a placeholder as {{name}}".into()),
            });
        }
        let normalized = source.replace("{{{", "{{").replace("}}}", "}}");
        if let Some(pieces) = plain_pieces(&normalized) {
            return Ok(Template {
                source: source.to_string(),
                kind: Kind::Plain(pieces),
            });
        }
        let compiled = handlebars::Template::compile(&normalized).map_err(|error| {
            let (line, column) = error.pos().unwrap_or((1, 1));
            TemplateError {
                message: "template syntax error: a `{{...}}` placeholder or a `{{#if}}...{{/if}}` block is not complete or not valid here".into(),
                line,
                column,
                hint: Some(
                    "placeholders look like {{name}}; blocks like {{#if x}}...{{/if}}".into(),
                ),
            }
        })?;
        let variables = scan_variables(&normalized);
        let template = Template {
            source: source.to_string(),
            kind: Kind::Handlebars(Box::new(compiled), variables),
        };
        // A dry run over no data finds unknown helpers and wrong helper arity at load time.
        if let Err(error) = template.try_render(&Value::Object(Default::default()), Escape::None) {
            return Err(TemplateError {
                message: error,
                line: 1,
                column: 1,
                hint: Some(format!(
                    "the helpers are: {}",
                    HELPERS
                        .iter()
                        .map(|(name, _)| *name)
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            });
        }
        Ok(template)
    }

    /// The text the author wrote.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// True when the template has no placeholder at all.
    pub fn is_literal(&self) -> bool {
        matches!(&self.kind, Kind::Plain(pieces) if pieces.iter().all(|p| matches!(p, Piece::Literal(_))))
    }

    /// The variable the template consists of, when it is exactly one placeholder (`"{{count}}"`).
    /// Such a value keeps its type in JSON bodies and `set`.
    pub fn single_variable(&self) -> Option<&str> {
        match &self.kind {
            Kind::Plain(pieces) if pieces.len() == 1 => match &pieces[0] {
                Piece::Variable(name) => Some(name),
                Piece::Literal(_) => None,
            },
            _ => None,
        }
    }

    /// Every variable the template reads (dotted paths as written).
    pub fn variables(&self) -> Vec<&str> {
        match &self.kind {
            Kind::Plain(pieces) => pieces
                .iter()
                .filter_map(|p| match p {
                    Piece::Variable(name) => Some(name.as_str()),
                    Piece::Literal(_) => None,
                })
                .collect(),
            Kind::Handlebars(_, variables) => variables.iter().map(String::as_str).collect(),
        }
    }

    /// Renders as text: values inserted as they are, missing ones empty.
    pub fn render(&self, vars: &Value) -> String {
        self.render_escaped(vars, Escape::None)
    }

    /// Renders with each inserted value escaped for the place it lands.
    pub fn render_escaped(&self, vars: &Value, escape: Escape) -> String {
        self.try_render(vars, escape).unwrap_or_default()
    }

    fn try_render(&self, vars: &Value, escape: Escape) -> Result<String, String> {
        match &self.kind {
            Kind::Plain(pieces) => {
                let mut out = String::with_capacity(self.source.len() + 16);
                for piece in pieces {
                    match piece {
                        Piece::Literal(text) => out.push_str(text),
                        Piece::Variable(name) => {
                            let text = lookup(vars, name).map(value_to_text).unwrap_or_default();
                            push_escaped(&mut out, &text, escape);
                        }
                    }
                }
                Ok(out)
            }
            Kind::Handlebars(template, _) => {
                let registry = match escape {
                    Escape::None => &*TEXT_REGISTRY,
                    Escape::UrlComponent => &*URL_REGISTRY,
                };
                let context = Context::from(vars.clone());
                let mut render_context = RenderContext::new(None);
                let mut out = StringOutput::new();
                template
                    .render(registry, &context, &mut render_context, &mut out)
                    .map_err(|error| format!("template: {}", error.reason()))?;
                out.into_string()
                    .map_err(|error| format!("template output: {error}"))
            }
        }
    }
}

/// Looks up a dotted path (`contact.phone`, `items.0.name`) in a JSON object.
pub fn lookup<'a>(vars: &'a Value, path: &str) -> Option<&'a Value> {
    let mut current = vars;
    for segment in path.split('.') {
        current = match current {
            Value::Object(map) => map.get(segment)?,
            Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(current)
}

/// How a value reads in text: strings as they are, null as nothing, lists and objects as JSON.
pub fn value_to_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        Value::Bool(flag) => flag.to_string(),
        Value::Number(number) => number.to_string(),
        other => other.to_string(),
    }
}

/// Percent-encodes a value for a URL path segment or query value.
pub fn encode_url_component(text: &str) -> String {
    utf8_percent_encode(text, URL_COMPONENT).to_string()
}

fn push_escaped(out: &mut String, text: &str, escape: Escape) {
    match escape {
        Escape::None => out.push_str(text),
        Escape::UrlComponent => out.extend(utf8_percent_encode(text, URL_COMPONENT)),
    }
}

/// Splits a template into literals and `{{ path }}` references, or None when it uses anything more.
fn plain_pieces(source: &str) -> Option<Vec<Piece>> {
    let mut pieces = Vec::new();
    let mut rest = source;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            pieces.push(Piece::Literal(rest[..start].to_string()));
        }
        let after = &rest[start + 2..];
        let end = after.find("}}")?;
        let inner = after[..end].trim();
        if !is_variable_path(inner) {
            return None;
        }
        pieces.push(Piece::Variable(inner.to_string()));
        rest = &after[end + 2..];
    }
    if rest.contains("}}") {
        return None;
    }
    if !rest.is_empty() {
        pieces.push(Piece::Literal(rest.to_string()));
    }
    Some(pieces)
}

/// A bare helper name (`{{first_name}}`) counts as a variable: every helper needs an argument, and
/// authors save variables with those names (`first_name: data[0].First_Name`).
fn is_variable_path(text: &str) -> bool {
    !text.is_empty()
        && text != "else"
        && text != "this"
        && text.split('.').all(|segment| {
            !segment.is_empty()
                && segment
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
        })
        && !text.starts_with(|c: char| c.is_ascii_digit() || c == '-')
}

/// Finds the variables read by a handlebars template: identifiers in expressions that are not
/// helpers, keywords, literals or block-local names.
fn scan_variables(source: &str) -> Vec<String> {
    static EXPRESSION: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r"\{\{~?\s*([#/^]?)([^}]*?)~?\}\}").expect("static regex")
    });
    const KEYWORDS: &[&str] = &[
        "if", "unless", "each", "with", "else", "lookup", "this", "eq", "ne", "gt", "gte", "lt",
        "lte", "and", "or", "not", "len", "true", "false", "null", "log",
    ];
    let mut found = Vec::new();
    for capture in EXPRESSION.captures_iter(source) {
        if &capture[1] == "/" {
            continue;
        }
        static QUOTED: LazyLock<regex::Regex> =
            LazyLock::new(|| regex::Regex::new(r#""[^"]*"|'[^']*'"#).expect("static regex"));
        let expression = QUOTED.replace_all(&capture[2], " ");
        for token in expression.split_whitespace() {
            let token = token.trim_matches(|c| c == '(' || c == ')');
            if token.is_empty()
                || token.starts_with('"')
                || token.starts_with('\'')
                || token.starts_with('@')
                || token.starts_with("this")
                || token.starts_with("../")
                || token.contains('=')
                || token.parse::<f64>().is_ok()
                || KEYWORDS.contains(&token)
                || HELPERS.iter().any(|(name, _)| *name == token)
            {
                continue;
            }
            if is_variable_path(token) && !found.iter().any(|f| f == token) {
                found.push(token.to_string());
            }
        }
    }
    found
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

fn is_empty_value(value: &JsonValue) -> bool {
    match value {
        JsonValue::Null => true,
        JsonValue::String(text) => text.trim().is_empty(),
        JsonValue::Array(items) => items.is_empty(),
        JsonValue::Object(map) => map.is_empty(),
        _ => false,
    }
}

handlebars_helper!(first_word: |value: Json| {
    value_to_text(value).split_whitespace().next().unwrap_or("").to_string()
});
handlebars_helper!(upper: |value: Json| value_to_text(value).to_uppercase());
handlebars_helper!(lower: |value: Json| value_to_text(value).to_lowercase());
handlebars_helper!(trim: |value: Json| value_to_text(value).trim().to_string());
handlebars_helper!(default: |value: Json, fallback: Json| {
    if is_empty_value(value) { fallback.clone() } else { value.clone() }
});

fn registry(escape: fn(&str) -> String) -> Handlebars<'static> {
    let mut registry = Handlebars::new();
    registry.register_escape_fn(escape);
    registry.register_helper("first_word", Box::new(first_word));
    registry.register_helper("upper", Box::new(upper));
    registry.register_helper("lower", Box::new(lower));
    registry.register_helper("trim", Box::new(trim));
    registry.register_helper("default", Box::new(default));
    registry
}

static TEXT_REGISTRY: LazyLock<Handlebars<'static>> =
    LazyLock::new(|| registry(handlebars::no_escape));
static URL_REGISTRY: LazyLock<Handlebars<'static>> =
    LazyLock::new(|| registry(encode_url_component));

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(source: &str, vars: Value) -> String {
        Template::parse(source).expect("compiles").render(&vars)
    }

    #[test]
    fn plain_placeholders_insert_values_without_html_escaping() {
        let vars = json!({"name": "A & B <c> = \"d\"", "contact": {"phone": "919820000001"}});
        assert_eq!(
            render("Hi {{name}} ({{contact.phone}})", vars),
            "Hi A & B <c> = \"d\" (919820000001)"
        );
    }

    #[test]
    fn triple_braces_mean_the_same_and_quadruple_braces_are_rejected() {
        assert_eq!(render("{{{name}}}!", json!({"name": "<b>"})), "<b>!");
        let error = Template::parse("{{{{name}}}}").expect_err("raw block rejected");
        assert!(error.hint.unwrap_or_default().contains("{{name}}"));
    }

    #[test]
    fn missing_values_render_empty_and_numbers_render_as_written() {
        assert_eq!(render("[{{nothing}}] {{n}}", json!({"n": 7})), "[] 7");
        assert_eq!(render("{{items.1}}", json!({"items": ["a", "b"]})), "b");
    }

    #[test]
    fn customer_text_with_placeholders_is_data() {
        let vars = json!({"message": {"text": "{{secrets.token}} {{#each this}}x{{/each}}"}});
        assert_eq!(
            render("You said: {{message.text}}", vars),
            "You said: {{secrets.token}} {{#each this}}x{{/each}}"
        );
    }

    #[test]
    fn helpers_cover_first_word_case_trim_and_default() {
        let vars = json!({"owner": "Ravi Kumar", "empty": "  ", "padded": "  x  "});
        // A lone name is always a variable, even when a helper has that name.
        assert_eq!(render("{{first_word}}", json!({"first_word": "x"})), "x");
        assert_eq!(render("{{first_word owner}}", vars.clone()), "Ravi");
        assert_eq!(
            render("{{upper owner}}/{{lower owner}}", vars.clone()),
            "RAVI KUMAR/ravi kumar"
        );
        assert_eq!(render("[{{trim padded}}]", vars.clone()), "[x]");
        assert_eq!(
            render("Hi {{default empty \"there\"}}", vars.clone()),
            "Hi there"
        );
        assert_eq!(
            render("Hi {{default missing \"there\"}}", vars.clone()),
            "Hi there"
        );
        assert_eq!(
            render("Hi {{default owner \"there\"}}", vars),
            "Hi Ravi Kumar"
        );
    }

    #[test]
    fn url_escaping_encodes_every_reserved_character() {
        let template = Template::parse("https://x.test/a/{{v}}?q={{v}}").expect("compiles");
        let vars = json!({"v": "+91 98&=?#/\"\\\né😀"});
        assert_eq!(
            template.render_escaped(&vars, Escape::UrlComponent),
            "https://x.test/a/%2B91%2098%26%3D%3F%23%2F%22%5C%0A%C3%A9%F0%9F%98%80?q=%2B91%2098%26%3D%3F%23%2F%22%5C%0A%C3%A9%F0%9F%98%80"
        );
        let helper = Template::parse("{{lower v}}").expect("compiles");
        assert_eq!(
            helper.render_escaped(&json!({"v": "A&B"}), Escape::UrlComponent),
            "a%26b"
        );
    }

    #[test]
    fn variables_are_listed_for_validation() {
        let template =
            Template::parse("{{#if a}}{{first_name b.c}}{{else}}{{default d \"x\"}}{{/if}}")
                .expect("compiles");
        assert_eq!(template.variables(), vec!["a", "b.c", "d"]);
        assert_eq!(
            Template::parse("{{x}}")
                .expect("compiles")
                .single_variable(),
            Some("x")
        );
        assert_eq!(
            Template::parse(" {{x}}")
                .expect("compiles")
                .single_variable(),
            None
        );
    }

    #[test]
    fn a_bare_helper_name_is_a_variable() {
        let vars = json!({"first_name": "Anika", "owner": "Rohan Iyer"});
        assert_eq!(
            render("Hi {{first_name}}, {{trim}}.", vars.clone()),
            "Hi Anika, ."
        );
        assert_eq!(render("{{first_word owner}}", vars), "Rohan");
    }

    #[test]
    fn syntax_errors_and_unknown_helpers_are_load_errors() {
        assert!(Template::parse("{{#if a}}open").is_err());
        let unknown = Template::parse("{{shout name}}").expect_err("unknown helper");
        assert!(unknown.hint.unwrap_or_default().contains("first_word"));
    }
}
