//! Email notifications: subscriptions with confirmed addresses, Twilio's `onMessageAdded`
//! webhook, and digests that tell offline subscribers about new messages, at most one email
//! per conversation and address per window.
//!
//! Storage, mail and the queue between the webhook and the notifier are ports
//! ([`Store`], [`Mailer`], [`Queue`]): this crate holds the embedded (SQLite, feature
//! `embedded-store`) and SendGrid ones, the
//! `aws-ports` crate the DynamoDB and SQS ones, so that only the functions using them link
//! the AWS SDKs. [`NotificationService`] is the feature's one entry.

/// The address newtypes live in the kernel (the ports deliver to them); which channel an
/// address is for, in [`channels`].
pub mod address {
    pub use super::channels::Address;
    pub use crate::address::{EmailAddress, PhoneNumber};
}
pub mod channels;
/// Email's records and texts, and SMS's, live in their channel's folder; these paths are the
/// ones other crates name.
pub use channels::email::{codes, confirmations, links, messages, unsubscribe};
pub use channels::sms::{budget, phones, texts as sms, twilio as twilio_sms};
pub mod digest;
pub mod keys;
/// The mail port and its adapters (SendGrid, the outbox) live beside the other ports.
pub use crate::mail as mailer;
pub mod notifier;
pub mod ports;
pub mod queue;
pub mod service;
pub mod webhook;

#[cfg(feature = "embedded-store")]
pub use crate::sqlite_store;
/// The store port and its embedded adapter live at the crate's root (the ledger and
/// revocations use them too).
pub use crate::store;
pub use address::{Address, EmailAddress, PhoneNumber};
pub use channels::{Channel, ChannelKind, Channels};
pub use confirmations::Confirmations;
pub use keys::{SmsSubscription, Subscription};
pub use mailer::{Email, Mailer, Outbox, SendGrid};
pub use notifier::{NotifyOptions, NotifyReport};
pub use ports::Ports;
pub use queue::{LocalQueue, Queue, QueueMessage};
pub use service::NotificationService;
pub use store::{Document, Key, Store};
pub use webhook::{MessageEvent, WebhookOutcome, WebhookRequest};
