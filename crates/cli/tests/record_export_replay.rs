//! The `flowbot` binary end to end, as a flow author uses it: a conversation held through
//! `chat --database` over two runs, exported with `conversations export`, replays with `flowbot test`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn flowbot(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowbot"))
        .args(args)
        .current_dir(workspace())
        .env_remove("FLOWBOT_DATABASE_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("flowbot runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("flowbot finishes")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn a_chat_kept_in_a_database_exports_as_a_replay_that_passes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let database = dir.path().join("chat.db");
    let database = database.to_str().expect("utf-8 path");
    let first = flowbot(
        &[
            "chat",
            "flows/support_menu.yaml",
            "--database",
            database,
            "--name",
            "Priya",
        ],
        "menu\n1\n12\n",
    );
    assert!(first.status.success(), "{}", text(&first));
    assert!(
        text(&first).contains("Six digits, please."),
        "{}",
        text(&first)
    );
    // A second run resumes the same conversation: the order number answers the waiting question.
    let second = flowbot(
        &["chat", "flows/support_menu.yaml", "--database", database],
        "123456\n2\n",
    );
    assert!(
        text(&second).contains("bot> Where should we deliver?"),
        "{}",
        text(&second)
    );
    assert!(
        text(&second).contains("Thanks, we are checking Order 123456 to south."),
        "{}",
        text(&second)
    );

    // The replies were shown in the terminal: none is left for a server on this database to send
    // to the customer's real number.
    let unsent = tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            let store = flowbot_store::Store::open(database, Default::default())
                .await
                .expect("open");
            let unsent = store.unsent_outbox().await.expect("read");
            store.close().await;
            unsent
        });
    assert!(unsent.is_empty(), "queued for sending: {unsent:?}");

    let listed = flowbot(&["conversations", "list", "--database", database], "");
    assert!(
        text(&listed).contains("no conversations"),
        "the conversation ended: {}",
        text(&listed)
    );
    let shown = flowbot(
        &[
            "conversations",
            "show",
            "919820000001",
            "--database",
            database,
        ],
        "",
    );
    assert!(
        text(&shown).contains("customer> 123456"),
        "{}",
        text(&shown)
    );

    let export = flowbot(
        &[
            "conversations",
            "export",
            "919820000001",
            "--database",
            database,
        ],
        "",
    );
    assert!(export.status.success(), "{}", text(&export));
    let replay_file: &Path = &dir.path().join("recorded.yaml");
    std::fs::write(replay_file, &export.stdout).expect("write export");
    let replayed = flowbot(&["test", replay_file.to_str().expect("utf-8")], "");
    assert!(
        replayed.status.success(),
        "{}\n--- export ---\n{}",
        text(&replayed),
        String::from_utf8_lossy(&export.stdout)
    );
    assert!(text(&replayed).contains("1 passed, 0 failed"));
}

#[test]
fn validate_reports_positions_and_exits_1_on_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broken = dir.path().join("broken.yaml");
    std::fs::write(
        &broken,
        "flow: broken\nsteps:\n  - id: a\n    say: hi\n    next: nowhere\n",
    )
    .expect("write flow");
    let output = flowbot(&["validate", broken.to_str().expect("utf-8")], "");
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output).contains("broken.yaml:5:11: error: there is no step `nowhere`"),
        "{}",
        text(&output)
    );
    let good = flowbot(&["validate"], "");
    assert_eq!(good.status.code(), Some(0), "{}", text(&good));
}

#[test]
fn graph_and_schema_print_what_editors_and_viewers_read() {
    let graph = flowbot(&["graph", "flows/zoho_lead_status.yaml"], "");
    assert!(graph.status.success(), "{}", text(&graph));
    let mermaid = String::from_utf8_lossy(&graph.stdout);
    assert!(mermaid.starts_with("flowchart TD"), "{mermaid}");
    assert!(mermaid.contains("-- \"empty\" -->"), "{mermaid}");
    let schema = flowbot(&["schema"], "");
    let parsed: serde_json::Value =
        serde_json::from_slice(&schema.stdout).expect("the schema is JSON");
    assert!(parsed.to_string().contains("zoho_search"));
}
