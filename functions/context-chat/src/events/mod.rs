//! Events to the platform (issue 35, adr/022): what happened in the chat — a message added,
//! a membership begun or ended (with the access log's cause), an identity revoked, a
//! notification sent — POSTed to `platform/eventsUrl`, signed as Standard Webhooks are.
//!
//! Emitting only queues (the events queue in the cloud, the embedded queue locally): a slow
//! or failing platform never slows a token or a notification. The deliverer sends each one
//! at least once, under one id (the platform's idempotency key) however often it is tried,
//! retrying with backoff from a second to 15 minutes for a day, then dead-letters it.

pub mod delivery;
pub mod signing;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use url::Url;

use futures_util::future::BoxFuture;

use crate::access_log::{Cause, ChangeListener, Changed};
use crate::error::Result;
use crate::feature::Feature;
use crate::metrics::{self, Counter};
use crate::settings::{Param, Section, Settings};
use crate::settings_holder::SettingsHolder;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    MessageAdded,
    MembershipJoined,
    MembershipLeft,
    IdentityRevoked,
    NotificationSent,
}

impl EventType {
    pub const ALL: [EventType; 5] = [
        EventType::MessageAdded,
        EventType::MembershipJoined,
        EventType::MembershipLeft,
        EventType::IdentityRevoked,
        EventType::NotificationSent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::MessageAdded => "message.added",
            EventType::MembershipJoined => "membership.joined",
            EventType::MembershipLeft => "membership.left",
            EventType::IdentityRevoked => "identity.revoked",
            EventType::NotificationSent => "notification.sent",
        }
    }
}

/// One event, before it is queued.
#[derive(Debug, Clone)]
pub struct Event {
    /// Set when the event has a natural id (a message's SID), so that emitting it twice
    /// (a notifier record handled again) gives the platform one id; else a random one.
    pub id: Option<String>,
    pub kind: EventType,
    /// Unix milliseconds.
    pub at_ms: u64,
    pub data: serde_json::Map<String, Value>,
    /// A message's text: in `data.body` only where `platform/eventsIncludeBody` is true.
    pub body: Option<String>,
}

impl Event {
    fn new(kind: EventType, data: Value) -> Self {
        let Value::Object(data) = data else {
            unreachable!("events are made from json! objects")
        };
        Event {
            id: None,
            kind,
            at_ms: crate::clock::now_millis(),
            data,
            body: None,
        }
    }

    /// A membership begun or ended, and why (the access log's cause).
    pub fn membership(joined: bool, context: &str, identity: &str, cause: &Cause) -> Self {
        let kind = match joined {
            true => EventType::MembershipJoined,
            false => EventType::MembershipLeft,
        };
        Event::new(
            kind,
            json!({"context": context, "identity": identity, "cause": cause}),
        )
    }

    /// A platform client revoked the identity's access; `contexts`: the rooms it left.
    pub fn revoked(identity: &str, client: &str, contexts: &[String]) -> Self {
        Event::new(
            EventType::IdentityRevoked,
            json!({"identity": identity, "client": client, "contexts": contexts}),
        )
    }

    /// A message added in a context's room (from Twilio's webhook).
    pub fn message_added(
        context: &str,
        author: &str,
        message_sid: &str,
        index: Option<u64>,
        time: &str,
        body: &str,
    ) -> Self {
        let mut event = Event::new(
            EventType::MessageAdded,
            json!({"context": context, "identity": author, "messageSid": message_sid,
                   "index": index, "time": time}),
        );
        event.id = Some(format!("msg_{message_sid}"));
        event.body = Some(body.to_owned());
        event
    }

    /// A notification went out on `channel` (`email`, `sms`); never the address.
    pub fn notification_sent(context: &str, identity: &str, channel: &str) -> Self {
        Event::new(
            EventType::NotificationSent,
            json!({"context": context, "identity": identity, "channel": channel}),
        )
    }

    /// The Standard Webhooks payload: `{"type", "timestamp", "data"}`.
    fn payload(mut self, include_body: bool) -> (String, String) {
        if include_body && let Some(body) = self.body.take() {
            self.data.insert("body".into(), Value::String(body));
        }
        let id = self.id.take().unwrap_or_else(random_id);
        let timestamp = aws_smithy_types::DateTime::from_millis(self.at_ms as i64)
            .fmt(aws_smithy_types::date_time::Format::DateTime)
            .unwrap_or_default();
        let payload =
            json!({"type": self.kind.as_str(), "timestamp": timestamp, "data": self.data});
        (id, payload.to_string())
    }
}

/// `msg_` and 16 random bytes in hex, as the convention's examples name ids.
fn random_id() -> String {
    let mut bytes = [0u8; 16];
    let _ = aws_lc_rs::rand::fill(&mut bytes);
    format!("msg_{}", hex::encode(bytes))
}

/// One event on the queue: its id and payload, fixed when it was emitted; the attempt this
/// is, and since when (unix seconds) it has been tried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub payload: String,
    pub attempt: u32,
    pub first_at: u64,
}

/// Where events wait to be sent: SQS's events queue in the cloud, local mode's embedded
/// queue (whose worker hands them back to the app).
pub trait EventQueue: Send + Sync {
    /// Queues `delivery` to be sent after `delay` (at most 15 minutes on SQS).
    fn send_event(&self, delivery: Delivery, delay: Duration) -> BoxFuture<'_, Result<()>>;

    /// Keeps an event that will never be sent where an operator finds it (the events'
    /// dead-letter queue; local mode has only its log and journal).
    fn dead_letter(&self, delivery: Delivery) -> BoxFuture<'_, Result<()>>;
}

/// What the emitting processes read of `platform/events*`: where events go (they are on
/// when it is set) and whether messages' texts go with them.
#[derive(Debug, Clone)]
pub struct EventSettings {
    pub url: Url,
    pub include_body: bool,
}

impl EventSettings {
    pub fn of(settings: &Settings) -> Feature<EventSettings> {
        let section = settings
            .section(Section::Events)
            .or_else(|| settings.section(Section::EventDelivery));
        let Some(r) = section else {
            return Feature::Off("this process does not read its settings".into());
        };
        let read = || -> Result<Option<EventSettings>> {
            let Some(url) = r.optional(Param::EventsUrl) else {
                return Ok(None);
            };
            let url = r.url(Param::EventsUrl, &url)?;
            let include_body = match r
                .optional(Param::EventsIncludeBody)
                .as_deref()
                .map(str::trim)
            {
                None | Some("false") => false,
                Some("true") => true,
                Some(_) => return Err(r.invalid(Param::EventsIncludeBody, "must be true or false")),
            };
            Ok(Some(EventSettings { url, include_body }))
        };
        Feature::from_section(read(), || {
            format!("{} is not set", r.name(Param::EventsUrl))
        })
    }
}

/// Local mode writes every event here as a line of JSON, sent or not (`chatctl events tail`).
#[derive(Debug, Clone)]
pub struct EventJournal(pub PathBuf);

impl EventJournal {
    /// Appends one line; a failure is logged (the journal is a developer's window, not a record).
    pub fn write(&self, line: &Value) {
        use std::io::Write as _;
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.0)
            .and_then(|mut f| writeln!(f, "{line}"));
        if let Err(err) = written {
            tracing::warn!(%err, "could not write the events journal");
        }
    }
}

/// Queues events; the processes that make changes hold one (the token functions, the
/// platform API, the notifier). Without a queue, or with events off, it does nothing.
#[derive(Clone)]
pub struct Emitter {
    settings: Arc<SettingsHolder>,
    queue: Option<Arc<dyn EventQueue>>,
    journal: Option<EventJournal>,
}

impl Emitter {
    pub fn new(
        settings: Arc<SettingsHolder>,
        queue: Option<Arc<dyn EventQueue>>,
        journal: Option<EventJournal>,
    ) -> Self {
        Self {
            settings,
            queue,
            journal,
        }
    }

    /// Queues `events` when events are on. Never fails the caller: what could not be queued
    /// is logged and counted (`EventsNotQueued`), as the change it tells of is made already.
    pub async fn emit(&self, events: Vec<Event>) {
        if events.is_empty() || (self.queue.is_none() && self.journal.is_none()) {
            return;
        }
        let on = match self.settings.current().await {
            Ok(configured) => match EventSettings::of(&configured.settings) {
                Feature::On(settings) => Some(settings),
                Feature::Off(_) => None,
                Feature::Misconfigured(err) => {
                    tracing::error!(reason = %err.message, "events are misconfigured; not sent");
                    None
                }
            },
            Err(err) => {
                tracing::error!(reason = %err.message, "no settings; events not sent");
                None
            }
        };
        let include_body = on.as_ref().is_some_and(|s| s.include_body);
        let now = crate::clock::now_unix();
        let queued = futures_util::future::join_all(events.into_iter().map(|event| {
            let kind = event.kind.as_str();
            let (id, payload) = event.payload(include_body);
            let on = on.is_some();
            async move {
                if let Some(journal) = &self.journal {
                    let payload: Value = serde_json::from_str(&payload).unwrap_or_default();
                    journal.write(&json!({"id": id, "status": if on { "queued" } else { "notSent: no PLATFORM_EVENTS_URL" }, "event": payload}));
                }
                let (true, Some(queue)) = (on, &self.queue) else {
                    return Ok(());
                };
                let delivery = Delivery {
                    id,
                    kind: kind.to_owned(),
                    payload,
                    attempt: 1,
                    first_at: now,
                };
                queue.send_event(delivery, Duration::ZERO).await
            }
        }))
        .await;
        for result in queued {
            match result {
                Ok(()) if on.is_some() => metrics::count(Counter::EventsQueued),
                Ok(()) => {}
                Err(err) => {
                    metrics::count(Counter::EventsNotQueued);
                    tracing::error!(error_type = %err.kind, reason = %err.message, "an event could not be queued");
                }
            }
        }
    }
}

/// The access log's joins and leaves, as `membership.joined` and `membership.left`.
impl ChangeListener for Emitter {
    fn changed<'a>(
        &'a self,
        identity: &'a str,
        changes: Changed<'a>,
        cause: &'a Cause,
        at_ms: u64,
    ) -> BoxFuture<'a, ()> {
        let joined = changes.joined.iter().map(|c| (true, c));
        let left = changes.left.iter().map(|c| (false, c));
        let events = joined
            .chain(left)
            .map(|(joined, context)| Event {
                at_ms,
                ..Event::membership(joined, context, identity, cause)
            })
            .collect();
        Box::pin(self.emit(events))
    }
}
