//! Shared state outside MongoDB: the Redis connection (caches and rate limits build on it).

pub mod redis;
