//! chatctl's integration tests, one binary: the command as a user runs it, against real
//! processes on loopback (the server, moto, the Twilio stand-in checked by Prism).

mod common;
mod configure_twilio;
mod ledger;
mod local_chat;
mod metrics;
mod notifications;
mod platform;
mod put_params;
mod serve;
mod sms;
mod virgil;
