//! The account check every authenticated request makes (does the account still exist with
//! this role, and was the token issued after its last password change?), read from the
//! primary and never cached, but batched: requests that arrive while checks are in flight are
//! answered together by the next read, one `find` over all their ids.
//!
//! Freshness is the same as one read per request: a request joins only a batch whose read has
//! not started yet, so its answer comes from a read issued after it arrived, and a revocation
//! (a deleted account, a changed password) committed before a request is always seen by it.
//! What batching changes is the number of reads under load: one reader, whose every read
//! answers all the requests that arrived while the one before it was in flight, instead of
//! one read per request. (Two readers were tried: the second starts a read for whatever
//! arrives first, so batches halve and reads grow by half for no gain in throughput; one
//! read of up to 256 ids is an index lookup per id, well under a millisecond on MongoDB.)

use std::time::Duration;

use mongodb::bson::oid::ObjectId;
use tokio::sync::{mpsc, oneshot};

use super::store::{AccountState, AuthStore};

/// Most ids one read asks for.
const MAX_BATCH: usize = 256;
/// Longest a read may keep the queue waiting: every authenticated request of the instance
/// waits behind it, so a read stuck on one connection fails its batch (503
/// `DATABASE_UNAVAILABLE`, retryable) instead of stalling them all until the driver gives up.
const READ_TIMEOUT: Duration = Duration::from_secs(3);

type Answer = mongodb::error::Result<Option<AccountState>>;
type Ask = (ObjectId, oneshot::Sender<Answer>);

/// Batched account checks (one per application; its reader ends with it).
pub struct AccountChecks {
    asks: mpsc::Sender<Ask>,
    store: AuthStore,
}

impl AccountChecks {
    /// Starts the reader on the current runtime.
    pub fn start(store: AuthStore) -> Self {
        let (asks, queue) = mpsc::channel::<Ask>(MAX_BATCH * 4);
        tokio::spawn(read_batches(store.clone(), queue));
        Self { asks, store }
    }

    /// The account `id` as the primary holds it now (`None`: no such account).
    pub async fn check(&self, id: ObjectId) -> mongodb::error::Result<Option<AccountState>> {
        let (tx, rx) = oneshot::channel();
        if self.asks.send((id, tx)).await.is_ok() {
            if let Ok(answer) = rx.await {
                return answer;
            }
        }
        // The reader is gone (the application is stopping): read alone.
        self.store.account_state(id).await
    }
}

/// The reader: takes every ask queued so far (at most `MAX_BATCH`), reads them in one query,
/// answers each; again until the application is dropped.
async fn read_batches(store: AuthStore, mut queue: mpsc::Receiver<Ask>) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(ask) => batch.push(ask),
                Err(_) => break,
            }
        }
        let mut ids: Vec<ObjectId> = batch.iter().map(|(id, _)| *id).collect();
        ids.sort();
        ids.dedup();
        let read = match tokio::time::timeout(READ_TIMEOUT, store.account_states(&ids)).await {
            Ok(read) => read,
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the account check read took too long",
            )
            .into()),
        };
        for (id, answer) in batch {
            let _ = answer.send(match &read {
                Ok(found) => found.get(&id).cloned().transpose(),
                Err(e) => Err(e.clone()),
            });
        }
    }
}
