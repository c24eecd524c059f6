//! The `X-Hub-Signature-256` check against the fixture vector, and every way it must fail.

use flowbot_whatsapp::signature::{sign, verify, SignatureError};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../tests/fixtures/whatsapp/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|error| panic!("read {path}: {error}"))
}

/// (app secret, header) from signature_vector.txt.
fn vector() -> (String, String) {
    let text = String::from_utf8(fixture("signature_vector.txt"))
        .unwrap_or_else(|error| panic!("{error}"));
    let field = |key: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(key))
            .map(|value| value.trim().to_owned())
            .unwrap_or_else(|| panic!("{key} missing from the vector"))
    };
    (field("app_secret:"), field("X-Hub-Signature-256:"))
}

#[test]
fn fixture_vector_verifies_and_signs() {
    let (secret, header) = vector();
    let body = fixture("text.json");
    assert_eq!(body.len(), 982, "text.json must keep its exact bytes");
    assert_eq!(verify(secret.as_bytes(), &body, Some(&header)), Ok(()));
    assert_eq!(sign(secret.as_bytes(), &body), header);
}

#[test]
fn testkit_builder_reproduces_the_fixture_bytes() {
    let (secret, header) = vector();
    let body = flowbot_testkit::webhook::text_notification(
        "919820000001",
        "Anika Rao",
        "Hi, I need help with my order",
        "wamid.HBgMOTE5ODIwMDAwMDAxFQIAEhgUOUQ5NDIyMTIyQkRENUZDNTM1NEEA",
        1_796_289_300,
    );
    assert_eq!(
        String::from_utf8_lossy(&body),
        String::from_utf8_lossy(&fixture("text.json"))
    );
    assert_eq!(
        flowbot_testkit::webhook::signature_header(&secret, &body),
        header
    );
}

#[test]
fn changed_body_or_secret_is_a_mismatch() {
    let (secret, header) = vector();
    let body = fixture("text.json");
    let mut reserialised = body.clone();
    reserialised.pop(); // drop the final newline: any byte change must break the match
    assert_eq!(
        verify(secret.as_bytes(), &reserialised, Some(&header)),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        verify(b"another_secret", &body, Some(&header)),
        Err(SignatureError::Mismatch)
    );
    let zeros = format!("sha256={}", "0".repeat(64));
    assert_eq!(
        verify(secret.as_bytes(), &body, Some(&zeros)),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn missing_header_is_missing() {
    let (secret, _) = vector();
    assert_eq!(
        verify(secret.as_bytes(), b"{}", None),
        Err(SignatureError::Missing)
    );
    assert_eq!(
        verify(secret.as_bytes(), b"{}", Some("  ")),
        Err(SignatureError::Missing)
    );
}

#[test]
fn malformed_headers_are_malformed() {
    let (secret, header) = vector();
    let body = fixture("text.json");
    let digest = header.trim_start_matches("sha256=");
    for bad in [
        digest.to_owned(),                   // no prefix
        format!("sha1={digest}"),            // wrong algorithm
        format!("sha256={}", &digest[..63]), // too short
        format!("sha256={digest}00"),        // too long
        format!("sha256={}", "zz".repeat(32)),
        "sha256=".to_owned(),
        format!("sha256={}é", &digest[..62]),
    ] {
        assert!(
            matches!(
                verify(secret.as_bytes(), &body, Some(&bad)),
                Err(SignatureError::Malformed { .. })
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn uppercase_hex_is_the_same_digest() {
    let (secret, header) = vector();
    let upper = format!(
        "sha256={}",
        header.trim_start_matches("sha256=").to_uppercase()
    );
    assert_eq!(
        verify(secret.as_bytes(), &fixture("text.json"), Some(&upper)),
        Ok(())
    );
}
