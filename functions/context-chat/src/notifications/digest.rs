//! The digest of one address for one context: what is waiting to be emailed, and when the
//! last email went. "At most one email per window; later messages fold into the next one."
//!
//! Pure functions over the stored document, run inside the store's optimistic update, so
//! the decision and its record are one conditional write.

use serde::{Deserialize, Serialize};

use super::address::Address;

/// Longest message body quoted in an email (`messages`); the rest is in the chat. Digests
/// store no more.
pub const MAX_QUOTE_CHARS: usize = 2000;

/// At most one email per conversation and address in this long.
pub const WINDOW_SECS: u64 = 600;
/// Messages kept for the next email; beyond them only a count is kept.
pub const MAX_PENDING: usize = 20;
/// Message ids remembered to recognise a delivery seen before.
const RECENT_IDS: usize = 100;
/// A digest nobody touched for this long is forgotten (the store's TTL).
pub const KEEP_SECS: u64 = 30 * 24 * 3600;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Digest {
    /// Stored as `channel`, the old integration's word.
    #[serde(rename = "channel")]
    pub context: String,
    /// Stored as `email`, the word from before text messages.
    #[serde(rename = "email")]
    pub address: Address,
    /// The subscriber, to ask Twilio whether they are online when a folded email is due.
    pub identity: String,
    /// The context's conversation, to ask Twilio what the subscriber read when a folded
    /// email is due. Absent in digests written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_sid: Option<String>,
    #[serde(default)]
    pub last_sent_at: Option<u64>,
    #[serde(default)]
    pub pending: Vec<PendingMessage>,
    /// Messages folded in beyond [`MAX_PENDING`].
    #[serde(default)]
    pub more: u32,
    /// The highest index among the messages only counted in `more`: once the subscriber
    /// has read up to it, they are all read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub more_up_to: Option<u64>,
    /// When a flush is queued for; `None` when none is.
    #[serde(default)]
    pub flush_at: Option<u64>,
    /// Message SIDs already recorded, newest last.
    #[serde(default)]
    pub recent: Vec<String>,
    /// An email handed to SendGrid and not yet known to be accepted. It is recorded as sent
    /// only once SendGrid accepted it; a worker that died meanwhile leaves it here, and the
    /// next step after [`SEND_LEASE_SECS`] puts its messages back (`adr/009`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sending: Option<Sending>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sending {
    pub messages: Vec<PendingMessage>,
    #[serde(default)]
    pub more: u32,
    #[serde(default)]
    pub previous_sent_at: Option<u64>,
    pub since: u64,
}

/// How long a send may be under way before it counts as lost: longer than the notifier's
/// 60 s Lambda timeout.
pub const SEND_LEASE_SECS: u64 = 120;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingMessage {
    pub sid: String,
    pub author: String,
    /// No longer than the email quotes it, so that a digest stays far below DynamoDB's
    /// 400 KB item limit.
    pub body: String,
    pub date: String,
    /// The message's index in its conversation, when the event carried it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
}

impl PendingMessage {
    /// The message as a digest keeps it: its body cut to what the email shows.
    pub fn new(sid: &str, author: &str, body: &str, date: &str, index: Option<u64>) -> Self {
        // One character more than the quote, so that the email still marks the cut.
        let body: String = body.chars().take(MAX_QUOTE_CHARS + 1).collect();
        Self {
            sid: sid.to_owned(),
            author: author.to_owned(),
            body,
            date: date.to_owned(),
            index,
        }
    }

    /// Whether a participant who read up to `last_read` has seen this message.
    pub fn is_read(&self, last_read: Option<u64>) -> bool {
        matches!((self.index, last_read), (Some(i), Some(read)) if i <= read)
    }
}

/// What a step decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The message was recorded before (a repeated delivery) and nothing is due.
    Nothing,
    /// An email is due now with these messages; the digest holds them as `sending` until
    /// [`sent`] or [`restore`] (keyed by `since`).
    Send {
        messages: Vec<PendingMessage>,
        more: u32,
        since: u64,
    },
    /// Folded; an email is due at `at`. `schedule` is true for the one step that must queue
    /// the flush for it (the others see one queued already).
    Later { at: u64, schedule: bool },
}

/// Records `message` (unless seen before or already read) for `identity`'s address, drops
/// what the subscriber has read (`last_read`, from Twilio), then decides. A step without a
/// message is a flush: when it comes early (clocks differ), it queues itself again.
pub fn step(
    current: Option<&Digest>,
    key: (&str, &Address, &str),
    message: Option<&PendingMessage>,
    now: u64,
    window: u64,
    last_read: Option<u64>,
) -> (Option<Digest>, Step) {
    let (context, address, identity) = key;
    let mut next = current.cloned().unwrap_or_else(|| Digest {
        context: context.to_owned(),
        address: address.clone(),
        identity: identity.to_owned(),
        conversation_sid: None,
        last_sent_at: None,
        pending: Vec::new(),
        more: 0,
        more_up_to: None,
        flush_at: None,
        recent: Vec::new(),
        sending: None,
    });
    let mut changed = false;
    if next
        .sending
        .as_ref()
        .is_some_and(|s| now >= s.since + SEND_LEASE_SECS)
    {
        // The worker sending these died before it knew the outcome: send them again.
        let since = next.sending.as_ref().map_or(0, |s| s.since);
        next = restore(Some(&next), since).unwrap_or(next);
        changed = true;
    }
    changed |= drop_read(&mut next, last_read);
    if let Some(message) = message
        && !next.recent.contains(&message.sid)
        && !message.is_read(last_read)
    {
        next.recent.push(message.sid.clone());
        if next.recent.len() > RECENT_IDS {
            next.recent.remove(0);
        }
        if next.pending.len() < MAX_PENDING {
            next.pending.push(message.clone());
        } else {
            next.more += 1;
            next.more_up_to = next.more_up_to.max(message.index);
        }
        next.identity = identity.to_owned();
        changed = true;
    }
    if next.pending.is_empty() && next.more == 0 {
        if next.flush_at.take().is_some() {
            changed = true;
        }
        return (changed.then_some(next), Step::Nothing);
    }
    let mut due_at = next.last_sent_at.map_or(0, |t| t + window);
    if let Some(sending) = &next.sending {
        // One email at a time per digest: the next waits for the one under way.
        due_at = due_at.max(sending.since + SEND_LEASE_SECS);
    }
    if now >= due_at {
        let messages = std::mem::take(&mut next.pending);
        let more = std::mem::take(&mut next.more);
        next.sending = Some(Sending {
            messages: messages.clone(),
            more,
            previous_sent_at: next.last_sent_at,
            since: now,
        });
        next.more_up_to = None;
        next.last_sent_at = Some(now);
        next.flush_at = None;
        return (
            Some(next),
            Step::Send {
                messages,
                more,
                since: now,
            },
        );
    }
    let is_flush = message.is_none();
    if !is_flush && next.flush_at.is_some_and(|at| at >= due_at) {
        return (
            changed.then_some(next),
            Step::Later {
                at: due_at,
                schedule: false,
            },
        );
    }
    next.flush_at = Some(due_at);
    (
        Some(next),
        Step::Later {
            at: due_at,
            schedule: true,
        },
    )
}

/// Drops the messages the subscriber has read; whether any were.
fn drop_read(digest: &mut Digest, last_read: Option<u64>) -> bool {
    let before = digest.pending.len();
    digest.pending.retain(|m| !m.is_read(last_read));
    let mut changed = digest.pending.len() != before;
    if digest.more > 0
        && let (Some(up_to), Some(read)) = (digest.more_up_to, last_read)
        && up_to <= read
    {
        digest.more = 0;
        digest.more_up_to = None;
        changed = true;
    }
    changed
}

/// SendGrid accepted the email that began at `since`: it is sent.
pub fn sent(current: Option<&Digest>, since: u64) -> Option<Digest> {
    let mut next = current?.clone();
    if next.sending.as_ref().is_none_or(|s| s.since != since) {
        return None;
    }
    next.sending = None;
    Some(next)
}

/// Puts the messages of the email that began at `since` back after it could not be sent,
/// so that the next try (the queue's redelivery) sends them.
pub fn restore(current: Option<&Digest>, since: u64) -> Option<Digest> {
    let mut next = current?.clone();
    let sending = next.sending.take().filter(|s| s.since == since)?;
    let mut pending = sending.messages;
    pending.extend(std::mem::take(&mut next.pending));
    let overflow = pending.len().saturating_sub(MAX_PENDING);
    pending.truncate(MAX_PENDING);
    next.pending = pending;
    next.more += sending.more + overflow as u32;
    next.last_sent_at = sending.previous_sent_at;
    next.flush_at = None;
    Some(next)
}

/// A flush found the subscriber online: they are reading, so the folded messages are dropped.
pub fn drop_pending(current: Option<&Digest>) -> Option<Digest> {
    let mut next = current?.clone();
    if next.pending.is_empty() && next.more == 0 {
        return None;
    }
    next.pending.clear();
    next.more = 0;
    next.more_up_to = None;
    next.flush_at = None;
    Some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(sid: &str) -> PendingMessage {
        let index = sid.trim_start_matches("IM").parse().ok();
        PendingMessage::new(
            sid,
            "sam",
            &format!("body of {sid}"),
            "2026-11-22T10:00:00Z",
            index,
        )
    }

    fn run(d: &mut Option<Digest>, m: Option<&PendingMessage>, now: u64) -> Step {
        run_step(d, m, now, None, true)
    }

    fn run_read(
        d: &mut Option<Digest>,
        m: Option<&PendingMessage>,
        now: u64,
        last_read: Option<u64>,
    ) -> Step {
        run_step(d, m, now, last_read, true)
    }

    /// A step whose email is left under way (its worker died, or SendGrid failed).
    fn run_unsent(d: &mut Option<Digest>, m: Option<&PendingMessage>, now: u64) -> Step {
        run_step(d, m, now, None, false)
    }

    /// One step on `d`; when it sends and `accepted`, SendGrid accepted the email.
    fn run_step(
        d: &mut Option<Digest>,
        m: Option<&PendingMessage>,
        now: u64,
        last_read: Option<u64>,
        accepted: bool,
    ) -> Step {
        let email =
            Address::Email(crate::notifications::EmailAddress::parse("alex@example.org").unwrap());
        let (next, s) = step(
            d.as_ref(),
            ("general", &email, "alex"),
            m,
            now,
            WINDOW_SECS,
            last_read,
        );
        if let Some(n) = next {
            *d = Some(n);
        }
        if accepted && let Step::Send { since, .. } = s {
            *d = sent(d.as_ref(), since).or(d.take());
        }
        s
    }

    #[test]
    fn first_message_goes_now_later_ones_fold_into_one_flush() {
        let mut d = None;
        assert!(
            matches!(run(&mut d, Some(&message("IM1")), 1000), Step::Send { ref messages, .. } if messages.len() == 1)
        );
        assert_eq!(
            run(&mut d, Some(&message("IM2")), 1100),
            Step::Later {
                at: 1600,
                schedule: true
            }
        );
        assert_eq!(
            run(&mut d, Some(&message("IM3")), 1200),
            Step::Later {
                at: 1600,
                schedule: false
            }
        );
        // A repeated delivery changes nothing.
        assert_eq!(
            run(&mut d, Some(&message("IM1")), 1300),
            Step::Later {
                at: 1600,
                schedule: false
            }
        );
        // A flush that comes a second early queues itself again.
        assert_eq!(
            run(&mut d, None, 1599),
            Step::Later {
                at: 1600,
                schedule: true
            }
        );
        match run(&mut d, None, 1600) {
            Step::Send {
                messages, since, ..
            } => {
                assert_eq!(
                    messages.iter().map(|m| m.sid.as_str()).collect::<Vec<_>>(),
                    ["IM2", "IM3"]
                );
                assert!(since == 1600);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(run(&mut d, None, 1700), Step::Nothing);
        assert_eq!(run(&mut d, Some(&message("IM2")), 1700), Step::Nothing);
    }

    #[test]
    fn many_messages_are_kept_up_to_a_bound_and_counted_beyond() {
        let mut d = None;
        run(&mut d, Some(&message("IM0")), 1000);
        for i in 1..=30 {
            run(&mut d, Some(&message(&format!("IM{i}"))), 1000 + i);
        }
        match run(&mut d, None, 1600) {
            Step::Send { messages, more, .. } => {
                assert_eq!(messages.len(), MAX_PENDING);
                assert_eq!(more, 10);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_failed_send_puts_the_messages_back() {
        let mut d = None;
        let Step::Send { since, .. } = run_unsent(&mut d, Some(&message("IM1")), 1000) else {
            panic!()
        };
        d = restore(d.as_ref(), since);
        assert!(
            matches!(run(&mut d, Some(&message("IM1")), 1001), Step::Send { ref messages, .. } if messages.len() == 1)
        );
    }

    /// An early flush is not dropped; it is queued again for when it is due.
    #[test]
    fn an_early_flush_reschedules_itself() {
        let mut d = None;
        run(&mut d, Some(&message("IM1")), 1000);
        run(&mut d, Some(&message("IM2")), 1100);
        assert_eq!(
            run(&mut d, None, 1599),
            Step::Later {
                at: 1600,
                schedule: true
            },
            "the early flush must queue another"
        );
        assert!(
            matches!(run(&mut d, None, 1600), Step::Send { ref messages, .. } if messages.len() == 1)
        );
    }

    /// What the subscriber read is neither added nor sent.
    #[test]
    fn read_messages_are_not_emailed() {
        let mut d = None;
        // Read already when it arrives: nothing.
        assert_eq!(
            run_read(&mut d, Some(&message("IM3")), 1000, Some(3)),
            Step::Nothing
        );
        assert!(matches!(
            run_read(&mut d, Some(&message("IM4")), 1000, Some(3)),
            Step::Send { .. }
        ));
        run_read(&mut d, Some(&message("IM5")), 1100, Some(3));
        run_read(&mut d, Some(&message("IM6")), 1200, Some(3));
        // Before the digest goes, the subscriber read up to 5: only 6 is left.
        match run_read(&mut d, None, 1600, Some(5)) {
            Step::Send { messages, .. } => assert_eq!(
                messages.iter().map(|m| m.sid.as_str()).collect::<Vec<_>>(),
                ["IM6"]
            ),
            other => panic!("{other:?}"),
        }
        // Everything read: the flush sends nothing.
        run_read(&mut d, Some(&message("IM7")), 1700, Some(5));
        assert_eq!(run_read(&mut d, None, 2200, Some(7)), Step::Nothing);
    }

    /// A digest keeps no more of a body than the email quotes.
    #[test]
    fn stored_bodies_are_cut_to_what_the_email_shows() {
        let long = "x".repeat(300_000);
        let m = PendingMessage::new("IM1", "sam", &long, "d", None);
        assert_eq!(m.body.chars().count(), MAX_QUOTE_CHARS + 1);
        let mut d = None;
        for i in 0..MAX_PENDING + 5 {
            let m = PendingMessage::new(&format!("IM{i}"), "sam", &long, "d", None);
            run(&mut d, Some(&m), 1000 + i as u64);
        }
        let stored = serde_json::to_vec(&d).unwrap();
        assert!(stored.len() < 100_000, "{} bytes", stored.len());
    }

    /// A worker that died between the claim and SendGrid's answer loses
    /// nothing: after the lease the messages go again.
    #[test]
    fn an_email_whose_sender_died_is_sent_again_after_the_lease() {
        let mut d = None;
        let Step::Send { since, .. } = run_unsent(&mut d, Some(&message("IM1")), 1000) else {
            panic!()
        };
        // The worker dies here; a flush while the lease holds sends nothing.
        assert!(matches!(run_unsent(&mut d, None, 1000 + 60), Step::Nothing));
        match run_unsent(&mut d, None, since + SEND_LEASE_SECS) {
            Step::Send { messages, .. } => assert_eq!(messages[0].sid, "IM1"),
            other => panic!("{other:?}"),
        }
    }

    mod properties {
        use std::collections::BTreeSet;

        use proptest::prelude::*;

        use super::super::*;
        use super::message;

        /// What happens to one digest: a message delivered (ids from a small set, so some
        /// deliveries repeat, as SQS repeats them), or a flush; each some seconds after the
        /// last. An email due is accepted by SendGrid, or fails and is put back.
        #[derive(Debug, Clone)]
        enum Event {
            Deliver { id: u8, after: u64, accepted: bool },
            Flush { after: u64, accepted: bool },
        }

        fn events() -> impl Strategy<Value = Vec<Event>> {
            let event = prop_oneof![
                3 => (0u8..40, 0u64..400, prop::bool::weighted(0.9))
                    .prop_map(|(id, after, accepted)| Event::Deliver { id, after, accepted }),
                1 => (0u64..900, prop::bool::weighted(0.9))
                    .prop_map(|(after, accepted)| Event::Flush { after, accepted }),
            ];
            prop::collection::vec(event, 1..80)
        }

        proptest! {
            /// No message is emailed (or texted) twice, none is lost (each one delivered is
            /// in an email, or counted in one's "and N more"), and emails are at least a
            /// window apart; for an email address and a phone number alike.
            #[test]
            fn every_message_is_emailed_once_and_emails_keep_the_window(events in events(), by_text in any::<bool>()) {
                let email = if by_text {
                    Address::Phone(crate::notifications::PhoneNumber::parse("+14155550100").unwrap())
                } else {
                    Address::Email(crate::notifications::EmailAddress::parse("alex@example.org").unwrap())
                };
                let key = ("general", &email, "alex");
                let mut digest: Option<Digest> = None;
                let mut now = 1_000_000u64;
                let mut delivered = BTreeSet::new();
                let mut emailed = BTreeSet::new();
                let mut counted_more = 0u64;
                let mut sent_at: Vec<u64> = Vec::new();
                let final_flush = Event::Flush { after: WINDOW_SECS + SEND_LEASE_SECS, accepted: true };
                for event in events.iter().chain([&final_flush]) {
                    let (message, after, accepted) = match event {
                        Event::Deliver { id, after, accepted } => {
                            (Some(message(&format!("IM{id}"))), *after, *accepted)
                        }
                        Event::Flush { after, accepted } => (None, *after, *accepted),
                    };
                    now += after;
                    if let Some(m) = &message {
                        delivered.insert(m.sid.clone());
                    }
                    let (next, step) = step(digest.as_ref(), key, message.as_ref(), now, WINDOW_SECS, None);
                    if let Some(next) = next {
                        digest = Some(next);
                    }
                    if let Step::Send { messages, more, since } = step {
                        if accepted {
                            for m in &messages {
                                prop_assert!(emailed.insert(m.sid.clone()), "{} emailed twice", m.sid);
                            }
                            counted_more += u64::from(more);
                            if let Some(last) = sent_at.last() {
                                prop_assert!(since >= last + WINDOW_SECS, "two emails within a window");
                            }
                            sent_at.push(since);
                            digest = sent(digest.as_ref(), since).or(digest);
                        } else {
                            digest = restore(digest.as_ref(), since).or(digest);
                        }
                    }
                }
                // After the last flush nothing waits.
                let left = digest.as_ref().map_or(0, |d| d.pending.len() as u64 + u64::from(d.more));
                prop_assert_eq!(left, 0, "messages left waiting: {:?}", digest);
                // A repeated delivery of an id already emailed is recognised (recent ids), so
                // the emailed and the counted are exactly the distinct ones delivered.
                prop_assert!(emailed.is_subset(&delivered));
                prop_assert_eq!(emailed.len() as u64 + counted_more, delivered.len() as u64);
            }
        }
    }
}
