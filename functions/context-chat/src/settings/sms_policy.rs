//! The settings of SMS spending (issue 30, M3): the deployment's daily budgets, which
//! `notifications::budget` counts, and the countries texts may go to.

use crate::address::PhoneNumber;
use crate::error::{ChatError, Result};

/// Verification codes a deployment sends a day unless `sms/dailyCodes` says otherwise:
/// enough for a few dozen sign-ups, little money if abused.
pub const DEFAULT_DAILY_CODES: u32 = 100;
/// Notification texts a deployment sends a day unless `sms/dailyTexts` says otherwise.
pub const DEFAULT_DAILY_TEXTS: u32 = 500;
/// The most either budget may be set to.
pub const MAX_DAILY: u32 = 1_000_000;
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

    /// Refuses a number outside the allowed countries (and counts it), before anything is
    /// counted or sent.
    /// Calling codes are prefix-free (ITU E.164), so a prefix match is exact.
    pub fn check_country(&self, phone: &PhoneNumber) -> Result<()> {
        match &self.allowed_countries {
            Some(codes) if !codes.iter().any(|c| phone.as_str().starts_with(c.as_str())) => {
                crate::metrics::count(crate::metrics::Counter::SmsCountryRefused);
                Err(ChatError::bad_request(format!(
                    "Text messages go only to numbers of these country codes: {}.",
                    codes.join(", ")
                )))
            }
            _ => Ok(()),
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
