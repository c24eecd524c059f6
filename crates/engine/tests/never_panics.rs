//! Property: any flow that validates, fed any sequence of messages and any outside answers, never
//! panics, every turn ends within a bounded number of effects, and every message fits WhatsApp.

use chrono::{DateTime, Duration, Utc};
use flowbot_engine::{
    Contact, Conversation, Effect, EffectResult, Engine, EngineConfig, HttpResponse, HttpResult,
    Inbound, Poll, Secrets, ZohoOutcome, ZohoSearchResult,
};
use flowbot_flow::FlowSet;
use proptest::prelude::*;
use serde_json::json;

#[derive(Clone, Debug)]
enum StepSpec {
    Say(String),
    Ask { buttons: bool, expect: usize },
    Branch { value: String, target: usize },
    Set(String),
    Goto(usize),
    End,
    Handoff,
    Api { target: usize },
    Zoho { target: usize },
}

const TEXTS: &[&str] = &[
    "hi",
    "Yes",
    "1",
    "2",
    "123456",
    "restart",
    "{{secrets.x}}",
    "प्रिया 😀",
    "",
    "  ",
    "No",
    "a@b.co",
];

fn step_spec() -> impl Strategy<Value = StepSpec> {
    prop_oneof![
        prop::sample::select(TEXTS).prop_map(|t| StepSpec::Say(format!("say {t} {{{{answer}}}}"))),
        (any::<bool>(), 0..5usize).prop_map(|(buttons, expect)| StepSpec::Ask { buttons, expect }),
        (prop::sample::select(TEXTS), 0..12usize).prop_map(|(v, target)| StepSpec::Branch {
            value: v.to_string(),
            target
        }),
        prop::sample::select(TEXTS).prop_map(|t| StepSpec::Set(t.to_string())),
        (0..12usize).prop_map(StepSpec::Goto),
        Just(StepSpec::End),
        Just(StepSpec::Handoff),
        (0..12usize).prop_map(|target| StepSpec::Api { target }),
        (0..12usize).prop_map(|target| StepSpec::Zoho { target }),
    ]
}

fn flow_yaml(steps: &[StepSpec]) -> String {
    let count = steps.len();
    let target = |t: usize| {
        if t >= count {
            "end".to_string()
        } else {
            format!("s{t}")
        }
    };
    let mut yaml =
        String::from("flow: generated\ntriggers: { default: true }\nsession_timeout: 1h\nsteps:\n");
    for (index, step) in steps.iter().enumerate() {
        yaml.push_str(&format!("  - id: s{index}\n"));
        match step {
            StepSpec::Say(text) => yaml.push_str(&format!("    say: {text:?}\n")),
            StepSpec::Ask { buttons, expect } => {
                let expect = ["text", "number", "email", "phone", "any"][*expect];
                if *buttons {
                    yaml.push_str("    ask:\n      text: Pick one\n      buttons: [Yes, No]\n      max_attempts: 2\n");
                } else {
                    yaml.push_str(&format!("    ask:\n      text: Tell me\n      expect: {expect}\n"));
                }
                yaml.push_str("    save: answer\n");
            }
            StepSpec::Branch { value, target: t } => yaml.push_str(&format!(
                "    branch:\n      - when: {{ var: answer, equals: {value:?} }}\n        goto: {}\n",
                target(*t)
            )),
            StepSpec::Set(text) => yaml.push_str(&format!("    set:\n      answer: {text:?}\n      copy: \"{{{{answer}}}}\"\n")),
            StepSpec::Goto(t) => yaml.push_str(&format!("    goto: {}\n", target(*t))),
            StepSpec::End => yaml.push_str("    end: Bye\n"),
            StepSpec::Handoff => yaml.push_str("    handoff: A person will answer.\n"),
            StepSpec::Api { target: t } => yaml.push_str(&format!(
                "    api_request:\n      method: POST\n      url: \"https://api.example.com/x/{{{{answer}}}}\"\n      body: {{ json: {{ a: \"{{{{answer}}}}\" }} }}\n      retry: {{ attempts: 1, backoff: 10ms }}\n      retry_unsafe: true\n    save: {{ answer: data.value }}\n    on: {{ error: {} }}\n",
                target(*t)
            )),
            StepSpec::Zoho { target: t } => yaml.push_str(&format!(
                "    zoho_search:\n      phone: \"{{{{contact.phone}}}}\"\n      fields: [First_Name]\n    save: {{ answer: data[0].First_Name }}\n    on: {{ empty: {} }}\n",
                target(*t)
            )),
        }
    }
    yaml
}

#[derive(Clone, Debug)]
enum Answer {
    Status(u16),
    Html,
    Timeout,
    TooLarge,
    Connection,
}

fn answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        prop::sample::select(vec![200u16, 204, 404, 429, 500]).prop_map(Answer::Status),
        Just(Answer::Html),
        Just(Answer::Timeout),
        Just(Answer::TooLarge),
        Just(Answer::Connection),
    ]
}

fn result_for(effect: &Effect, answer: &Answer) -> EffectResult {
    match effect {
        Effect::Sleep(_) => EffectResult::Slept,
        Effect::ZohoSearch(_) => EffectResult::Zoho(ZohoSearchResult {
            outcome: match answer {
                Answer::Status(200) => {
                    ZohoOutcome::Found(json!({"data": [{"First_Name": "Priya"}]}))
                }
                Answer::Status(204) => ZohoOutcome::Empty,
                Answer::Timeout => ZohoOutcome::Timeout,
                _ => ZohoOutcome::Error("failed".into()),
            },
            calls: Vec::new(),
        }),
        Effect::Http(_) => EffectResult::Http(match answer {
            Answer::Status(status) => HttpResult::Response(HttpResponse {
                status: *status,
                headers: vec![("retry-after".into(), "1".into())],
                body: if *status == 204 {
                    Vec::new()
                } else {
                    br#"{"data":{"value":"v"}}"#.to_vec()
                },
                duration: std::time::Duration::from_millis(5),
            }),
            Answer::Html => HttpResult::Response(HttpResponse {
                status: 200,
                headers: Vec::new(),
                body: b"<html>oops</html>".to_vec(),
                duration: std::time::Duration::ZERO,
            }),
            Answer::Timeout => HttpResult::Timeout,
            Answer::TooLarge => HttpResult::TooLarge,
            Answer::Connection => HttpResult::Connection("refused".into()),
        }),
    }
}

#[derive(Clone, Debug)]
struct MessageSpec {
    text: Option<String>,
    button: Option<String>,
    minutes_later: i64,
}

fn message() -> impl Strategy<Value = MessageSpec> {
    (
        prop::option::of(prop::sample::select(TEXTS).prop_map(str::to_string)),
        prop::option::of(prop::sample::select(vec![
            "yes".to_string(),
            "no".to_string(),
            "zzz".to_string(),
        ])),
        prop::sample::select(vec![0i64, 1, 5, 90]),
    )
        .prop_map(|(text, button, minutes_later)| MessageSpec {
            text,
            button,
            minutes_later,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]

    #[test]
    fn any_valid_flow_with_any_messages_never_panics(
        steps in prop::collection::vec(step_spec(), 1..12),
        messages in prop::collection::vec(message(), 1..12),
        answers in prop::collection::vec(answer(), 1..8),
    ) {
        let yaml = flow_yaml(&steps);
        let loaded = flowbot_flow::load_flow("generated.yaml", &yaml);
        prop_assume!(loaded.flow.is_some());
        let flows = FlowSet::from_flows(vec![loaded.flow.expect("checked")]);
        let engine = Engine::new(flows, EngineConfig::default(), Secrets::default());
        let contact = Contact { phone: "919820000001".into(), name: Some("Priya".into()) };
        let mut conversation: Option<Conversation> = None;
        let mut now: DateTime<Utc> = "2026-06-22T10:00:00Z".parse().expect("time");
        let mut answer_index = 0;
        for (index, spec) in messages.iter().enumerate() {
            now += Duration::minutes(spec.minutes_later);
            let mut inbound = Inbound::text(format!("wamid.{index}"), spec.text.clone().unwrap_or_default(), now);
            if spec.text.is_none() {
                inbound.text = None;
                inbound.kind = "image".into();
            }
            if let Some(button) = &spec.button {
                inbound.kind = "button".into();
                inbound.choice = Some(button.clone());
            }
            let mut turn = engine.start_turn(conversation.take(), &contact, &inbound);
            let mut effects = 0;
            while let Poll::Effect(effect) = turn.poll() {
                effects += 1;
                prop_assert!(effects < 1_000, "a turn asked for more than 1000 effects");
                let answer = &answers[answer_index % answers.len()];
                answer_index += 1;
                turn.resume(result_for(&effect, answer));
            }
            let result = turn.finish();
            for message in &result.outbound {
                prop_assert!(message.body().chars().count() <= 4096);
            }
            conversation = result.conversation;
        }
    }
}
