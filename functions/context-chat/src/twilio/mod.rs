//! Twilio: access tokens for the Conversations SDK, and the Conversations REST API that
//! makes a user's memberships follow its context token.

pub mod access_token;
pub mod conversations;
pub mod provisioning;
pub mod rest;
pub mod service_setup;
pub mod webhook_signature;
