//! `flowbot zoho connect | status | refresh | disconnect` against a fake Zoho accounts server, as an
//! operator runs them: the connection lands encrypted in the database, `status` shows it without a
//! token, the wrong data centre gets a message that says so.

use std::process::{Command, Output};

use flowbot_testkit::fake_zoho::{FakeZoho, FAKE_CLIENT_ID, FAKE_CLIENT_SECRET, FAKE_GRANT_CODE};

fn flowbot(args: &[&str], dir: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flowbot"))
        .args(args)
        .current_dir(dir)
        .env_remove("FLOWBOT_DATABASE_URL")
        .env_remove("FLOWBOT_SECRET_KEY")
        .output()
        .expect("flowbot runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_status_refresh_disconnect_never_print_a_token() {
    let zoho = FakeZoho::start(Default::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let url = zoho.url();
    let dir_path = dir.path().to_path_buf();
    let run = move |args: Vec<String>| {
        let dir = dir_path.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                flowbot(&args, &dir)
            })
            .await
            .expect("the command finishes")
        }
    };
    let args = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    let connected = run(args(&[
        "zoho",
        "connect",
        "--name",
        "zoho",
        "--dc",
        "in",
        "--client-id",
        FAKE_CLIENT_ID,
        "--client-secret",
        FAKE_CLIENT_SECRET,
        "--code",
        FAKE_GRANT_CODE,
        "--accounts-url",
        &url,
        "--database",
        "crm.db",
    ]))
    .await;
    assert!(connected.status.success(), "{}", text(&connected));
    assert!(
        text(&connected).contains("connected `zoho`"),
        "{}",
        text(&connected)
    );
    assert!(
        dir.path().join("crm.db.key").exists(),
        "the key file is created beside the database"
    );

    let status = run(args(&["zoho", "status", "--database", "crm.db"])).await;
    assert!(status.status.success(), "{}", text(&status));
    assert!(
        text(&status).contains("data centre:   in"),
        "{}",
        text(&status)
    );
    assert!(
        text(&status).contains(&url),
        "the api domain Zoho returned: {}",
        text(&status)
    );

    let refreshed = run(args(&[
        "zoho",
        "refresh",
        "--name",
        "zoho",
        "--database",
        "crm.db",
    ]))
    .await;
    assert!(refreshed.status.success(), "{}", text(&refreshed));
    assert_eq!(zoho.refreshes(), 1);

    let disconnected = run(args(&[
        "zoho",
        "disconnect",
        "--name",
        "zoho",
        "--database",
        "crm.db",
    ]))
    .await;
    assert!(disconnected.status.success(), "{}", text(&disconnected));
    assert_eq!(zoho.revokes(), 1);
    let after = run(args(&["zoho", "status", "--database", "crm.db"])).await;
    assert!(
        text(&after).contains("no Zoho connection"),
        "{}",
        text(&after)
    );

    // No secret in anything printed, nor in the database file.
    let everything = [&connected, &status, &refreshed, &disconnected, &after]
        .map(text)
        .join("\n");
    for secret in [FAKE_CLIENT_SECRET, FAKE_GRANT_CODE] {
        assert!(!everything.contains(secret), "a secret was printed");
    }
    for request in zoho.requests() {
        for (name, value) in &request.headers {
            if name.eq_ignore_ascii_case("authorization") {
                let token = value.trim_start_matches("Zoho-oauthtoken ");
                assert!(!everything.contains(token), "an access token was printed");
            }
        }
    }
    let database = std::fs::read(dir.path().join("crm.db")).expect("read db");
    assert!(!String::from_utf8_lossy(&database).contains(FAKE_CLIENT_SECRET));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_grant_code_for_another_data_centre_says_so() {
    let zoho = FakeZoho::start(Default::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let url = zoho.url();
    let path = dir.path().to_path_buf();
    let output = tokio::task::spawn_blocking(move || {
        flowbot(
            &[
                "zoho",
                "connect",
                "--dc",
                "in",
                "--client-id",
                "1000.UNKNOWNCLIENT",
                "--client-secret",
                "nope",
                "--code",
                FAKE_GRANT_CODE,
                "--accounts-url",
                &url,
                "--database",
                "crm.db",
            ],
            &path,
        )
    })
    .await
    .expect("finishes");
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("wrong data centre"),
        "{}",
        text(&output)
    );
}
