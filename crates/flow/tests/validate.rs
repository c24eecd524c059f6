//! `validate` finds each kind of problem and reports it at file:line:column, with a hint where one
//! helps. One `check` function drives every case: a flow text and the diagnostics it must produce
//! (as `line:column: severity: message-fragment`).

use flowbot_flow::{load_flow, Diagnostic, FlowSet, FlowSource};

/// Loads `yaml` and asserts that each expected `(line, column, severity, fragment)` is reported.
fn check(yaml: &str, expected: &[(usize, usize, &str, &str)]) -> Vec<Diagnostic> {
    let loaded = load_flow("flow.yaml", yaml);
    for (line, column, severity, fragment) in expected {
        let found = loaded.diagnostics.iter().any(|d| {
            d.line == *line
                && d.column == *column
                && d.to_string().contains(&format!(": {severity}: "))
                && d.to_string().contains(fragment)
        });
        assert!(
            found,
            "expected {line}:{column} {severity} containing {fragment:?}; got:\n{}",
            loaded
                .diagnostics
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    let has_error = expected
        .iter()
        .any(|(_, _, severity, _)| *severity == "error");
    assert_eq!(
        loaded.flow.is_none(),
        has_error,
        "a flow is returned exactly when there is no error"
    );
    loaded.diagnostics
}

#[test]
fn a_good_flow_has_no_diagnostics() {
    let diagnostics = check(
        "flow: ok\nsteps:\n  - id: a\n    say: hi {{contact.name}}\n",
        &[],
    );
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
}

#[test]
fn yaml_syntax_errors_have_their_position() {
    check(
        "flow: x\nsteps:\n  - id: a\n    say: \"unclosed\n",
        &[(5, 1, "error", "unexpected end of stream")],
    );
}

#[test]
fn unknown_keys_suggest_the_right_one() {
    let diagnostics = check(
        "flow: x\nsteps:\n  - id: a\n    sya: hello\n",
        &[(4, 5, "error", "unknown field `sya`")],
    );
    assert_eq!(diagnostics[0].hint.as_deref(), Some("did you mean `say`?"));
    let nested = check(
        "flow: x\nsteps:\n  - id: a\n    ask:\n      text: hi\n      buttns: [Yes]\n",
        &[(6, 7, "error", "unknown field `buttns`")],
    );
    assert_eq!(nested[0].hint.as_deref(), Some("did you mean `buttons`?"));
}

#[test]
fn duplicate_step_ids_point_at_the_second() {
    check(
        "flow: x\nsteps:\n  - id: a\n    say: one\n  - id: a\n    say: two\n",
        &[(5, 5, "error", "duplicate step id `a`")],
    );
}

#[test]
fn targets_that_do_not_exist_are_errors_with_a_suggestion() {
    let diagnostics = check(
        "flow: x\nsteps:\n  - id: greet\n    say: hi\n    next: grete_again\n  - id: greet_again\n    say: hi\n    goto: nowhere\n",
        &[(5, 11, "error", "there is no step `grete_again`"), (8, 11, "error", "there is no step `nowhere`")],
    );
    assert!(diagnostics
        .iter()
        .any(|d| d.hint.as_deref() == Some("did you mean `greet_again`?")));
    check(
        "flow: x\nsteps:\n  - id: b\n    branch:\n      - when: { var: x, equals: 1 }\n        goto: missing\n    else: also_missing\n  - id: c\n    api_request: { url: \"https://a.test/x\" }\n    on: { error: gone }\n",
        &[
            (6, 15, "error", "there is no step `missing`"),
            (7, 11, "error", "there is no step `also_missing`"),
            (10, 18, "error", "there is no step `gone`"),
        ],
    );
}

#[test]
fn unreachable_steps_are_warnings() {
    check(
        "flow: x\nsteps:\n  - id: a\n    say: hi\n    next: end\n  - id: orphan\n    say: never\n",
        &[(6, 5, "warning", "step `orphan` can never be reached")],
    );
}

#[test]
fn variables_read_but_never_set_are_warnings() {
    let diagnostics = check(
        "flow: x\nsteps:\n  - id: ask_name\n    ask: Your name?\n    save: name\n  - id: a\n    say: \"Hi {{nmae}}, {{contact.name}} {{name}}\"\n",
        &[(7, 5, "warning", "reads `nmae`, which is never set")],
    );
    assert!(diagnostics.iter().any(|d| d
        .hint
        .as_deref()
        .is_some_and(|h| h.contains("did you mean `name`?"))));
    assert_eq!(
        diagnostics.len(),
        1,
        "only nmae is unknown: {diagnostics:?}"
    );
}

#[test]
fn template_errors_are_load_errors() {
    check(
        "flow: x\nsteps:\n  - id: a\n    say: \"Hi {{#if x}} open\"\n",
        &[(4, 10, "error", "template syntax")],
    );
    let quadruple = check(
        "flow: x\nsteps:\n  - id: a\n    say: \"Hi {{{{x}}}}\"\n",
        &[(4, 10, "error", "raw block")],
    );
    assert!(quadruple[0]
        .hint
        .as_deref()
        .is_some_and(|h| h.contains("{{name}}")));
    check(
        "flow: x\nsteps:\n  - id: a\n    say: \"{{shout x}}\"\n",
        &[(4, 10, "error", "template")],
    );
}

#[test]
fn invalid_regexes_are_errors() {
    check(
        "flow: x\nsteps:\n  - id: b\n    branch:\n      - when: { var: message.text, matches: \"([a-z\" }\n        goto: b\n",
        &[(5, 45, "error", "invalid regex")],
    );
}

#[test]
fn whatsapp_limits_are_load_errors() {
    check(
        "flow: x\nsteps:\n  - id: a\n    ask:\n      text: Pick\n      buttons: [One, Two, Three, Four]\n    save: pick\n",
        &[(6, 7, "error", "4 buttons; WhatsApp allows at most 3")],
    );
    check(
        "flow: x\nsteps:\n  - id: a\n    say:\n      text: Pick\n      buttons: [This title is far too long]\n",
        &[(6, 17, "error", "has 26 characters; WhatsApp allows 20")],
    );
    check(
        "flow: x\nsteps:\n  - id: a\n    say:\n      text: Pick\n      buttons: [Same, same]\n",
        &[(6, 7, "error", "two options have the id `same`")],
    );
    let rows: String = (0..11)
        .map(|i| format!("          - {{ title: Row {i} }}\n"))
        .collect();
    check(
        &format!("flow: x\nsteps:\n  - id: a\n    say:\n      text: Pick\n      list:\n        button: Choose\n        sections:\n        - rows:\n{rows}"),
        &[(6, 7, "error", "11 rows; WhatsApp allows at most 10")],
    );
    check(
        "flow: x\nsteps:\n  - id: a\n    say:\n      text: Pick\n      list:\n        button: A button label that is too long\n        sections:\n        - rows:\n          - { title: A row title that is much too long, description: ok }\n",
        &[(7, 9, "error", "list button"), (10, 13, "error", "row title")],
    );
    let long = "x".repeat(4097);
    check(
        &format!("flow: x\nsteps:\n  - id: a\n    say: {long}\n"),
        &[(4, 5, "error", "4097 characters; WhatsApp allows 4096")],
    );
}

#[test]
fn step_shapes_are_checked() {
    check(
        "flow: x\nsteps:\n  - id: a\n",
        &[(3, 5, "error", "does nothing")],
    );
    check(
        "flow: x\nsteps:\n  - id: a\n    say: hi\n    ask: hello\n",
        &[(5, 5, "error", "two kinds")],
    );
    check(
        "flow: x\nsteps:\n  - id: a\n    say: hi\n    save: v\n",
        &[(5, 5, "error", "`save` does nothing")],
    );
    check(
        "flow: bad-name\nsteps:\n  - id: a\n    say: hi\n",
        &[(1, 1, "error", "letters, digits and underscores")],
    );
    check(
        "flow: x\nsession_timeout: soon\nsteps:\n  - id: a\n    say: hi\n",
        &[(2, 18, "error", "not a duration")],
    );
}

#[test]
fn flows_are_checked_together() {
    let source = |file: &str, text: &str| FlowSource {
        file: file.into(),
        text: text.into(),
    };
    let (set, diagnostics) = FlowSet::load(&[
        source("a.yaml", "flow: a\ntriggers: { keywords: [hi], default: true }\nsteps:\n  - id: s\n    say: a\n"),
        source("b.yaml", "flow: b\ntriggers:\n  keywords: [Hi]\n  default: true\nsteps:\n  - id: s\n    say: b\n"),
    ]);
    let text: Vec<String> = diagnostics.iter().map(|d| d.to_string()).collect();
    assert!(
        text.iter()
            .any(|t| t.starts_with("b.yaml:4:12: error: flow `b` is a second default flow")),
        "{text:?}"
    );
    assert!(
        text.iter()
            .any(|t| t.starts_with("b.yaml:3:14: error: keyword `hi` also starts flow `a`")),
        "{text:?}"
    );
    assert_eq!(set.by_keyword("  HI ").map(|f| f.name.as_str()), Some("a"));
}

/// Hundreds of files compile on several threads; the checks across files still name the same
/// files in the same order as one thread would, whatever thread compiled what.
#[test]
fn many_flows_are_checked_together_in_file_order() {
    let flow = |name: &str, keyword: &str| {
        format!(
            "flow: {name}\ntriggers: {{ keywords: [{keyword}] }}\nsteps:\n  - id: s\n    say: hi\n"
        )
    };
    let mut sources: Vec<FlowSource> = (0..500)
        .map(|k| FlowSource {
            file: format!("f{k:03}.yaml"),
            text: flow(&format!("flow_{k}"), &format!("start{k}")),
        })
        .collect();
    // The last file repeats the first one's name; one in the middle repeats a keyword; one is broken.
    sources[499].text = flow("flow_0", "other");
    sources[250].text = flow("flow_250", "start3");
    sources[400].text = "flow: [".into();
    let (set, diagnostics) = FlowSet::load(&sources);
    let errors: Vec<String> = diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.to_string())
        .collect();
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(
        errors[0].starts_with(
            "f250.yaml:2:24: error: keyword `start3` also starts flow `flow_3` (f003.yaml)"
        ),
        "{errors:?}"
    );
    assert!(errors[1].starts_with("f400.yaml:"), "{errors:?}");
    assert!(
        errors[2].starts_with("f499.yaml:1:7: error: flow `flow_0` is also defined in f000.yaml"),
        "{errors:?}"
    );
    assert_eq!(set.flows().len(), 498);
    assert_eq!(set.by_keyword("start499").map(|f| f.name.as_str()), None);
    assert_eq!(
        set.by_keyword("start498").map(|f| f.name.as_str()),
        Some("flow_498")
    );
}

#[test]
fn zoho_mistakes_are_warned_about() {
    // Zoho returns only the listed fields: a saved field missing from `fields:` would stay empty.
    check(
        "flow: x\nsteps:\n  - id: lookup\n    zoho_search:\n      phone: \"{{contact.phone}}\"\n      fields: [First_Name]\n    save:\n      owner: data[0].Owner.name\n      first: data[0].First_Name\n      id: data[0].id\n",
        &[(8, 7, "warning", "`Owner` is not in `fields:`")],
    );
    // A hand-written call to a zohoapis host with Bearer: Zoho wants Zoho-oauthtoken.
    check(
        "flow: x\nsteps:\n  - id: call\n    api_request:\n      url: \"https://www.zohoapis.in/crm/v8/Contacts/search?phone={{contact.phone}}\"\n      auth: { bearer: \"{{secrets.zoho_token}}\" }\n",
        &[(5, 7, "warning", "Zoho-oauthtoken")],
    );
}

#[test]
fn api_request_mistakes_are_load_errors() {
    check(
        "flow: x\nsteps:\n  - id: call\n    api_request:\n      method: FETCH\n      url: \"https://api.example.com/x\"\n      body: { xml: \"<a/>\" }\n",
        &[(7, 15, "error", "unknown variant `xml`")],
    );
    check(
        "flow: x\nsteps:\n  - id: call\n    api_request:\n      method: FETCH\n      url: \"https://api.example.com/x\"\n",
        &[(5, 15, "error", "unknown method `FETCH`")],
    );
    check(
        "flow: x\nsteps:\n  - id: call\n    api_request:\n      url: \"https://{{message.text}}.example.com/x\"\n      timeout: 90s\n",
        &[(5, 12, "error", "host"), (6, 16, "error", "above the maximum of 60s")],
    );
    check(
        "flow: x\nsteps:\n  - id: call\n    api_request:\n      url: \"not a url {{x}}\"\n",
        &[(5, 12, "error", "not an http(s) URL")],
    );
    check(
        "flow: x\nsteps:\n  - id: call\n    api_request:\n      url: \"https://api.example.com/x\"\n      response: text\n    save: { id: data.id }\n",
        &[(7, 13, "error", "a JSON path needs `response: json`")],
    );
    check(
        "flow: x\nsteps:\n  - id: call\n    api_request:\n      url: \"https://api.example.com/x\"\n      auth: { oauth: x }\n",
        &[(6, 15, "error", "unknown variant `oauth`")],
    );
    check(
        "flow: x\nsteps:\n  - id: call\n    api_request:\n      url: \"https://api.example.com/x\"\n    save: { id: \"data[0\" }\n",
        &[(6, 17, "error", "response path")],
    );
}

#[test]
fn a_question_with_options_is_at_most_1024_characters() {
    let long = "x".repeat(1100);
    check(
        &format!("flow: x\nsteps:\n  - id: a\n    ask:\n      text: {long}\n      buttons: [A, B]\n    save: v\n"),
        &[(5, 7, "error", "with buttons or a list WhatsApp allows 1024")],
    );
}

#[test]
fn secrets_are_refused_outside_api_requests_and_builtin_typos_are_warned() {
    check(
        "flow: x\nsteps:\n  - id: a\n    say: \"token {{secrets.tok}}\"\n",
        &[(
            4,
            5,
            "error",
            "secrets are only available to api_request steps",
        )],
    );
    check(
        "flow: x\nsteps:\n  - id: a\n    say: \"Hi {{contact.nmae}}\"\n",
        &[(
            4,
            5,
            "warning",
            "reads `contact.nmae`, which does not exist",
        )],
    );
}

#[test]
fn a_byte_order_mark_is_ignored() {
    let diagnostics = check("\u{feff}flow: bom\nsteps:\n  - id: a\n    say: hi\n", &[]);
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
}

#[test]
fn small_mistakes_get_clear_messages() {
    check(
        "flow: x\nsteps:\n  - id: a\n    end: Bye\n    next: a\n",
        &[(5, 5, "error", "`next` after a `end` step never runs")],
    );
    check(
        "flow: x\nsteps:\n  - id: c\n    api_request:\n      url: \"https://api.example.com/x\"\n      retry: { attempts: 1, backoff: 1h }\n",
        &[(6, 38, "error", "a retry backoff above 30s")],
    );
    check(
        "flow: x\nsession_timeout: 0s\nsteps:\n  - id: a\n    say: hi\n",
        &[(2, 18, "error", "must be more than 0")],
    );
    let tab = check(
        "flow: x\nsteps:\n\t- id: a\n",
        &[(3, 1, "error", "cannot start any token")],
    );
    assert!(
        tab[0].hint.as_deref().is_some_and(|h| h.contains("spaces")),
        "{tab:?}"
    );
    let emoji = check("flow: x\nsteps:\n  - id: a\n    say:\n      text: Like it?\n      buttons: [\"👍\", \"👎\"]\n", &[]);
    assert!(
        emoji.is_empty(),
        "emoji-only titles get ids of their own: {emoji:?}"
    );
    let template = check(
        "flow: x\nsteps:\n  - id: a\n    say: \"{{#if x}} open\"\n",
        &[(4, 10, "error", "template syntax error")],
    );
    assert!(
        !template[0].message.contains("expression, html_expression"),
        "{template:?}"
    );
}
