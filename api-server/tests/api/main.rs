//! Integration tests: the real server over HTTP, on SQLite and on PostgreSQL.

mod helpers;

mod accounts;
mod api_keys;
mod audit;
mod auth;
mod confined;
mod dashboard;
mod durability;
mod forward_auth;
mod hardening;
mod idempotency;
mod introspect;
mod nginx;
mod openapi;
mod ops;
mod permissions;
mod private_postgres;
mod receiver;
mod replicas;
mod requests;
mod route_walk;
mod tokens;
mod tools;
mod webhook_targets;
mod webhooks;
mod workspaces;
