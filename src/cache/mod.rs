//! Shared state outside MongoDB: the Redis connection (caches and rate limits build on it), and
//! the pieces of the two-layer response cache (issue 11, not yet serving reads): key families
//! and what each domain event makes stale (`family`), and the Redis circuit breaker (`breaker`).

pub mod breaker;
pub mod family;
pub mod layered;
pub mod redis;
