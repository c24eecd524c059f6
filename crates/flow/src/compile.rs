//! Loading one flow file: YAML text → typed model → checked, compiled [`Flow`], with every problem
//! reported as a [`Diagnostic`] at its file:line:column.
//!
//! Checks here are the per-file ones: syntax, unknown keys, step kinds, duplicate ids, targets that
//! do not exist, unreachable steps, variables read but never set, templates, paths, regexes,
//! durations and the WhatsApp limits. Checks across files (two default flows, a keyword in two
//! flows) live in [`crate::flowset`].

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use serde_json::Value;

use crate::condition::ConditionDef;
use crate::diagnostic::{did_you_mean, Diagnostic};
use crate::flow::*;
use crate::limits;
use crate::model::*;
use crate::path::ResponsePath;
use crate::positions::{Position, Positions};
use crate::template::Template;

/// The result of loading a flow: the flow when there was no error, and every diagnostic.
#[derive(Debug)]
pub struct LoadedFlow {
    pub flow: Option<Flow>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Variables every flow can read without setting them.
pub const BUILTIN_ROOTS: &[&str] = &["contact", "message", "now", "flow", "secrets", "vars"];

/// Default and maximum timeout of an `api_request`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
pub const MAX_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_MAX_RESPONSE: u64 = 1024 * 1024;

/// Loads and compiles one flow file. `file` is how diagnostics name it.
pub fn load_flow(file: &str, source: &str) -> LoadedFlow {
    // Editors on Windows save UTF-8 with a byte order mark; YAML does not expect one.
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    let definition: FlowDef = match crate::yaml::from_str(source) {
        Ok(definition) => definition,
        Err(error) => {
            return LoadedFlow {
                flow: None,
                diagnostics: vec![yaml_diagnostic(file, &error)],
            }
        }
    };
    let mut compiler = Compiler {
        file,
        source,
        positions: std::cell::OnceCell::new(),
        diagnostics: Vec::new(),
        ids: HashMap::new(),
        flow_vars: definition.vars.keys().cloned().collect(),
    };
    let flow = compiler.compile(definition);
    let has_error = compiler.diagnostics.iter().any(Diagnostic::is_error);
    let mut diagnostics = compiler.diagnostics;
    diagnostics.sort_by_key(|d| (d.line, d.column));
    LoadedFlow {
        flow: if has_error { None } else { Some(flow) },
        diagnostics,
    }
}

fn yaml_diagnostic(file: &str, error: &serde_yaml::Error) -> Diagnostic {
    let at = error
        .location()
        .map(|l| Position {
            line: l.line(),
            column: l.column(),
        })
        .unwrap_or(Position { line: 1, column: 1 });
    let mut message = error.to_string();
    if let Some(index) = message.find(" at line ") {
        message.truncate(index);
    }
    let mut diagnostic = Diagnostic::error(file, at, message.clone());
    if let Some(hint) = unknown_key_hint(&message) {
        diagnostic = diagnostic.with_hint(hint);
    } else if message.contains("did not match any variant") || message.contains("invalid type") {
        diagnostic = diagnostic.with_hint(
            "check the shape of this value against the README's reference (or `flowbot schema`)",
        );
    } else if message.contains("cannot start any token") {
        diagnostic = diagnostic.with_hint(
            "a tab, or a value starting with @ or `: YAML indents with spaces only, and such values need quotes",
        );
    } else if message.contains("tab character") {
        diagnostic =
            diagnostic.with_hint("YAML indents with spaces only: replace the tabs with spaces");
    } else if message.contains("expected '-' indicator")
        || message.contains("mapping values are not allowed")
        || message.contains("did not find expected key")
    {
        diagnostic = diagnostic.with_hint(
            "check this line's indentation against the lines above (steps are `  - id: ...`, their keys 4 spaces in)",
        );
    }
    diagnostic
}

/// "unknown field `sya`, expected one of `id`, `say`" → "did you mean `say`?"
fn unknown_key_hint(message: &str) -> Option<String> {
    let rest = message.split("unknown field `").nth(1)?;
    let unknown = rest.split('`').next()?;
    let expected: Vec<&str> = rest
        .split("expected")
        .nth(1)?
        .split('`')
        .skip(1)
        .step_by(2)
        .collect();
    match did_you_mean(unknown, expected.iter().copied()) {
        Some(best) => Some(format!("did you mean `{best}`?")),
        None => Some(format!(
            "the keys allowed here are: {}",
            expected.join(", ")
        )),
    }
}

struct Compiler<'a> {
    file: &'a str,
    source: &'a str,
    /// Built on first use: a flow without problems never needs line and column numbers.
    positions: std::cell::OnceCell<Positions>,
    diagnostics: Vec<Diagnostic>,
    ids: HashMap<String, usize>,
    flow_vars: BTreeSet<String>,
}

impl Compiler<'_> {
    fn positions(&self) -> &Positions {
        self.positions.get_or_init(|| Positions::of(self.source))
    }

    fn error(&mut self, path: &str, message: impl Into<String>) -> &mut Diagnostic {
        let at = self.positions().key(path);
        self.diagnostics
            .push(Diagnostic::error(self.file, at, message));
        self.diagnostics.last_mut().expect("just pushed")
    }

    fn warning(&mut self, path: &str, message: impl Into<String>) -> &mut Diagnostic {
        let at = self.positions().key(path);
        self.diagnostics
            .push(Diagnostic::warning(self.file, at, message));
        self.diagnostics.last_mut().expect("just pushed")
    }

    fn hint(diagnostic: &mut Diagnostic, hint: impl Into<String>) {
        diagnostic.hint = Some(hint.into());
    }

    fn compile(&mut self, definition: FlowDef) -> Flow {
        if definition.flow.is_empty()
            || !definition
                .flow
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            let d = self.error(
                "flow",
                format!(
                    "flow name `{}` may only hold letters, digits and underscores",
                    definition.flow
                ),
            );
            Self::hint(d, "for example: flow: support_menu");
        }
        if definition.steps.is_empty() {
            self.error("steps", "a flow needs at least one step");
        }
        let session_timeout = match &definition.session_timeout {
            Some(text) => self
                .duration("session_timeout", text)
                .unwrap_or(Duration::from_secs(86_400)),
            None => Duration::from_secs(86_400),
        };
        let session_expired_text = definition
            .session_expired_text
            .as_deref()
            .and_then(|text| self.template("session_expired_text", text));
        let mut keywords = Vec::new();
        for (index, keyword) in definition.triggers.keywords.iter().enumerate() {
            let normalized = normalize_keyword(keyword);
            if normalized.is_empty() {
                self.error(&format!("triggers/keywords/{index}"), "an empty keyword");
            } else if keywords.contains(&normalized) {
                self.warning(
                    &format!("triggers/keywords/{index}"),
                    format!("keyword `{keyword}` is listed twice"),
                );
            } else {
                keywords.push(normalized);
            }
        }
        for (index, step) in definition.steps.iter().enumerate() {
            if step.id.trim().is_empty() || step.id == "end" {
                let d = self.error(
                    &format!("steps/{index}/id"),
                    format!("`{}` cannot be a step id", step.id),
                );
                Self::hint(
                    d,
                    "ids are names like `welcome`; `end` is reserved for ending",
                );
            } else if let Some(first) = self.ids.get(&step.id) {
                let first_line = self.positions().key(&format!("steps/{first}/id")).line;
                let d = self.error(
                    &format!("steps/{index}/id"),
                    format!("duplicate step id `{}`", step.id),
                );
                Self::hint(
                    d,
                    format!("it is first used on line {first_line}; step ids must be unique"),
                );
            } else {
                self.ids.insert(step.id.clone(), index);
            }
        }
        let defined = defined_variables(&definition);
        let steps: Vec<Step> = definition
            .steps
            .iter()
            .enumerate()
            .map(|(index, step)| self.step(index, step))
            .collect();
        let flow = Flow {
            name: definition.flow.clone(),
            description: definition.description.clone(),
            file: self.file.to_string(),
            keywords,
            is_default: definition.triggers.default,
            session_timeout,
            session_expired_text,
            vars: definition.vars.clone(),
            steps,
        };
        self.check_reachable(&flow);
        self.check_variables(&flow, &defined);
        flow
    }

    fn step(&mut self, index: usize, def: &StepDef) -> Step {
        let path = format!("steps/{index}");
        let present: Vec<&str> = [
            ("say", def.say.is_some()),
            ("ask", def.ask.is_some()),
            ("branch", def.branch.is_some()),
            ("set", def.set.is_some()),
            ("end", def.end.is_some()),
            ("handoff", def.handoff.is_some()),
            ("api_request", def.api_request.is_some()),
            ("zoho_search", def.zoho_search.is_some()),
        ]
        .iter()
        .filter(|(_, present)| *present)
        .map(|(name, _)| *name)
        .collect();
        if present.len() > 1 {
            let d = self.error(
                &format!("{path}/{}", present[1]),
                format!("step `{}` has two kinds: {}", def.id, present.join(" and ")),
            );
            Self::hint(d, "a step does one thing; split it into two steps");
        }
        if def.next.is_some() && def.goto.is_some() {
            let d = self.error(
                &format!("{path}/goto"),
                "`next` and `goto` mean the same; write one",
            );
            Self::hint(d, "keep `next:`");
        }
        let next = match def.next.as_deref().or(def.goto.as_deref()) {
            Some(target) => {
                let key = if def.next.is_some() { "next" } else { "goto" };
                self.target(&format!("{path}/{key}"), target)
            }
            None => Target::Following,
        };
        let kind = match present.first().copied() {
            None if def.goto.is_some() || def.next.is_some() => StepKind::Goto,
            None => {
                let d = self.error(
                    &format!("{path}/id"),
                    format!("step `{}` does nothing", def.id),
                );
                Self::hint(d, format!("give it one of: {}", STEP_KINDS.join(", ")));
                StepKind::Goto
            }
            Some("say") => StepKind::Say(
                self.message(&format!("{path}/say"), def.say.as_ref().expect("present")),
            ),
            Some("ask") => StepKind::Ask(Box::new(self.ask(&path, def))),
            Some("branch") => StepKind::Branch(self.branch(&path, def)),
            Some("set") => StepKind::Set(self.set(&path, def.set.as_ref().expect("present"))),
            Some("end") => StepKind::End(self.end_text(&format!("{path}/end"), def.end.as_ref())),
            Some("handoff") => {
                StepKind::Handoff(self.end_text(&format!("{path}/handoff"), def.handoff.as_ref()))
            }
            Some("api_request") => StepKind::ApiRequest(Box::new(self.api_request(&path, def))),
            Some(_) => StepKind::ZohoSearch(Box::new(self.zoho_search(&path, def))),
        };
        self.check_misplaced_keys(&path, def, &kind);
        Step {
            id: def.id.clone(),
            kind,
            next,
        }
    }

    fn check_misplaced_keys(&mut self, path: &str, def: &StepDef, kind: &StepKind) {
        if matches!(kind, StepKind::End(_) | StepKind::Handoff(_))
            && (def.next.is_some() || def.goto.is_some())
        {
            let key = if def.next.is_some() { "next" } else { "goto" };
            let d = self.error(
                &format!("{path}/{key}"),
                format!("`{key}` after a `{}` step never runs", kind.name()),
            );
            Self::hint(d, "the conversation ends here; remove it");
        }
        let takes_save = matches!(
            kind,
            StepKind::Ask(_) | StepKind::ApiRequest(_) | StepKind::ZohoSearch(_)
        );
        if def.save.is_some() && !takes_save {
            let d = self.error(
                &format!("{path}/save"),
                format!("`save` does nothing on a `{}` step", kind.name()),
            );
            Self::hint(
                d,
                "`save` belongs to ask, api_request and zoho_search steps; use `set` to assign",
            );
        }
        let takes_on = matches!(kind, StepKind::ApiRequest(_) | StepKind::ZohoSearch(_));
        if def.on.is_some() && !takes_on {
            let d = self.error(
                &format!("{path}/on"),
                format!("`on` does nothing on a `{}` step", kind.name()),
            );
            Self::hint(
                d,
                "`on` names outcome branches of api_request and zoho_search",
            );
        }
        if def.else_.is_some() && !matches!(kind, StepKind::Branch(_)) {
            self.error(&format!("{path}/else"), "`else` belongs to a `branch` step");
        }
        if matches!(kind, StepKind::Branch(_)) && (def.next.is_some() || def.goto.is_some()) {
            let d = self.error(
                &format!("{path}/next"),
                "a `branch` step goes on through `else`",
            );
            Self::hint(d, "write `else: STEP` instead of `next`");
        }
    }

    fn target(&mut self, path: &str, target: &str) -> Target {
        if target == "end" {
            return Target::End;
        }
        if let Some(index) = self.ids.get(target) {
            return Target::Step(*index);
        }
        let at = self.positions().value(path);
        let mut diagnostic =
            Diagnostic::error(self.file, at, format!("there is no step `{target}`"));
        let ids: Vec<&str> = self.ids.keys().map(String::as_str).collect();
        diagnostic = match did_you_mean(target, ids.iter().copied().chain(["end"])) {
            Some(best) => diagnostic.with_hint(format!("did you mean `{best}`?")),
            None => diagnostic.with_hint("name a step id of this flow, or `end`"),
        };
        self.diagnostics.push(diagnostic);
        Target::End
    }

    fn template(&mut self, path: &str, text: &str) -> Option<Template> {
        match Template::parse(text) {
            Ok(template) => Some(template),
            Err(error) => {
                let mut at = self.positions().value(path);
                if error.line > 1 {
                    at.line += error.line - 1;
                    at.column = error.column;
                }
                let mut diagnostic = Diagnostic::error(self.file, at, error.message);
                if let Some(hint) = error.hint {
                    diagnostic = diagnostic.with_hint(hint);
                }
                self.diagnostics.push(diagnostic);
                None
            }
        }
    }

    fn template_or_literal(&mut self, path: &str, text: &str) -> Template {
        self.template(path, text)
            .unwrap_or_else(|| Template::parse("").expect("empty template compiles"))
    }

    fn duration(&mut self, path: &str, text: &str) -> Option<Duration> {
        match humantime::parse_duration(text.trim()) {
            Ok(duration) if !duration.is_zero() => Some(duration),
            Ok(_) => {
                let at = self.positions().value(path);
                self.diagnostics.push(
                    Diagnostic::error(
                        self.file,
                        at,
                        format!("`{text}` is zero; it must be more than 0"),
                    )
                    .with_hint("for example 30m or 4h"),
                );
                None
            }
            _ => {
                let at = self.positions().value(path);
                self.diagnostics.push(
                    Diagnostic::error(self.file, at, format!("`{text}` is not a duration"))
                        .with_hint("write it like 500ms, 10s, 30m, 4h or 2days"),
                );
                None
            }
        }
    }

    fn message(&mut self, path: &str, def: &MessageDef) -> Message {
        match def {
            MessageDef::Text(text) => {
                self.check_text_length(path, text);
                Message {
                    text: self.template_or_literal(path, text),
                    options: Options::None,
                }
            }
            MessageDef::Rich(rich) => self.rich_message(
                path,
                &rich.text,
                rich.buttons.as_deref(),
                rich.list.as_ref(),
            ),
        }
    }

    fn rich_message(
        &mut self,
        path: &str,
        text: &str,
        buttons: Option<&[ButtonDef]>,
        list: Option<&ListDef>,
    ) -> Message {
        let text_path = format!("{path}/text");
        self.check_text_length(&text_path, text);
        let length = text.chars().count();
        if (buttons.is_some() || list.is_some()) && length > limits::INTERACTIVE_BODY {
            let d = self.error(
                &text_path,
                format!(
                    "the text has {length} characters; with buttons or a list WhatsApp allows {}",
                    limits::INTERACTIVE_BODY
                ),
            );
            Self::hint(
                d,
                "put the long part in a `say` step before, and keep the question short",
            );
        }
        let text = self.template_or_literal(&text_path, text);
        let options = match (buttons, list) {
            (Some(_), Some(_)) => {
                let d = self.error(
                    &format!("{path}/list"),
                    "a message shows buttons or a list, not both",
                );
                Self::hint(d, "up to 3 choices: buttons; up to 10: a list");
                Options::None
            }
            (Some(buttons), None) => {
                Options::Buttons(self.buttons(&format!("{path}/buttons"), buttons))
            }
            (None, Some(list)) => self.list(&format!("{path}/list"), list),
            (None, None) => Options::None,
        };
        Message { text, options }
    }

    fn check_text_length(&mut self, path: &str, text: &str) {
        let length = text.chars().count();
        if length > limits::TEXT {
            let d = self.error(
                path,
                format!(
                    "the text has {length} characters; WhatsApp allows {}",
                    limits::TEXT
                ),
            );
            Self::hint(d, "split it into several `say` steps");
        }
    }

    fn buttons(&mut self, path: &str, defs: &[ButtonDef]) -> Vec<Choice> {
        if defs.is_empty() {
            self.error(path, "`buttons` needs at least one button");
        }
        if defs.len() > limits::BUTTONS {
            let d = self.error(
                path,
                format!(
                    "{} buttons; WhatsApp allows at most {}",
                    defs.len(),
                    limits::BUTTONS
                ),
            );
            Self::hint(d, "use a `list` for up to 10 choices");
        }
        let choices: Vec<Choice> = defs
            .iter()
            .map(|def| match def {
                ButtonDef::Title(title) => Choice {
                    id: slug_or(title, "button"),
                    title: title.clone(),
                    description: None,
                },
                ButtonDef::Full(full) => Choice {
                    id: full
                        .id
                        .clone()
                        .unwrap_or_else(|| slug_or(&full.title, "button")),
                    title: full.title.clone(),
                    description: None,
                },
            })
            .collect();
        for (index, choice) in choices.iter().enumerate() {
            let length = choice.title.chars().count();
            if length > limits::BUTTON_TITLE {
                self.error(
                    &format!("{path}/{index}"),
                    format!(
                        "button title `{}` has {length} characters; WhatsApp allows {}",
                        choice.title,
                        limits::BUTTON_TITLE
                    ),
                );
            }
        }
        self.check_unique(path, &choices);
        choices
    }

    fn list(&mut self, path: &str, def: &ListDef) -> Options {
        let length = def.button.chars().count();
        if length > limits::LIST_BUTTON {
            self.error(
                &format!("{path}/button"),
                format!(
                    "the list button `{}` has {length} characters; WhatsApp allows {}",
                    def.button,
                    limits::LIST_BUTTON
                ),
            );
        }
        let mut sections = Vec::new();
        let mut all = Vec::new();
        for (s, section) in def.sections.iter().enumerate() {
            let mut rows = Vec::new();
            for (r, row) in section.rows.iter().enumerate() {
                let row_path = format!("{path}/sections/{s}/rows/{r}");
                let title_length = row.title.chars().count();
                if title_length > limits::ROW_TITLE {
                    self.error(
                        &row_path,
                        format!(
                            "row title `{}` has {title_length} characters; WhatsApp allows {}",
                            row.title,
                            limits::ROW_TITLE
                        ),
                    );
                }
                if let Some(description) = &row.description {
                    let length = description.chars().count();
                    if length > limits::ROW_DESCRIPTION {
                        self.error(
                            &format!("{row_path}/description"),
                            format!(
                                "row description has {length} characters; WhatsApp allows {}",
                                limits::ROW_DESCRIPTION
                            ),
                        );
                    }
                }
                let choice = Choice {
                    id: row.id.clone().unwrap_or_else(|| slug_or(&row.title, "row")),
                    title: row.title.clone(),
                    description: row.description.clone(),
                };
                all.push(choice.clone());
                rows.push(choice);
            }
            sections.push(Section {
                title: section.title.clone(),
                rows,
            });
        }
        if all.is_empty() {
            self.error(path, "a list needs at least one row");
        }
        if all.len() > limits::LIST_ROWS {
            let d = self.error(
                path,
                format!(
                    "{} rows; WhatsApp allows at most {} rows in all sections together",
                    all.len(),
                    limits::LIST_ROWS
                ),
            );
            Self::hint(d, "split the choice into two questions");
        }
        if sections.len() > 1 && sections.iter().any(|s| s.title.is_none()) {
            self.error(path, "with several sections, every section needs a `title`");
        }
        self.check_unique(path, &all);
        Options::List {
            button: def.button.clone(),
            sections,
        }
    }

    fn check_unique(&mut self, path: &str, choices: &[Choice]) {
        let mut ids = BTreeSet::new();
        let mut titles = BTreeSet::new();
        for choice in choices {
            if choice.id.is_empty() || choice.id.len() > limits::CHOICE_ID {
                self.error(
                    path,
                    format!(
                        "option id `{}` must have 1 to {} characters",
                        choice.id,
                        limits::CHOICE_ID
                    ),
                );
            }
            if !ids.insert(choice.id.as_str()) {
                let d = self.error(path, format!("two options have the id `{}`", choice.id));
                Self::hint(d, "ids must be unique; give each option an explicit `id`");
            }
            if !titles.insert(choice.title.to_lowercase()) {
                self.error(
                    path,
                    format!("two options have the title `{}`", choice.title),
                );
            }
        }
    }

    fn ask(&mut self, path: &str, def: &StepDef) -> Ask {
        let ask_path = format!("{path}/ask");
        let save = match &def.save {
            None => None,
            Some(SaveDef::Variable(name)) => {
                self.check_variable_name(&format!("{path}/save"), name);
                Some(name.clone())
            }
            Some(SaveDef::Paths(_)) => {
                let d = self.error(
                    &format!("{path}/save"),
                    "an `ask` saves the answer into one variable",
                );
                Self::hint(d, "write `save: answer`");
                None
            }
        };
        let full = match def.ask.as_ref().expect("present") {
            AskDef::Text(text) => {
                self.check_text_length(&ask_path, text);
                return Ask {
                    prompt: Message {
                        text: self.template_or_literal(&ask_path, text),
                        options: Options::None,
                    },
                    expect: Expect::Text,
                    pattern: None,
                    retry: None,
                    max_attempts: 3,
                    on_fail: None,
                    save,
                };
            }
            AskDef::Full(full) => full,
        };
        let prompt = self.rich_message(
            &ask_path,
            &full.text,
            full.buttons.as_deref(),
            full.list.as_ref(),
        );
        let has_options = !matches!(prompt.options, Options::None);
        let expect = match full.expect.as_deref() {
            None if has_options => Expect::Choice,
            None | Some("text") => Expect::Text,
            Some("number") => Expect::Number,
            Some("email") => Expect::Email,
            Some("phone") => Expect::Phone,
            Some("choice") => Expect::Choice,
            Some("any") => Expect::Any,
            Some(other) => {
                let known = ["text", "number", "email", "phone", "choice", "any"];
                let at = self.positions().value(&format!("{ask_path}/expect"));
                let hint = match did_you_mean(other, known) {
                    Some(best) => format!("did you mean `{best}`?"),
                    None => format!("one of: {}", known.join(", ")),
                };
                self.diagnostics.push(
                    Diagnostic::error(self.file, at, format!("unknown `expect: {other}`"))
                        .with_hint(hint),
                );
                Expect::Text
            }
        };
        if expect == Expect::Choice && !has_options {
            let d = self.error(
                &format!("{ask_path}/expect"),
                "`expect: choice` needs `buttons` or a `list`",
            );
            Self::hint(d, "add the options, or expect text");
        }
        let pattern = full.pattern.as_deref().and_then(|pattern| {
            match regex::RegexBuilder::new(pattern)
                .size_limit(1 << 20)
                .build()
            {
                Ok(regex) => Some(regex),
                Err(error) => {
                    let at = self.positions().value(&format!("{ask_path}/pattern"));
                    self.diagnostics.push(Diagnostic::error(
                        self.file,
                        at,
                        format!("invalid regex `{pattern}`: {error}"),
                    ));
                    None
                }
            }
        });
        let retry = full
            .retry
            .as_deref()
            .and_then(|text| self.template(&format!("{ask_path}/retry"), text));
        let max_attempts = full.max_attempts.unwrap_or(3);
        if max_attempts == 0 || max_attempts > 10 {
            self.error(
                &format!("{ask_path}/max_attempts"),
                "`max_attempts` must be between 1 and 10",
            );
        }
        let on_fail = full
            .on_fail
            .as_deref()
            .map(|target| self.target(&format!("{ask_path}/on_fail"), target));
        Ask {
            prompt,
            expect,
            pattern,
            retry,
            max_attempts: max_attempts.clamp(1, 10),
            on_fail,
            save,
        }
    }

    fn branch(&mut self, path: &str, def: &StepDef) -> Branch {
        let arms_def = def.branch.as_ref().expect("present");
        if arms_def.is_empty() {
            self.error(
                &format!("{path}/branch"),
                "a branch needs at least one `when`",
            );
        }
        let mut arms = Vec::new();
        for (index, arm) in arms_def.iter().enumerate() {
            let arm_path = format!("{path}/branch/{index}");
            let condition = self.condition(&format!("{arm_path}/when"), &arm.when);
            let target = self.target(&format!("{arm_path}/goto"), &arm.goto);
            if let Some(condition) = condition {
                arms.push((condition, target));
            }
        }
        let otherwise = match &def.else_ {
            Some(target) => self.target(&format!("{path}/else"), target),
            None => Target::Following,
        };
        Branch { arms, otherwise }
    }

    fn condition(&mut self, path: &str, def: &ConditionDef) -> Option<crate::condition::Condition> {
        match def.compile() {
            Ok(condition) => Some(condition),
            Err(message) => {
                let key = if def.matches.is_some() {
                    format!("{path}/matches")
                } else {
                    path.to_string()
                };
                let at = self.positions().value(&key);
                self.diagnostics
                    .push(Diagnostic::error(self.file, at, message));
                None
            }
        }
    }

    fn set(
        &mut self,
        path: &str,
        def: &serde_json::Map<String, Value>,
    ) -> Vec<(String, ValueTemplate)> {
        def.iter()
            .map(|(name, value)| {
                let value_path = format!("{path}/set/{name}");
                self.check_variable_name(&value_path, name);
                (name.clone(), self.value_template(&value_path, value))
            })
            .collect()
    }

    fn check_variable_name(&mut self, path: &str, name: &str) {
        let root = name.split('.').next().unwrap_or(name);
        if BUILTIN_ROOTS.contains(&root) {
            let d = self.error(
                path,
                format!("`{name}` is a built-in variable and cannot be assigned"),
            );
            Self::hint(d, "choose another name");
        } else if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
            let d = self.error(path, format!("`{name}` is not a variable name"));
            Self::hint(d, "letters, digits and underscores, e.g. order_no");
        }
    }

    fn value_template(&mut self, path: &str, value: &Value) -> ValueTemplate {
        match value {
            Value::String(text) => match self.template(path, text) {
                Some(template) => match template.single_variable() {
                    Some(name) => ValueTemplate::Variable(name.to_string()),
                    None if template.is_literal() => {
                        ValueTemplate::Literal(Value::String(text.clone()))
                    }
                    None => ValueTemplate::Text(template),
                },
                None => ValueTemplate::Literal(Value::Null),
            },
            Value::Array(items) => ValueTemplate::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| self.value_template(&format!("{path}/{i}"), item))
                    .collect(),
            ),
            Value::Object(map) => ValueTemplate::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), self.value_template(&format!("{path}/{k}"), v)))
                    .collect(),
            ),
            other => ValueTemplate::Literal(other.clone()),
        }
    }

    fn end_text(&mut self, path: &str, def: Option<&EndDef>) -> Option<Template> {
        match def {
            Some(EndDef::Text(text)) => {
                self.check_text_length(path, text);
                self.template(path, text)
            }
            _ => None,
        }
    }

    fn save_paths(&mut self, path: &str, def: &StepDef) -> SaveMap {
        match &def.save {
            None => Vec::new(),
            Some(SaveDef::Variable(_)) => {
                let d = self.error(
                    &format!("{path}/save"),
                    "`save` of an outside call maps variables to response paths",
                );
                Self::hint(d, "write `save: { order_id: data[0].id }`");
                Vec::new()
            }
            Some(SaveDef::Paths(map)) => {
                let mut saves = Vec::new();
                for (name, source) in map {
                    let value_path = format!("{path}/save/{name}");
                    self.check_variable_name(&value_path, name);
                    match ResponsePath::parse(source) {
                        Ok(parsed) => saves.push((name.clone(), parsed)),
                        Err(message) => {
                            let at = self.positions().value(&value_path);
                            self.diagnostics.push(
                                Diagnostic::error(self.file, at, format!("response path `{source}`: {message}"))
                                    .with_hint("write data[0].id, $.data[0].id, $status, $body, $headers.NAME or $error"),
                            );
                        }
                    }
                }
                // The map arrives sorted by name; the first path as written decides the `empty`
                // outcome, so restore the order of the file.
                saves.sort_by_key(|(name, _)| {
                    let at = self.positions().key(&format!("{path}/save/{name}"));
                    (at.line, at.column)
                });
                saves
            }
        }
    }

    fn outcomes(&mut self, path: &str, def: &StepDef) -> Outcomes {
        let Some(on) = &def.on else {
            return Outcomes::default();
        };
        Outcomes {
            empty: on
                .empty
                .as_deref()
                .map(|t| self.target(&format!("{path}/on/empty"), t)),
            error: on
                .error
                .as_deref()
                .map(|t| self.target(&format!("{path}/on/error"), t)),
            timeout: on
                .timeout
                .as_deref()
                .map(|t| self.target(&format!("{path}/on/timeout"), t)),
        }
    }

    fn api_request(&mut self, path: &str, def: &StepDef) -> ApiRequest {
        let request = def.api_request.as_ref().expect("present");
        let request_path = format!("{path}/api_request");
        crate::api_request::compile(self, &request_path, request, path, def)
    }

    fn zoho_search(&mut self, path: &str, def: &StepDef) -> ZohoSearch {
        let search = def.zoho_search.as_ref().expect("present");
        let search_path = format!("{path}/zoho_search");
        let kinds: Vec<(&str, &String)> = [
            ("phone", search.phone.as_ref()),
            ("email", search.email.as_ref()),
            ("word", search.word.as_ref()),
            ("criteria", search.criteria.as_ref()),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| (name, v)))
        .collect();
        if kinds.len() != 1 {
            let d = self.error(
                &search_path,
                "zoho_search needs exactly one of phone, email, word or criteria",
            );
            Self::hint(d, "for a WhatsApp customer: phone: \"{{contact.phone}}\"");
        }
        let query = match kinds.first() {
            Some((name, text)) => {
                let template = self.template_or_literal(&format!("{search_path}/{name}"), text);
                match *name {
                    "phone" => ZohoQuery::Phone(template),
                    "email" => ZohoQuery::Email(template),
                    "word" => ZohoQuery::Word(template),
                    _ => ZohoQuery::Criteria(template),
                }
            }
            None => ZohoQuery::Phone(self.template_or_literal(&search_path, "{{contact.phone}}")),
        };
        let module = search.module.clone().unwrap_or_else(|| "Contacts".into());
        if module.is_empty()
            || !module
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            self.error(
                &format!("{search_path}/module"),
                format!("`{module}` is not a Zoho module API name"),
            );
        }
        let save = self.save_paths(path, def);
        if !search.fields.is_empty() {
            for (name, response_path) in &save {
                if let Some(field) = response_path.record_field() {
                    if field != "id" && !search.fields.iter().any(|f| f == &field) {
                        let d = self.warning(&format!("{path}/save/{name}"), format!("`{field}` is not in `fields:`; Zoho returns only the listed fields"));
                        Self::hint(d, format!("add {field} to fields"));
                    }
                }
            }
        }
        let outcomes = self.outcomes(path, def);
        ZohoSearch {
            connection: search.connection.clone().unwrap_or_else(|| "zoho".into()),
            module,
            query,
            fields: search.fields.clone(),
            save,
            outcomes,
        }
    }

    fn check_reachable(&mut self, flow: &Flow) {
        if flow.steps.is_empty() {
            return;
        }
        let mut seen = vec![false; flow.steps.len()];
        let mut queue = vec![0usize];
        while let Some(index) = queue.pop() {
            if std::mem::replace(&mut seen[index], true) {
                continue;
            }
            for target in successors(flow, index) {
                if let Some(next) = flow.resolve(index, target) {
                    if !seen[next] {
                        queue.push(next);
                    }
                }
            }
        }
        for (index, step) in flow.steps.iter().enumerate() {
            if !seen[index] {
                let d = self.warning(
                    &format!("steps/{index}/id"),
                    format!("step `{}` can never be reached", step.id),
                );
                Self::hint(
                    d,
                    "no step before it goes on to it; link it with next/goto, or remove it",
                );
            }
        }
    }

    fn check_variables(&mut self, flow: &Flow, defined: &BTreeSet<String>) {
        for (index, step) in flow.steps.iter().enumerate() {
            for name in read_variables(step) {
                let root = name.split('.').next().unwrap_or(&name);
                if root == "secrets" && !matches!(step.kind, StepKind::ApiRequest(_)) {
                    let path = format!("steps/{index}/{}", step.kind.name());
                    let d = self.error(
                        &path,
                        format!("step `{}` reads `{name}`: secrets are only available to api_request steps", step.id),
                    );
                    Self::hint(d, "a secret must never reach a customer or a variable; use it in an api_request's url, headers, auth, query or body");
                    continue;
                }
                if let Some(field) = name
                    .strip_prefix("contact.")
                    .or_else(|| name.strip_prefix("flow."))
                {
                    let known: &[&str] = if root == "contact" {
                        &["phone", "name"]
                    } else {
                        &["name"]
                    };
                    if !known.contains(&field) {
                        let path = format!("steps/{index}/{}", step.kind.name());
                        let d = self.warning(
                            &path,
                            format!("step `{}` reads `{name}`, which does not exist", step.id),
                        );
                        let hint = match did_you_mean(field, known.iter().copied()) {
                            Some(best) => format!("did you mean `{root}.{best}`?"),
                            None => format!("`{root}` has: {}", known.join(", ")),
                        };
                        Self::hint(d, hint);
                    }
                    continue;
                }
                if BUILTIN_ROOTS.contains(&root)
                    || defined.contains(root)
                    || flow.vars.contains_key(root)
                {
                    continue;
                }
                let path = format!("steps/{index}/{}", step.kind.name());
                let candidates: Vec<&str> = defined
                    .iter()
                    .map(String::as_str)
                    .chain(BUILTIN_ROOTS.iter().copied())
                    .collect();
                let hint = match did_you_mean(root, candidates) {
                    Some(best) => format!("did you mean `{best}`? (it renders empty as it is)"),
                    None => "no step saves or sets it, so it renders empty".to_string(),
                };
                let d = self.warning(
                    &path,
                    format!("step `{}` reads `{name}`, which is never set", step.id),
                );
                Self::hint(d, hint);
            }
        }
    }
}

/// Where a step can go next.
pub fn successors(flow: &Flow, index: usize) -> Vec<Target> {
    let step = &flow.steps[index];
    match &step.kind {
        StepKind::Branch(branch) => branch
            .arms
            .iter()
            .map(|(_, target)| *target)
            .chain([branch.otherwise])
            .collect(),
        StepKind::End(_) | StepKind::Handoff(_) => Vec::new(),
        StepKind::Ask(ask) => [Some(step.next), ask.on_fail]
            .into_iter()
            .flatten()
            .collect(),
        StepKind::ApiRequest(request) => with_outcomes(step.next, &request.outcomes),
        StepKind::ZohoSearch(search) => with_outcomes(step.next, &search.outcomes),
        _ => vec![step.next],
    }
}

fn with_outcomes(next: Target, outcomes: &Outcomes) -> Vec<Target> {
    [Some(next), outcomes.empty, outcomes.error, outcomes.timeout]
        .into_iter()
        .flatten()
        .collect()
}

/// Variables a step reads.
fn read_variables(step: &Step) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut add = |t: &Template| names.extend(t.variables().into_iter().map(str::to_string));
    match &step.kind {
        StepKind::Say(message) => add(&message.text),
        StepKind::Ask(ask) => {
            add(&ask.prompt.text);
            if let Some(retry) = &ask.retry {
                add(retry);
            }
        }
        StepKind::Branch(branch) => {
            for (condition, _) in &branch.arms {
                names.extend(condition.variables().into_iter().map(str::to_string));
            }
        }
        StepKind::Set(assignments) => {
            for (_, value) in assignments {
                value_variables(value, &mut names);
            }
        }
        StepKind::End(Some(text)) | StepKind::Handoff(Some(text)) => add(text),
        StepKind::ApiRequest(request) => {
            crate::api_request::templates(request)
                .into_iter()
                .for_each(&mut add);
            if let Body::Json(value) = &request.body {
                value_variables(value, &mut names);
            }
        }
        StepKind::ZohoSearch(search) => match &search.query {
            ZohoQuery::Phone(t)
            | ZohoQuery::Email(t)
            | ZohoQuery::Word(t)
            | ZohoQuery::Criteria(t) => add(t),
        },
        _ => {}
    }
    names
}

fn value_variables(value: &ValueTemplate, names: &mut Vec<String>) {
    match value {
        ValueTemplate::Literal(_) => {}
        ValueTemplate::Variable(name) => names.push(name.clone()),
        ValueTemplate::Text(template) => {
            names.extend(template.variables().into_iter().map(str::to_string))
        }
        ValueTemplate::Array(items) => items.iter().for_each(|i| value_variables(i, names)),
        ValueTemplate::Object(fields) => fields.iter().for_each(|(_, v)| value_variables(v, names)),
    }
}

/// Every variable some step of the flow saves or sets.
fn defined_variables(definition: &FlowDef) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for step in &definition.steps {
        match &step.save {
            Some(SaveDef::Variable(name)) => {
                names.insert(name.clone());
            }
            Some(SaveDef::Paths(map)) => names.extend(map.keys().cloned()),
            None => {}
        }
        if let Some(set) = &step.set {
            names.extend(set.keys().cloned());
        }
    }
    names
}

/// Lower case, surrounding whitespace removed, inner runs of whitespace as one space.
pub fn normalize_keyword(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The id from a title, or `fallback` plus a number when the title has no letters or digits (an
/// emoji): `👍` → `button_1f44d`.
fn slug_or(title: &str, fallback: &str) -> String {
    let slug = slug(title);
    if !slug.is_empty() {
        return slug;
    }
    let code: String = title
        .chars()
        .take(3)
        .map(|c| format!("{:x}", c as u32))
        .collect();
    format!("{fallback}_{code}")
}

/// The id a button or row gets from its title: `Order status` → `order_status`.
pub fn slug(title: &str) -> String {
    let mut slug = String::new();
    for c in title.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('_') {
            slug.push('_');
        }
    }
    slug.trim_matches('_').to_string()
}

/// The compiler's helpers, for the step modules that compile their own kinds.
pub(crate) trait CompileContext {
    fn ctx_error(&mut self, path: &str, message: String, hint: Option<String>);
    fn ctx_value_error(&mut self, path: &str, message: String, hint: Option<String>);
    fn ctx_warning(&mut self, path: &str, message: String, hint: Option<String>);
    fn ctx_template(&mut self, path: &str, text: &str) -> Template;
    fn ctx_duration(&mut self, path: &str, text: &str) -> Option<Duration>;
    fn ctx_value_template(&mut self, path: &str, value: &Value) -> ValueTemplate;
    fn ctx_save(&mut self, step_path: &str, def: &StepDef) -> SaveMap;
    fn ctx_outcomes(&mut self, step_path: &str, def: &StepDef) -> Outcomes;
    fn ctx_is_flow_var(&self, name: &str) -> bool;
}

impl CompileContext for Compiler<'_> {
    fn ctx_error(&mut self, path: &str, message: String, hint: Option<String>) {
        let d = self.error(path, message);
        d.hint = hint;
    }
    fn ctx_value_error(&mut self, path: &str, message: String, hint: Option<String>) {
        let at = self.positions().value(path);
        let mut diagnostic = Diagnostic::error(self.file, at, message);
        diagnostic.hint = hint;
        self.diagnostics.push(diagnostic);
    }
    fn ctx_warning(&mut self, path: &str, message: String, hint: Option<String>) {
        let d = self.warning(path, message);
        d.hint = hint;
    }
    fn ctx_template(&mut self, path: &str, text: &str) -> Template {
        self.template_or_literal(path, text)
    }
    fn ctx_duration(&mut self, path: &str, text: &str) -> Option<Duration> {
        self.duration(path, text)
    }
    fn ctx_value_template(&mut self, path: &str, value: &Value) -> ValueTemplate {
        self.value_template(path, value)
    }
    fn ctx_save(&mut self, step_path: &str, def: &StepDef) -> SaveMap {
        self.save_paths(step_path, def)
    }
    fn ctx_outcomes(&mut self, step_path: &str, def: &StepDef) -> Outcomes {
        self.outcomes(step_path, def)
    }
    fn ctx_is_flow_var(&self, name: &str) -> bool {
        self.flow_vars.contains(name)
    }
}
