//! The worker pool: runs one turn per inbound message, one contact strictly one message at a time.
//!
//! Contacts are hashed (channel + phone) onto a fixed set of bounded queues, each drained by one
//! worker task, so a contact's messages are processed in the order they were handed over with no
//! locks and no database polling; different contacts run in parallel on different queues. The
//! ingress hands over each inbox row right after its insert commits (a batch sorted by message
//! timestamp first); at start-up the store's unfinished rows are fed the same way.
//!
//! A turn: `mark_processing` when it was resumed at start-up (a fresh message's turn writes nothing
//! before its commit), load the conversation (from a bounded per-worker cache, written
//! through on every commit; a worker owns its contacts, so the cache needs no lock), start the turn,
//! drive it with the effect handler, `commit_turn`, and hand the new outbox rows to the sender. A
//! turn that fails on the store is retried a few times, then its row is marked failed; a worker
//! never dies. Conversations handed to a person are never cached, so releasing one from the CLI
//! takes effect at once.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use flowbot_engine::{drive, Contact, Conversation, EffectHandler, Inbound, Status};
use flowbot_store::{InboxRow, Store, StoreError, TurnCommit};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::metrics::{Metrics, Queue};
use crate::reload::LiveFlows;
use crate::sender::{SendItem, SenderHandle};

/// Tries of one turn before its inbox row is marked failed.
pub const MAX_TURN_ATTEMPTS: u32 = 3;
/// A message's turn runs at most this often over restarts; start-up marks a row failed instead of
/// running it again ([`tried_too_often`]).
pub const MAX_TOTAL_ATTEMPTS: u32 = 5;

/// Whether start-up gives up on an unfinished inbox row with these `attempts` instead of running
/// it again. Only turns resumed at start-up count an attempt (`mark_processing`); the first turn,
/// dispatched by the ingress, does not write before its commit, so it is counted here as one more.
/// A message whose turn stops the process thus runs MAX_TOTAL_ATTEMPTS times in all.
pub fn tried_too_often(attempts: u32) -> bool {
    attempts.saturating_add(1) >= MAX_TOTAL_ATTEMPTS
}

/// One inbound message to process.
#[derive(Clone, Debug)]
pub struct InboxJob {
    pub inbox_id: i64,
    pub channel: String,
    pub business_id: String,
    pub contact: Contact,
    pub message: Inbound,
    /// Read back from the inbox at start-up (the process stopped before its turn committed): the
    /// turn counts its attempt (`mark_processing`) before it runs.
    pub resumed: bool,
}

/// Hands jobs to the worker that owns the contact. Cheap to clone.
#[derive(Clone, Debug)]
pub struct WorkerQueues {
    queues: Arc<Vec<mpsc::Sender<InboxJob>>>,
    metrics: Arc<Metrics>,
}

/// What a worker needs to run turns.
pub struct WorkerContext<H> {
    pub store: Store,
    pub flows: Arc<LiveFlows>,
    pub effects: Arc<H>,
    pub sender: SenderHandle,
    pub metrics: Arc<Metrics>,
    /// Conversations cached per worker.
    pub cache_capacity: usize,
}

/// The running workers.
#[derive(Debug)]
pub struct WorkerPool {
    handles: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
}

/// Starts `count` workers with queues of `capacity` jobs each.
pub fn spawn_workers<H>(
    count: usize,
    capacity: usize,
    context: WorkerContext<H>,
) -> (WorkerQueues, WorkerPool)
where
    H: EffectHandler + Send + Sync + 'static,
{
    let count = count.max(1);
    let context = Arc::new(context);
    let (stop, stop_receiver) = watch::channel(false);
    let mut queues = Vec::with_capacity(count);
    let mut handles = Vec::with_capacity(count);
    for index in 0..count {
        let (queue, receiver) = mpsc::channel(capacity.max(1));
        queues.push(queue);
        let worker = Worker {
            index,
            context: context.clone(),
            cache: ConversationCache::new(context.cache_capacity),
        };
        handles.push(tokio::spawn(worker.run(receiver, stop_receiver.clone())));
    }
    let queues = WorkerQueues {
        queues: Arc::new(queues),
        metrics: context.metrics.clone(),
    };
    (queues, WorkerPool { handles, stop })
}

/// The queue a contact belongs to: a stable hash of channel and phone.
pub fn queue_index(channel: &str, phone: &str, queues: usize) -> usize {
    let mut hasher = DefaultHasher::new();
    channel.hash(&mut hasher);
    phone.hash(&mut hasher);
    (hasher.finish() % queues.max(1) as u64) as usize
}

impl WorkerQueues {
    /// Queues a job on its contact's worker (waits while that queue is full: back-pressure). False
    /// when the workers have stopped; the row then stays in the inbox for the next start.
    pub async fn dispatch(&self, job: InboxJob) -> bool {
        let index = queue_index(&job.channel, &job.contact.phone, self.queues.len());
        self.metrics.queue_add(Queue::Worker, 1);
        if self.queues[index].send(job).await.is_err() {
            self.metrics.queue_add(Queue::Worker, -1);
            return false;
        }
        true
    }

    pub fn len(&self) -> usize {
        self.queues.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queues.is_empty()
    }
}

impl WorkerPool {
    /// Lets every turn in flight finish, then stops the workers. Jobs still queued stay unfinished
    /// in the inbox and run on the next start.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for handle in self.handles {
            let _ = handle.await;
        }
    }
}

/// A row read back from the store: a resumed job.
impl From<InboxRow> for InboxJob {
    fn from(row: InboxRow) -> Self {
        InboxJob {
            inbox_id: row.id,
            channel: row.channel,
            business_id: row.business_id,
            contact: row.contact,
            message: row.message,
            resumed: true,
        }
    }
}

struct Worker<H> {
    index: usize,
    context: Arc<WorkerContext<H>>,
    cache: ConversationCache,
}

impl<H> Worker<H>
where
    H: EffectHandler + Send + Sync + 'static,
{
    async fn run(mut self, mut jobs: mpsc::Receiver<InboxJob>, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                break;
            }
            let job = tokio::select! {
                biased;
                changed = stop.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    continue;
                }
                job = jobs.recv() => match job {
                    Some(job) => job,
                    None => break,
                },
            };
            // The turn runs outside the select: a stop request never cuts a turn in half.
            self.process(job).await;
            self.context.metrics.queue_add(Queue::Worker, -1);
        }
        tracing::debug!(worker = self.index, "worker stopped");
    }

    async fn process(&mut self, job: InboxJob) {
        let mut last_error = None;
        for attempt in 1..=MAX_TURN_ATTEMPTS {
            match self.run_turn(&job).await {
                Ok(()) => return,
                Err(error) => {
                    self.cache.forget(&job.channel, &job.contact.phone);
                    tracing::warn!(inbox_id = job.inbox_id, attempt, %error, "turn failed on the store");
                    last_error = Some(error);
                    if attempt < MAX_TURN_ATTEMPTS {
                        self.context.metrics.turn_outcome("retried");
                        tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                    }
                }
            }
        }
        self.context.metrics.turn_outcome("failed");
        let reason = last_error.map_or_else(String::new, |e| e.to_string());
        tracing::error!(
            inbox_id = job.inbox_id,
            reason,
            "turn failed {MAX_TURN_ATTEMPTS} times; inbox message marked failed"
        );
        if let Err(error) = self.context.store.mark_failed(job.inbox_id, &reason).await {
            tracing::error!(inbox_id = job.inbox_id, %error, "could not mark the inbox message failed; it runs again on the next start");
        }
    }

    async fn run_turn(&mut self, job: &InboxJob) -> Result<(), StoreError> {
        let started = Instant::now();
        let store = &self.context.store;
        // A fresh message's turn writes nothing before its commit (`commit_turn` refuses a row
        // already done or failed). Only a turn resumed at start-up counts its attempt first, so a
        // message whose turn stops the process is given up after MAX_TOTAL_ATTEMPTS runs.
        if job.resumed {
            store.mark_processing(job.inbox_id).await?;
        }
        let conversation = match self.cache.get(&job.channel, &job.contact.phone) {
            Some(cached) => cached,
            None => {
                store
                    .load_conversation(&job.channel, &job.contact.phone)
                    .await?
            }
        };
        let engine = self.context.flows.engine();
        let turn = engine.start_turn(conversation, &job.contact, &job.message);
        let result = drive(turn, self.context.effects.as_ref()).await;
        let commit = TurnCommit {
            inbox_id: job.inbox_id,
            channel: job.channel.clone(),
            business_id: job.business_id.clone(),
            contact: job.contact.clone(),
            conversation: result.conversation.clone(),
            outbound: result.outbound.clone(),
            trace: result.trace.clone(),
            now: Utc::now(),
        };
        let rows = store.commit_turn(commit).await?;
        self.cache
            .put(&job.channel, &job.contact.phone, result.conversation);
        self.context
            .metrics
            .turn_done(started.elapsed(), &result.trace);
        tracing::debug!(
            inbox_id = job.inbox_id,
            flow = result.flow.as_deref().unwrap_or("-"),
            replies = rows.len(),
            "turn done"
        );
        if rows.is_empty() {
            return Ok(());
        }
        let sender = &self.context.sender;
        for row in rows {
            if !sender.submit(SendItem::Row(row)).await {
                tracing::warn!(
                    inbox_id = job.inbox_id,
                    "sender stopped; replies stay pending for the next start"
                );
                return Ok(());
            }
        }
        // The read receipt goes after the replies, so no reply waits for it on the recipient's lane.
        sender
            .submit(SendItem::MarkRead {
                channel: job.channel.clone(),
                business_id: job.business_id.clone(),
                phone: job.contact.phone.clone(),
                wamid: job.message.id.clone(),
            })
            .await;
        Ok(())
    }
}

/// A bounded cache of conversations (including "none"), evicting the oldest entry first.
struct ConversationCache {
    capacity: usize,
    entries: HashMap<(String, String), Option<Conversation>>,
    order: VecDeque<(String, String)>,
}

impl ConversationCache {
    fn new(capacity: usize) -> ConversationCache {
        ConversationCache {
            capacity,
            entries: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// `Some(state)` on a hit (the state itself may be "no conversation").
    fn get(&self, channel: &str, phone: &str) -> Option<Option<Conversation>> {
        self.entries
            .get(&(channel.to_owned(), phone.to_owned()))
            .cloned()
    }

    fn put(&mut self, channel: &str, phone: &str, conversation: Option<Conversation>) {
        let key = (channel.to_owned(), phone.to_owned());
        let handed_off = conversation
            .as_ref()
            .is_some_and(|c| c.status == Status::Handoff);
        if self.capacity == 0 || handed_off {
            self.forget(channel, phone);
            return;
        }
        if self.entries.insert(key.clone(), conversation).is_none() {
            self.order.push_back(key);
        }
        while self.entries.len() > self.capacity {
            match self.order.pop_front() {
                Some(oldest) => {
                    self.entries.remove(&oldest);
                }
                None => break,
            }
        }
    }

    fn forget(&mut self, channel: &str, phone: &str) {
        let key = (channel.to_owned(), phone.to_owned());
        if self.entries.remove(&key).is_some() {
            self.order.retain(|k| k != &key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_contact_always_lands_on_the_same_queue() {
        let first = queue_index("whatsapp", "919820000001", 8);
        for _ in 0..10 {
            assert_eq!(queue_index("whatsapp", "919820000001", 8), first);
        }
        assert!(first < 8);
        assert_eq!(queue_index("whatsapp", "919820000001", 1), 0);
        let spread: std::collections::HashSet<usize> = (0..100)
            .map(|n| queue_index("whatsapp", &format!("9198200{n:05}"), 8))
            .collect();
        assert!(spread.len() > 4, "contacts should spread over queues");
    }

    /// A message whose turn stops the process every time: the ingress runs it once (no attempt
    /// counted), then each start resumes it (one attempt counted per run) until start-up gives up.
    #[test]
    fn a_message_that_stops_the_process_runs_max_total_attempts_times() {
        let mut attempts = 0;
        let mut runs = 1;
        let mut starts = 0;
        while !tried_too_often(attempts) {
            starts += 1;
            attempts += 1;
            runs += 1;
            assert!(starts < 100, "start-up never gives up");
        }
        assert_eq!(runs, MAX_TOTAL_ATTEMPTS);
        assert_eq!(starts, MAX_TOTAL_ATTEMPTS - 1);
        assert!(!tried_too_often(0), "a row never resumed runs");
    }

    #[test]
    fn the_cache_is_bounded_and_skips_handoffs() {
        let mut cache = ConversationCache::new(2);
        cache.put("whatsapp", "1", None);
        cache.put("whatsapp", "2", None);
        cache.put("whatsapp", "3", None);
        assert!(cache.get("whatsapp", "1").is_none(), "oldest evicted");
        assert!(cache.get("whatsapp", "3").is_some());
        let now = Utc::now();
        let handoff = Conversation {
            flow: "f".into(),
            step: None,
            status: Status::Handoff,
            vars: Default::default(),
            attempts: 0,
            started_at: now,
            updated_at: now,
            expires_at: now,
        };
        cache.put("whatsapp", "3", Some(handoff));
        assert!(cache.get("whatsapp", "3").is_none());
    }
}
