//! The key that encrypts Zoho tokens at rest, and sealing with it.
//!
//! Where the key comes from, first match wins:
//! 1. `FLOWBOT_SECRET_KEY`: base64 or hex of 32 bytes is used as is; any other text is a passphrase
//!    and its SHA-256 is the key.
//! 2. A key file beside the database, `<database file>.key` (e.g. `flowbot.db.key`): created on
//!    first use with 32 random bytes (written as base64, owner-only permissions), read afterwards.
//!    Its content can be copied into `FLOWBOT_SECRET_KEY` to move the database to another machine.
//! 3. For an in-memory database: a random key that lives as long as the process.
//!
//! Sealing uses XChaCha20-Poly1305 with a fresh random 24-byte nonce per write, and the connection
//! name as associated data, so a blob copied onto another row does not open. A sealed value is
//! `version (1 byte) | nonce (24 bytes) | ciphertext`. A wrong key is a clear error, never a panic.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

use crate::open::Location;
use crate::StoreError;

/// The first byte of every sealed value.
const SEALED_VERSION: u8 = 1;
const NONCE_LEN: usize = 24;

/// The message for a key that does not open a stored connection.
pub(crate) const WRONG_KEY: &str =
    "cannot decrypt the Zoho connection: FLOWBOT_SECRET_KEY differs from the key used to store it";

/// The 32-byte key that encrypts tokens at rest.
#[derive(Clone)]
pub struct EncryptionKey([u8; 32]);

impl std::fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EncryptionKey([redacted])")
    }
}

impl EncryptionKey {
    /// From `FLOWBOT_SECRET_KEY` (base64 or hex of 32 bytes, or any passphrase, hashed), else from
    /// the key file beside the database (created with owner-only permissions on first use).
    pub fn load(
        env_value: Option<&str>,
        database_location: &str,
    ) -> Result<EncryptionKey, StoreError> {
        if let Some(value) = env_value.map(str::trim).filter(|value| !value.is_empty()) {
            return Ok(EncryptionKey::from_env_value(value));
        }
        match Location::parse(database_location)? {
            Location::Memory => Ok(EncryptionKey::generate()),
            Location::File(path) => EncryptionKey::from_key_file(&key_file_path(&path)),
        }
    }

    /// A key from raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> EncryptionKey {
        EncryptionKey(bytes)
    }

    /// A new random key.
    pub fn generate() -> EncryptionKey {
        EncryptionKey(rand::random())
    }

    /// The key file used for a database file when `FLOWBOT_SECRET_KEY` is not set.
    pub fn file_for(database_file: &Path) -> PathBuf {
        key_file_path(database_file)
    }

    fn from_env_value(value: &str) -> EncryptionKey {
        match decode_key(value) {
            Some(bytes) => EncryptionKey(bytes),
            None => EncryptionKey(Sha256::digest(value.as_bytes()).into()),
        }
    }

    fn from_key_file(path: &Path) -> Result<EncryptionKey, StoreError> {
        match std::fs::read(path) {
            Ok(content) => {
                warn_if_readable_by_others(path);
                key_from_file_content(&content).map(EncryptionKey).ok_or_else(|| {
                    StoreError::Key(format!(
                        "the key file {} does not hold a 32-byte key (base64 or hex): restore it from a backup, or set FLOWBOT_SECRET_KEY to the key the tokens were stored with",
                        path.display()
                    ))
                })
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => create_key_file(path),
            Err(error) => Err(StoreError::Key(format!(
                "cannot read the key file {}: {error}",
                path.display()
            ))),
        }
    }

    /// Encrypts `plaintext`, bound to `associated` (the row it is stored in).
    pub(crate) fn seal(&self, associated: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, StoreError> {
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let cipher = XChaCha20Poly1305::new(&self.0.into());
        let ciphertext = cipher
            .encrypt(
                XNonce::from_slice(&nonce_bytes),
                Payload {
                    msg: plaintext,
                    aad: associated,
                },
            )
            .map_err(|_| StoreError::Key("encryption failed".into()))?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        sealed.push(SEALED_VERSION);
        sealed.extend_from_slice(&nonce_bytes);
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    /// Decrypts what [`EncryptionKey::seal`] produced; a wrong key or a tampered value is an error.
    pub(crate) fn open(&self, associated: &[u8], sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        let Some((&version, rest)) = sealed.split_first() else {
            return Err(StoreError::Corrupt(
                "a sealed Zoho connection is empty".into(),
            ));
        };
        if version != SEALED_VERSION || rest.len() < NONCE_LEN {
            return Err(StoreError::Corrupt(format!(
                "a sealed Zoho connection has an unknown format (version {version}, {} bytes)",
                sealed.len()
            )));
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let cipher = XChaCha20Poly1305::new(&self.0.into());
        cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: associated,
                },
            )
            .map_err(|_| StoreError::Key(WRONG_KEY.into()))
    }
}

fn key_file_path(database_file: &Path) -> PathBuf {
    let mut name = database_file.as_os_str().to_owned();
    name.push(".key");
    PathBuf::from(name)
}

/// 32 bytes from hex (64 digits) or base64 (standard or URL-safe, padded or not).
fn decode_key(text: &str) -> Option<[u8; 32]> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    if text.len() == 64 {
        if let Ok(bytes) = hex::decode(text) {
            return bytes.try_into().ok();
        }
    }
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .filter_map(|engine| engine.decode(text).ok())
        .find_map(|bytes| <[u8; 32]>::try_from(bytes).ok())
}

fn key_from_file_content(content: &[u8]) -> Option<[u8; 32]> {
    if let Some(key) = std::str::from_utf8(content)
        .ok()
        .and_then(|text| decode_key(text.trim()))
    {
        return Some(key);
    }
    // A file of exactly 32 raw bytes is accepted too.
    content.try_into().ok()
}

fn create_key_file(path: &Path) -> Result<EncryptionKey, StoreError> {
    let key = EncryptionKey::generate();
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        open.mode(0o600);
    }
    let mut file = match open.open(path) {
        Ok(file) => file,
        // Another process created it first: use theirs.
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            return EncryptionKey::from_key_file(path)
        }
        Err(error) => {
            return Err(StoreError::Key(format!(
                "cannot create the key file {}: {error}",
                path.display()
            )))
        }
    };
    let encoded = base64::engine::general_purpose::STANDARD.encode(key.0);
    file.write_all(format!("{encoded}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|error| {
            StoreError::Key(format!(
                "cannot write the key file {}: {error}",
                path.display()
            ))
        })?;
    tracing::info!(path = %path.display(), "created a new encryption key file for Zoho tokens; back it up with the database");
    Ok(key)
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(metadata) = std::fs::metadata(path) {
        if metadata.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "the encryption key file is readable by other users: chmod 600 it");
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_values_base64_hex_and_passphrase() {
        let bytes = [7u8; 32];
        let base64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        assert_eq!(EncryptionKey::from_env_value(&base64).0, bytes);
        assert_eq!(EncryptionKey::from_env_value(&hex::encode(bytes)).0, bytes);
        let passphrase = EncryptionKey::from_env_value("correct horse battery staple");
        assert_eq!(
            passphrase.0,
            <[u8; 32]>::from(Sha256::digest(b"correct horse battery staple"))
        );
    }

    #[test]
    fn seal_and_open_round_trip_and_refuse_a_wrong_key_or_row() {
        let key = EncryptionKey::from_bytes([1; 32]);
        let sealed = key.seal(b"zoho", b"secret").expect("sealed");
        assert_eq!(key.open(b"zoho", &sealed).expect("opened"), b"secret");
        let other = EncryptionKey::from_bytes([2; 32]);
        assert_eq!(
            other.open(b"zoho", &sealed),
            Err(StoreError::Key(WRONG_KEY.into()))
        );
        assert!(key.open(b"crm", &sealed).is_err(), "bound to the row name");
        assert_ne!(
            key.seal(b"zoho", b"secret").expect("sealed"),
            sealed,
            "fresh nonce"
        );
    }

    #[test]
    fn debug_is_redacted() {
        assert_eq!(
            format!("{:?}", EncryptionKey::from_bytes([9; 32])),
            "EncryptionKey([redacted])"
        );
    }
}
