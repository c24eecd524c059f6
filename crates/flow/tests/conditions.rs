//! Every condition operator with its edge values, as one table. The README's "Conditions" table
//! documents the same rules.

use flowbot_flow::condition::ConditionDef;
use serde_json::{json, Value};

fn holds(condition: &str, vars: &Value) -> bool {
    let definition: ConditionDef =
        serde_yaml::from_str(condition).unwrap_or_else(|e| panic!("{condition}: {e}"));
    let compiled = definition
        .compile()
        .unwrap_or_else(|e| panic!("{condition}: {e}"));
    compiled.evaluate(vars)
}

#[test]
fn every_operator_with_its_edge_values() {
    let vars = json!({
        "text": "Hello World", "padded": "  yes  ", "ten": "10", "ten_n": 10, "float": "2.5",
        "zero": 0, "no": false, "nothing": null, "blank": "   ", "empty_list": [], "empty_map": {},
        "list": ["a", "b", 3], "code": "007", "word": "abc", "reply": "callback",
        "nested": { "status": "Contacted" }, "unicode": "प्रिया"
    });
    let table: &[(&str, bool)] = &[
        // equals: text compares trimmed and case-sensitive unless ignore_case
        ("{ var: text, equals: Hello World }", true),
        ("{ var: text, equals: hello world }", false),
        (
            "{ var: text, equals: hello world, ignore_case: true }",
            true,
        ),
        ("{ var: padded, equals: yes }", true),
        ("{ var: reply, equals: CALLBACK, ignore_case: true }", true),
        ("{ var: nested.status, equals: Contacted }", true),
        ("{ var: unicode, equals: प्रिया }", true),
        // equals with a number compares numbers; a numeric string is a number
        ("{ var: ten, equals: 10 }", true),
        ("{ var: ten_n, equals: 10 }", true),
        ("{ var: ten, equals: 10.0 }", true),
        ("{ var: code, equals: 7 }", true),
        ("{ var: code, equals: \"7\" }", false),
        ("{ var: code, equals: \"007\" }", true),
        ("{ var: word, equals: 10 }", false),
        ("{ var: missing, equals: \"\" }", true),
        ("{ var: zero, equals: 0 }", true),
        ("{ var: no, equals: false }", true),
        ("{ var: text, not_equals: Hello }", true),
        ("{ var: ten, not_equals: 10 }", false),
        // contains / not_contains: text, or list membership
        ("{ var: text, contains: World }", true),
        ("{ var: text, contains: world }", false),
        ("{ var: text, contains: world, ignore_case: true }", true),
        ("{ var: list, contains: b }", true),
        ("{ var: list, contains: 3 }", true),
        ("{ var: list, contains: c }", false),
        ("{ var: text, not_contains: xyz }", true),
        ("{ var: missing, contains: a }", false),
        // starts_with / ends_with
        ("{ var: text, starts_with: Hello }", true),
        ("{ var: text, starts_with: hello, ignore_case: true }", true),
        ("{ var: text, ends_with: World }", true),
        ("{ var: text, ends_with: Hello }", false),
        // matches: regex, linear time
        ("{ var: code, matches: '^\\d{3}$' }", true),
        ("{ var: text, matches: '^hello', ignore_case: true }", true),
        ("{ var: text, matches: '^hello' }", false),
        // empty: missing, null, "", whitespace, [] and {}; 0 and false are not empty
        ("{ var: missing, empty: true }", true),
        ("{ var: nothing, empty: true }", true),
        ("{ var: blank, empty: true }", true),
        ("{ var: empty_list, empty: true }", true),
        ("{ var: empty_map, empty: true }", true),
        ("{ var: zero, empty: true }", false),
        ("{ var: no, empty: true }", false),
        ("{ var: text, empty: false }", true),
        ("{ var: text, not_empty: true }", true),
        ("{ var: blank, not_empty: true }", false),
        // exists: set and not null
        ("{ var: zero, exists: true }", true),
        ("{ var: nothing, exists: true }", false),
        ("{ var: missing, exists: false }", true),
        // gt / gte / lt / lte: numbers only, strings holding numbers count, gt is strict
        ("{ var: ten, gt: 9 }", true),
        ("{ var: ten, gt: 10 }", false),
        ("{ var: ten, gte: 10 }", true),
        ("{ var: float, lt: 3 }", true),
        ("{ var: float, lte: 2.5 }", true),
        ("{ var: ten_n, lt: 10 }", false),
        ("{ var: word, gt: 1 }", false),
        ("{ var: word, lt: 1 }", false),
        ("{ var: missing, lt: 1 }", false),
        ("{ var: no, gt: -1 }", false),
        // in / not_in
        ("{ var: word, in: [abc, def] }", true),
        ("{ var: word, in: [ABC], ignore_case: true }", true),
        ("{ var: ten, in: [9, 10] }", true),
        ("{ var: word, not_in: [x, y] }", true),
        ("{ var: word, not_in: [abc] }", false),
        // all / any / not
        (
            "{ all: [ { var: ten, gt: 1 }, { var: word, equals: abc } ] }",
            true,
        ),
        (
            "{ all: [ { var: ten, gt: 1 }, { var: word, equals: x } ] }",
            false,
        ),
        (
            "{ any: [ { var: word, equals: x }, { var: text, contains: World } ] }",
            true,
        ),
        ("{ not: { var: word, equals: abc } }", false),
        // operands may be templates
        ("{ var: word, equals: \"{{word}}\" }", true),
        ("{ var: ten, gt: \"{{zero}}\" }", true),
    ];
    let failures: Vec<String> = table
        .iter()
        .filter(|(condition, expected)| holds(condition, &vars) != *expected)
        .map(|(condition, expected)| format!("{condition} should be {expected}"))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn malformed_conditions_are_refused_at_load() {
    for (condition, fragment) in [
        ("{ var: x }", "exactly one operator"),
        ("{ var: x, equals: 1, contains: 2 }", "exactly one operator"),
        ("{ equals: 1 }", "needs `var:`"),
        ("{ var: x, gt: abc }", "not a number"),
        ("{ var: x, matches: '(' }", "invalid regex"),
        ("{ all: [] }", "at least one"),
        ("{ var: x, equals: [1, 2] }", "use `in` for lists"),
    ] {
        let definition: ConditionDef = serde_yaml::from_str(condition).expect("parses");
        let error = definition.compile().expect_err(condition);
        assert!(error.contains(fragment), "{condition}: {error}");
    }
}

#[test]
fn pathological_regexes_match_in_linear_time() {
    // (a+)+$ is the classic catastrophic-backtracking pattern; the regex crate has no backtracking.
    let vars = json!({ "text": format!("{}!", "a".repeat(100_000)) });
    assert!(!holds("{ var: text, matches: '^(a+)+$' }", &vars));
}
