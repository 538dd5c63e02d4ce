//! One reader answering many callers: the reads every request of an instance makes on the
//! same store (the account check on MongoDB, the cache generations on Redis) are batched, so
//! load turns into bigger reads instead of more of them.
//!
//! Freshness is that of one read per caller: a caller joins only a batch whose read has not
//! started, so the read that answers it is issued after it asked. Callers that ask while a read
//! is in flight are all answered by the next one. A single reader (not several) is what makes
//! batches grow with load: a second would start a read for whatever arrived first.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use tokio::sync::{mpsc, oneshot};

type Ask<K, A> = (K, oneshot::Sender<A>);

/// The callers' side of a batched reader (its reader task ends when this is dropped).
pub struct Batcher<K, A> {
    asks: mpsc::Sender<Ask<K, A>>,
}

impl<K: Send + 'static, A: Send + 'static> Batcher<K, A> {
    /// Starts the reader on the current runtime: it takes every ask queued so far (at most
    /// `max_batch`), calls `read` once with their keys in arrival order (duplicates included),
    /// and answers each ask with the answer at its key's position; again until dropped.
    /// `read` bounds its own time: every caller of the instance waits behind it.
    pub fn start<F, Fut>(max_batch: usize, mut read: F) -> Self
    where
        F: FnMut(Vec<K>) -> Fut + Send + 'static,
        Fut: Future<Output = Vec<A>> + Send + 'static,
    {
        let max_batch = max_batch.max(1);
        let (asks, mut queue) = mpsc::channel::<Ask<K, A>>(max_batch * 4);
        tokio::spawn(async move {
            let mut batch: Vec<Ask<K, A>> = Vec::with_capacity(max_batch);
            while let Some(first) = queue.recv().await {
                batch.push(first);
                while batch.len() < max_batch {
                    match queue.try_recv() {
                        Ok(ask) => batch.push(ask),
                        Err(_) => break,
                    }
                }
                let (keys, replies): (Vec<K>, Vec<oneshot::Sender<A>>) = batch.drain(..).unzip();
                // A read that panics leaves its callers without an answer (they read alone)
                // and the reader going for the next batch.
                let answers = match AssertUnwindSafe(read(keys)).catch_unwind().await {
                    Ok(answers) => answers,
                    Err(_) => {
                        tracing::error!("a batched read panicked; its callers read alone");
                        continue;
                    }
                };
                // A caller that gave up (its request was dropped) just misses its answer.
                for (reply, answer) in replies.into_iter().zip(answers) {
                    let _ = reply.send(answer);
                }
            }
        });
        Self { asks }
    }

    /// `key`'s answer from the next read that starts after this call; `None` when the reader
    /// is gone (the application is stopping) or gave no answer for it: the caller reads alone.
    pub async fn ask(&self, key: K) -> Option<A> {
        let (reply, answer) = oneshot::channel();
        self.asks.send((key, reply)).await.ok()?;
        answer.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    /// A reader that takes 20 ms and records each batch's keys.
    fn slow_echo(batches: Arc<std::sync::Mutex<Vec<Vec<u32>>>>) -> Batcher<u32, u32> {
        Batcher::start(64, move |keys: Vec<u32>| {
            let batches = batches.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                batches.lock().unwrap().push(keys.clone());
                keys.into_iter().map(|k| k * 10).collect()
            }
        })
    }

    #[tokio::test]
    async fn asks_queued_during_a_read_share_the_next_one_and_each_gets_its_own_answer() {
        let batches = Arc::new(std::sync::Mutex::new(Vec::new()));
        let b = Arc::new(slow_echo(batches.clone()));
        let answers = futures_util::future::join_all((0..50u32).map(|k| {
            let b = b.clone();
            async move { (k, b.ask(k).await) }
        }))
        .await;
        for (k, a) in answers {
            assert_eq!(a, Some(k * 10));
        }
        let batches = batches.lock().unwrap();
        assert!(batches.len() <= 3, "{} reads for 50 asks", batches.len());
        assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), 50);
    }

    #[tokio::test]
    async fn an_ask_never_joins_a_read_that_already_started() {
        // Each read records when it started; an ask made after a read started is answered by
        // a later read.
        let started = Arc::new(AtomicUsize::new(0));
        let s = started.clone();
        let b = Arc::new(Batcher::start(64, move |keys: Vec<u32>| {
            let read_no = s.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                tokio::time::sleep(Duration::from_millis(30)).await;
                keys.into_iter().map(|_| read_no).collect::<Vec<_>>()
            }
        }));
        let first = tokio::spawn({
            let b = b.clone();
            async move { b.ask(1).await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        let reads_begun = started.load(Ordering::SeqCst);
        assert_eq!(reads_begun, 1);
        let second = b.ask(2).await.unwrap();
        assert!(
            second > reads_begun,
            "answered by read {second}, begun before the ask"
        );
        assert_eq!(first.await.unwrap(), Some(1));
    }

    #[tokio::test]
    async fn a_read_that_panics_leaves_its_callers_to_read_alone_and_the_reader_goes_on() {
        let b = Batcher::start(8, |keys: Vec<u32>| async move {
            assert!(keys != [13], "a read that panics");
            keys
        });
        assert_eq!(b.ask(13).await, None);
        assert_eq!(b.ask(7).await, Some(7));
    }

    #[tokio::test]
    async fn asks_a_read_gives_no_answer_for_are_left_to_read_alone_and_the_others_answered() {
        // The read answers only the first key of its batch: the first ask gets its answer,
        // the ones after it get None (they read alone), none gets another's answer.
        let b = Arc::new(Batcher::start(8, |keys: Vec<u32>| async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            keys.into_iter().take(1).map(|k| k * 10).collect::<Vec<u32>>()
        }));
        let first = tokio::spawn({
            let b = b.clone();
            async move { b.ask(1).await }
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
        // Queued behind the first read: one batch of three, of which only the first answered.
        let rest = futures_util::future::join_all([2u32, 3, 4].map(|k| {
            let b = b.clone();
            async move { b.ask(k).await }
        }))
        .await;
        assert_eq!(first.await.unwrap(), Some(10));
        assert_eq!(rest.iter().filter(|a| a.is_some()).count(), 1, "{rest:?}");
        for (k, a) in [2u32, 3, 4].iter().zip(&rest) {
            assert!(a.is_none() || *a == Some(k * 10), "{k} got {a:?}");
        }
    }
}
