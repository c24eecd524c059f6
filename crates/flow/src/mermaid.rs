//! `flowbot graph`: a flow drawn as a Mermaid flowchart (steps, waits, branches with their
//! conditions, outcomes), ready to paste into any Markdown viewer.

use std::fmt::Write;

use crate::compile::successors;
use crate::flow::{Flow, StepKind, Target};

/// The flow as Mermaid text.
pub fn to_mermaid(flow: &Flow) -> String {
    let mut out = String::from("flowchart TD\n");
    let node = |index: usize| format!("s{index}");
    let _ = writeln!(
        out,
        "    start([{}]) --> {}",
        label(&format!("start: {}", flow.name)),
        if flow.steps.is_empty() {
            "finish".into()
        } else {
            node(0)
        }
    );
    let mut ends = false;
    for (index, step) in flow.steps.iter().enumerate() {
        let summary = match &step.kind {
            StepKind::Say(message) => format!("say: {}", short(message.text.source())),
            StepKind::Ask(ask) => format!(
                "ask ({}): {}",
                ask.expect.name(),
                short(ask.prompt.text.source())
            ),
            StepKind::Branch(_) => "branch".to_string(),
            StepKind::Set(assignments) => format!(
                "set {}",
                assignments
                    .iter()
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            StepKind::Goto => "goto".to_string(),
            StepKind::End(_) => "end".to_string(),
            StepKind::Handoff(_) => "handoff to a person".to_string(),
            StepKind::ApiRequest(request) => format!(
                "{} {}",
                request.method.as_str(),
                short(request.url.rest.source())
            ),
            StepKind::ZohoSearch(search) => format!("zoho_search {}", search.module),
        };
        let text = label(&format!("{}: {summary}", step.id));
        let shape = match &step.kind {
            StepKind::Branch(_) => format!("{{{text}}}"),
            StepKind::Ask(_) => format!("[/{text}/]"),
            StepKind::ApiRequest(_) | StepKind::ZohoSearch(_) => format!("[[{text}]]"),
            StepKind::End(_) | StepKind::Handoff(_) => format!("([{text}])"),
            _ => format!("[{text}]"),
        };
        let _ = writeln!(out, "    {}{shape}", node(index));
        let edge_labels = edge_labels(flow, index);
        for (target, edge) in successors(flow, index).into_iter().zip(edge_labels) {
            let to = match flow.resolve(index, target) {
                Some(next) => node(next),
                None => {
                    ends = true;
                    "finish".to_string()
                }
            };
            match edge {
                Some(text) => {
                    let _ = writeln!(out, "    {} -- {} --> {to}", node(index), label(&text));
                }
                None => {
                    let _ = writeln!(out, "    {} --> {to}", node(index));
                }
            }
        }
        if matches!(step.kind, StepKind::End(_) | StepKind::Handoff(_)) {
            ends = true;
            let _ = writeln!(out, "    {} --> finish", node(index));
        }
    }
    if ends || flow.steps.is_empty() {
        out.push_str("    finish((end))\n");
    }
    out
}

fn edge_labels(flow: &Flow, index: usize) -> Vec<Option<String>> {
    let step = &flow.steps[index];
    match &step.kind {
        StepKind::Branch(branch) => branch
            .arms
            .iter()
            .map(|(condition, _)| Some(condition.describe()))
            .chain([Some("else".to_string())])
            .collect(),
        StepKind::Ask(ask) => {
            let mut labels = vec![Some("answer".to_string())];
            if ask.on_fail.is_some() {
                labels.push(Some(format!("{} failed tries", ask.max_attempts)));
            }
            labels
        }
        StepKind::ApiRequest(_) | StepKind::ZohoSearch(_) => {
            let outcomes = match &step.kind {
                StepKind::ApiRequest(r) => r.outcomes,
                StepKind::ZohoSearch(s) => s.outcomes,
                _ => unreachable!("matched above"),
            };
            let mut labels = vec![Some("ok".to_string())];
            for (name, target) in [
                ("empty", outcomes.empty),
                ("error", outcomes.error),
                ("timeout", outcomes.timeout),
            ] {
                if target.is_some() {
                    labels.push(Some(name.to_string()));
                }
            }
            labels
        }
        _ => vec![None],
    }
}

fn short(text: &str) -> String {
    let line = text.lines().next().unwrap_or("");
    let mut short: String = line.chars().take(40).collect();
    if line.chars().count() > 40 || text.lines().count() > 1 {
        short.push('…');
    }
    short
}

/// A quoted Mermaid label with quotes and angle brackets made safe.
fn label(text: &str) -> String {
    let escaped = text
        .replace('"', "#quot;")
        .replace('<', "#lt;")
        .replace('>', "#gt;");
    format!("\"{escaped}\"")
}

#[allow(dead_code)]
fn is_end(target: Target) -> bool {
    target == Target::End
}
