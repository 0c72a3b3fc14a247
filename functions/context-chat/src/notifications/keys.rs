//! Where notifications keep their records in the store, and the subscription documents.
//! The strings are the ones written since the old integration: existing tables and
//! embedded stores read back unchanged (`tests/it/stored_format.rs` pins them).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::address::{Address, EmailAddress, PhoneNumber};
use crate::error::Result;
use crate::store::{
    Key, Store, context_partition, email_partition, identity_partition, phone_partition,
};

pub const SUBSCRIPTION_PREFIX: &str = "SUB#";
pub const SMS_SUBSCRIPTION_PREFIX: &str = "SMS#";
/// The sort keys of per-identity confirmations (under an address) and verifications
/// (under a number).
pub const CONFIRMATION_PREFIX: &str = "IDENTITY#";

/// One identity's email subscription to a context.
pub fn subscription(context: &str, identity: &str) -> Key {
    Key::new(
        "subscription",
        context_partition(context),
        format!("{SUBSCRIPTION_PREFIX}{identity}"),
    )
}

/// One identity's text-message subscription to a context.
pub fn sms_subscription(context: &str, identity: &str) -> Key {
    Key::new(
        "sms-subscription",
        context_partition(context),
        format!("{SMS_SUBSCRIPTION_PREFIX}{identity}"),
    )
}

/// What is waiting to be sent to one address about one context, and when it last was.
pub fn digest(context: &str, address: &Address) -> Key {
    Key::new(
        "digest",
        context_partition(context),
        format!("DIGEST#{}", address.as_str()),
    )
}

/// An address as the old integration confirmed it, for anyone: read only, to honour the
/// subscriptions made before confirmation became per identity.
pub fn old_confirmation(email: &EmailAddress) -> Key {
    Key::new("email", email_partition(email), "EMAIL")
}

/// One identity's confirmation of one address, and its pending code.
pub fn confirmation(email: &EmailAddress, identity: &str) -> Key {
    of_identity("confirmation", email_partition(email), identity)
}

/// Tries of codes for an address made without a token, counted apart so that they never
/// use up the tries of the identity that asked for the code.
pub fn guesses(email: &EmailAddress) -> Key {
    Key::new("guesses", email_partition(email), "GUESSES")
}

/// One identity's confirmation emails: how many lately, which addresses wait.
pub fn email_sender(identity: &str) -> Key {
    Key::new("sender", identity_partition(identity), "CONFIRMATIONS")
}

/// One identity's verification of one phone number, under the number, so that one query
/// finds every identity that verified it (a STOP ends them all).
pub fn phone(phone: &PhoneNumber, identity: &str) -> Key {
    of_identity("phone", phone_partition(phone), identity)
}

/// One identity's record under an address or a number.
fn of_identity(kind: &'static str, partition: String, identity: &str) -> Key {
    Key::new(kind, partition, format!("{CONFIRMATION_PREFIX}{identity}"))
}

/// One identity's phone verifications: how many codes went out today, which numbers wait.
pub fn phone_sender(identity: &str) -> Key {
    Key::new("phone-sender", identity_partition(identity), "PHONES")
}

/// The number replied STOP and has not texted START since: no code goes to it.
pub fn sms_stopped(phone: &PhoneNumber) -> Key {
    Key::new("sms-stopped", phone_partition(phone), "STOPPED")
}

/// Codes or texts (`what`: `CODES` or `TEXTS`) sent on one UTC day (`day`: unix days), by
/// the whole deployment (`number: None`) or to one number (`notifications::budget`).
pub fn sms_spent(what: &'static str, day: u64, number: Option<&PhoneNumber>) -> Key {
    match number {
        None => Key::new("sms-spent", format!("SMSBUDGET#{day}"), what),
        Some(phone) => Key::new(
            "sms-spent",
            phone_partition(phone),
            format!("SPENT#{day}#{what}"),
        ),
    }
}

/// One identity's email notifications about one context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    /// Stored as `channel`, the old integration's word.
    #[serde(rename = "channel")]
    pub context: String,
    pub identity: String,
    pub email: EmailAddress,
    pub created_at: u64,
    /// Made since confirmation is per identity. Without it (the old integration's), an
    /// address anyone confirmed counts, as it did then.
    #[serde(default)]
    pub per_identity: bool,
}

/// One identity's text messages about one context, to a number it verified (or is verifying).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SmsSubscription {
    pub context: String,
    pub identity: String,
    pub phone: PhoneNumber,
    pub created_at: u64,
}

/// Every email subscription to `context`.
pub async fn subscriptions(store: &dyn Store, context: &str) -> Result<Vec<Subscription>> {
    parsed(store, context, SUBSCRIPTION_PREFIX).await
}

/// Every text-message subscription to `context`.
pub async fn sms_subscriptions(store: &dyn Store, context: &str) -> Result<Vec<SmsSubscription>> {
    parsed(store, context, SMS_SUBSCRIPTION_PREFIX).await
}

/// The documents of a context's partition under `prefix` that parse as `T`.
pub(crate) async fn parsed<T: DeserializeOwned>(
    store: &dyn Store,
    context: &str,
    prefix: &str,
) -> Result<Vec<T>> {
    Ok(store
        .query(&context_partition(context), prefix)
        .await?
        .into_iter()
        .filter_map(|doc| {
            serde_json::from_value(Value::Object(doc.fields))
                .inspect_err(|e| tracing::warn!(context, error = %crate::store::without_strings(&e.to_string()), "skipping a subscription that does not parse"))
                .ok()
        })
        .collect())
}
