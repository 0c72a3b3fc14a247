//! Email notifications: subscriptions with confirmed addresses, Twilio's `onMessageAdded`
//! webhook, and digests that tell offline subscribers about new messages, at most one email
//! per conversation and address per window.
//!
//! Storage, mail and the queue between the webhook and the notifier are ports
//! ([`Store`], [`Mailer`], [`Queue`]): this crate holds the embedded (SQLite, feature
//! `embedded-store`) and SendGrid ones, the
//! `aws-ports` crate the DynamoDB and SQS ones, so that only the functions using them link
//! the AWS SDKs. [`NotificationService`] is the feature's one entry.

/// The address newtypes live in the kernel (the store names them too).
pub use crate::address;
pub mod budget;
pub mod channels;
pub mod codes;
pub mod confirmations;
pub mod digest;
pub mod keys;
pub mod links;
/// The mail port and its adapters (SendGrid, the outbox) live beside the other ports.
pub use crate::mail as mailer;
pub mod messages;
pub mod notifier;
pub mod phones;
pub mod ports;
pub mod queue;
pub mod service;
pub mod sms;
pub mod twilio_sms;
pub mod unsubscribe;
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
pub use ports::NotificationPorts;
pub use queue::{LocalQueue, Queue, QueueMessage};
pub use service::NotificationService;
pub use store::{Document, Key, Store};
pub use webhook::{MessageEvent, WebhookOutcome, WebhookRequest};
