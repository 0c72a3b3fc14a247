//! Confirmation codes: random, kept only as a hash, valid for a day, five tries each, and
//! confirming an address for the identity that asked for the code, no one else.

use aws_lc_rs::{hmac, rand};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::error::{ChatError, Result};
use crate::notifications::address::EmailAddress;

/// Eight digits: with five tries per code and a new code at most once a minute, guessing
/// stays below one chance in ten thousand a day.
pub const CODE_DIGITS: usize = 8;
pub const CODE_TTL_SECS: u64 = 24 * 3600;
pub const MAX_ATTEMPTS: u32 = 5;
/// A new code is sent at most this often per address, so the mutation cannot flood an inbox.
pub const RESEND_AFTER_SECS: u64 = 60;

/// How many addresses one identity may have waiting for confirmation at once.
pub const MAX_WAITING_ADDRESSES: usize = 3;
/// How many confirmation emails one identity may cause per hour.
pub const MAX_CODES_PER_HOUR: usize = 10;
const HOUR: u64 = 3600;

/// The old integration's record of an address, confirmed for whoever subscribed it. Read
/// only: it still counts for the subscriptions made in its time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailRecord {
    pub email: EmailAddress,
    pub verified: bool,
}

/// One identity's confirmation of one address: confirmed or not, and the code waiting to
/// confirm it. An address alex confirmed is not confirmed for mallory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Confirmation {
    pub email: EmailAddress,
    pub identity: String,
    pub verified: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<PendingCode>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingCode {
    /// Hex SHA-256 of the identity, the address and the code: the code itself is never
    /// stored.
    pub hash: String,
    pub sent_at: u64,
    pub expires_at: u64,
    pub attempts: u32,
}

/// A new random code.
pub fn new_code() -> Result<String> {
    let mut bytes = [0u8; 8];
    rand::fill(&mut bytes).map_err(|_| ChatError::internal("No randomness for a code."))?;
    let n = u64::from_le_bytes(bytes) % 10u64.pow(CODE_DIGITS as u32);
    Ok(format!("{n:0width$}", width = CODE_DIGITS))
}

/// Keys the stored hashes of codes: an HMAC under a key derived from the link secret, so
/// that a copy of the table alone does not give the codes back by trying all 10⁸.
pub struct CodeKey(hmac::Key);

impl CodeKey {
    pub fn new(link_secret: &SecretString) -> Self {
        let root = hmac::Key::new(hmac::HMAC_SHA256, link_secret.expose_secret().as_bytes());
        let derived = hmac::sign(&root, b"context-chat confirmation code v1");
        Self(hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()))
    }

    /// The hash stored for `code`, sent to `email` at `identity`'s request.
    pub fn hash(&self, identity: &str, email: &EmailAddress, code: &str) -> String {
        let mut input = identity.as_bytes().to_vec();
        input.push(0);
        input.extend_from_slice(email.as_str().as_bytes());
        input.push(0);
        input.extend_from_slice(code.as_bytes());
        hmac::sign(&self.0, &input)
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// The code as typed: spaces and dashes a person may add are dropped.
pub fn normalise(code: &str) -> Result<String> {
    let code: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    if code.len() == CODE_DIGITS && code.chars().all(|c| c.is_ascii_digit()) {
        Ok(code)
    } else {
        Err(ChatError::bad_request(format!(
            "code must be the {CODE_DIGITS} digits from the confirmation email."
        )))
    }
}

/// What asking for a code did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Issue {
    AlreadyVerified,
    /// A code went out less than a minute ago; that one stands.
    RecentlySent,
    /// The new code is stored; send it.
    Send,
}

pub fn issue(
    current: Option<&Confirmation>,
    (identity, email): (&str, &EmailAddress),
    code_hash: String,
    now: u64,
) -> (Option<Confirmation>, Issue) {
    match current {
        Some(r) if r.verified => (None, Issue::AlreadyVerified),
        Some(Confirmation {
            code: Some(code), ..
        }) if now < code.sent_at + RESEND_AFTER_SECS && now < code.expires_at => {
            (None, Issue::RecentlySent)
        }
        _ => (
            Some(Confirmation {
                email: email.clone(),
                identity: identity.to_owned(),
                verified: false,
                verified_at: None,
                code: Some(PendingCode {
                    hash: code_hash,
                    sent_at: now,
                    expires_at: now + CODE_TTL_SECS,
                    attempts: 0,
                }),
            }),
            Issue::Send,
        ),
    }
}

/// Whether a record holds a code that may still be tried.
pub fn tryable(record: &Confirmation, now: u64) -> bool {
    !record.verified
        && record
            .code
            .as_ref()
            .is_some_and(|c| now < c.expires_at && c.attempts < MAX_ATTEMPTS)
}

/// One try of a code against one identity's record: the next record and whether it
/// matched. A wrong try counts against the record (`count_wrong`) unless the tries are
/// counted elsewhere (tries made without a token).
pub fn check(
    current: Option<&Confirmation>,
    code_hash: &str,
    now: u64,
    count_wrong: bool,
) -> (Option<Confirmation>, bool) {
    let Some(record) = current.filter(|r| tryable(r, now)) else {
        return (None, false);
    };
    let Some(code) = &record.code else {
        return (None, false);
    };
    let mut next = record.clone();
    if bool::from(code.hash.as_bytes().ct_eq(code_hash.as_bytes())) {
        next.verified = true;
        next.verified_at = Some(now);
        next.code = None;
        (Some(next), true)
    } else if count_wrong {
        if let Some(c) = next.code.as_mut() {
            c.attempts += 1;
        }
        (Some(next), false)
    } else {
        (None, false)
    }
}

/// Tries of codes at one address made without a token: at most [`MAX_ATTEMPTS`] a day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Guesses {
    pub count: u32,
    pub since: u64,
}

/// Counts one wrong try without a token; the next record.
pub fn guess(current: Option<&Guesses>, now: u64) -> Guesses {
    match current {
        Some(g) if now < g.since + CODE_TTL_SECS => Guesses {
            count: g.count + 1,
            since: g.since,
        },
        _ => Guesses {
            count: 1,
            since: now,
        },
    }
}

pub fn guesses_left(current: Option<&Guesses>, now: u64) -> bool {
    current.is_none_or(|g| now >= g.since + CODE_TTL_SECS || g.count < MAX_ATTEMPTS)
}

/// One identity's confirmation emails, so that one token cannot mail the world.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SenderLog {
    /// When each confirmation email of the last hour went.
    #[serde(default)]
    pub sent: Vec<u64>,
    /// The addresses waiting for confirmation, until their code expires.
    #[serde(default)]
    pub waiting: Vec<Waiting>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Waiting {
    pub email: EmailAddress,
    pub until: u64,
}

/// Admits one more confirmation email to `email`, or says when to try again.
pub fn admit(current: Option<&SenderLog>, email: &EmailAddress, now: u64) -> Result<SenderLog> {
    let mut log = current.cloned().unwrap_or_default();
    log.sent.retain(|at| now < at + HOUR);
    log.waiting.retain(|w| now < w.until);
    let already_waiting = log.waiting.iter().any(|w| w.email == *email);
    if !already_waiting && log.waiting.len() >= MAX_WAITING_ADDRESSES {
        let free_at = log.waiting.iter().map(|w| w.until).min().unwrap_or(now);
        return Err(over_limit(
            &format!(
                "{MAX_WAITING_ADDRESSES} addresses are already waiting for confirmation: confirm \
                 one of them, or try again {}.",
                when(free_at, now)
            ),
            free_at,
            now,
        ));
    }
    if log.sent.len() >= MAX_CODES_PER_HOUR {
        let free_at = log.sent.iter().min().map_or(now, |at| at + HOUR);
        return Err(over_limit(
            &format!(
                "{MAX_CODES_PER_HOUR} confirmation emails were sent in the last hour: try again {}.",
                when(free_at, now)
            ),
            free_at,
            now,
        ));
    }
    log.sent.push(now);
    log.waiting.retain(|w| w.email != *email);
    log.waiting.push(Waiting {
        email: email.clone(),
        until: now + CODE_TTL_SECS,
    });
    Ok(log)
}

/// The address is confirmed: it no longer waits.
pub fn confirmed(current: Option<&SenderLog>, email: &EmailAddress) -> Option<SenderLog> {
    let mut log = current?.clone();
    let before = log.waiting.len();
    log.waiting.retain(|w| w.email != *email);
    (log.waiting.len() != before).then_some(log)
}

/// Over one of the identity's limits: `TooManyRequests` with the seconds until `free_at`
/// (ADR 013: every limit answers so).
fn over_limit(message: &str, free_at: u64, now: u64) -> ChatError {
    crate::metrics::limited(crate::metrics::Limit::EmailCodes);
    ChatError {
        retry_after_secs: Some(free_at.saturating_sub(now).max(1)),
        ..ChatError::new(crate::error::ErrorKind::TooManyRequests, message)
    }
}

fn when(at: u64, now: u64) -> String {
    let minutes = at.saturating_sub(now).div_ceil(60).max(1);
    if minutes < 120 {
        format!("in {minutes} minute{}", if minutes == 1 { "" } else { "s" })
    } else {
        format!("in {} hours", minutes.div_ceil(60))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email() -> EmailAddress {
        EmailAddress::parse("alex@example.org").unwrap()
    }

    fn key() -> CodeKey {
        CodeKey::new(&SecretString::from("a-link-secret-for-tests"))
    }

    fn h(code: &str) -> String {
        key().hash("alex", &email(), code)
    }

    #[test]
    fn codes_are_random_digits_and_stored_only_as_a_hash() {
        let a = new_code().unwrap();
        let b = new_code().unwrap();
        assert_eq!(a.len(), CODE_DIGITS);
        assert!(a.chars().all(|c| c.is_ascii_digit()));
        assert_ne!(a, b);
        let (record, issued) = issue(None, ("alex", &email()), h(&a), 1000);
        assert_eq!(issued, Issue::Send);
        let stored = serde_json::to_string(&record.unwrap()).unwrap();
        assert!(!stored.contains(&a));
        assert_ne!(
            key().hash("alex", &email(), &a),
            key().hash("mallory", &email(), &a)
        );
        // Item 13: keyed, so that the table alone does not give a code back.
        let plain: String = aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            format!("alex\0{}\0{a}", email().as_str()).as_bytes(),
        )
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
        assert_ne!(h(&a), plain);
        let other = CodeKey::new(&SecretString::from("another-link-secret-here"));
        assert_ne!(other.hash("alex", &email(), &a), h(&a));
    }

    #[test]
    fn five_tries_then_refused_even_with_the_right_code() {
        let code = "12345678";
        let (mut record, _) = issue(None, ("alex", &email()), h(code), 1000);
        for _ in 0..MAX_ATTEMPTS {
            let (next, ok) = check(record.as_ref(), &h("00000000"), 1001, true);
            assert!(!ok);
            record = next;
        }
        let (next, ok) = check(record.as_ref(), &h(code), 1002, true);
        assert!(!ok);
        assert!(next.is_none());
    }

    #[test]
    fn a_code_expires_after_a_day_and_a_new_one_waits_a_minute() {
        let code = "12345678";
        let (record, _) = issue(None, ("alex", &email()), h(code), 1000);
        let (_, late) = check(record.as_ref(), &h(code), 1000 + CODE_TTL_SECS, true);
        assert!(!late);
        let (_, again) = issue(record.as_ref(), ("alex", &email()), h("1"), 1030);
        assert_eq!(again, Issue::RecentlySent);
        let (_, later) = issue(record.as_ref(), ("alex", &email()), h("1"), 1060);
        assert_eq!(later, Issue::Send);
        let (verified, ok) = check(record.as_ref(), &h(code), 1001, true);
        assert!(ok);
        assert!(verified.as_ref().unwrap().verified);
        // Confirmed: the same code again is not a pending code any more.
        assert!(!check(verified.as_ref(), &h(code), 1002, true).1);
        assert_eq!(
            issue(verified.as_ref(), ("alex", &email()), String::new(), 2000).1,
            Issue::AlreadyVerified
        );
    }

    #[test]
    fn typed_codes_are_normalised_and_checked_for_shape() {
        assert_eq!(normalise(" 1234-5678 ").unwrap(), "12345678");
        assert!(normalise("1234567").is_err());
        assert!(normalise("abcdefgh").is_err());
        assert!(normalise("１２３４５６７８").is_err());
    }

    /// Three addresses waiting at once, ten emails an hour, per identity.
    #[test]
    fn an_identity_may_mail_few_addresses() {
        let at = |n: usize| EmailAddress::parse(&format!("x{n}@example.org")).unwrap();
        let mut log = None;
        for n in 0..MAX_WAITING_ADDRESSES {
            log = Some(admit(log.as_ref(), &at(n), 1000).unwrap());
        }
        let err = admit(log.as_ref(), &at(9), 1000).unwrap_err();
        assert_eq!(err.kind, crate::error::ErrorKind::TooManyRequests);
        assert!(err.message.contains("in 24 hours"), "{}", err.message);
        assert_eq!(err.retry_after_secs, Some(CODE_TTL_SECS));
        // A new code for an address already waiting is fine, up to ten an hour.
        for _ in MAX_WAITING_ADDRESSES..MAX_CODES_PER_HOUR {
            log = Some(admit(log.as_ref(), &at(0), 1000).unwrap());
        }
        let err = admit(log.as_ref(), &at(0), 1100).unwrap_err();
        assert_eq!(err.kind, crate::error::ErrorKind::TooManyRequests);
        assert!(err.message.contains("in 59 minutes"), "{}", err.message);
        assert_eq!(err.retry_after_secs, Some(HOUR - 100));
        assert!(admit(log.as_ref(), &at(0), 1000 + HOUR).is_ok());
        // A confirmed address frees its place.
        let freed = confirmed(log.as_ref(), &at(1)).unwrap();
        assert!(admit(Some(&freed), &at(9), 1000 + HOUR).is_ok());
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;
        use super::{email, h};

        proptest! {
            /// A code is confirmed exactly when the right code comes before it expires and
            /// before MAX_ATTEMPTS wrong ones; nothing wrong ever confirms, and a confirmed
            /// record takes no further tries.
            #[test]
            fn a_code_takes_at_most_max_attempts_wrong_tries(
                tries in prop::collection::vec((prop::bool::weighted(0.2), 0u64..20_000), 1..20)
            ) {
                let sent = 1_000_000u64;
                let (record, issued) = issue(None, ("alex", &email()), h("123456"), sent);
                prop_assert_eq!(issued, Issue::Send);
                let mut record = record;
                let mut now = sent;
                let mut wrong = 0u32;
                let mut confirmed = false;
                for (right, after) in tries {
                    now += after;
                    let hash = if right { h("123456") } else { h("654321") };
                    let expected = right && !confirmed && wrong < MAX_ATTEMPTS && now < sent + CODE_TTL_SECS;
                    let (next, matched) = check(record.as_ref(), &hash, now, true);
                    prop_assert_eq!(matched, expected, "right={} wrong={} now-sent={}", right, wrong, now - sent);
                    if let Some(next) = next {
                        record = Some(next);
                    }
                    if matched {
                        confirmed = true;
                    } else if !right && !confirmed && now < sent + CODE_TTL_SECS && wrong < MAX_ATTEMPTS {
                        wrong += 1;
                    }
                    let r = record.as_ref().unwrap();
                    prop_assert_eq!(r.verified, confirmed);
                    prop_assert!(r.code.as_ref().is_none_or(|c| c.attempts <= MAX_ATTEMPTS));
                }
            }

            /// Tries without a token at one address: at most MAX_ATTEMPTS in the day that
            /// begins with the first of them; then a new day. So never more than
            /// 2 × MAX_ATTEMPTS in any 24 hours.
            #[test]
            fn tries_without_a_token_are_limited_per_day(gaps in prop::collection::vec(0u64..30_000, 1..40)) {
                let mut guesses: Option<Guesses> = None;
                let mut now = 5_000_000u64;
                let mut allowed_at: Vec<u64> = Vec::new();
                let (mut day_start, mut in_day) = (0u64, 0u32);
                for gap in gaps {
                    now += gap;
                    if in_day == 0 || now >= day_start + CODE_TTL_SECS {
                        (day_start, in_day) = (now, 0);
                    }
                    let allowed = guesses_left(guesses.as_ref(), now);
                    prop_assert_eq!(allowed, in_day < MAX_ATTEMPTS, "at {}", now - day_start);
                    if allowed {
                        in_day += 1;
                        allowed_at.push(now);
                        guesses = Some(guess(guesses.as_ref(), now));
                    }
                }
                let n = 2 * MAX_ATTEMPTS as usize;
                for window in allowed_at.windows(n + 1) {
                    prop_assert!(window[n] - window[0] >= CODE_TTL_SECS, "{:?}", window);
                }
            }
        }
    }
}
