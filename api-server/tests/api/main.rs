//! Integration tests: the real server over HTTP, on SQLite and on PostgreSQL.

mod helpers;

mod api_keys;
mod auth;
mod durability;
mod idempotency;
mod openapi;
mod ops;
mod requests;
mod tokens;
