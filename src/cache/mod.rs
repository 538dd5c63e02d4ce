//! Shared state outside MongoDB: the Redis connection (caches and rate limits build on it), and
//! the two-layer response cache (README, "Caches"): key families and what each domain event
//! makes stale (`family`), the process layer (`local`), the generations that keep every
//! instance fresh (`generations`), the Redis calls under a circuit breaker (`link`, `breaker`)
//! and the cache itself (`layered`).

pub mod breaker;
pub mod family;
mod generations;
pub mod layered;
mod link;
pub mod local;
pub mod redis;
