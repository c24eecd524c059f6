//! `serve --check` exits as the README says: 0 valid, 1 flows with errors (findings), 2 when the
//! check cannot run (a missing or empty flows folder), like `serve` itself.

use std::process::Command;

fn check(flows: &std::path::Path) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_flowbot"))
        .args(["serve", "--check", "--flows"])
        .arg(flows)
        .env_remove("FLOWBOT_FLOWS")
        .env_remove("FLOWBOT_DATABASE_URL")
        .output()
        .expect("flowbot runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), text)
}

#[test]
fn serve_check_exit_codes() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let flows = dir.path().join("flows");
    std::fs::create_dir(&flows).expect("flows folder");

    let (code, text) = check(&flows);
    assert_eq!(code, Some(2), "empty folder: {text}");
    assert!(text.contains("error: no flow files"), "{text}");

    let (code, text) = check(&dir.path().join("missing"));
    assert_eq!(code, Some(2), "missing folder: {text}");

    std::fs::write(
        flows.join("bad.yaml"),
        "flow: bad\nsteps:\n  - id: a\n    goto: nowhere\n",
    )
    .expect("flow file");
    let (code, text) = check(&flows);
    assert_eq!(code, Some(1), "a flow with errors: {text}");
    assert!(text.contains("bad.yaml:4:"), "{text}");

    std::fs::write(
        flows.join("bad.yaml"),
        "flow: good\nsteps:\n  - id: a\n    say: hi\n",
    )
    .expect("flow file");
    let (code, text) = check(&flows);
    assert_eq!(code, Some(0), "valid: {text}");
}
