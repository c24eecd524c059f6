//! The `X-Hub-Signature-256` check on inbound webhook bodies.
//!
//! Meta signs every webhook POST with HMAC-SHA256 over the exact raw body, keyed with the app secret,
//! and sends it as `sha256=<lowercase hex>`. This module verifies that header in constant time and can
//! produce it (for tests and the `flowbot send` command). It never parses or re-serialises the JSON:
//! any re-serialisation would change the bytes and break the match.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The name of the header Meta puts the signature in.
pub const SIGNATURE_HEADER: &str = "X-Hub-Signature-256";

const PREFIX: &str = "sha256=";

type HmacSha256 = Hmac<Sha256>;

/// Why a webhook body was not accepted as signed by Meta. The server answers 401 for all of them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `X-Hub-Signature-256` header at all.
    #[error("missing X-Hub-Signature-256 header")]
    Missing,
    /// The header is present but is not `sha256=` followed by 64 hex digits.
    #[error("malformed X-Hub-Signature-256 header: {reason}")]
    Malformed { reason: &'static str },
    /// Well-formed, but not the HMAC of this body with our app secret.
    #[error("X-Hub-Signature-256 does not match the body")]
    Mismatch,
}

/// Checks `header` (the full `X-Hub-Signature-256` value) against the HMAC-SHA256 of `raw_body`.
///
/// The comparison is constant time (`Mac::verify_slice`). Upper-case hex digits are accepted, since
/// they decode to the same bytes; surrounding whitespace is trimmed.
pub fn verify(
    app_secret: &[u8],
    raw_body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?.trim();
    if header.is_empty() {
        return Err(SignatureError::Missing);
    }
    let hex_digest = header
        .strip_prefix(PREFIX)
        .ok_or(SignatureError::Malformed {
            reason: "expected the prefix sha256=",
        })?;
    if hex_digest.len() != 64 {
        return Err(SignatureError::Malformed {
            reason: "expected 64 hex digits after sha256=",
        });
    }
    let expected = hex::decode(hex_digest).map_err(|_| SignatureError::Malformed {
        reason: "the digest is not hexadecimal",
    })?;
    mac_of(app_secret, raw_body)
        .verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

/// The full header value (`sha256=<lowercase hex>`) Meta would send for `body`.
pub fn sign(app_secret: &[u8], body: &[u8]) -> String {
    let digest = mac_of(app_secret, body).finalize().into_bytes();
    format!("{PREFIX}{}", hex::encode(digest))
}

fn mac_of(app_secret: &[u8], body: &[u8]) -> HmacSha256 {
    // Invariant: HMAC takes keys of any length (long keys are hashed, short ones padded), so
    // `new_from_slice` cannot fail whatever the configured secret is.
    #[allow(clippy::expect_used)]
    let mut mac = HmacSha256::new_from_slice(app_secret).expect("HMAC accepts keys of any length");
    mac.update(body);
    mac
}
