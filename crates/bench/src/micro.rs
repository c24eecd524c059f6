//! Micro-benchmarks of the hot parts of a turn, with a small timing loop of our own (criterion is
//! heavy to build on two cores): calibrate the iterations so that one run lasts about `run_time`,
//! warm up for one run, then time `runs` runs and report the median (and the spread) in ns/op.
//!
//! What is measured: template rendering (plain and with helpers), response path lookup, condition
//! evaluation, one engine turn with a canned Zoho answer (a new conversation, and an answer to a
//! waiting question), the webhook signature check, and parsing the text notification fixture.

use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::Utc;
use flowbot_engine::{
    Contact, Effect, EffectResult, Engine, EngineConfig, Inbound, Poll, Secrets, ZohoOutcome,
    ZohoSearchResult,
};
use flowbot_flow::condition::ConditionDef;
use flowbot_flow::path::{ResponsePath, ResponseView};
use flowbot_flow::{FlowSet, FlowSource, Template};
use flowbot_testkit::webhook::APP_SECRET;
use serde_json::{json, Value};

use crate::load::bench_flow;

/// `tests/fixtures/whatsapp/text.json`, the body the server parses most.
const TEXT_FIXTURE: &[u8] = include_bytes!("../../../tests/fixtures/whatsapp/text.json");

/// One benchmark's result.
struct Measured {
    name: &'static str,
    median_ns: f64,
    min_ns: f64,
    max_ns: f64,
    iterations: u64,
}

pub fn run(runs: usize, run_time: Duration) {
    let mut results = Vec::new();
    let mut measure = |name: &'static str, f: &mut dyn FnMut()| {
        results.push(time(name, runs, run_time, f));
    };

    // Templates: the benchmark reply (plain pieces) and the worked example's greeting (helpers,
    // rendered by handlebars).
    let vars = json!({
        "first_name": "Priya",
        "lead_status": "Contacted",
        "assigned_to": "Ravi Kumar",
        "message": { "text": "ping #m42", "type": "text" },
        "contact": { "phone": "919820000001", "name": "Priya Sharma" }
    });
    let plain = parse_template("Hi {{first_name}}, you said: {{message.text}}");
    measure("template render, plain (2 variables)", &mut || {
        black_box(plain.render(black_box(&vars)));
    });
    let helpers = parse_template(
        "Hi {{default first_name \"there\"}}. Reply CALLBACK to request a call back from {{default (first_word assigned_to) \"us\"}}.",
    );
    measure("template render, helpers (handlebars)", &mut || {
        black_box(helpers.render(black_box(&vars)));
    });

    // Response paths over a Zoho search answer.
    let zoho_body = zoho_answer();
    let view = ResponseView {
        status: Some(200),
        headers: &[],
        body_text: "",
        json: Some(&zoho_body),
        error: None,
    };
    let owner = ResponsePath::parse("data[0].Owner.name").unwrap_or(ResponsePath::Status);
    measure("path lookup data[0].Owner.name", &mut || {
        black_box(owner.read(black_box(&view)));
    });
    measure("variable lookup message.text", &mut || {
        black_box(flowbot_flow::template::lookup(
            black_box(&vars),
            "message.text",
        ));
    });

    // Conditions.
    let equals = compile_condition("{ var: lead_status, equals: contacted, ignore_case: true }");
    measure("condition equals ignore_case", &mut || {
        black_box(equals.evaluate(black_box(&vars)));
    });
    let combined = compile_condition(
        "{ all: [ { var: lead_status, in: [New, Contacted] }, { var: message.text, matches: '^ping #m\\d+$' } ] }",
    );
    measure("condition all(in, matches)", &mut || {
        black_box(combined.evaluate(black_box(&vars)));
    });

    // One engine turn of the benchmark flow with a canned Zoho answer.
    let engine = bench_engine();
    let contact = Contact {
        phone: "919800000001".into(),
        name: Some("Bench Customer".into()),
    };
    let inbound = Inbound::text("wamid.BENCH1", "ping #m1", Utc::now());
    let answer = EffectResult::Zoho(ZohoSearchResult {
        outcome: ZohoOutcome::Found(zoho_answer()),
        calls: Vec::new(),
    });
    let waiting = engine_turn(&engine, None, &contact, &inbound, &answer).conversation;
    measure("engine turn, new conversation", &mut || {
        black_box(engine_turn(&engine, None, &contact, &inbound, &answer));
    });
    measure("engine turn, answer to a waiting ask", &mut || {
        black_box(engine_turn(
            &engine,
            waiting.clone(),
            &contact,
            &inbound,
            &answer,
        ));
    });

    // The webhook's edge.
    let signature = flowbot_whatsapp::signature::sign(APP_SECRET.as_bytes(), TEXT_FIXTURE);
    measure("signature check (text.json)", &mut || {
        black_box(flowbot_whatsapp::signature::verify(
            APP_SECRET.as_bytes(),
            black_box(TEXT_FIXTURE),
            Some(&signature),
        ))
        .ok();
    });
    measure("parse_notification (text.json)", &mut || {
        black_box(flowbot_whatsapp::parse_notification(black_box(
            TEXT_FIXTURE,
        )))
        .ok();
    });

    print(&results, runs);
}

/// The engine over the benchmark flow.
pub(crate) fn bench_engine() -> Engine {
    let (flows, _) = FlowSet::load(&[FlowSource {
        file: "bench.yaml".into(),
        text: bench_flow(0),
    }]);
    Engine::new(flows, EngineConfig::default(), Secrets::default())
}

/// One turn, every Zoho search answered with `answer`.
pub(crate) fn engine_turn(
    engine: &Engine,
    conversation: Option<flowbot_engine::Conversation>,
    contact: &Contact,
    inbound: &Inbound,
    answer: &EffectResult,
) -> flowbot_engine::TurnResult {
    let mut turn = engine.start_turn(conversation, contact, inbound);
    // At most a few effects: answer each Zoho search with the canned result.
    for _ in 0..4 {
        match turn.poll() {
            Poll::Done => break,
            Poll::Effect(Effect::ZohoSearch(_)) => turn.resume(answer.clone()),
            Poll::Effect(_) => turn.resume(EffectResult::Slept),
        }
    }
    turn.finish()
}

fn parse_template(source: &str) -> Template {
    match Template::parse(source) {
        Ok(template) => template,
        Err(error) => panic!("benchmark template {source:?}: {}", error.message),
    }
}

fn compile_condition(yaml: &str) -> flowbot_flow::condition::Condition {
    let definition: ConditionDef = match serde_yaml::from_str(yaml) {
        Ok(definition) => definition,
        Err(error) => panic!("benchmark condition {yaml}: {error}"),
    };
    match definition.compile() {
        Ok(condition) => condition,
        Err(error) => panic!("benchmark condition {yaml}: {error}"),
    }
}

pub(crate) fn zoho_answer() -> Value {
    json!({
        "data": [{
            "Owner": { "name": "Ravi Kumar", "id": "4876876000000315001" },
            "First_Name": "Bench",
            "Last_Name": "Customer1",
            "Mobile": "919800000001",
            "Phone": null,
            "Lead_Status": "Contacted",
            "Modified_Time": "2026-11-28T16:02:11+05:30",
            "id": "4876876000000000001"
        }],
        "info": { "per_page": 200, "count": 1, "page": 1, "more_records": false }
    })
}

/// Calibrates, warms up, and times `runs` runs of about `run_time` each.
fn time(name: &'static str, runs: usize, run_time: Duration, f: &mut dyn FnMut()) -> Measured {
    let timed = |iterations: u64, f: &mut dyn FnMut()| -> Duration {
        let started = Instant::now();
        for _ in 0..iterations {
            f();
        }
        started.elapsed()
    };
    // Calibrate: double until a batch takes a tenth of a run, then scale up.
    let mut iterations = 1u64;
    loop {
        let took = timed(iterations, f);
        if took >= run_time / 10 || iterations >= 1 << 40 {
            let scale = run_time.as_secs_f64() / took.as_secs_f64().max(1e-9);
            iterations = ((iterations as f64 * scale) as u64).max(1);
            break;
        }
        iterations *= 2;
    }
    timed(iterations, f); // warm-up
    let mut per_op: Vec<f64> = (0..runs)
        .map(|_| timed(iterations, f).as_nanos() as f64 / iterations as f64)
        .collect();
    per_op.sort_by(f64::total_cmp);
    Measured {
        name,
        median_ns: per_op[per_op.len() / 2],
        min_ns: per_op[0],
        max_ns: per_op[per_op.len() - 1],
        iterations,
    }
}

fn print(results: &[Measured], runs: usize) {
    println!("flowbot-bench micro: median of {runs} runs, ns per operation");
    println!(
        "  {:<40} {:>12} {:>12} {:>12} {:>12}",
        "benchmark", "median ns", "min ns", "max ns", "iterations"
    );
    for r in results {
        println!(
            "  {:<40} {:>12.0} {:>12.0} {:>12.0} {:>12}",
            r.name, r.median_ns, r.min_ns, r.max_ns, r.iterations
        );
    }
    let line: serde_json::Map<String, Value> = results
        .iter()
        .map(|r| {
            (
                r.name.to_owned(),
                json!((r.median_ns * 10.0).round() / 10.0),
            )
        })
        .collect();
    println!("{}", json!({ "micro_ns_per_op": line }));
}
