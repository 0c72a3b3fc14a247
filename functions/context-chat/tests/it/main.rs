//! The library's integration tests, one binary: real HTTP on loopback for issuers and the
//! Twilio stand-in (checked by Prism), moto for SSM.

mod access_token;
mod architecture;
mod context_token;
mod jwks_policy;
mod live_twilio;
mod platform_token;
mod provisioning;
mod settings_ssm;
mod sms;
mod stored_format;
mod webhook_signature;
