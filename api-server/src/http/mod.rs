//! The HTTP layer: the server loop, the routes and their declarations, request parsing,
//! replies and the error mapping. Nothing below this layer imports it.

pub mod credentials;
pub mod dashboard;
pub mod endpoint;
pub mod error;
pub mod extract;
pub mod openapi;
pub mod parse;
pub mod reply;
pub mod request_body;
pub mod route_table;
pub mod routes;
pub mod server;
pub mod state;
pub mod strict_json;
