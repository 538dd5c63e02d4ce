//! Integration tests: the real app on a random port, a fresh database and Redis prefix each.
//! One test binary (modules below) keeps link time down.

mod architecture;
mod auth;
mod auth_checks;
mod availability;
mod blocks;
mod bookings;
mod cache;
mod cache_batching;
mod cache_outage;
mod cache_rounds;
mod clients;
mod dashboard;
mod dashboard_routes;
mod deploy;
mod documents;
mod documents_sharing;
mod documents_transfer;
mod emails;
mod emails_account;
mod emails_bookings;
mod faults;
mod fuzz;
mod helpers;
mod http;
mod integrity;
mod memory;
mod openapi;
mod openapi_fuzz;
mod ops;
mod payments;
mod practice;
mod procs;
mod shape;
mod smtp_server;
mod upstreams;
