//! The sender: takes outbox rows from the workers (and, at start-up, the unsent rows of the
//! store) and delivers them through the Cloud API, one recipient at a time.
//!
//! Invariants:
//! - Per-recipient order: a recipient's messages go out in the order they were handed over (outbox
//!   sequence order), one at a time; different recipients in parallel.
//! - Nothing is dropped silently: every row ends `Sent` (with the provider's id), `Failed` (with a
//!   log line, a metric and the error on the row) or `Held` (kept for later), or stays `Pending` in
//!   the store when shutdown cuts a retry short (sent again on restart).
//!
//! Failures, as the Cloud API classifies them ([`SendError`]): 5xx, 130429 and transport errors are
//! retried with backoff; 131056 paces the recipient (its lane waits, others go on); a free-form
//! reply outside the 24-hour window (checked against the contact's last inbound message first) or a
//! 131047 is not sent and flags the conversation; 190 pauses all sending with a loud error, holding
//! rows until a probe send succeeds (every [`SenderConfig::probe_interval`]) or the next start.
//!
//! Effectively once: before the first HTTP attempt of a row the sender records that the attempt
//! started (`mark_send_started`, committed before the call), and every send carries
//! `biz_opaque_callback_data = "flowbot-outbox-<id>"` ([`callback_data`]), which Graph echoes in the
//! message's status webhooks; the ingress marks the row sent from such a status even when the
//! send's answer never arrived (a crash). At start-up a row whose attempt started but was never
//! confirmed (uncertain) waits [`SenderConfig::uncertain_grace`] in its lane (so the recipient's
//! later rows wait behind it) and is sent again only if no status confirmed it meanwhile. Before a
//! retry the row is read again too, so a status that arrived meanwhile stops the retry.
//!
//! Without an access token ([`Outlet::Local`]) messages are logged ("would send to …") and marked
//! sent with the local id `local.<outbox id>`, so the server can be tried without Meta.
//!
//! The sender does not build messages (the engine did) and does not touch conversations.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use flowbot_engine::Outbound;
use flowbot_store::{OutboxRow, OutboxState, Store, StoreError};
use flowbot_whatsapp::outbound::{ReplyButton, Row, Section};
use flowbot_whatsapp::{window, CloudApiClient, OutboundMessage, SendError};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};

use crate::metrics::{Metrics, OutOutcome, Queue};

/// Where messages go.
#[derive(Clone, Debug)]
pub enum Outlet {
    /// The WhatsApp Cloud API.
    Cloud(CloudApiClient),
    /// Nowhere: logged and marked sent with a local id (no access token configured).
    Local,
}

/// Tuning of the sender.
#[derive(Clone, Debug)]
pub struct SenderConfig {
    /// Tries of one message for retryable failures before it is marked failed.
    pub max_attempts: u32,
    /// While sending is paused (error 190), how often one held message is tried again.
    pub probe_interval: Duration,
    /// How long after the sender starts a row whose send was attempted but never confirmed
    /// (loaded at start-up) waits for a status webhook before it is sent again.
    pub uncertain_grace: Duration,
}

impl Default for SenderConfig {
    fn default() -> Self {
        SenderConfig {
            max_attempts: 6,
            probe_interval: Duration::from_secs(300),
            uncertain_grace: crate::config::DEFAULT_UNCERTAIN_SEND_GRACE,
        }
    }
}

/// One thing for the sender to do.
#[derive(Clone, Debug)]
pub enum SendItem {
    /// Deliver a stored outbound message.
    Row(OutboxRow),
    /// Mark the customer's message as read (best effort), before the replies to it.
    MarkRead {
        channel: String,
        business_id: String,
        phone: String,
        wamid: String,
    },
}

/// Hands items to the running sender. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SenderHandle {
    queue: mpsc::Sender<SendItem>,
    metrics: Arc<Metrics>,
}

/// The running sender task.
#[derive(Debug)]
pub struct SenderTask {
    join: JoinHandle<()>,
    close: watch::Sender<bool>,
}

/// Starts the sender.
pub fn spawn_sender(
    store: Store,
    outlet: Outlet,
    metrics: Arc<Metrics>,
    config: SenderConfig,
    capacity: usize,
) -> (SenderHandle, SenderTask) {
    let (queue, receiver) = mpsc::channel(capacity.max(1));
    let (close, close_receiver) = watch::channel(false);
    let context = Arc::new(SendContext {
        uncertain_until: tokio::time::Instant::now() + config.uncertain_grace,
        store,
        outlet,
        metrics: metrics.clone(),
        config,
    });
    let dispatcher = Dispatcher {
        context,
        lanes: HashMap::new(),
        busy: HashSet::new(),
        tasks: JoinSet::new(),
        paused: false,
        held: Vec::new(),
    };
    let join = tokio::spawn(dispatcher.run(receiver, close_receiver));
    (SenderHandle { queue, metrics }, SenderTask { join, close })
}

impl SenderHandle {
    /// Queues an item (waits while the queue is full). False when the sender has stopped; the
    /// row then stays pending in the store and goes out on the next start.
    pub async fn submit(&self, item: SendItem) -> bool {
        self.metrics.queue_add(Queue::Sender, 1);
        if self.queue.send(item).await.is_err() {
            self.metrics.queue_add(Queue::Sender, -1);
            return false;
        }
        true
    }
}

impl SenderTask {
    /// Sends what is queued, waiting at most `grace`; true when everything went out in time.
    /// Rows not sent by then stay pending in the store.
    pub async fn flush(self, grace: Duration) -> bool {
        let _ = self.close.send(true);
        let mut join = self.join;
        match tokio::time::timeout(grace, &mut join).await {
            Ok(_) => true,
            Err(_) => {
                join.abort();
                let _ = join.await;
                false
            }
        }
    }
}

/// The prefix of the `biz_opaque_callback_data` the sender puts on every send.
pub const CALLBACK_DATA_PREFIX: &str = "flowbot-outbox-";

/// The `biz_opaque_callback_data` of outbox row `outbox_id`: `flowbot-outbox-<id>`.
pub fn callback_data(outbox_id: i64) -> String {
    format!("{CALLBACK_DATA_PREFIX}{outbox_id}")
}

/// The outbox row a status's `biz_opaque_callback_data` names; `None` when it is not ours.
pub fn outbox_id_of_callback_data(data: &str) -> Option<i64> {
    let digits = data.strip_prefix(CALLBACK_DATA_PREFIX)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The engine's message as the Cloud API's.
pub fn to_outbound_message(message: &Outbound) -> OutboundMessage {
    match message {
        Outbound::Text { body } => OutboundMessage::text(body.clone()),
        Outbound::Buttons { body, buttons } => OutboundMessage::Buttons {
            header: None,
            body: body.clone(),
            footer: None,
            buttons: buttons
                .iter()
                .map(|b| ReplyButton::new(b.id.clone(), b.title.clone()))
                .collect(),
        },
        Outbound::List {
            body,
            button,
            sections,
        } => OutboundMessage::List {
            header: None,
            body: body.clone(),
            footer: None,
            button: button.clone(),
            sections: sections
                .iter()
                .map(|section| Section {
                    title: section.title.clone(),
                    rows: section
                        .rows
                        .iter()
                        .map(|r| Row::new(r.id.clone(), r.title.clone(), r.description.clone()))
                        .collect(),
                })
                .collect(),
        },
    }
}

/// The metric type name of an outbound message (`text`, `buttons`, `list`).
pub fn outbound_kind(message: &Outbound) -> &'static str {
    match message {
        Outbound::Text { .. } => "text",
        Outbound::Buttons { .. } => "buttons",
        Outbound::List { .. } => "list",
    }
}

struct SendContext {
    store: Store,
    outlet: Outlet,
    metrics: Arc<Metrics>,
    config: SenderConfig,
    /// Until when rows whose send was attempted by an earlier run wait for a status webhook.
    uncertain_until: tokio::time::Instant,
}

/// What became of one item.
enum Delivered {
    Done,
    /// Error 190: the row was not sent; sending must pause.
    AuthExpired(Box<OutboxRow>, String),
}

struct Dispatcher {
    context: Arc<SendContext>,
    /// Waiting items per recipient (`channel:phone`).
    lanes: HashMap<String, VecDeque<SendItem>>,
    /// Recipients with an item in flight.
    busy: HashSet<String>,
    tasks: JoinSet<(String, Delivered)>,
    paused: bool,
    held: Vec<OutboxRow>,
}

impl Dispatcher {
    async fn run(
        mut self,
        mut receiver: mpsc::Receiver<SendItem>,
        mut close: watch::Receiver<bool>,
    ) {
        let probe_every = self.context.config.probe_interval;
        let mut probe =
            tokio::time::interval_at(tokio::time::Instant::now() + probe_every, probe_every);
        probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut closing = *close.borrow();
        let mut receiver_open = true;
        loop {
            if closing {
                // Everything the workers handed over before the close is in the channel already.
                while let Ok(item) = receiver.try_recv() {
                    self.enqueue(item).await;
                }
                let idle = self.lanes.values().all(VecDeque::is_empty);
                if self.tasks.is_empty() && (idle || self.paused) {
                    break;
                }
            }
            let was_paused = self.paused;
            tokio::select! {
                item = receiver.recv(), if receiver_open => match item {
                    Some(item) => self.enqueue(item).await,
                    None => {
                        receiver_open = false;
                        closing = true;
                    }
                },
                Some(joined) = self.tasks.join_next(), if !self.tasks.is_empty() => {
                    match joined {
                        Ok((lane, delivered)) => self.finished(lane, delivered).await,
                        Err(error) => tracing::error!(%error, "a send task ended abnormally"),
                    }
                }
                changed = close.changed(), if !closing => {
                    if changed.is_err() || *close.borrow() {
                        closing = true;
                    }
                }
                _ = probe.tick(), if self.paused => self.resume().await,
            }
            if self.paused && !was_paused {
                // The first probe comes a whole interval after the pause, not at once.
                probe.reset();
            }
        }
        if !self.held.is_empty() {
            tracing::error!(
                held = self.held.len(),
                "sender stopped with messages held by an expired WhatsApp access token; they are kept and sent after a restart with a valid token"
            );
        }
    }

    async fn enqueue(&mut self, item: SendItem) {
        if self.paused {
            self.context.metrics.queue_add(Queue::Sender, -1);
            if let SendItem::Row(row) = item {
                self.hold(row).await;
            }
            return;
        }
        let lane = lane_of(&item);
        self.lanes.entry(lane.clone()).or_default().push_back(item);
        self.start(&lane);
    }

    /// Starts the next item of `lane` unless one is in flight.
    fn start(&mut self, lane: &str) {
        if self.busy.contains(lane) || self.paused {
            return;
        }
        let Some(queue) = self.lanes.get_mut(lane) else {
            return;
        };
        let Some(item) = queue.pop_front() else {
            self.lanes.remove(lane);
            return;
        };
        self.busy.insert(lane.to_owned());
        let context = self.context.clone();
        let lane = lane.to_owned();
        self.tasks.spawn(async move {
            let delivered = deliver(&context, item).await;
            (lane, delivered)
        });
    }

    async fn finished(&mut self, lane: String, delivered: Delivered) {
        self.busy.remove(&lane);
        self.context.metrics.queue_add(Queue::Sender, -1);
        if let Delivered::AuthExpired(row, reason) = delivered {
            self.pause(*row, &reason).await;
            return;
        }
        self.start(&lane);
    }

    async fn pause(&mut self, row: OutboxRow, reason: &str) {
        if !self.paused {
            self.paused = true;
            tracing::error!(
                reason,
                "WHATSAPP ACCESS TOKEN REJECTED (Graph error 190): sending is paused and replies are held. \
                 Replace FLOWBOT_WHATSAPP_ACCESS_TOKEN and restart; held messages are sent then \
                 (a held message is also retried every {} s)",
                self.context.config.probe_interval.as_secs()
            );
        }
        self.hold(row).await;
        let lanes: Vec<VecDeque<SendItem>> = self.lanes.drain().map(|(_, queue)| queue).collect();
        for item in lanes.into_iter().flatten() {
            self.context.metrics.queue_add(Queue::Sender, -1);
            if let SendItem::Row(row) = item {
                self.hold(row).await;
            }
        }
    }

    async fn hold(&mut self, row: OutboxRow) {
        let kind = outbound_kind(&row.message);
        if let Err(error) = self
            .context
            .store
            .mark_send_error(
                row.id,
                OutboxState::Held,
                "held: the WhatsApp access token was rejected (190)",
            )
            .await
        {
            tracing::error!(outbox_id = row.id, %error, "could not mark an outbound message held; it stays pending");
        }
        self.context.metrics.message_out(kind, OutOutcome::Held);
        self.held.push(row);
    }

    /// Tries the held messages again (a send that succeeds means the token works again).
    async fn resume(&mut self) {
        if self.held.is_empty() {
            return;
        }
        tracing::warn!(
            held = self.held.len(),
            "retrying messages held by an expired WhatsApp access token"
        );
        self.paused = false;
        let held = std::mem::take(&mut self.held);
        for row in held {
            self.context.metrics.queue_add(Queue::Sender, 1);
            self.enqueue(SendItem::Row(row)).await;
        }
    }
}

fn lane_of(item: &SendItem) -> String {
    match item {
        SendItem::Row(row) => format!("{}:{}", row.channel, row.phone),
        SendItem::MarkRead { channel, phone, .. } => format!("{channel}:{phone}"),
    }
}

async fn deliver(context: &SendContext, item: SendItem) -> Delivered {
    match item {
        SendItem::Row(row) => deliver_row(context, row).await,
        SendItem::MarkRead {
            business_id, wamid, ..
        } => {
            if let Outlet::Cloud(client) = &context.outlet {
                if let Err(error) = client.mark_read(&business_id, &wamid).await {
                    tracing::debug!(%error, "could not mark a message as read (best effort)");
                }
            }
            Delivered::Done
        }
    }
}

async fn deliver_row(context: &SendContext, row: OutboxRow) -> Delivered {
    let kind = outbound_kind(&row.message);
    if row.attempt_started_at.is_some() && matches!(context.outlet, Outlet::Cloud(_)) {
        // An earlier run may have sent it: give a status webhook time to say so.
        tokio::time::sleep_until(context.uncertain_until).await;
        if confirmed(context, &row).await {
            tracing::info!(
                outbox_id = row.id,
                to = %row.phone,
                "a reply in flight when the last run stopped was confirmed by a status webhook; not sent again"
            );
            return Delivered::Done;
        }
        tracing::warn!(
            outbox_id = row.id,
            to = %row.phone,
            grace_ms = context.config.uncertain_grace.as_millis() as u64,
            "a reply in flight when the last run stopped was not confirmed by a status webhook in time; sending it again"
        );
    }
    if window_closed(context, &row).await {
        let reason = "not sent: outside the 24-hour customer service window (a template is needed)";
        tracing::warn!(
            outbox_id = row.id,
            to = %row.phone,
            "reply NOT SENT to {}: more than 24 hours since the customer's last message; the conversation needs a template or a person",
            row.phone
        );
        fail(context, &row, kind, reason, "outside_window").await;
        return Delivered::Done;
    }
    let client = match &context.outlet {
        Outlet::Local => {
            tracing::info!(outbox_id = row.id, to = %row.phone, "would send to {}: {}", row.phone, row.message.to_display());
            record_sent(context, &row, &format!("local.{}", row.id)).await;
            return Delivered::Done;
        }
        Outlet::Cloud(client) => client,
    };
    let message = to_outbound_message(&row.message);
    if !mark_started(context, &row).await {
        return Delivered::Done;
    }
    let callback = callback_data(row.id);
    let mut attempt = 0u32;
    loop {
        if attempt > 0 && confirmed(context, &row).await {
            // The failed attempt had reached Graph after all: its status webhook said so.
            tracing::info!(outbox_id = row.id, to = %row.phone, "a status webhook confirmed the send; not retried");
            return Delivered::Done;
        }
        let error = match client
            .send_with_callback_data(
                &row.business_id,
                &row.phone,
                &message,
                None,
                Some(&callback),
            )
            .await
        {
            Ok(sent) => {
                record_sent(context, &row, &sent.message_id).await;
                return Delivered::Done;
            }
            Err(error) => error,
        };
        match &error {
            SendError::AuthExpired(_) => {
                return Delivered::AuthExpired(Box::new(row), error.to_string())
            }
            SendError::OutsideWindow(_) => {
                tracing::warn!(
                    outbox_id = row.id,
                    to = %row.phone,
                    %error,
                    "reply NOT SENT to {}: WhatsApp says the 24-hour window is closed (131047); the conversation needs a template or a person",
                    row.phone
                );
                fail(context, &row, kind, &error.to_string(), "outside_window").await;
                return Delivered::Done;
            }
            _ => {}
        }
        attempt += 1;
        let wait = error.backoff(attempt - 1);
        match wait {
            Some(wait) if attempt < context.config.max_attempts => {
                context.metrics.message_out(kind, OutOutcome::Retried);
                tracing::warn!(outbox_id = row.id, to = %row.phone, attempt, wait_ms = wait.as_millis() as u64, %error, "send failed, retrying");
                if let Err(store_error) = context
                    .store
                    .mark_send_error(row.id, OutboxState::Pending, &error.to_string())
                    .await
                {
                    tracing::warn!(outbox_id = row.id, %store_error, "could not record a send retry");
                }
                tokio::time::sleep(wait).await;
            }
            _ => {
                tracing::error!(outbox_id = row.id, to = %row.phone, attempt, %error, "reply NOT SENT to {}: giving up", row.phone);
                fail(context, &row, kind, &error.to_string(), "send_failed").await;
                return Delivered::Done;
            }
        }
    }
}

/// True when the row is no longer to send (a status webhook confirmed it, or it is gone or
/// failed). A store error counts as not confirmed (the row is sent: at least once).
async fn confirmed(context: &SendContext, row: &OutboxRow) -> bool {
    match context.store.outbox_row(row.id).await {
        Ok(Some(stored)) => !matches!(stored.state, OutboxState::Pending | OutboxState::Held),
        Ok(None) => true,
        Err(error) => {
            tracing::warn!(outbox_id = row.id, %error, "could not read an outbox row; sending it");
            false
        }
    }
}

/// Records, before the first HTTP attempt, that the send starts. False when the row must not be
/// sent (already sent, failed or gone). When the store cannot record it, the row is sent anyway
/// (at least once; a crash during that send may then repeat it).
async fn mark_started(context: &SendContext, row: &OutboxRow) -> bool {
    for attempt in 0..3u64 {
        match context.store.mark_send_started(row.id).await {
            Ok(()) => return true,
            Err(StoreError::Conflict(reason) | StoreError::NotFound(reason)) => {
                tracing::info!(outbox_id = row.id, %reason, "outbox row not sent");
                return false;
            }
            Err(error) => {
                tracing::warn!(outbox_id = row.id, %error, "could not record a send attempt");
                tokio::time::sleep(Duration::from_millis(100 * (attempt + 1))).await;
            }
        }
    }
    tracing::error!(
        outbox_id = row.id,
        "sending without a recorded attempt; a crash during this send may send it twice"
    );
    true
}

/// True when the contact's last inbound message is more than 24 hours old. Unknown contacts and
/// store errors count as open (the Cloud API then decides, with 131047).
async fn window_closed(context: &SendContext, row: &OutboxRow) -> bool {
    // A reply to a message less than a day old is inside the window: the contact's last inbound
    // time is at least that message's. Only older ones (a backlog, a restart) need the read.
    let now = Utc::now().timestamp();
    if row
        .answers_message_at
        .is_some_and(|at| window::is_open(at.timestamp(), now))
    {
        return false;
    }
    match context.store.contact(&row.channel, &row.phone).await {
        Ok(Some(contact)) => contact
            .last_inbound_at
            .is_some_and(|at| !window::is_open(at.timestamp(), now)),
        Ok(None) => false,
        Err(error) => {
            tracing::warn!(%error, "could not read the contact's window; sending anyway");
            false
        }
    }
}

async fn record_sent(context: &SendContext, row: &OutboxRow, provider_id: &str) {
    context
        .metrics
        .message_out(outbound_kind(&row.message), OutOutcome::Sent);
    for attempt in 0..3u64 {
        match context.store.mark_sent(row.id, provider_id).await {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(outbox_id = row.id, %error, "could not record a sent message");
                tokio::time::sleep(Duration::from_millis(100 * (attempt + 1))).await;
            }
        }
    }
    tracing::error!(
        outbox_id = row.id,
        provider_id,
        "message sent but not recorded as sent; it may be sent again after a restart"
    );
}

async fn fail(context: &SendContext, row: &OutboxRow, kind: &str, reason: &str, flag: &str) {
    context.metrics.message_out(kind, OutOutcome::Failed);
    context.metrics.conversation_flagged(flag);
    if let Err(error) = context
        .store
        .mark_send_error(row.id, OutboxState::Failed, reason)
        .await
    {
        tracing::error!(outbox_id = row.id, %error, "could not mark an outbound message failed");
    }
}

#[cfg(test)]
mod tests {
    use flowbot_engine::{OutboundChoice, OutboundSection};
    use serde_json::json;

    use super::*;

    #[test]
    fn callback_data_names_the_outbox_row_and_nothing_else() {
        assert_eq!(callback_data(42), "flowbot-outbox-42");
        assert_eq!(outbox_id_of_callback_data(&callback_data(42)), Some(42));
        for other in [
            "",
            "flowbot-outbox-",
            "flowbot-outbox--1",
            "flowbot-outbox-+1",
            "flowbot-outbox-1x",
            "flowbot-outbox-99999999999999999999",
            "someone-else-7",
        ] {
            assert_eq!(outbox_id_of_callback_data(other), None, "{other:?}");
        }
    }

    #[test]
    fn engine_messages_become_cloud_api_requests() {
        let buttons = Outbound::Buttons {
            body: "Pick one".into(),
            buttons: vec![OutboundChoice {
                id: "yes".into(),
                title: "Yes".into(),
                description: None,
            }],
        };
        let json = to_outbound_message(&buttons).to_request_json("919820000001", None);
        assert_eq!(json["interactive"]["type"], json!("button"));
        assert_eq!(
            json["interactive"]["action"]["buttons"][0]["reply"]["id"],
            json!("yes")
        );

        let list = Outbound::List {
            body: "Choose".into(),
            button: "Options".into(),
            sections: vec![OutboundSection {
                title: Some("All".into()),
                rows: vec![OutboundChoice {
                    id: "a".into(),
                    title: "A".into(),
                    description: Some("first".into()),
                }],
            }],
        };
        let json = to_outbound_message(&list).to_request_json("919820000001", None);
        assert_eq!(
            json["interactive"]["action"]["sections"][0]["rows"][0]["description"],
            json!("first")
        );
        assert_eq!(outbound_kind(&list), "list");

        let text = to_outbound_message(&Outbound::Text { body: "Hi".into() });
        assert_eq!(
            text.to_request_json("1", None)["text"],
            json!({ "body": "Hi" })
        );
    }
}
