//! Issue 9, hostile flows at run time: a flow that validates but loops without waiting (`goto`
//! back and forth) is stopped by the loop guard with a clear trace warning and a polite fallback,
//! and the conversation ends; the customer is never left without an answer.

use chrono::Utc;
use flowbot_engine::{Contact, Engine, EngineConfig, Inbound, Poll, Secrets, TraceEvent};
use flowbot_flow::{load_flow, FlowSet};

#[test]
fn a_goto_loop_is_stopped_by_the_loop_guard_with_a_clear_message() {
    let yaml = "flow: looping\ntriggers:\n  default: true\nsteps:\n  - id: a\n    set: { n: \"1\" }\n    goto: b\n  - id: b\n    goto: a\n";
    let loaded = load_flow("looping.yaml", yaml);
    let flow = loaded
        .flow
        .expect("the loop validates (it is a run-time problem)");
    let config = EngineConfig::default();
    let fallback = config.fallback_text.clone();
    let limit = config.max_steps_per_turn;
    let engine = Engine::new(FlowSet::from_flows(vec![flow]), config, Secrets::default());
    let contact = Contact {
        phone: "919820000001".into(),
        name: None,
    };
    let mut turn = engine.start_turn(None, &contact, &Inbound::text("wamid.1", "hi", Utc::now()));
    assert!(matches!(turn.poll(), Poll::Done), "no effect expected");
    let result = turn.finish();
    let warnings: Vec<&String> = result
        .trace
        .iter()
        .filter_map(|event| match event {
            TraceEvent::Warning { message } => Some(message),
            _ => None,
        })
        .collect();
    assert_eq!(warnings.len(), 1, "{:#?}", result.trace);
    assert!(
        warnings[0].contains(&format!("ran {limit} steps without waiting")),
        "{}",
        warnings[0]
    );
    assert_eq!(
        result
            .outbound
            .iter()
            .map(|m| m.body().to_string())
            .collect::<Vec<_>>(),
        [fallback]
    );
    assert!(result.conversation.is_none(), "the conversation ended");
}
