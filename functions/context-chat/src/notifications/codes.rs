//! Confirmation codes: random, kept only as a hash, valid for a day, five tries each.

use aws_lc_rs::{digest, rand};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::address::EmailAddress;
use crate::error::{ChatError, Result};

/// Eight digits: with five tries per code and a new code at most once a minute, guessing
/// stays below one chance in ten thousand a day.
pub const CODE_DIGITS: usize = 8;
pub const CODE_TTL_SECS: u64 = 24 * 3600;
pub const MAX_ATTEMPTS: u32 = 5;
/// A new code is sent at most this often per address, so the mutation cannot flood an inbox.
pub const RESEND_AFTER_SECS: u64 = 60;

/// An address's record: whether it is confirmed, and the code waiting to confirm it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailRecord {
    pub email: EmailAddress,
    pub verified: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<PendingCode>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingCode {
    /// Hex SHA-256 of the address and the code: the code itself is never stored.
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

pub fn hash(email: &EmailAddress, code: &str) -> String {
    let mut input = email.as_str().as_bytes().to_vec();
    input.push(0);
    input.extend_from_slice(code.as_bytes());
    digest::digest(&digest::SHA256, &input)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
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
    current: Option<&EmailRecord>,
    email: &EmailAddress,
    code_hash: String,
    now: u64,
) -> (Option<EmailRecord>, Issue) {
    match current {
        Some(r) if r.verified => (None, Issue::AlreadyVerified),
        Some(EmailRecord {
            code: Some(code), ..
        }) if now < code.sent_at + RESEND_AFTER_SECS && now < code.expires_at => {
            (None, Issue::RecentlySent)
        }
        _ => (
            Some(EmailRecord {
                email: email.clone(),
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

/// What one try of a code found. Every try but the first success counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Verified,
    AlreadyVerified,
    Wrong { tries_left: u32 },
    Expired,
    TooManyTries,
    NoCode,
}

pub fn check(
    current: Option<&EmailRecord>,
    code_hash: &str,
    now: u64,
) -> (Option<EmailRecord>, Check) {
    let Some(record) = current else {
        return (None, Check::NoCode);
    };
    if record.verified {
        return (None, Check::AlreadyVerified);
    }
    let Some(code) = &record.code else {
        return (None, Check::NoCode);
    };
    if now >= code.expires_at {
        return (None, Check::Expired);
    }
    if code.attempts >= MAX_ATTEMPTS {
        return (None, Check::TooManyTries);
    }
    let mut next = record.clone();
    if bool::from(code.hash.as_bytes().ct_eq(code_hash.as_bytes())) {
        next.verified = true;
        next.verified_at = Some(now);
        next.code = None;
        (Some(next), Check::Verified)
    } else {
        let attempts = code.attempts + 1;
        if let Some(c) = next.code.as_mut() {
            c.attempts = attempts;
        }
        (
            Some(next),
            Check::Wrong {
                tries_left: MAX_ATTEMPTS - attempts,
            },
        )
    }
}

/// The answer a person sees for a try.
pub fn answer(check: Check) -> Result<bool> {
    match check {
        Check::Verified | Check::AlreadyVerified => Ok(true),
        Check::Wrong { tries_left: 0 } => Err(ChatError::access_denied(
            "That code is not right, and it was the last try. Subscribe again to get a new code.",
        )),
        Check::Wrong { tries_left } => Err(ChatError::bad_request(format!(
            "That code is not right. {tries_left} {} left.",
            if tries_left == 1 { "try" } else { "tries" }
        ))),
        Check::Expired => Err(ChatError::bad_request(
            "That code has expired (codes last 24 hours). Subscribe again to get a new one.",
        )),
        Check::TooManyTries => Err(ChatError::access_denied(
            "Too many wrong codes for this address. Subscribe again to get a new code.",
        )),
        Check::NoCode => Err(ChatError::not_found(
            "No confirmation code was sent to this address. Subscribe to get one.",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email() -> EmailAddress {
        EmailAddress::parse("alex@example.org").unwrap()
    }

    #[test]
    fn codes_are_random_digits_and_stored_only_as_a_hash() {
        let a = new_code().unwrap();
        let b = new_code().unwrap();
        assert_eq!(a.len(), CODE_DIGITS);
        assert!(a.chars().all(|c| c.is_ascii_digit()));
        assert_ne!(a, b);
        let (record, issued) = issue(None, &email(), hash(&email(), &a), 1000);
        assert_eq!(issued, Issue::Send);
        let stored = serde_json::to_string(&record.unwrap()).unwrap();
        assert!(!stored.contains(&a));
    }

    #[test]
    fn five_tries_then_refused_even_with_the_right_code() {
        let code = "12345678";
        let (mut record, _) = issue(None, &email(), hash(&email(), code), 1000);
        for left in (0..MAX_ATTEMPTS).rev() {
            let (next, result) = check(record.as_ref(), &hash(&email(), "00000000"), 1001);
            assert_eq!(result, Check::Wrong { tries_left: left });
            record = next;
        }
        let (next, result) = check(record.as_ref(), &hash(&email(), code), 1002);
        assert_eq!(result, Check::TooManyTries);
        assert!(next.is_none());
    }

    #[test]
    fn a_code_expires_after_a_day_and_a_new_one_waits_a_minute() {
        let code = "12345678";
        let (record, _) = issue(None, &email(), hash(&email(), code), 1000);
        let (_, late) = check(record.as_ref(), &hash(&email(), code), 1000 + CODE_TTL_SECS);
        assert_eq!(late, Check::Expired);
        let (_, again) = issue(record.as_ref(), &email(), hash(&email(), "1"), 1030);
        assert_eq!(again, Issue::RecentlySent);
        let (_, later) = issue(record.as_ref(), &email(), hash(&email(), "1"), 1060);
        assert_eq!(later, Issue::Send);
        let (verified, ok) = check(record.as_ref(), &hash(&email(), code), 1001);
        assert_eq!(ok, Check::Verified);
        assert!(verified.as_ref().unwrap().verified);
        assert_eq!(
            issue(verified.as_ref(), &email(), String::new(), 2000).1,
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
}
