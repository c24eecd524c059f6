//! Helpers shared by the store's integration tests: a fresh store on a real SQLite file in a
//! temporary folder, builders for inbound messages and turns, and a raw connection for looking at
//! (or sabotaging) the database behind the store's back.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::path::PathBuf;

use chrono::{DateTime, Duration, TimeZone, Utc};
use flowbot_engine::{Contact, Conversation, Inbound, Outbound, Status, TraceEvent};
use flowbot_store::{NewInbound, Store, StoreOptions, TurnCommit};
use serde_json::{Map, Value};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, SqliteConnection};

pub const CHANNEL: &str = "whatsapp";
pub const BUSINESS: &str = "106540352242922";

/// A store on a file in its own temporary folder (deleted when dropped).
pub struct TestDb {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
    pub store: Store,
}

pub async fn open_store() -> TestDb {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("flowbot.db");
    let store = Store::open(path.to_str().expect("utf-8 path"), StoreOptions::default())
        .await
        .expect("store opens");
    TestDb { dir, path, store }
}

/// Opens an existing database file (as after a restart).
pub async fn open_at(path: &std::path::Path) -> Store {
    Store::open(path.to_str().expect("utf-8 path"), StoreOptions::default())
        .await
        .expect("store reopens")
}

impl TestDb {
    /// Opens the same file again, beside the running store.
    pub async fn reopen(&self) -> Store {
        open_at(&self.path).await
    }

    /// A connection of its own, outside the store.
    pub async fn raw(&self) -> SqliteConnection {
        SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(&self.path))
            .await
            .expect("raw connection")
    }

    pub async fn count(&self, sql: &str) -> i64 {
        let mut conn = self.raw().await;
        sqlx::query_scalar(sql)
            .fetch_one(&mut conn)
            .await
            .expect("count query")
    }
}

/// A fixed instant plus `seconds`, so tests never depend on the clock.
pub fn at(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 9, 0, 0)
        .single()
        .expect("valid date")
        + Duration::seconds(seconds)
}

pub fn inbound(id: &str, phone: &str, text: &str, timestamp: DateTime<Utc>) -> NewInbound {
    NewInbound {
        channel: CHANNEL.into(),
        business_id: BUSINESS.into(),
        contact: Contact {
            phone: phone.into(),
            name: Some("Asha Rao".into()),
        },
        message: Inbound::text(id, text, timestamp),
    }
}

pub fn conversation(vars: Map<String, Value>, now: DateTime<Utc>) -> Conversation {
    Conversation {
        flow: "zoho_lead_status".into(),
        step: Some("offer_callback".into()),
        status: Status::Waiting,
        vars,
        attempts: 1,
        started_at: now,
        updated_at: now,
        expires_at: now + Duration::hours(4),
    }
}

/// A turn that saves a conversation, sends `replies` and traces two steps.
pub fn turn(inbox_id: i64, phone: &str, replies: &[&str], now: DateTime<Utc>) -> TurnCommit {
    let mut vars = Map::new();
    vars.insert("first_name".into(), Value::String("Asha".into()));
    TurnCommit {
        inbox_id,
        channel: CHANNEL.into(),
        business_id: BUSINESS.into(),
        contact: Contact {
            phone: phone.into(),
            name: Some("Asha Rao".into()),
        },
        conversation: Some(conversation(vars, now)),
        outbound: replies
            .iter()
            .map(|body| Outbound::Text {
                body: (*body).into(),
            })
            .collect(),
        trace: vec![
            TraceEvent::FlowStarted {
                flow: "zoho_lead_status".into(),
                reason: "keyword".into(),
            },
            TraceEvent::Step {
                step: "greet".into(),
                kind: "say".into(),
            },
        ],
        now,
    }
}

/// Inserts one message and returns its inbox id.
pub async fn insert_one(store: &Store, id: &str, phone: &str, timestamp: DateTime<Utc>) -> i64 {
    let outcomes = store
        .insert_inbound(vec![inbound(id, phone, "hi", timestamp)])
        .await
        .expect("insert");
    match outcomes.as_slice() {
        [flowbot_store::InsertOutcome::Inserted(inbox_id)] => *inbox_id,
        other => panic!("expected one insert, got {other:?}"),
    }
}
