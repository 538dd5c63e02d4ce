//! The account check every authenticated request makes (does the account still exist with
//! this role, and was the token issued after its last password change?), read from the
//! primary and never cached, but batched: requests that arrive while checks are in flight are
//! answered together by the next read, one `find` over all their ids.
//!
//! Freshness is the same as one read per request: a request joins only a batch whose read has
//! not started yet, so its answer comes from a read issued after it arrived, and a revocation
//! (a deleted account, a changed password) committed before a request is always seen by it.
//! What batching changes is the number of reads under load: one reader (`crate::batch`), whose
//! every read answers all the requests that arrived while the one before it was in flight,
//! instead of one read per request. (Two readers were tried: the second starts a read for
//! whatever arrives first, so batches halve and reads grow by half for no gain in throughput;
//! one read of up to 256 ids is an index lookup per id, well under a millisecond on MongoDB.)

use std::time::Duration;

use mongodb::bson::oid::ObjectId;

use super::store::{AccountState, AuthStore};
use crate::batch::Batcher;

/// Most ids one read asks for.
const MAX_BATCH: usize = 256;
/// Longest a read may keep the queue waiting: every authenticated request of the instance
/// waits behind it, so a read stuck on one connection fails its batch (503
/// `DATABASE_UNAVAILABLE`, retryable) instead of stalling them all until the driver gives up.
const READ_TIMEOUT: Duration = Duration::from_secs(3);

type Answer = mongodb::error::Result<Option<AccountState>>;

/// Batched account checks (one per application; its reader ends with it).
pub struct AccountChecks {
    batcher: Batcher<ObjectId, Answer>,
    store: AuthStore,
}

impl AccountChecks {
    /// Starts the reader on the current runtime.
    pub fn start(store: AuthStore) -> Self {
        let reader = store.clone();
        let batcher = Batcher::start(MAX_BATCH, move |ids| read_batch(reader.clone(), ids));
        Self { batcher, store }
    }

    /// The account `id` as the primary holds it now (`None`: no such account).
    pub async fn check(&self, id: ObjectId) -> mongodb::error::Result<Option<AccountState>> {
        match self.batcher.ask(id).await {
            Some(answer) => answer,
            // The reader is gone (the application is stopping): read alone.
            None => self.store.account_state(id).await,
        }
    }
}

/// One read of every id asked (each once), answering each ask.
async fn read_batch(store: AuthStore, asked: Vec<ObjectId>) -> Vec<Answer> {
    let mut ids = asked.clone();
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
    asked
        .iter()
        .map(|id| match &read {
            Ok(found) => found.get(id).cloned().transpose(),
            Err(e) => Err(e.clone()),
        })
        .collect()
}
