//! The notifier: for each new message, an email or text message to every confirmed
//! subscriber of its context who is offline and did not write it, folded into digests so
//! that an address (email address or phone number) gets at most one per context per window.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use super::address::Address;
use super::channels::{CHANNELS, ChannelKind, Channels, Delivery, Letter};
use super::digest::{self, Digest, PendingMessage, Step};
use super::keys;
use super::phones::Phones;
use super::ports::Ports;
use super::queue::QueueMessage;
use super::store::{self, Store};
use super::webhook::MessageEvent;
use crate::clock::now_unix;
use crate::error::{ChatError, Result};
use crate::events::{Emitter, Event};
use crate::settings_holder::SettingsHolder;
use crate::twilio::conversations::ConversationsApi;

#[derive(Debug, Clone, Copy)]
pub struct NotifyOptions {
    /// Subscribers handled at once for one message.
    pub concurrency: usize,
    /// Time for the Twilio lookups of one message.
    pub twilio_budget: Duration,
    /// At most one email per context and address in this long.
    pub window: Duration,
}

impl Default for NotifyOptions {
    fn default() -> Self {
        Self {
            concurrency: 8,
            twilio_budget: Duration::from_secs(10),
            window: Duration::from_secs(digest::WINDOW_SECS),
        }
    }
}

/// What handling one queue message did, for logs and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotifyReport {
    /// The addresses notified, of every channel.
    pub sent: Vec<Address>,
    /// The address refused for good (a number that replied STOP): its subscriptions ended.
    pub stopped: usize,
    /// Not sent today: a daily budget is spent (`sms/dailyTexts`, or the number's); the
    /// messages wait for the address's next notification.
    pub held: usize,
    /// What became of the rest, by channel ([`ChannelKind::ALL`]'s order).
    pub skipped: [Skipped; CHANNELS],
}

/// Notifications not sent (yet), one channel's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Skipped {
    /// Folded into a pending digest.
    pub folded: usize,
    pub online: usize,
    /// The address is not confirmed.
    pub unconfirmed: usize,
    /// The subscriber had read the message already.
    pub read: usize,
    /// The subscriber is no longer a participant: their subscription was ended.
    pub access_ended: usize,
}

impl Skipped {
    fn total(reports: &[Skipped], field: fn(&Skipped) -> usize) -> usize {
        reports.iter().map(field).sum()
    }
}

impl NotifyReport {
    /// The addresses notified on `channel`.
    pub fn sent_on(&self, channel: ChannelKind) -> impl Iterator<Item = &Address> {
        self.sent
            .iter()
            .filter(move |a| ChannelKind::of(a) == channel)
    }

    fn count(&self) {
        use crate::metrics::{Counter, Outcome, add, notified};
        add(Counter::SmsStopped, self.stopped as u64);
        for kind in ChannelKind::ALL {
            let s = self.skipped[kind as usize];
            let counts = [
                (Outcome::Sent, self.sent_on(kind).count()),
                (Outcome::Folded, s.folded),
                (Outcome::SkippedOnline, s.online),
                (Outcome::SkippedUnconfirmed, s.unconfirmed),
                (Outcome::SkippedRead, s.read),
                (Outcome::SkippedNotMember, s.access_ended),
            ];
            for (outcome, n) in counts {
                notified(kind.name(), outcome, n as u64);
            }
        }
    }
}

pub struct Notifier {
    pub(super) settings: Arc<SettingsHolder>,
    pub(super) ports: Ports,
    pub(super) channels: Channels,
    /// Numbers' STOP and START replies.
    phones: Phones,
    options: NotifyOptions,
    /// Conversation SID → its context (unique name), or `None` for one that has none.
    context_names: quick_cache::sync::Cache<String, Option<String>>,
    /// `message.added` and `notification.sent` to the platform.
    events: Option<Emitter>,
}

impl Notifier {
    pub fn new(
        settings: Arc<SettingsHolder>,
        ports: Ports,
        channels: Channels,
        options: NotifyOptions,
    ) -> Self {
        Self {
            settings,
            phones: Phones::new(ports.store.clone()),
            ports,
            channels,
            options,
            context_names: quick_cache::sync::Cache::new(10_000),
            events: None,
        }
    }

    pub fn with_events(mut self, events: Emitter) -> Self {
        self.events = Some(events);
        self
    }

    async fn emit(&self, event: Event) {
        if let Some(events) = &self.events {
            events.emit(vec![event]).await;
        }
    }

    fn store(&self) -> &dyn Store {
        self.ports.store.as_ref()
    }

    /// Handles one message from the notifier's queue. An error means "try this again later":
    /// what was done before it is recorded, so a retry does not repeat it.
    pub async fn notify(&self, message: &QueueMessage) -> Result<NotifyReport> {
        let report = match message {
            QueueMessage::Message(event) => self.notify_message(event).await?,
            QueueMessage::Flush { context, address } => self.flush(context, address).await?,
            QueueMessage::SmsReply(reply) if reply.opt_in => {
                self.phones.started(&reply.from).await?;
                tracing::info!(message = %reply.message_sid, "the number texted START: codes may go to it again");
                NotifyReport::default()
            }
            QueueMessage::SmsReply(reply) => {
                let stopped = self.phones.stopped(&reply.from).await?;
                tracing::info!(message = %reply.message_sid, ended = stopped, "the number texted STOP; its text subscriptions ended");
                NotifyReport {
                    stopped,
                    ..NotifyReport::default()
                }
            }
            QueueMessage::Sweep { .. } | QueueMessage::Event(_) => {
                return Err(ChatError::internal(
                    "Sweeps and events are not the notifier's (App::handle_queued).",
                ));
            }
        };
        report.count();
        Ok(report)
    }

    async fn notify_message(&self, event: &MessageEvent) -> Result<NotifyReport> {
        let Some(context) = self.context_of(&event.conversation_sid).await? else {
            tracing::info!(conversation = %event.conversation_sid, "not a context's conversation; nobody to notify");
            return Ok(NotifyReport::default());
        };
        // Its id is the message's: a record handled again gives the platform the same event.
        self.emit(Event::message_added(
            &context,
            &event.author,
            &event.message_sid,
            event.index,
            &event.date_created,
            &event.body,
        ))
        .await;
        let mut subscribers = Vec::new();
        for channel in self.channels.all() {
            subscribers.extend(channel.subscribers(&context).await?);
        }
        // An address is the unit: the author's own addresses get nothing, and an address
        // subscribed by several identities gets one notification. Only addresses confirmed
        // for the author are its own: anyone can subscribe another's address unconfirmed,
        // and must not silence its owner that way (adr/013).
        let mut author_addresses: Vec<&Address> = Vec::new();
        for s in subscribers.iter().filter(|s| s.identity == event.author) {
            let channel = self.channels.of(&s.address);
            if channel.confirmed(&context, &s.identity, &s.address).await? {
                author_addresses.push(&s.address);
            }
        }
        let mut by_address: BTreeMap<Address, Vec<String>> = BTreeMap::new();
        for s in &subscribers {
            if !author_addresses.contains(&&s.address) {
                by_address
                    .entry(s.address.clone())
                    .or_default()
                    .push(s.identity.clone());
            }
        }
        let message = PendingMessage::new(
            &event.message_sid,
            &event.author,
            &event.body,
            &event.date_created,
            event.index,
        );
        let deadline = Instant::now() + self.options.twilio_budget;
        let outcomes: Vec<(ChannelKind, Result<Outcome>)> = futures_util::stream::iter(by_address)
            .map(|(address, identities)| {
                let (context, message) = (&context, &message);
                async move {
                    // The first identity for which the address is confirmed speaks for it.
                    let mut outcome = Ok(Outcome::Unverified);
                    for identity in &identities {
                        let target = Target {
                            context,
                            conversation_sid: &event.conversation_sid,
                            address: &address,
                            identity,
                        };
                        outcome = self.notify_one(target, Some(message), deadline).await;
                        if !matches!(outcome, Ok(Outcome::Unverified)) {
                            break;
                        }
                    }
                    (ChannelKind::of(&address), outcome)
                }
            })
            .buffer_unordered(self.options.concurrency.max(1))
            .collect()
            .await;
        let report = report(outcomes)?;
        tracing::info!(
            context = %context,
            message = %event.message_sid,
            emailed = report.sent_on(ChannelKind::Email).count(),
            texted = report.sent_on(ChannelKind::Sms).count(),
            stopped = report.stopped,
            held = report.held,
            folded = Skipped::total(&report.skipped, |s| s.folded),
            online = Skipped::total(&report.skipped, |s| s.online),
            unverified = Skipped::total(&report.skipped, |s| s.unconfirmed),
            read = Skipped::total(&report.skipped, |s| s.read),
            no_access = Skipped::total(&report.skipped, |s| s.access_ended),
            "message notified"
        );
        Ok(report)
    }

    async fn flush(&self, context: &str, address: &Address) -> Result<NotifyReport> {
        let key = keys::digest(context, address);
        let Some(digest) = store::read::<Digest>(self.store(), &key).await? else {
            return Ok(NotifyReport::default());
        };
        let deadline = Instant::now() + self.options.twilio_budget;
        let conversation_sid = match digest.value.conversation_sid.clone() {
            Some(sid) => sid,
            None => match self.conversation_of(context, deadline).await? {
                Some(sid) => sid,
                None => {
                    // The conversation is gone: nobody can read it any more.
                    self.store().delete(&key).await?;
                    return Ok(NotifyReport::default());
                }
            },
        };
        let target = Target {
            context,
            conversation_sid: &conversation_sid,
            address,
            identity: &digest.value.identity,
        };
        let outcome = self.notify_one(target, None, deadline).await;
        let report = report(vec![(ChannelKind::of(address), outcome)])?;
        tracing::info!(
            context,
            emailed = report.sent_on(ChannelKind::Email).count(),
            texted = report.sent_on(ChannelKind::Sms).count(),
            "digest flushed"
        );
        Ok(report)
    }

    /// One address: still subscribed at it, confirmed, still a participant, offline? Then
    /// the digest step and, when due, the email or text message.
    async fn notify_one(
        &self,
        target: Target<'_>,
        message: Option<&PendingMessage>,
        deadline: Instant,
    ) -> Result<Outcome> {
        let Target {
            context,
            conversation_sid,
            address,
            identity,
        } = target;
        let store = self.store();
        let key = keys::digest(context, address);
        let channel = self.channels.of(address);
        let subscription_key = channel.subscription_key(context, identity);
        let confirmed = channel.confirmed(context, identity, address).await?;
        if !confirmed {
            if message.is_none() {
                store::update(store, &key, |d: Option<&Digest>| {
                    Ok((keep(digest::drop_pending(d)), ()))
                })
                .await?;
            }
            return Ok(Outcome::Unverified);
        }
        // Access follows the token: one who is no longer a participant gets nothing, and
        // their subscription ends. Asked beside the online check.
        let (online, participant) = tokio::join!(
            self.is_online(identity, deadline),
            self.participant(conversation_sid, identity, deadline)
        );
        let Some(last_read) = participant? else {
            store.delete(&subscription_key).await?;
            store.delete(&key).await?;
            tracing::info!(
                context,
                identity,
                "no longer a participant; the subscription ended"
            );
            return Ok(Outcome::AccessEnded);
        };
        if online {
            store::update(store, &key, |d: Option<&Digest>| {
                Ok((keep(digest::drop_pending(d)), ()))
            })
            .await?;
            return Ok(Outcome::Online);
        }
        if message.is_some_and(|m| m.is_read(last_read)) {
            return Ok(Outcome::Read);
        }
        let now = now_unix();
        let (step, had_unsent) = store::update(store, &key, |d: Option<&Digest>| {
            let had_unsent = d.is_some_and(|d| !d.pending.is_empty() || d.more > 0);
            let (mut next, step) = digest::step(
                d,
                (context, address, identity),
                message,
                now,
                self.options.window.as_secs(),
                last_read,
            );
            if let Some(n) = next.as_mut() {
                n.conversation_sid = Some(conversation_sid.to_owned());
            }
            Ok((keep(next), (step, had_unsent)))
        })
        .await?;
        match step {
            // A flush whose messages were all read meanwhile: nothing to send, for that reason.
            Step::Nothing if message.is_none() && had_unsent => Ok(Outcome::Read),
            Step::Nothing => Ok(Outcome::Folded),
            Step::Later { at, schedule } => {
                if schedule {
                    let delay = Duration::from_secs(at.saturating_sub(now_unix()).max(1));
                    if let Err(err) = self.ports.queue()?.schedule(context, address, delay).await {
                        // Unmark it, so that the retry of this message queues the flush.
                        store::update(store, &key, |d: Option<&Digest>| {
                            Ok((
                                keep(d.map(|d| Digest {
                                    flush_at: None,
                                    ..d.clone()
                                })),
                                (),
                            ))
                        })
                        .await?;
                        return Err(err);
                    }
                }
                Ok(Outcome::Folded)
            }
            Step::Send {
                messages: pending,
                more,
                since,
            } => {
                let letter = Letter {
                    context,
                    address,
                    pending: &pending,
                    more,
                    window_secs: self.options.window.as_secs(),
                };
                let sent = channel.deliver(letter).await;
                // Recorded as sent only once SendGrid (Twilio) accepted it; on failure the
                // messages go back for the queue's next try.
                let record = store::update(store, &key, |d: Option<&Digest>| {
                    let next = match sent {
                        Ok(Delivery::Held) | Err(_) => digest::restore(d, since),
                        Ok(_) => digest::sent(d, since),
                    };
                    Ok((keep(next), ()))
                })
                .await;
                let delivery = sent?;
                record?;
                match delivery {
                    Delivery::Unsubscribed => {
                        let ended = channel.refused(address).await?;
                        tracing::info!(
                            context,
                            identity,
                            ended,
                            channel = channel.kind().name(),
                            "the address refuses for good (the number replied STOP); its subscriptions ended"
                        );
                        Ok(Outcome::Stopped)
                    }
                    Delivery::Refused(_) | Delivery::CountryNotAllowed => Ok(Outcome::Unverified),
                    Delivery::Held => Ok(Outcome::Held),
                    Delivery::Accepted => {
                        let kind = channel.kind().name();
                        self.emit(Event::notification_sent(context, identity, kind))
                            .await;
                        Ok(Outcome::Sent(address.clone()))
                    }
                }
            }
        }
    }

    /// What the identity last read in the conversation (`Some(None)`: nothing yet), or
    /// `None` when it is not a participant. A failure is "try again later", never "send".
    async fn participant(
        &self,
        conversation_sid: &str,
        identity: &str,
        deadline: Instant,
    ) -> Result<Option<Option<u64>>> {
        let conversations = self.conversations().await?;
        match conversations
            .fetch_participant(conversation_sid, identity, deadline)
            .await
        {
            Ok(found) => Ok(found.map(|p| p.last_read_message_index)),
            Err(err) => {
                tracing::warn!(identity, error = %err, "could not ask Twilio whether the subscriber is still a participant");
                Err(ChatError::internal(
                    "Could not check at Twilio that the subscriber still has access; will try again.",
                ))
            }
        }
    }

    /// The SID of a context's conversation, or `None` when it has none.
    async fn conversation_of(&self, context: &str, deadline: Instant) -> Result<Option<String>> {
        let conversations = self.conversations().await?;
        conversations
            .fetch_conversation(context, deadline)
            .await
            .map(|c| c.map(|c| c.sid))
            .map_err(|err| {
                tracing::error!(context, error = %err, "fetching the conversation failed");
                ChatError::internal("Could not look up the conversation at Twilio; will try again.")
            })
    }

    /// Twilio's `is_online` for the identity; unknown (no reachability, no user, no answer)
    /// counts as offline, so a notification is sent rather than lost.
    async fn is_online(&self, identity: &str, deadline: Instant) -> bool {
        let Ok(conversations) = self.conversations().await else {
            return false;
        };
        match conversations.fetch_user(identity, deadline).await {
            Ok(Some(user)) => user.is_online == Some(true),
            Ok(None) => false,
            Err(err) => {
                tracing::warn!(identity, error = %err, "could not ask Twilio whether the user is online; notifying");
                false
            }
        }
    }

    async fn conversations(&self) -> Result<Arc<ConversationsApi>> {
        let configured = self.settings.current().await?;
        Ok(configured.twilio()?.conversations.clone())
    }

    /// The context (unique name) of a conversation, remembered per process: a
    /// conversation's unique name does not change once our provisioning set it.
    async fn context_of(&self, conversation_sid: &str) -> Result<Option<String>> {
        if let Some(known) = self.context_names.get(conversation_sid) {
            return Ok(known);
        }
        let conversations = self.conversations().await?;
        let deadline = Instant::now() + self.options.twilio_budget;
        let conversation = conversations
            .fetch_conversation(conversation_sid, deadline)
            .await
            .map_err(|err| {
                tracing::error!(conversation = conversation_sid, error = %err, "fetching the conversation failed");
                ChatError::internal("Could not look up the conversation at Twilio; will try again.")
            })?;
        let name = conversation.and_then(|c| c.unique_name);
        self.context_names
            .insert(conversation_sid.to_owned(), name.clone());
        Ok(name)
    }
}

/// Who one notification is for.
#[derive(Clone, Copy)]
struct Target<'a> {
    context: &'a str,
    conversation_sid: &'a str,
    address: &'a Address,
    identity: &'a str,
}

enum Outcome {
    Sent(Address),
    Stopped,
    Held,
    Folded,
    Online,
    Unverified,
    Read,
    AccessEnded,
}

/// A digest is kept a month after it last changed.
fn keep(next: Option<Digest>) -> Option<(Digest, Option<u64>)> {
    next.map(|d| (d, Some(now_unix() + digest::KEEP_SECS)))
}

/// The outcomes, each with its channel, as one report.
fn report(outcomes: Vec<(ChannelKind, Result<Outcome>)>) -> Result<NotifyReport> {
    let mut report = NotifyReport::default();
    let mut first_error = None;
    for (channel, outcome) in outcomes {
        let skipped = &mut report.skipped[channel as usize];
        match outcome {
            Ok(Outcome::Sent(address)) => report.sent.push(address),
            Ok(Outcome::Stopped) => report.stopped += 1,
            Ok(Outcome::Held) => report.held += 1,
            Ok(Outcome::Folded) => skipped.folded += 1,
            Ok(Outcome::Online) => skipped.online += 1,
            Ok(Outcome::Unverified) => skipped.unconfirmed += 1,
            Ok(Outcome::Read) => skipped.read += 1,
            Ok(Outcome::AccessEnded) => skipped.access_ended += 1,
            Err(err) => {
                first_error.get_or_insert(err);
            }
        }
    }
    match first_error {
        Some(err) => Err(err),
        None => Ok(report),
    }
}
