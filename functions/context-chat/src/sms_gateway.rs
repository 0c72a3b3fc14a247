//! The SMS port: verifying a number by code and sending a text. Twilio's Verify and Messages
//! (`notifications::twilio_sms`) and local mode's embedded Verify and outbox
//! (`notifications::sms::LocalSms`) implement it; the settings holder builds the one in use.

use futures_util::future::BoxFuture;

use crate::address::PhoneNumber;
use crate::error::Result;

/// What became of a text message handed to the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Accepted,
    /// The recipient replied STOP (Twilio 21610): nothing may be sent to the number again.
    Unsubscribed,
    /// Refused for good (Twilio's error code): trying again would not help.
    Refused(u32),
    /// Not sent: the number is outside `sms/allowedCountries`.
    CountryNotAllowed,
    /// Not sent: a daily budget is spent; the messages wait for the next text.
    Held,
}

pub trait SmsGateway: Send + Sync {
    /// Sends a verification code to `to` (a new one, or the pending one again).
    fn start_verification<'a>(&'a self, to: &'a PhoneNumber) -> BoxFuture<'a, Result<()>>;

    /// Whether `code` is the one pending for `to`; a wrong code is `false`. No pending code
    /// (expired, used, never sent) or too many wrong ones are errors that say so.
    fn check_verification<'a>(
        &'a self,
        to: &'a PhoneNumber,
        code: &'a str,
    ) -> BoxFuture<'a, Result<bool>>;

    fn send<'a>(&'a self, to: &'a PhoneNumber, text: &'a str) -> BoxFuture<'a, Result<Delivery>>;
}

/// The errors of Verify's rules, worded for the person at the widget. Both gateways
/// answer with these.
pub mod refusals {
    use crate::error::ChatError;

    /// Verify's own limits: a verification lasts 10 minutes.
    const VERIFICATION_SECS: u64 = 600;

    pub fn too_many_checks() -> ChatError {
        crate::metrics::limited(crate::metrics::Limit::Verify);
        ChatError::too_many(
            "Too many wrong codes for this number: ask for a new code then.",
            VERIFICATION_SECS,
        )
    }

    pub fn too_many_sends() -> ChatError {
        crate::metrics::limited(crate::metrics::Limit::Verify);
        ChatError::too_many(
            "Too many codes were sent to this number.",
            VERIFICATION_SECS,
        )
    }

    pub fn no_pending_code() -> ChatError {
        ChatError::bad_request(
            "No code is waiting for this number: it expired after 10 minutes, or it was used. Ask for a new one.",
        )
    }

    pub fn landline() -> ChatError {
        ChatError::bad_request("This number is a landline: it cannot receive text messages.")
    }

    pub fn blocked() -> ChatError {
        ChatError::access_denied(
            "Text messages to this number are blocked (fraud protection, or a country this service does not send to).",
        )
    }

    /// Ours, not Verify's: the number replied STOP to our texts (issue 30, L5).
    pub fn replied_stop() -> ChatError {
        ChatError::access_denied(
            "This number replied STOP to our text messages, so no code is sent to it. To get texts again, text START to the number they came from, then ask again.",
        )
    }

    pub fn not_a_number() -> ChatError {
        ChatError::bad_request("Twilio does not accept this phone number.")
    }
}
