//! Runs every replay file under the workspace's `tests/conversations/`, so `cargo test` covers
//! them all; a failure prints the same readable diff as `flowbot test`.

use std::path::PathBuf;

use flowbot_replay::{find_replay_files, run_replay_file};

#[tokio::test]
async fn every_conversation_replays_as_recorded() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/conversations");
    let files =
        find_replay_files(std::slice::from_ref(&root)).expect("tests/conversations is readable");
    assert!(
        !files.is_empty(),
        "no replay files found under {}",
        root.display()
    );
    let mut report = Vec::new();
    for file in &files {
        let outcome = run_replay_file(file).await;
        if !outcome.passed() {
            report.push(format!(
                "FAILED {} ({})\n  {}",
                outcome.name,
                file.display(),
                outcome.failures.join("\n  ")
            ));
        }
    }
    assert!(
        report.is_empty(),
        "{} of {} replays failed:\n{}",
        report.len(),
        files.len(),
        report.join("\n")
    );
}

#[tokio::test]
async fn a_wrong_expectation_fails_with_a_readable_diff() {
    let dir = std::env::temp_dir().join(format!("flowbot-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let flows = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../flows/support_menu.yaml");
    let replay = format!(
        "name: wrong\nflow: {}\nnow: 2026-06-22T10:00:00Z\nturns:\n  - user: menu\n    bot: [ \"Goodbye\" ]\n",
        flows.display()
    );
    let file = dir.join("wrong.yaml");
    std::fs::write(&file, replay).expect("write replay");
    let outcome = run_replay_file(&file).await;
    assert!(!outcome.passed());
    let text = outcome.failures.join("\n");
    assert!(text.contains("expected \"Goodbye\""), "{text}");
    assert!(
        text.contains("got \"Hello there! We are open 9:00-18:00.\""),
        "{text}"
    );
    assert!(text.contains("reply 2: unexpected"), "{text}");
}
