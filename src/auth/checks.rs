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

use std::collections::HashMap;
use std::sync::Arc;

use mongodb::bson::oid::ObjectId;
use tokio::sync::{mpsc, oneshot, Mutex};

use super::store::{AccountState, AuthStore};

/// Reads that may be in flight at once (each answers every request queued before it began).
const READERS: usize = 1;
/// Most ids one read asks for.
const MAX_BATCH: usize = 256;

type Answer = Result<Option<AccountState>, Arc<mongodb::error::Error>>;
type Ask = (ObjectId, oneshot::Sender<Answer>);

/// Batched account checks (one per application; its readers end with it).
pub struct AccountChecks {
    asks: mpsc::Sender<Ask>,
    store: AuthStore,
}

impl AccountChecks {
    /// Starts the readers on the current runtime.
    pub fn start(store: AuthStore) -> Self {
        let (asks, queue) = mpsc::channel::<Ask>(MAX_BATCH * READERS * 4);
        let queue = Arc::new(Mutex::new(queue));
        for _ in 0..READERS {
            tokio::spawn(read_batches(store.clone(), queue.clone()));
        }
        Self { asks, store }
    }

    /// The account `id` as the primary holds it now (`None`: no such account).
    pub async fn check(&self, id: ObjectId) -> mongodb::error::Result<Option<AccountState>> {
        let (tx, rx) = oneshot::channel();
        if self.asks.send((id, tx)).await.is_ok() {
            if let Ok(answer) = rx.await {
                return answer.map_err(|e| (*e).clone());
            }
        }
        // The readers are gone (the application is stopping): read alone.
        self.store.account_state(id).await
    }
}

/// One reader: takes every ask queued so far (at most `MAX_BATCH`), reads them in one query,
/// answers each; again until the application is dropped.
async fn read_batches(store: AuthStore, queue: Arc<Mutex<mpsc::Receiver<Ask>>>) {
    loop {
        let batch = {
            let mut queue = queue.lock().await;
            let Some(first) = queue.recv().await else {
                return;
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(ask) => batch.push(ask),
                    Err(_) => break,
                }
            }
            batch
        };
        let mut ids: Vec<ObjectId> = batch.iter().map(|(id, _)| *id).collect();
        ids.sort();
        ids.dedup();
        type Found = HashMap<ObjectId, Result<AccountState, Arc<mongodb::error::Error>>>;
        let read: mongodb::error::Result<Found> = store.account_states(&ids).await.map(|found| {
            found
                .into_iter()
                .map(|(id, state)| (id, state.map_err(Arc::new)))
                .collect::<HashMap<_, _>>()
        });
        let read = read.map_err(Arc::new);
        for (id, answer) in batch {
            let _ = answer.send(match &read {
                Ok(found) => found.get(&id).cloned().transpose(),
                Err(e) => Err(e.clone()),
            });
        }
    }
}
