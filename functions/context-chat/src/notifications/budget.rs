//! What the whole deployment may spend on text messages (issue 30, M3): codes and
//! notification texts per UTC day, for everyone together and per destination number,
//! counted in the store where every process sees them; and the countries texts may go to.
//! The per-identity limits ([`super::phones`]) come first; these cap what N identities can
//! make a deployment pay.

use std::sync::Arc;

use super::address::PhoneNumber;
use super::store::{Count, Created, Key, Store};
use crate::context_token::now_unix;
use crate::error::{ChatError, Result};

/// Verification codes a deployment sends a day unless `sms/dailyCodes` says otherwise:
/// enough for a few dozen sign-ups, little money if abused.
pub const DEFAULT_DAILY_CODES: u32 = 100;
/// Notification texts a deployment sends a day unless `sms/dailyTexts` says otherwise.
pub const DEFAULT_DAILY_TEXTS: u32 = 500;
/// The most either budget may be set to.
pub const MAX_DAILY: u32 = 1_000_000;
/// Codes one number gets a day, whoever asks (an identity gets 5 a day, across numbers;
/// Verify allows 5 to a number in 10 minutes).
pub const CODES_PER_NUMBER_PER_DAY: u32 = 10;
/// Notification texts one number gets a day, whatever the contexts (digests fold a context's
/// messages into one text per window, so a person in busy rooms still gets most).
pub const TEXTS_PER_NUMBER_PER_DAY: u32 = 30;
const DAY_SECS: u64 = 24 * 3600;

/// What a text is for: each has its own budgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Spending {
    Code,
    Text,
}

impl Spending {
    pub fn as_str(self) -> &'static str {
        match self {
            Spending::Code => "CODES",
            Spending::Text => "TEXTS",
        }
    }
}

/// The settings of SMS spending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsPolicy {
    pub daily_codes: u32,
    pub daily_texts: u32,
    /// Country calling codes with their `+` (`+49`); `None`: any country.
    pub allowed_countries: Option<Vec<String>>,
}

impl Default for SmsPolicy {
    fn default() -> Self {
        Self {
            daily_codes: DEFAULT_DAILY_CODES,
            daily_texts: DEFAULT_DAILY_TEXTS,
            allowed_countries: None,
        }
    }
}

impl SmsPolicy {
    /// Parses `sms/allowedCountries`: `+` and 1 to 3 digits each, comma separated. `Err`
    /// says what is wrong, without the value.
    pub fn parse_countries(value: &str) -> std::result::Result<Vec<String>, &'static str> {
        let codes: Vec<String> = value
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect();
        let valid = |c: &String| {
            c.strip_prefix('+').is_some_and(|digits| {
                (1..=3).contains(&digits.len())
                    && digits.bytes().all(|b| b.is_ascii_digit())
                    && !digits.starts_with('0')
            })
        };
        if codes.is_empty() || !codes.iter().all(valid) {
            return Err(
                "must be country calling codes, each + and 1 to 3 digits, comma separated (+49,+44)",
            );
        }
        Ok(codes)
    }

    /// Refuses a number outside the allowed countries, before anything is counted or sent.
    /// Calling codes are prefix-free (ITU E.164), so a prefix match is exact.
    pub fn check_country(&self, phone: &PhoneNumber) -> Result<()> {
        match &self.allowed_countries {
            Some(codes) if !codes.iter().any(|c| phone.as_str().starts_with(c.as_str())) => {
                Err(ChatError::bad_request(format!(
                    "Text messages go only to numbers of these country codes: {}.",
                    codes.join(", ")
                )))
            }
            _ => Ok(()),
        }
    }

    fn daily(&self, what: Spending) -> u32 {
        match what {
            Spending::Code => self.daily_codes,
            Spending::Text => self.daily_texts,
        }
    }
}

/// The budgets, counted in the store.
pub struct SmsBudgets {
    store: Arc<dyn Store>,
}

impl SmsBudgets {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Counts one `what` to `to` against today's budgets, the deployment's and the number's,
    /// in one store round trip; past either, `TooManyRequests` with the seconds to the next
    /// UTC day, and nothing counted. Counted before the send, and not given back when Twilio
    /// refuses: a budget caps what may have been paid for.
    pub async fn spend(&self, what: Spending, to: &PhoneNumber, policy: &SmsPolicy) -> Result<()> {
        let now = now_unix();
        let day = now / DAY_SECS;
        let expires_at = (day + 2) * DAY_SECS;
        let per_number = match what {
            Spending::Code => CODES_PER_NUMBER_PER_DAY,
            Spending::Text => TEXTS_PER_NUMBER_PER_DAY,
        };
        let counts = vec![
            Count {
                key: Key::SmsSpent {
                    what,
                    day,
                    number: None,
                },
                max: u64::from(policy.daily(what)),
                expires_at,
            },
            Count {
                key: Key::SmsSpent {
                    what,
                    day,
                    number: Some(to.clone()),
                },
                max: u64::from(per_number),
                expires_at,
            },
        ];
        let retry = ((day + 1) * DAY_SECS).saturating_sub(now).max(1);
        match self.store.create_counted(counts, Vec::new()).await? {
            Created::Done | Created::Exists => Ok(()),
            Created::OverLimit(which) => {
                let deployment = which == 0;
                crate::metrics::count(match (what, deployment) {
                    (_, false) => crate::metrics::Counter::SmsNumberBudgetReached,
                    (Spending::Code, true) => crate::metrics::Counter::SmsCodeBudgetReached,
                    (Spending::Text, true) => crate::metrics::Counter::SmsTextBudgetReached,
                });
                tracing::warn!(
                    what = what.as_str(),
                    budget = if deployment { "deployment" } else { "number" },
                    retry_after = retry,
                    "an SMS budget for today is spent"
                );
                let noun = match what {
                    Spending::Code => "verification codes",
                    Spending::Text => "text messages",
                };
                let message = if deployment {
                    format!("This service has sent all the {noun} it may send today.")
                } else {
                    format!("This number has been sent all the {noun} it may get today.")
                };
                Err(ChatError::too_many(&message, retry))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn phone(s: &str) -> PhoneNumber {
        PhoneNumber::parse(s).unwrap()
    }

    #[test]
    fn countries_are_calling_codes_and_a_number_matches_by_its_prefix() {
        assert_eq!(
            SmsPolicy::parse_countries(" +49, +44 ,+1").unwrap(),
            ["+49", "+44", "+1"]
        );
        for bad in ["", ",", "49", "+", "+4912", "+0", "+49;+44", "DE"] {
            assert!(SmsPolicy::parse_countries(bad).is_err(), "{bad}");
        }
        let policy = SmsPolicy {
            allowed_countries: Some(vec!["+49".into(), "+1".into()]),
            ..SmsPolicy::default()
        };
        assert!(policy.check_country(&phone("+4915112345678")).is_ok());
        assert!(policy.check_country(&phone("+14155550100")).is_ok());
        let err = policy.check_country(&phone("+447700900123")).unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadRequest);
        assert!(!err.message.contains("7700900123"), "{}", err.message);
        assert!(
            SmsPolicy::default()
                .check_country(&phone("+447700900123"))
                .is_ok()
        );
    }
}
