//! Issue 9, hostile flows (authors make mistakes): each is stopped by `validate` with a clear
//! message, or loads and is bounded at run time (the run-time guards are tested in
//! `crates/engine/tests/hardening_flows.rs`). Nothing here may panic, overflow the stack or take
//! long.

use std::time::{Duration, Instant};

use flowbot_flow::{load_flow, Template};

fn errors(yaml: &str) -> Vec<String> {
    load_flow("hostile.yaml", yaml)
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(ToString::to_string)
        .collect()
}

fn assert_error(yaml: &str, fragment: &str) {
    let found = errors(yaml);
    assert!(
        found.iter().any(|e| e.contains(fragment)),
        "expected an error containing {fragment:?}, got {found:#?}"
    );
}

fn flow_with(steps: &str) -> String {
    format!("flow: hostile\ntriggers:\n  default: true\nsteps:\n{steps}")
}

#[test]
fn a_list_over_whatsapps_limits_is_a_validate_error() {
    let rows: String = (0..5_000)
        .map(|n| format!("          - {{ id: r{n}, title: Row {n} }}\n"))
        .collect();
    let yaml = flow_with(&format!(
        "  - id: pick\n    ask:\n      text: Pick one\n      list:\n        button: Rows\n        sections:\n        - title: All\n          rows:\n{rows}    save: picked\n"
    ));
    let started = Instant::now();
    assert_error(&yaml, "10");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn ten_thousand_steps_load_quickly() {
    let steps: String = (0..10_000)
        .map(|n| format!("  - id: s{n}\n    say: \"Step {n}\"\n"))
        .collect();
    let started = Instant::now();
    let loaded = load_flow("hostile.yaml", &flow_with(&steps));
    println!(
        "10,000 steps loaded in {} ms",
        started.elapsed().as_millis()
    );
    assert!(loaded.flow.is_some(), "{:?}", loaded.diagnostics.first());
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn deeply_nested_conditions_are_refused_without_overflowing_the_stack() {
    for depth in [20, 50, 100, 1_000, 10_000] {
        let mut condition = String::from("{ var: x, equals: \"1\" }");
        for _ in 0..depth {
            condition = format!("{{ not: {condition} }}");
        }
        let yaml = flow_with(&format!(
            "  - id: b\n    branch:\n      - when: {condition}\n        goto: b\n"
        ));
        // Runs in a thread with the default test stack: a recursion without a limit overflows.
        let found = std::thread::spawn(move || errors(&yaml))
            .join()
            .expect("no stack overflow");
        println!(
            "not-nesting {depth}: {:?}",
            found
                .first()
                .map(|e| e.chars().take(120).collect::<String>())
        );
        if depth >= 50 {
            assert!(
                found.iter().any(|e| e.contains("levels deep")),
                "depth {depth}: {found:?}"
            );
        }
    }
}

#[test]
fn a_goto_loop_without_waiting_validates_and_is_left_to_the_loop_guard() {
    let yaml = flow_with("  - id: a\n    goto: b\n  - id: b\n    goto: a\n");
    let loaded = load_flow("hostile.yaml", &yaml);
    let all: Vec<String> = loaded.diagnostics.iter().map(ToString::to_string).collect();
    // Validate does not name the loop (it is legal YAML and every target exists); the run-time
    // loop guard stops it: `crates/engine/tests/hardening_flows.rs`.
    assert!(loaded.flow.is_some(), "{all:?}");
}

#[test]
fn pathological_regexes_match_in_linear_time_or_are_refused() {
    // (a+)+$ against "aaaa…!" is exponential for a backtracking engine.
    let yaml = flow_with(
        "  - id: b\n    branch:\n      - when: { var: message.text, matches: '^(a+)+$' }\n        goto: b\n",
    );
    assert!(errors(&yaml).is_empty(), "{:?}", errors(&yaml));
    // Conditions compile `matches` with the regex crate (no backtracking): the same engine here.
    let regex = regex::Regex::new("^(a+)+$").expect("compiles");
    for length in [1_000usize, 10_000, 100_000] {
        let text = format!("{}!", "a".repeat(length));
        let started = Instant::now();
        assert!(!regex.is_match(&text));
        println!(
            "(a+)+$ over {length} characters: {} µs",
            started.elapsed().as_micros()
        );
        assert!(started.elapsed() < Duration::from_millis(200));
    }
    // A regex whose compiled size explodes is a validate error, not a hang or a crash.
    let yaml = flow_with(
        "  - id: b\n    branch:\n      - when: { var: message.text, matches: '(\\w{1000}){1000}' }\n        goto: b\n",
    );
    assert!(!errors(&yaml).is_empty(), "a huge regex loaded");
}

#[test]
fn gigantic_templates_are_refused_or_bounded() {
    // A say longer than WhatsApp's 4,096 characters is a load-time error.
    let long = "x".repeat(5_000);
    assert_error(
        &flow_with(&format!("  - id: s\n    say: \"{long}\"\n")),
        "4",
    );
    // 10,000 nested blocks: refused or compiled, never a stack overflow.
    let nested = format!(
        "{}x{}",
        "{{#if a}}".repeat(10_000),
        "{{/if}}".repeat(10_000)
    );
    let outcome = std::thread::spawn(move || Template::parse(&nested).map(|_| ()))
        .join()
        .expect("no stack overflow");
    println!(
        "10,000 nested #if: {:?}",
        outcome.as_ref().err().map(|e| &e.message)
    );
    // 100,000 placeholders in one template compile and render quickly.
    let many = "{{a}}".repeat(100_000);
    let started = Instant::now();
    let template = Template::parse(&many).expect("compiles");
    let rendered = template.render(&serde_json::json!({ "a": "b" }));
    assert_eq!(rendered.len(), 100_000);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}
