//! A turn: one inbound message processed against one conversation, as a state machine.
//!
//! [`Turn::poll`] runs steps until the turn needs something from outside, which it returns as an
//! [`Effect`]; the driver performs it and calls [`Turn::resume`]. When `poll` says
//! [`Poll::Done`], [`Turn::finish`] gives the new conversation state, the outbound messages and
//! the trace. A turn never blocks, never panics on input, and ends within
//! `max_steps_per_turn` steps (the loop guard).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use flowbot_flow::compile::normalize_keyword;
use flowbot_flow::{Flow, FlowSet, Message, Options, Outcomes, StepKind, Target};
use serde_json::{Map, Value};

use crate::conversation::{Conversation, Status};
use crate::effect::{Effect, EffectResult, HttpRequest, HttpResult, ZohoOutcome};
use crate::engine::EngineConfig;
use crate::message::{Contact, Inbound, Outbound, OutboundChoice, OutboundSection};
use crate::secrets::Secrets;
use crate::steps::{api_request, ask, zoho_search};
use crate::text::split_text;
use crate::trace::TraceEvent;

/// What the driver should do next.
#[derive(Debug)]
pub enum Poll {
    Effect(Effect),
    Done,
}

/// Everything a turn produced.
#[derive(Clone, Debug)]
pub struct TurnResult {
    /// The conversation to keep; `None` when it ended (or none was started).
    pub conversation: Option<Conversation>,
    pub outbound: Vec<Outbound>,
    pub trace: Vec<TraceEvent>,
    /// The flow that ran, if any.
    pub flow: Option<String>,
}

/// Variable roots the engine fills in on every turn; they are never persisted.
const BUILTIN_ROOTS: &[&str] = &["contact", "message", "now", "flow", "vars", "secrets"];

enum State {
    Start,
    Run(usize),
    Await(Pending),
    Done,
}

enum Pending {
    Http {
        step: usize,
        attempt: u32,
        request: HttpRequest,
        redactor: crate::secrets::Redactor,
    },
    Sleep {
        step: usize,
        attempt: u32,
        wait: Duration,
        request: HttpRequest,
        redactor: crate::secrets::Redactor,
    },
    Zoho {
        step: usize,
        request: crate::effect::ZohoSearchRequest,
    },
}

/// One turn in progress.
pub struct Turn {
    flows: FlowSet,
    config: Arc<EngineConfig>,
    secrets: Arc<Secrets>,
    contact: Contact,
    inbound: Inbound,
    now: DateTime<Utc>,
    previous: Option<Conversation>,
    state: State,
    flow: Option<Arc<Flow>>,
    scope: Value,
    started_at: DateTime<Utc>,
    steps_run: usize,
    conversation: Option<Conversation>,
    outbound: Vec<Outbound>,
    trace: Vec<TraceEvent>,
}

impl Turn {
    pub(crate) fn new(
        flows: FlowSet,
        config: Arc<EngineConfig>,
        secrets: Arc<Secrets>,
        previous: Option<Conversation>,
        contact: Contact,
        inbound: Inbound,
    ) -> Turn {
        let now = inbound.timestamp;
        Turn {
            flows,
            config,
            secrets,
            contact,
            inbound,
            now,
            previous,
            state: State::Start,
            flow: None,
            scope: Value::Object(Map::new()),
            started_at: now,
            steps_run: 0,
            conversation: None,
            outbound: Vec::new(),
            trace: Vec::new(),
        }
    }

    /// Runs until the turn needs an effect or is done.
    pub fn poll(&mut self) -> Poll {
        loop {
            match &self.state {
                State::Start => {
                    self.state = State::Done;
                    self.begin();
                }
                State::Run(index) => {
                    let index = *index;
                    self.state = State::Done;
                    self.run(index);
                }
                State::Await(pending) => {
                    return Poll::Effect(match pending {
                        Pending::Http { request, .. } => Effect::Http(request.clone()),
                        Pending::Sleep { wait, .. } => Effect::Sleep(*wait),
                        Pending::Zoho { request, .. } => Effect::ZohoSearch(request.clone()),
                    })
                }
                State::Done => return Poll::Done,
            }
        }
    }

    /// Gives the turn the answer to the effect `poll` returned.
    pub fn resume(&mut self, result: EffectResult) {
        let State::Await(pending) = std::mem::replace(&mut self.state, State::Done) else {
            return;
        };
        match (pending, result) {
            (
                Pending::Http {
                    step,
                    attempt,
                    request,
                    redactor,
                },
                EffectResult::Http(result),
            ) => self.http_answered(step, attempt, request, redactor, result),
            (
                Pending::Sleep {
                    step,
                    attempt,
                    request,
                    redactor,
                    ..
                },
                _,
            ) => {
                self.state = State::Await(Pending::Http {
                    step,
                    attempt,
                    request,
                    redactor,
                });
            }
            (Pending::Zoho { step, request }, EffectResult::Zoho(result)) => {
                self.zoho_answered(step, request, result)
            }
            (_, other) => {
                self.warn(format!(
                    "the driver answered with the wrong kind of result: {other:?}"
                ));
                self.fallback_and_end("internal: unexpected effect result");
            }
        }
    }

    /// The turn's results.
    pub fn finish(self) -> TurnResult {
        TurnResult {
            conversation: self.conversation,
            outbound: self.outbound,
            trace: self.trace,
            flow: self.flow.map(|f| f.name.clone()),
        }
    }

    // ----- starting and resuming -----

    fn begin(&mut self) {
        // A reaction (👍 on a bot message) or a system notice (the customer changed number) neither
        // answers a question nor starts a flow; the conversation stays as it was.
        if matches!(self.inbound.kind.as_str(), "reaction" | "system") {
            self.trace.push(TraceEvent::Silent {
                reason: format!(
                    "a {} message neither answers nor starts a conversation",
                    self.inbound.kind
                ),
            });
            self.conversation = self.previous.take();
            return;
        }
        let text = self.inbound.text.clone().unwrap_or_default();
        let is_reset = normalize_keyword(&text) == normalize_keyword(&self.config.reset_word)
            && !self.config.reset_word.is_empty();
        if let Some(previous) = self.previous.take() {
            let flow = self.flows.by_name(&previous.flow).cloned();
            if previous.is_expired(self.now) {
                self.trace.push(TraceEvent::SessionExpired {
                    flow: previous.flow.clone(),
                });
                if let Some(template) = flow.as_ref().and_then(|f| f.session_expired_text.clone()) {
                    self.scope = self.builtins(flow.as_deref(), &previous.vars);
                    let text = template.render(&self.scope);
                    self.send_text(&text);
                }
            } else if previous.status == Status::Handoff {
                self.trace.push(TraceEvent::Silent {
                    reason: "the conversation is with a person".into(),
                });
                self.conversation = Some(previous);
                return;
            } else if is_reset {
                self.trace.push(TraceEvent::Ended {
                    reason: format!("reset word `{}`", self.config.reset_word),
                });
                match flow.or_else(|| self.flows.default_flow().cloned()) {
                    Some(flow) => self.start(flow, "reset"),
                    None => self.trace.push(TraceEvent::Silent {
                        reason: "no flow to restart".into(),
                    }),
                }
                return;
            } else {
                return self.resume_conversation(previous, flow);
            }
        }
        let chosen = self
            .flows
            .by_keyword(&text)
            .map(|f| (f.clone(), "keyword"))
            .or_else(|| {
                self.flows
                    .default_flow()
                    .map(|f| (f.clone(), "default flow"))
            });
        match chosen {
            Some((flow, reason)) => self.start(flow, reason),
            None => self.trace.push(TraceEvent::Silent {
                reason: "no keyword matched and there is no default flow".into(),
            }),
        }
    }

    fn start(&mut self, flow: Arc<Flow>, reason: &str) {
        self.trace.push(TraceEvent::FlowStarted {
            flow: flow.name.clone(),
            reason: reason.into(),
        });
        self.scope = self.builtins(Some(&flow), &flow.vars.clone());
        self.started_at = self.now;
        let empty = flow.steps.is_empty();
        self.flow = Some(flow);
        if empty {
            self.end("the flow has no steps");
        } else {
            self.state = State::Run(0);
        }
    }

    fn resume_conversation(&mut self, previous: Conversation, flow: Option<Arc<Flow>>) {
        let step_index = flow
            .as_ref()
            .and_then(|f| previous.step.as_deref().and_then(|id| f.step_index(id)));
        let (Some(flow), Some(index)) = (flow, step_index) else {
            self.warn(format!(
                "conversation in flow `{}` waits at step `{}`, which no longer exists",
                previous.flow,
                previous.step.as_deref().unwrap_or("?")
            ));
            let text = self.config.step_missing_text.clone();
            self.send_text(&text);
            self.trace.push(TraceEvent::Ended {
                reason: "its step no longer exists".into(),
            });
            return;
        };
        self.scope = self.builtins(Some(&flow), &previous.vars);
        self.started_at = previous.started_at;
        self.flow = Some(flow.clone());
        let StepKind::Ask(definition) = &flow.steps[index].kind else {
            self.warn(format!(
                "step `{}` is no longer a question",
                flow.steps[index].id
            ));
            let text = self.config.step_missing_text.clone();
            self.send_text(&text);
            self.end("its step changed");
            return;
        };
        let attempt = previous.attempts + 1;
        let step_id = flow.steps[index].id.clone();
        match ask::accept(definition, &self.inbound) {
            Some(value) => {
                self.trace.push(TraceEvent::Answer {
                    step: step_id.clone(),
                    valid: true,
                    attempt,
                });
                if let Some(var) = &definition.save {
                    self.save(&step_id, var, value);
                }
                self.goto(index, flow.steps[index].next);
            }
            None => {
                self.trace.push(TraceEvent::Answer {
                    step: step_id,
                    valid: false,
                    attempt,
                });
                if attempt >= definition.max_attempts {
                    match definition.on_fail {
                        Some(target) => self.goto(index, target),
                        None => {
                            let text = self.config.failed_ask_text.clone();
                            self.send_text(&text);
                            self.end("no valid answer after the last try");
                        }
                    }
                } else {
                    let retry = match &definition.retry {
                        Some(template) => template.render(&self.scope),
                        None => ask::default_retry(definition),
                    };
                    self.send_message_text(retry, &definition.prompt.options);
                    self.wait_at(index, attempt);
                }
            }
        }
    }

    fn builtins(&self, flow: Option<&Flow>, vars: &Map<String, Value>) -> Value {
        let mut scope = vars.clone();
        for root in BUILTIN_ROOTS {
            scope.remove(*root);
        }
        let mut contact = Map::new();
        contact.insert("phone".into(), Value::String(self.contact.phone.clone()));
        contact.insert(
            "name".into(),
            self.contact.name.clone().map_or(Value::Null, Value::String),
        );
        scope.insert("contact".into(), Value::Object(contact));
        scope.insert("message".into(), self.inbound.to_value());
        scope.insert("now".into(), Value::String(self.now.to_rfc3339()));
        if let Some(flow) = flow {
            let mut flow_value = Map::new();
            flow_value.insert("name".into(), Value::String(flow.name.clone()));
            scope.insert("flow".into(), Value::Object(flow_value));
            scope.insert("vars".into(), Value::Object(flow.vars.clone()));
        }
        Value::Object(scope)
    }

    // ----- running steps -----

    fn run(&mut self, index: usize) {
        let Some(flow) = self.flow.clone() else {
            return;
        };
        self.steps_run += 1;
        if self.steps_run > self.config.max_steps_per_turn {
            let message = format!(
                "flow `{}` ran {} steps without waiting (a loop?); stopped at step `{}`",
                flow.name, self.config.max_steps_per_turn, flow.steps[index].id
            );
            tracing::warn!(flow = %flow.name, step = %flow.steps[index].id, "{message}");
            self.trace.push(TraceEvent::Warning { message });
            self.fallback_and_end("loop guard");
            return;
        }
        let step = &flow.steps[index];
        self.trace.push(TraceEvent::Step {
            step: step.id.clone(),
            kind: step.kind.name().into(),
        });
        match &step.kind {
            StepKind::Say(message) => {
                self.send(message);
                self.goto(index, step.next);
            }
            StepKind::Ask(definition) => {
                self.send(&definition.prompt);
                self.wait_at(index, 0);
            }
            StepKind::Branch(branch) => {
                let chosen = branch
                    .arms
                    .iter()
                    .find(|(condition, _)| condition.evaluate(&self.scope))
                    .map(|(condition, target)| (Some(condition.describe()), *target))
                    .unwrap_or((None, branch.otherwise));
                let target_name = self.target_name(&flow, index, chosen.1);
                self.trace.push(TraceEvent::Branch {
                    step: step.id.clone(),
                    condition: chosen.0,
                    target: target_name,
                });
                self.goto(index, chosen.1);
            }
            StepKind::Set(assignments) => {
                for (name, value) in assignments {
                    let value = crate::value::evaluate(value, &self.scope);
                    self.save(&step.id, name, value);
                }
                self.goto(index, step.next);
            }
            StepKind::Goto => self.goto(index, step.next),
            StepKind::End(text) => {
                if let Some(text) = text {
                    let rendered = text.render(&self.scope);
                    self.send_text(&rendered);
                }
                self.end("end step");
            }
            StepKind::Handoff(text) => {
                if let Some(text) = text {
                    let rendered = text.render(&self.scope);
                    self.send_text(&rendered);
                }
                self.trace.push(TraceEvent::Handoff {
                    step: step.id.clone(),
                });
                tracing::info!(flow = %flow.name, step = %step.id, "conversation handed to a person");
                self.conversation = Some(self.conversation_state(&flow, None, Status::Handoff, 0));
            }
            StepKind::ApiRequest(request) => {
                match api_request::build(request, &mut self.scope, &self.secrets) {
                    Ok((http, redactor)) => {
                        self.state = State::Await(Pending::Http {
                            step: index,
                            attempt: 0,
                            request: http,
                            redactor,
                        });
                    }
                    Err(reason) => {
                        let message =
                            format!("step `{}`: the request was not sent: {reason}", step.id);
                        tracing::warn!(flow = %flow.name, step = %step.id, "{message}");
                        self.trace.push(TraceEvent::Warning { message });
                        let view = api_request::failure_view("invalid_request");
                        api_request::apply_saves(&request.save, &view, |var, value| {
                            self.save(&step.id.clone(), var, value)
                        });
                        self.outcome(index, Outcome::Error, request.outcomes);
                    }
                }
            }
            StepKind::ZohoSearch(search) => {
                let request = zoho_search::build(search, &self.scope);
                if request.value.trim().chars().count() < 2 {
                    self.warn(format!(
                        "step `{}`: nothing to search for (`{}` is empty)",
                        step.id, request.by
                    ));
                    self.apply_zoho_saves(index, None);
                    self.outcome(index, Outcome::Empty, search.outcomes);
                } else {
                    self.state = State::Await(Pending::Zoho {
                        step: index,
                        request,
                    });
                }
            }
        }
    }

    fn http_answered(
        &mut self,
        index: usize,
        attempt: u32,
        request: HttpRequest,
        redactor: crate::secrets::Redactor,
        result: HttpResult,
    ) {
        let Some(flow) = self.flow.clone() else {
            return;
        };
        let step = &flow.steps[index];
        let StepKind::ApiRequest(definition) = &step.kind else {
            return;
        };
        self.trace
            .push(TraceEvent::Http(Box::new(api_request::trace(
                &step.id, attempt, &request, &result, &redactor,
            ))));
        let retry_after = api_request::retry_after(&result);
        if api_request::should_retry(definition, &result, attempt) {
            let wait = self.backoff_for(index, attempt + 1, retry_after);
            self.state = State::Await(Pending::Sleep {
                step: index,
                attempt: attempt + 1,
                wait,
                request,
                redactor,
            });
            return;
        }
        let answer = api_request::interpret(definition, &result);
        api_request::apply_saves(&definition.save, &answer.view(), |var, value| {
            self.save(&step.id.clone(), var, value)
        });
        if let Some(why) = answer.error {
            tracing::info!(flow = %flow.name, step = %step.id, reason = why, "api_request did not succeed");
        }
        self.outcome(index, answer.outcome, definition.outcomes);
    }

    fn zoho_answered(
        &mut self,
        index: usize,
        request: crate::effect::ZohoSearchRequest,
        result: crate::effect::ZohoSearchResult,
    ) {
        let Some(flow) = self.flow.clone() else {
            return;
        };
        let step = &flow.steps[index];
        let StepKind::ZohoSearch(definition) = &step.kind else {
            return;
        };
        self.trace
            .push(TraceEvent::Zoho(Box::new(zoho_search::trace(
                &step.id, &request, &result,
            ))));
        let outcome = match &result.outcome {
            ZohoOutcome::Found(body) => {
                self.apply_zoho_saves(index, Some(body));
                Outcome::Ok
            }
            ZohoOutcome::Empty => {
                self.apply_zoho_saves(index, None);
                Outcome::Empty
            }
            ZohoOutcome::Error(message) => {
                tracing::warn!(flow = %flow.name, step = %step.id, "zoho_search failed: {message}");
                self.apply_zoho_saves(index, None);
                Outcome::Error
            }
            ZohoOutcome::Timeout => {
                tracing::warn!(flow = %flow.name, step = %step.id, "zoho_search timed out");
                self.apply_zoho_saves(index, None);
                Outcome::Timeout
            }
        };
        self.outcome(index, outcome, definition.outcomes);
    }

    fn apply_zoho_saves(&mut self, index: usize, body: Option<&Value>) {
        let Some(flow) = self.flow.clone() else {
            return;
        };
        let step = &flow.steps[index];
        let StepKind::ZohoSearch(definition) = &step.kind else {
            return;
        };
        let view = flowbot_flow::path::ResponseView {
            status: None,
            headers: &[],
            body_text: "",
            json: body,
            error: None,
        };
        api_request::apply_saves(&definition.save, &view, |var, value| {
            self.save(&step.id.clone(), var, value)
        });
    }

    fn outcome(&mut self, index: usize, outcome: Outcome, outcomes: Outcomes) {
        let Some(flow) = self.flow.clone() else {
            return;
        };
        let step = &flow.steps[index];
        let handler = match outcome {
            Outcome::Ok => None,
            Outcome::Empty => outcomes.empty,
            Outcome::Error => outcomes.error,
            Outcome::Timeout => outcomes.timeout.or(outcomes.error),
        };
        let name = outcome.name();
        match (outcome, handler) {
            (Outcome::Ok, _) | (Outcome::Empty, None) => {
                if outcome == Outcome::Empty {
                    let target = self.target_name(&flow, index, step.next);
                    self.trace.push(TraceEvent::Outcome {
                        step: step.id.clone(),
                        outcome: name.into(),
                        target,
                    });
                }
                self.goto(index, step.next)
            }
            (_, Some(target)) => {
                let target_name = self.target_name(&flow, index, target);
                self.trace.push(TraceEvent::Outcome {
                    step: step.id.clone(),
                    outcome: name.into(),
                    target: target_name,
                });
                self.goto(index, target);
            }
            (_, None) => {
                let message = format!(
                    "step `{}`: outcome `{name}` has no branch in `on:`",
                    step.id
                );
                tracing::warn!(flow = %flow.name, step = %step.id, "{message}; the customer got the fallback message");
                self.trace.push(TraceEvent::Outcome {
                    step: step.id.clone(),
                    outcome: name.into(),
                    target: "fallback".into(),
                });
                self.trace.push(TraceEvent::Warning { message });
                self.fallback_and_end(&format!("unhandled {name} outcome"));
            }
        }
    }

    fn goto(&mut self, from: usize, target: Target) {
        let Some(flow) = &self.flow else { return };
        match flow.resolve(from, target) {
            Some(next) => self.state = State::Run(next),
            None => self.end(if target == Target::End {
                "end"
            } else {
                "the last step finished"
            }),
        }
    }

    fn wait_at(&mut self, index: usize, attempts: u32) {
        let Some(flow) = self.flow.clone() else {
            return;
        };
        self.conversation = Some(self.conversation_state(
            &flow,
            Some(flow.steps[index].id.clone()),
            Status::Waiting,
            attempts,
        ));
        self.state = State::Done;
    }

    fn end(&mut self, reason: &str) {
        self.trace.push(TraceEvent::Ended {
            reason: reason.into(),
        });
        self.conversation = None;
        self.state = State::Done;
    }

    fn fallback_and_end(&mut self, reason: &str) {
        let text = self.config.fallback_text.clone();
        self.send_text(&text);
        self.end(reason);
    }

    fn warn(&mut self, message: String) {
        tracing::warn!("{message}");
        self.trace.push(TraceEvent::Warning { message });
    }

    fn conversation_state(
        &self,
        flow: &Flow,
        step: Option<String>,
        status: Status,
        attempts: u32,
    ) -> Conversation {
        let mut vars = match &self.scope {
            Value::Object(map) => map.clone(),
            _ => Map::new(),
        };
        for root in BUILTIN_ROOTS {
            vars.remove(*root);
        }
        let timeout =
            chrono::Duration::from_std(flow.session_timeout).unwrap_or(chrono::Duration::hours(24));
        Conversation {
            flow: flow.name.clone(),
            step,
            status,
            vars,
            attempts,
            started_at: self.started_at,
            updated_at: self.now,
            expires_at: self.now + timeout,
        }
    }

    fn save(&mut self, step: &str, var: &str, value: Value) {
        self.trace.push(TraceEvent::Saved {
            step: step.into(),
            var: var.into(),
            value: value.clone(),
        });
        if let Value::Object(map) = &mut self.scope {
            map.insert(var.to_string(), value);
        }
    }

    fn target_name(&self, flow: &Flow, from: usize, target: Target) -> String {
        match flow.resolve(from, target) {
            Some(index) => flow.steps[index].id.clone(),
            None => "end".into(),
        }
    }

    fn backoff_for(&self, step: usize, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let Some(flow) = &self.flow else {
            return Duration::ZERO;
        };
        let StepKind::ApiRequest(definition) = &flow.steps[step].kind else {
            return Duration::ZERO;
        };
        api_request::backoff(definition, attempt, retry_after, &self.inbound.id)
    }

    // ----- sending -----

    fn send(&mut self, message: &Message) {
        let text = message.text.render(&self.scope);
        self.send_message_text(text, &message.options);
    }

    fn send_message_text(&mut self, text: String, options: &Options) {
        let mut parts = split_text(&text, flowbot_flow::limits::TEXT);
        let mut last = parts.pop().unwrap_or_default();
        // A message with buttons or a list carries at most 1,024 characters; the text before
        // that goes out as plain text first.
        if !matches!(options, Options::None)
            && last.chars().count() > flowbot_flow::limits::INTERACTIVE_BODY
        {
            let mut tail = split_text(&last, flowbot_flow::limits::INTERACTIVE_BODY);
            last = tail.pop().unwrap_or_default();
            parts.extend(tail);
        }
        for part in parts {
            self.outbound.push(Outbound::Text { body: part });
        }
        let message = match options {
            Options::None => Outbound::Text { body: last },
            Options::Buttons(buttons) => Outbound::Buttons {
                body: last,
                buttons: buttons.iter().map(OutboundChoice::from).collect(),
            },
            Options::List { button, sections } => Outbound::List {
                body: last,
                button: button.clone(),
                sections: sections.iter().map(OutboundSection::from).collect(),
            },
        };
        if message.body().is_empty() && matches!(message, Outbound::Text { .. }) {
            return;
        }
        self.outbound.push(message);
    }

    fn send_text(&mut self, text: &str) {
        self.send_message_text(text.to_string(), &Options::None);
    }
}

/// How an outside call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Empty,
    Error,
    Timeout,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Empty => "empty",
            Outcome::Error => "error",
            Outcome::Timeout => "timeout",
        }
    }
}
