//! The digest of one address for one context: what is waiting to be emailed, and when the
//! last email went. "At most one email per window; later messages fold into the next one."
//!
//! Pure functions over the stored document, run inside the store's optimistic update, so
//! the decision and its record are one conditional write.

use serde::{Deserialize, Serialize};

use super::address::EmailAddress;

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
    pub email: EmailAddress,
    /// The subscriber, to ask Twilio whether they are online when a folded email is due.
    pub identity: String,
    #[serde(default)]
    pub last_sent_at: Option<u64>,
    #[serde(default)]
    pub pending: Vec<PendingMessage>,
    /// Messages folded in beyond [`MAX_PENDING`].
    #[serde(default)]
    pub more: u32,
    /// When a flush is queued for; `None` when none is.
    #[serde(default)]
    pub flush_at: Option<u64>,
    /// Message SIDs already recorded, newest last.
    #[serde(default)]
    pub recent: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingMessage {
    pub sid: String,
    pub author: String,
    pub body: String,
    pub date: String,
}

/// What a step decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The message was recorded before (a repeated delivery) and nothing is due.
    Nothing,
    /// An email is due now with these messages; the digest records it as sent.
    Send {
        messages: Vec<PendingMessage>,
        more: u32,
        previous_sent_at: Option<u64>,
    },
    /// Folded; an email is due at `at`. `schedule` is true for the one step that must queue
    /// the flush for it (the others see one queued already).
    Later { at: u64, schedule: bool },
}

/// Records `message` (unless seen before) for `identity`'s address, then decides.
pub fn step(
    current: Option<&Digest>,
    key: (&str, &EmailAddress, &str),
    message: Option<&PendingMessage>,
    now: u64,
    window: u64,
) -> (Option<Digest>, Step) {
    let (context, email, identity) = key;
    let mut next = current.cloned().unwrap_or_else(|| Digest {
        context: context.to_owned(),
        email: email.clone(),
        identity: identity.to_owned(),
        last_sent_at: None,
        pending: Vec::new(),
        more: 0,
        flush_at: None,
        recent: Vec::new(),
    });
    let mut changed = false;
    if let Some(message) = message
        && !next.recent.contains(&message.sid)
    {
        next.recent.push(message.sid.clone());
        if next.recent.len() > RECENT_IDS {
            next.recent.remove(0);
        }
        if next.pending.len() < MAX_PENDING {
            next.pending.push(message.clone());
        } else {
            next.more += 1;
        }
        next.identity = identity.to_owned();
        changed = true;
    }
    if next.pending.is_empty() && next.more == 0 {
        return (changed.then_some(next), Step::Nothing);
    }
    let due_at = next.last_sent_at.map_or(0, |t| t + window);
    if now >= due_at {
        let previous_sent_at = next.last_sent_at;
        let messages = std::mem::take(&mut next.pending);
        let more = std::mem::take(&mut next.more);
        next.last_sent_at = Some(now);
        next.flush_at = None;
        return (
            Some(next),
            Step::Send {
                messages,
                more,
                previous_sent_at,
            },
        );
    }
    if next.flush_at.is_some_and(|at| at >= due_at) {
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

/// Puts messages back after their email could not be sent, so that the next try (the
/// queue's redelivery) sends them.
pub fn restore(
    current: Option<&Digest>,
    messages: &[PendingMessage],
    more: u32,
    previous_sent_at: Option<u64>,
) -> Option<Digest> {
    let mut next = current?.clone();
    let mut pending = messages.to_vec();
    pending.extend(std::mem::take(&mut next.pending));
    let overflow = pending.len().saturating_sub(MAX_PENDING);
    pending.truncate(MAX_PENDING);
    next.pending = pending;
    next.more += more + overflow as u32;
    next.last_sent_at = previous_sent_at;
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
    next.flush_at = None;
    Some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(sid: &str) -> PendingMessage {
        PendingMessage {
            sid: sid.into(),
            author: "sam".into(),
            body: format!("body of {sid}"),
            date: "2026-11-22T10:00:00Z".into(),
        }
    }

    fn run(d: &mut Option<Digest>, m: Option<&PendingMessage>, now: u64) -> Step {
        let email = EmailAddress::parse("alex@example.org").unwrap();
        let (next, s) = step(d.as_ref(), ("general", &email, "alex"), m, now, WINDOW_SECS);
        if let Some(n) = next {
            *d = Some(n);
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
        assert_eq!(
            run(&mut d, None, 1599),
            Step::Later {
                at: 1600,
                schedule: false
            }
        );
        match run(&mut d, None, 1600) {
            Step::Send {
                messages,
                previous_sent_at,
                ..
            } => {
                assert_eq!(
                    messages.iter().map(|m| m.sid.as_str()).collect::<Vec<_>>(),
                    ["IM2", "IM3"]
                );
                assert_eq!(previous_sent_at, Some(1000));
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
        let Step::Send {
            messages,
            more,
            previous_sent_at,
        } = run(&mut d, Some(&message("IM1")), 1000)
        else {
            panic!()
        };
        d = restore(d.as_ref(), &messages, more, previous_sent_at);
        assert!(
            matches!(run(&mut d, Some(&message("IM1")), 1001), Step::Send { ref messages, .. } if messages.len() == 1)
        );
    }
}
