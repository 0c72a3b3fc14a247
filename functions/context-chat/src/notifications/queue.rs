//! The queue port between the webhook and the notifier: SQS in the cloud (`aws-ports`: a
//! FIFO queue for message events, a delay queue for flushes), an in-process channel locally.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::address::Address;
use super::webhook::{MessageEvent, SmsReply};
use crate::error::{ChatError, Result};
use crate::events::{Delivery, EventQueue};

/// What the notifier is asked to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum QueueMessage {
    /// A new message in a conversation (from the webhook).
    Message(MessageEvent),
    /// Send what has folded up for one address in one context, if it is due.
    Flush {
        /// `channel` on the wire, as messages already queued spell it.
        #[serde(rename = "channel")]
        context: String,
        /// `email` on the wire, as flushes queued before text messages spell it.
        #[serde(rename = "email")]
        address: Address,
    },
    /// Make an identity's memberships what the platform last said (`revokeIdentity`,
    /// `syncIdentity`), once no request that raced the statement can still join.
    Sweep { identity: String },
    /// A number texted STOP or START back (from the webhook).
    SmsReply(SmsReply),
    /// An event to the platform (`events`): on its own queue in the cloud, so that a slow
    /// platform never holds up a notification.
    Event(crate::events::Delivery),
}

impl QueueMessage {
    /// What the webhook queues in order: its group (one conversation; one number, by a
    /// hash of it, so that the number is not an SQS attribute) and the id a repeated
    /// delivery is dropped by. `None` for what is queued for later.
    pub fn ordering(&self) -> Option<(String, &str)> {
        match self {
            QueueMessage::Message(event) => {
                Some((event.conversation_sid.clone(), event.message_sid.as_str()))
            }
            QueueMessage::SmsReply(reply) => {
                let digest = aws_lc_rs::digest::digest(
                    &aws_lc_rs::digest::SHA256,
                    reply.from.as_str().as_bytes(),
                );
                Some((
                    format!("sms-{}", hex::encode(&digest.as_ref()[..8])),
                    reply.message_sid.as_str(),
                ))
            }
            QueueMessage::Flush { .. } | QueueMessage::Sweep { .. } | QueueMessage::Event(_) => {
                None
            }
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads `kind`, then the variant's own struct: the same answers as serde's internally
    /// tagged parser (a test holds them to it), which buffers the whole message first and
    /// made the notifier's binary 10 KB bigger.
    pub fn from_json(body: &str) -> Result<Self> {
        #[derive(Deserialize)]
        struct Kind {
            kind: String,
        }
        #[derive(Deserialize)]
        struct Flush {
            channel: String,
            email: Address,
        }
        #[derive(Deserialize)]
        struct Sweep {
            identity: String,
        }
        let parsed = serde_json::from_str::<Kind>(body).and_then(|k| match k.kind.as_str() {
            "message" => serde_json::from_str(body).map(QueueMessage::Message),
            "flush" => serde_json::from_str(body).map(|f: Flush| QueueMessage::Flush {
                context: f.channel,
                address: f.email,
            }),
            "sweep" => serde_json::from_str(body).map(|s: Sweep| QueueMessage::Sweep {
                identity: s.identity,
            }),
            "smsReply" => serde_json::from_str(body).map(QueueMessage::SmsReply),
            "event" => serde_json::from_str(body).map(QueueMessage::Event),
            other => Err(serde::de::Error::unknown_variant(other, KINDS)),
        });
        parsed.map_err(|e| ChatError::bad_request(format!("Not a notifier message: {e}")))
    }
}

/// The `kind`s of [`QueueMessage`] on the wire.
const KINDS: &[&str] = &["message", "flush", "sweep", "smsReply", "event"];

/// Every queue also carries events to the platform (`events::EventQueue`), so that a process
/// hands one queue to both.
pub trait Queue: EventQueue {
    /// Queues what the webhook read (a message event, an SMS reply): in order per
    /// conversation or number, once per message SID ([`QueueMessage::ordering`]).
    fn enqueue<'a>(&'a self, message: &'a QueueMessage) -> BoxFuture<'a, Result<()>>;

    /// Queues `message` to be handled after `delay` (a flush, a sweep).
    fn later(&self, message: QueueMessage, delay: Duration) -> BoxFuture<'_, Result<()>>;

    /// Queues a flush to be handled after `delay`.
    fn schedule(
        &self,
        context: &str,
        address: &Address,
        delay: Duration,
    ) -> BoxFuture<'_, Result<()>> {
        let message = QueueMessage::Flush {
            context: context.to_owned(),
            address: address.clone(),
        };
        self.later(message, delay)
    }

    /// Queues a sweep of the identity's memberships to be handled after `delay`.
    fn schedule_sweep(&self, identity: &str, delay: Duration) -> BoxFuture<'_, Result<()>> {
        let message = QueueMessage::Sweep {
            identity: identity.to_owned(),
        };
        self.later(message, delay)
    }
}

/// How long a message SID is remembered to drop a repeated delivery, as SQS FIFO does.
pub const DEDUPLICATION_WINDOW: Duration = Duration::from_secs(300);

/// The local queue: an unbounded channel to one worker (`chatctl serve`'s), with SQS FIFO's
/// five-minute de-duplication by message SID.
pub struct LocalQueue {
    sender: mpsc::UnboundedSender<QueueMessage>,
    seen: Mutex<Seen>,
}

/// Message SIDs seen, by SID and in arrival order (to forget the old ones).
type Seen = (HashMap<String, Instant>, VecDeque<(Instant, String)>);

impl LocalQueue {
    pub fn new() -> (Self, mpsc::UnboundedReceiver<QueueMessage>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (
            Self {
                sender,
                seen: Mutex::new(Default::default()),
            },
            receiver,
        )
    }

    fn first_time(&self, id: &str) -> bool {
        let now = Instant::now();
        let mut guard = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let (seen, order) = &mut *guard;
        while let Some((at, _)) = order.front() {
            if now.duration_since(*at) < DEDUPLICATION_WINDOW {
                break;
            }
            if let Some((_, old)) = order.pop_front() {
                seen.remove(&old);
            }
        }
        if seen.contains_key(id) {
            return false;
        }
        seen.insert(id.to_owned(), now);
        order.push_back((now, id.to_owned()));
        true
    }

    fn send(&self, message: QueueMessage) -> Result<()> {
        self.sender
            .send(message)
            .map_err(|_| ChatError::internal("The local notifier has stopped."))
    }
}

impl Queue for LocalQueue {
    fn enqueue<'a>(&'a self, message: &'a QueueMessage) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let Some((_, id)) = message.ordering() else {
                return Err(ChatError::internal(
                    "Only the webhook's events are queued in order.",
                ));
            };
            if self.first_time(id) {
                self.send(message.clone())?;
            }
            Ok(())
        })
    }

    /// A timer: a message queued for later is lost when the process ends, as everything
    /// local mode keeps in memory.
    fn later(&self, message: QueueMessage, delay: Duration) -> BoxFuture<'_, Result<()>> {
        let sender = self.sender.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = sender.send(message);
        });
        Box::pin(async { Ok(()) })
    }
}

/// Events go through the one worker too; it hands them back to the app's deliverer.
impl EventQueue for LocalQueue {
    fn send_event(&self, delivery: Delivery, delay: Duration) -> BoxFuture<'_, Result<()>> {
        self.later(QueueMessage::Event(delivery), delay)
    }

    /// Local mode keeps nothing for an operator: the log (and the events journal) say it.
    fn dead_letter(&self, _delivery: Delivery) -> BoxFuture<'_, Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_json_answers_as_serdes_tagged_parser_does() {
        let messages = [
            QueueMessage::Sweep {
                identity: "alex".into(),
            },
            QueueMessage::Flush {
                context: "general".into(),
                address: Address::try_from("alex@example.org".to_owned()).unwrap(),
            },
            QueueMessage::Flush {
                context: "general".into(),
                address: Address::try_from("+4915112345678".to_owned()).unwrap(),
            },
            QueueMessage::Event(crate::events::Delivery {
                id: "msg_1".into(),
                kind: "identity.revoked".into(),
                payload: r#"{"type":"identity.revoked"}"#.into(),
                attempt: 3,
                first_at: 1_700_000_000,
            }),
        ];
        for message in messages {
            let json = message.to_json();
            assert_eq!(QueueMessage::from_json(&json).unwrap(), message, "{json}");
        }
        for body in [
            r#"{"kind":"message","conversationSid":"CH1","messageSid":"IM1","author":"sam","body":"hi","index":0,"dateCreated":"x"}"#,
            r#"{"kind":"message","conversationSid":"CH1","messageSid":"IM1","author":"sam","body":"hi","dateCreated":"x","other":null}"#,
            r#"{"kind":"message","conversationSid":"CH1"}"#,
            r#"{"kind":"smsReply","from":"+4915112345678","messageSid":"SM1","optIn":false}"#,
            r#"{"kind":"smsReply","from":"4915112345678","messageSid":"SM1","optIn":false}"#,
            r#"{"channel":"general","kind":"flush","email":"alex@example.org","extra":1}"#,
            r#"{"kind":"sweep"}"#,
            r#"{"kind":"event","id":"msg_1","type":"membership.joined","payload":"{}","attempt":2,"firstAt":7}"#,
            r#"{"kind":"event","id":"msg_1"}"#,
            r#"{"kind":"nope","identity":"alex"}"#,
            r#"{"identity":"alex"}"#,
            r#"{"kind":7}"#,
            r#"{"kind":"flush","channel":"general","email":"not an address"}"#,
            "[]",
            "",
            "{",
        ] {
            let ours = QueueMessage::from_json(body).map_err(|e| e.kind);
            let serdes = serde_json::from_str::<QueueMessage>(body)
                .map_err(|_| crate::ErrorKind::BadRequest);
            assert_eq!(ours, serdes, "{body}");
        }
    }
}
