//! Twilio: access tokens for the Conversations SDK.

pub mod access_token;
