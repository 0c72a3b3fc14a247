//! Context Chat: verify a platform's context token, hand back a Twilio access token.
//!
//! This library holds all behaviour and knows nothing of Lambda events or HTTP servers;
//! the Lambda handler crates and `chatctl serve` are thin doors onto [`App`].

pub mod app;
pub mod context_token;
pub mod dev_keys;
pub mod dev_token;
pub mod error;
#[cfg(feature = "graphql")]
pub mod graphql;
pub mod names;
pub mod notifications;
pub mod settings;
pub mod twilio;

pub use app::{App, AppOptions, Runtime, TokenInfo};
pub use error::{ChatError, ErrorKind, Result};
