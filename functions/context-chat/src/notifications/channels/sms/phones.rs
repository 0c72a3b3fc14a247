//! Verified phone numbers, per identity, and our own limits on verification codes, counted
//! in the store where every process sees them (`adr/016-sms.md`): at most
//! [`MAX_WAITING_NUMBERS`] numbers waiting for their code at once, and [`MAX_SENDS_PER_DAY`]
//! codes a day, per identity, and [`MAX_CHECKS_PER_IDENTITY`] checks of a pending code per
//! (identity, number). Verify's per-number rules come on top.
//!
//! A number verified by one identity is not verified for another: the record is per
//! (number, identity), kept under the number so that a STOP finds every identity that has it.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::now_unix;
use crate::error::{ChatError, Result};
use crate::notifications::address::{Address, PhoneNumber};
use crate::notifications::keys::{self, CONFIRMATION_PREFIX, SmsSubscription};
use crate::notifications::sms::CODE_TTL_SECS;
use crate::notifications::store::{self, Key, Store, phone_partition};

/// Numbers one identity may have waiting for their code at once.
pub const MAX_WAITING_NUMBERS: usize = 2;
/// Verification codes one identity may have sent in one (UTC) day.
pub const MAX_SENDS_PER_DAY: u32 = 5;
/// Codes one identity may check against a number's pending code. Verify allows 5 checks per
/// number, whoever makes them: an identity that asked for a code to someone else's number
/// may use at most this many, so that the number's owner keeps 2 (issue 30, L5).
pub const MAX_CHECKS_PER_IDENTITY: u32 = 3;
/// A number that got a code this recently gets no new one (a second tap is not a second SMS).
pub const RESEND_AFTER_SECS: u64 = 60;
const DAY_SECS: u64 = 24 * 3600;

/// One identity's verification of one number, and the contexts it subscribed with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhoneRecord {
    pub phone: PhoneNumber,
    pub identity: String,
    pub verified: bool,
    #[serde(default)]
    pub verified_at: Option<u64>,
    /// Where this identity subscribed the number: what a STOP ends.
    #[serde(default)]
    pub contexts: Vec<String>,
    /// Codes this identity checked against the number's pending code since its last send.
    #[serde(default)]
    pub checks: u32,
}

impl PhoneRecord {
    fn new(phone: &PhoneNumber, identity: &str) -> Self {
        Self {
            phone: phone.clone(),
            identity: identity.to_owned(),
            verified: false,
            verified_at: None,
            contexts: Vec::new(),
            checks: 0,
        }
    }
}

/// The number replied STOP at `at` (kept until it texts START).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopMarker {
    pub at: u64,
}

/// One identity's codes: how many went out on `day`, and which numbers wait.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhoneSenderLog {
    /// Unix days.
    pub day: u64,
    pub sends: u32,
    pub waiting: Vec<WaitingNumber>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WaitingNumber {
    pub phone: PhoneNumber,
    /// When its code expires: it stops counting then.
    pub until: u64,
}

/// Whether `phone` got a code from this identity less than [`RESEND_AFTER_SECS`] ago
/// (a waiting number's `until` is its send time plus the code's life).
pub fn sent_recently(current: Option<&PhoneSenderLog>, phone: &PhoneNumber, now: u64) -> bool {
    current.is_some_and(|log| {
        log.waiting
            .iter()
            .any(|w| w.phone == *phone && now + CODE_TTL_SECS < w.until + RESEND_AFTER_SECS)
    })
}

/// Admits one more code for `phone`, or says which limit stops it. Pure, for the store's
/// optimistic update.
pub fn admit(
    current: Option<&PhoneSenderLog>,
    phone: &PhoneNumber,
    now: u64,
) -> Result<PhoneSenderLog> {
    let today = now / DAY_SECS;
    let mut next = current.cloned().unwrap_or_default();
    if next.day != today {
        next.day = today;
        next.sends = 0;
    }
    next.waiting.retain(|w| w.until > now);
    if next.sends >= MAX_SENDS_PER_DAY {
        crate::metrics::limited(crate::metrics::Limit::PhoneCodes);
        return Err(ChatError::too_many(
            &format!(
                "At most {MAX_SENDS_PER_DAY} verification codes a day are sent for one user (the day is UTC's)."
            ),
            ((today + 1) * DAY_SECS).saturating_sub(now).max(1),
        ));
    }
    let waits_already = next.waiting.iter().any(|w| w.phone == *phone);
    if !waits_already && next.waiting.len() >= MAX_WAITING_NUMBERS {
        let free_at = next.waiting.iter().map(|w| w.until).min().unwrap_or(now);
        crate::metrics::limited(crate::metrics::Limit::PhoneCodes);
        return Err(ChatError::too_many(
            &format!(
                "At most {MAX_WAITING_NUMBERS} numbers may wait for their code at once: enter a code you received."
            ),
            free_at.saturating_sub(now).max(1),
        ));
    }
    next.sends += 1;
    next.waiting.retain(|w| w.phone != *phone);
    next.waiting.push(WaitingNumber {
        phone: phone.clone(),
        until: now + CODE_TTL_SECS,
    });
    Ok(next)
}

pub struct Phones {
    store: Arc<dyn Store>,
}

impl Phones {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    fn key(phone: &PhoneNumber, identity: &str) -> Key {
        keys::phone(phone, identity)
    }

    pub async fn record(&self, phone: &PhoneNumber, identity: &str) -> Result<Option<PhoneRecord>> {
        Ok(
            store::read::<PhoneRecord>(self.store(), &Self::key(phone, identity))
                .await?
                .map(|d| d.value),
        )
    }

    pub async fn is_verified(&self, phone: &PhoneNumber, identity: &str) -> Result<bool> {
        Ok(self
            .record(phone, identity)
            .await?
            .is_some_and(|r| r.verified))
    }

    /// Counts one code for `identity` before it is sent; the previous log comes back so
    /// that [`Phones::release`] can undo it when Verify refuses the send. `Ok(None)`: the
    /// number got a code a moment ago, so none is sent and nothing counted.
    pub async fn admit(
        &self,
        identity: &str,
        phone: &PhoneNumber,
    ) -> Result<Option<Option<PhoneSenderLog>>> {
        let now = now_unix();
        store::update(
            self.store(),
            &keys::phone_sender(identity),
            |current: Option<&PhoneSenderLog>| {
                if sent_recently(current, phone, now) {
                    return Ok((None, None));
                }
                let next = admit(current, phone, now)?;
                Ok((Some((next, Some(now + DAY_SECS))), Some(current.cloned())))
            },
        )
        .await
    }

    /// Gives back the code [`Phones::admit`] counted: Verify refused to send it.
    pub async fn release(
        &self,
        identity: &str,
        phone: &PhoneNumber,
        previous: Option<PhoneSenderLog>,
    ) {
        let now = now_unix();
        let undone = store::update(
            self.store(),
            &keys::phone_sender(identity),
            |current: Option<&PhoneSenderLog>| {
                let Some(current) = current else {
                    return Ok((None, false));
                };
                let mut next = current.clone();
                next.sends = next.sends.saturating_sub(1);
                let waited = previous
                    .as_ref()
                    .and_then(|p| p.waiting.iter().find(|w| w.phone == *phone).cloned());
                next.waiting.retain(|w| w.phone != *phone);
                next.waiting.extend(waited);
                let empty = next.sends == 0 && next.waiting.is_empty();
                Ok((Some((next, Some(now + DAY_SECS))), empty))
            },
        )
        .await;
        // A log back at nothing is no log: a refused first send leaves nothing stored.
        let undone = match undone {
            Ok(true) => self.store().delete(&keys::phone_sender(identity)).await,
            other => other.map(drop),
        };
        if let Err(err) = undone {
            tracing::warn!(identity, error = %err, "a refused code could not be given back to the user's allowance");
        }
    }

    /// Counts one check of a code by `identity` against `phone`'s pending code, before Verify
    /// is asked; past [`MAX_CHECKS_PER_IDENTITY`] since this identity's last code, refused
    /// (and Verify is not asked).
    pub async fn count_check(&self, phone: &PhoneNumber, identity: &str) -> Result<()> {
        self.update_record(phone, identity, |current| {
            let Some(current) = current else {
                return Err(crate::notifications::sms::refusals::no_pending_code());
            };
            if current.checks >= MAX_CHECKS_PER_IDENTITY {
                crate::metrics::limited(crate::metrics::Limit::PhoneChecks);
                return Err(ChatError::too_many(
                    &format!(
                        "{MAX_CHECKS_PER_IDENTITY} wrong codes for this number: ask for a new code."
                    ),
                    RESEND_AFTER_SECS,
                ));
            }
            let mut next = current.clone();
            next.checks += 1;
            Ok(Some(next))
        })
        .await
    }

    /// A new code went to `phone` for `identity`: its checks start again.
    pub async fn code_sent(&self, phone: &PhoneNumber, identity: &str) -> Result<()> {
        self.update_record(phone, identity, |current| {
            let mut next = current
                .cloned()
                .unwrap_or_else(|| PhoneRecord::new(phone, identity));
            next.checks = 0;
            Ok(Some(next))
        })
        .await
    }

    /// Read, change, write if unchanged the identity's record of `phone`; `change` answers
    /// the record to write (`None`: nothing). An unverified record is forgotten a day after
    /// its code expires.
    async fn update_record(
        &self,
        phone: &PhoneNumber,
        identity: &str,
        mut change: impl FnMut(Option<&PhoneRecord>) -> Result<Option<PhoneRecord>>,
    ) -> Result<()> {
        let now = now_unix();
        store::update(
            self.store(),
            &Self::key(phone, identity),
            |current: Option<&PhoneRecord>| {
                let next = change(current)?.map(|next| {
                    let expires = (!next.verified).then_some(now + CODE_TTL_SECS + DAY_SECS);
                    (next, expires)
                });
                Ok((next, ()))
            },
        )
        .await
    }

    /// Records that `identity` subscribed `context` with `phone` (a record made for a
    /// code just sent starts unverified); an unverified record is forgotten a day after its
    /// code expires.
    pub async fn add_context(
        &self,
        phone: &PhoneNumber,
        identity: &str,
        context: &str,
    ) -> Result<()> {
        self.update_record(phone, identity, |current| {
            // Nothing to change for a verified number (an unverified record is written
            // again, so that it lives a day past its newest code).
            if current.is_some_and(|r| r.verified && r.contexts.iter().any(|c| c == context)) {
                return Ok(None);
            }
            let mut next = current
                .cloned()
                .unwrap_or_else(|| PhoneRecord::new(phone, identity));
            if !next.contexts.iter().any(|c| c == context) {
                next.contexts.push(context.to_owned());
            }
            Ok(Some(next))
        })
        .await
    }

    /// Verify approved the code: the number is `identity`'s, and waits no more.
    pub async fn verified(&self, phone: &PhoneNumber, identity: &str) -> Result<()> {
        let now = now_unix();
        self.update_record(phone, identity, |current| {
            let mut next = current
                .cloned()
                .unwrap_or_else(|| PhoneRecord::new(phone, identity));
            next.verified = true;
            next.verified_at = Some(now);
            Ok(Some(next))
        })
        .await?;
        store::update(
            self.store(),
            &keys::phone_sender(identity),
            |current: Option<&PhoneSenderLog>| {
                let Some(current) = current else {
                    return Ok((None, ()));
                };
                let mut next = current.clone();
                next.waiting.retain(|w| w.phone != *phone);
                Ok((Some((next, Some(now + DAY_SECS))), ()))
            },
        )
        .await
    }

    /// Whether the number replied STOP and has not texted START since: then no code goes to
    /// it, whoever asks (issue 30, L5).
    pub async fn has_stopped(&self, phone: &PhoneNumber) -> Result<bool> {
        Ok(self.store().get(&keys::sms_stopped(phone)).await?.is_some())
    }

    /// The number texted START (or YES, UNSTOP): codes may go to it again. Only the number
    /// itself ends its STOP: the webhook's signature says Twilio saw it text.
    pub async fn started(&self, phone: &PhoneNumber) -> Result<()> {
        self.store().delete(&keys::sms_stopped(phone)).await
    }

    /// The number's owner replied STOP: every identity's record of it ends, with the text
    /// subscriptions and digests made with it, and a marker refuses new codes to it until it
    /// texts START. Answers how many subscriptions ended.
    pub async fn stopped(&self, phone: &PhoneNumber) -> Result<usize> {
        let store = self.store();
        store::write_over(
            store,
            &keys::sms_stopped(phone),
            &StopMarker { at: now_unix() },
        )
        .await?;
        let records: Vec<PhoneRecord> = store
            .query(&phone_partition(phone), CONFIRMATION_PREFIX)
            .await?
            .into_iter()
            .filter_map(|doc| serde_json::from_value(Value::Object(doc.fields)).ok())
            .collect();
        let mut ended = 0;
        for record in &records {
            for context in &record.contexts {
                let key = keys::sms_subscription(context, &record.identity);
                if let Some(s) = store::read::<SmsSubscription>(store, &key).await?
                    && s.value.phone == *phone
                {
                    store.delete(&key).await?;
                    ended += 1;
                }
                store
                    .delete(&keys::digest(context, &Address::Phone(phone.clone())))
                    .await?;
            }
            store.delete(&Self::key(phone, &record.identity)).await?;
        }
        Ok(ended)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn phone(n: u32) -> PhoneNumber {
        PhoneNumber::parse(&format!("+1415555{n:04}")).unwrap()
    }

    #[test]
    fn two_numbers_wait_at_once_and_five_codes_a_day() {
        let now = 100 * DAY_SECS + 10;
        let log = admit(None, &phone(1), now).unwrap();
        let log = admit(Some(&log), &phone(2), now).unwrap();
        let err = admit(Some(&log), &phone(3), now).unwrap_err();
        assert_eq!(err.kind, ErrorKind::TooManyRequests);
        // The same number again is no new number.
        let log = admit(Some(&log), &phone(1), now + 1).unwrap();
        assert_eq!(log.sends, 3);
        // A number whose code expired waits no more.
        let later = now + CODE_TTL_SECS + 1;
        let log = admit(Some(&log), &phone(3), later).unwrap();
        let log = admit(Some(&log), &phone(3), later).unwrap();
        assert_eq!(log.sends, 5);
        assert_eq!(
            admit(Some(&log), &phone(3), later).unwrap_err().kind,
            ErrorKind::TooManyRequests
        );
        // A new day, a new allowance.
        let log = admit(Some(&log), &phone(3), 101 * DAY_SECS).unwrap();
        assert_eq!(log.sends, 1);
    }

    #[test]
    fn a_number_gets_at_most_one_code_a_minute() {
        let now = 100 * DAY_SECS;
        let log = admit(None, &phone(1), now).unwrap();
        assert!(sent_recently(Some(&log), &phone(1), now));
        assert!(sent_recently(
            Some(&log),
            &phone(1),
            now + RESEND_AFTER_SECS - 1
        ));
        assert!(!sent_recently(
            Some(&log),
            &phone(1),
            now + RESEND_AFTER_SECS
        ));
        assert!(!sent_recently(Some(&log), &phone(2), now));
        assert!(!sent_recently(None, &phone(1), now));
    }
}
