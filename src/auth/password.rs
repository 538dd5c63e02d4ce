//! Password hashing: argon2id for new hashes; bcrypt hashes of the original system are accepted
//! and flagged for rehashing. Hashing runs on the blocking pool, never on the async workers,
//! and at most `HashPool`'s bound of hashes run at once: each argon2id hash takes a 19 MiB
//! block, so an unbounded burst of sign-ins would take gigabytes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{ApiError, ApiResult};

/// Bounds password hashing: at most `concurrency` hashes or verifications run at once (each on
/// a blocking thread), at most `max_waiting` more wait for a turn without holding a thread, and
/// any caller beyond that is refused at once with 503 `OVERLOADED` and `Retry-After`.
pub struct HashPool {
    permits: Arc<Semaphore>,
    concurrency: usize,
    waiting: AtomicUsize,
    max_waiting: usize,
}

impl HashPool {
    /// A pool running `concurrency` hashes at once (0: one per core) with `max_waiting` queued.
    pub fn new(concurrency: usize, max_waiting: usize) -> Self {
        let concurrency = if concurrency == 0 {
            std::thread::available_parallelism().map_or(1, usize::from)
        } else {
            concurrency
        };
        Self {
            permits: Arc::new(Semaphore::new(concurrency)),
            concurrency,
            waiting: AtomicUsize::new(0),
            max_waiting,
        }
    }

    /// How many hashes may run at once.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// How many callers are waiting for a turn now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    async fn permit(&self) -> ApiResult<OwnedSemaphorePermit> {
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            return Ok(permit);
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(busy());
        }
        // Decrements the count also when the waiting request is dropped (timeout, disconnect).
        let _queued = Waiting(&self.waiting);
        self.permits.clone().acquire_owned().await.map_err(|_| busy())
    }

    /// Runs `work` on the blocking pool once a permit is free. The permit moves with the work,
    /// so a caller that gives up (request timeout) frees its slot only when the hash is done.
    pub async fn run<T, F>(&self, work: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let permit = self.permit().await?;
        tokio::task::spawn_blocking(move || {
            let out = work();
            drop(permit);
            out
        })
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("password hashing task failed: {e}")))
    }
}

struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn busy() -> ApiError {
    ApiError::Unavailable {
        code: "OVERLOADED",
        message: "Too many sign-ins are being processed, try again shortly".into(),
        retry_after_secs: 1,
    }
}

/// Outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Wrong password (or unusable hash).
    Mismatch,
    /// Right password, hash is current.
    Ok,
    /// Right password, but the hash is legacy (bcrypt): store a new argon2id hash.
    OkRehash,
}

fn argon2() -> Argon2<'static> {
    // argon2id v19 with the crate defaults (m = 19 MiB, t = 2, p = 1): OWASP's recommendation.
    Argon2::default()
}

/// Hashes a password with argon2id (PHC string), within the pool's bound.
pub async fn hash(pool: &HashPool, password: String) -> ApiResult<String> {
    let hashed = pool
        .run(move || {
            let salt = SaltString::generate(&mut OsRng);
            argon2()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
        })
        .await?;
    hashed.map_err(|e| ApiError::Internal(anyhow::anyhow!("hashing failed: {e}")))
}

/// Checks `password` against a stored argon2 or bcrypt hash, within the pool's bound.
pub async fn verify(pool: &HashPool, password: String, stored: String) -> ApiResult<Verdict> {
    pool.run(move || verify_blocking(&password, &stored)).await
}

fn verify_blocking(password: &str, stored: &str) -> Verdict {
    if is_bcrypt(stored) {
        return match bcrypt::verify(password, stored) {
            Ok(true) => Verdict::OkRehash,
            _ => Verdict::Mismatch,
        };
    }
    match PasswordHash::new(stored) {
        Ok(parsed) if argon2().verify_password(password.as_bytes(), &parsed).is_ok() => Verdict::Ok,
        _ => Verdict::Mismatch,
    }
}

fn is_bcrypt(stored: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"].iter().any(|p| stored.starts_with(p))
}

/// A real argon2id hash of a random password, so that an unknown email costs the same
/// verification time as a wrong password.
pub fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        let secret = uuid::Uuid::new_v4().to_string();
        argon2()
            .hash_password(secret.as_bytes(), &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn argon2_round_trip_and_bcrypt_upgrade() {
        let pool = &HashPool::new(0, 4);
        assert!(pool.concurrency() >= 1);
        let h = hash(pool, "correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert_eq!(
            verify(pool, "correct horse".into(), h.clone()).await.unwrap(),
            Verdict::Ok
        );
        assert_eq!(verify(pool, "wrong".into(), h).await.unwrap(), Verdict::Mismatch);

        let legacy = bcrypt::hash("from-node", 4).unwrap();
        assert_eq!(
            verify(pool, "from-node".into(), legacy.clone()).await.unwrap(),
            Verdict::OkRehash
        );
        assert_eq!(
            verify(pool, "nope".into(), legacy).await.unwrap(),
            Verdict::Mismatch
        );
        assert_eq!(
            verify(pool, "x".into(), "garbage".into()).await.unwrap(),
            Verdict::Mismatch
        );
        assert!(dummy_hash().starts_with("$argon2id$"));
    }

    /// N run at once, Q wait, the (N+Q+1)-th concurrent caller is refused at once; the waiting
    /// ones run as slots free up and never more than N run together.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pool_bounds_running_and_waiting_work() {
        use std::sync::atomic::AtomicBool;
        use std::time::{Duration, Instant};

        const N: usize = 2;
        const Q: usize = 3;
        let pool = Arc::new(HashPool::new(N, Q));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(AtomicBool::new(false));
        // Lets the held jobs finish when an assertion fails, so the test fails instead of hanging.
        struct Release(Arc<AtomicBool>);
        impl Drop for Release {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let _release_on_exit = Release(release.clone());
        let job = {
            let (running, most, release) = (running.clone(), most.clone(), release.clone());
            move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                while !release.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(2));
                }
                running.fetch_sub(1, Ordering::SeqCst);
            }
        };
        let callers: Vec<_> = (0..N + Q)
            .map(|_| {
                let (pool, job) = (pool.clone(), job.clone());
                tokio::spawn(async move { pool.run(job).await })
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(10);
        while running.load(Ordering::SeqCst) < N || pool.waiting() < Q {
            assert!(Instant::now() < deadline, "callers did not start and queue");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(running.load(Ordering::SeqCst), N, "more than N run at once");
        assert_eq!(pool.waiting(), Q);

        let extra = tokio::time::timeout(Duration::from_secs(1), pool.run(job.clone()))
            .await
            .expect("the caller beyond the queue is answered at once");
        match extra {
            Err(e @ ApiError::Unavailable { .. }) => {
                assert_eq!(e.status(), axum::http::StatusCode::SERVICE_UNAVAILABLE);
                let response = axum::response::IntoResponse::into_response(e);
                assert_eq!(response.headers()["retry-after"], "1");
            }
            other => panic!("expected 503, got {other:?}"),
        }

        release.store(true, Ordering::SeqCst);
        for caller in callers {
            caller.await.unwrap().expect("queued work runs");
        }
        assert_eq!(most.load(Ordering::SeqCst), N, "never more than N at once");
        assert_eq!(pool.waiting(), 0);
        // Freed: the next caller runs at once.
        pool.run(|| ()).await.unwrap();
    }

    /// A waiting caller that gives up leaves the queue.
    #[tokio::test]
    async fn abandoned_waiter_leaves_the_queue() {
        use std::time::Duration;
        let pool = HashPool::new(1, 1);
        let held = pool.permits.clone().try_acquire_owned().unwrap();
        let gave_up = tokio::time::timeout(Duration::from_millis(20), pool.run(|| ())).await;
        assert!(gave_up.is_err());
        assert_eq!(pool.waiting(), 0);
        drop(held);
        pool.run(|| ()).await.unwrap();
    }
}
