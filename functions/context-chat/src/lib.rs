//! Context Chat: verify a platform's context token, hand back a Twilio access token.
//!
//! This library holds all behaviour and knows nothing of Lambda events; the Lambda handler
//! crates and `chatctl serve` are thin doors onto the services [`App`] composes. Its HTTP
//! routes (feature `http`) and GraphQL schema (feature `graphql`) are shared by both.

pub mod access_log;
pub mod address;
pub mod app;
pub mod aws_env;
pub mod clock;
pub mod context_token;
pub mod dev_keys;
pub mod dev_token;
pub mod error;
pub mod events;
pub mod feature;
pub mod fields;
#[cfg(feature = "graphql")]
pub mod graphql;
#[cfg(feature = "http")]
pub mod http;
pub mod http_client;
pub mod ledger;
pub mod mail;
pub mod metrics;
pub mod names;
pub mod notifications;
pub mod panics;
pub mod personal_data;
pub mod platform;
pub mod revocations;
pub mod role_book;
pub mod settings;
pub mod settings_holder;
pub mod sms_gateway;
#[cfg(feature = "embedded-store")]
pub mod sqlite_store;
pub mod store;
pub mod tokens;
pub mod twilio;
pub mod virgil;

pub use app::{App, AppBuilder, AppOptions};
pub use error::{ChatError, ErrorKind, Result};
pub use tokens::{TokenInfo, TokenService};
