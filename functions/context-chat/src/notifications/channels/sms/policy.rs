//! The settings of SMS spending (issue 30, M3): the deployment's daily budgets, which
//! [`super::budget`] counts, and the countries texts may go to; read from the SMS section
//! once per load ([`policy`]).

use crate::address::PhoneNumber;
use crate::error::{ChatError, Result};
use crate::settings::{Param, Reader, Section, Settings};
use crate::settings_holder::Configured;

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

/// The warning an operator gets while texts may go to any country (at the first text or
/// code of a process, and from `configure-twilio --dry-run`).
pub const ANY_COUNTRY_WARNING: &str = "sms/allowedCountries is not set: verification codes and texts may go to any country (set it, e.g. +49,+44, to cap what abuse can cost)";

/// The policy of these settings, read at its first use in the load: the defaults where the
/// process does not read the SMS section; a mistake fails only the text messages.
pub fn policy(configured: &Configured) -> Result<SmsPolicy> {
    configured.part(|c| SmsPolicy::of(&c.settings).inspect(warn_of_any_country))
}

/// Texts to any country: allowed, but an operator should know (once a process).
pub fn warn_of_any_country(policy: &SmsPolicy) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if policy.allowed_countries.is_none()
        && !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed)
    {
        tracing::warn!("{ANY_COUNTRY_WARNING}");
    }
}

impl SmsPolicy {
    /// The budgets and countries `settings` set (the defaults where it does not read them).
    pub fn of(settings: &Settings) -> Result<Self> {
        settings
            .section(Section::Sms)
            .map_or_else(|| Ok(Self::default()), |r| Self::read(&r))
    }

    fn read(r: &Reader<'_>) -> Result<Self> {
        let daily = |p: Param, default: u32| match r.optional(p) {
            None => Ok(default),
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| *n <= MAX_DAILY)
                .ok_or_else(|| {
                    r.invalid(p, &format!("must be a whole number from 0 to {MAX_DAILY}"))
                }),
        };
        let allowed_countries = r
            .optional(Param::SmsAllowedCountries)
            .map(|v| {
                Self::parse_countries(&v)
                    .map_err(|what| r.invalid(Param::SmsAllowedCountries, what))
            })
            .transpose()?;
        Ok(SmsPolicy {
            daily_codes: daily(Param::SmsDailyCodes, DEFAULT_DAILY_CODES)?,
            daily_texts: daily(Param::SmsDailyTexts, DEFAULT_DAILY_TEXTS)?,
            allowed_countries,
        })
    }

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

    #[test]
    fn budgets_and_countries_have_safe_defaults_and_a_mistake_names_the_setting_only() {
        use crate::settings::{Reads, for_tests};
        let policy = |pairs: &[(Param, &str)]| {
            SmsPolicy::of(&for_tests(pairs, Reads(&[Section::Sms])).unwrap())
        };
        assert_eq!(policy(&[]).unwrap(), SmsPolicy::default());
        assert_eq!(SmsPolicy::default().daily_codes, 100);
        assert_eq!(SmsPolicy::default().daily_texts, 500);
        let set = [
            (Param::SmsDailyCodes, "20"),
            (Param::SmsDailyTexts, "0"),
            (Param::SmsAllowedCountries, "+49, +44"),
        ];
        assert_eq!(
            policy(&set).unwrap(),
            SmsPolicy {
                daily_codes: 20,
                daily_texts: 0,
                allowed_countries: Some(vec!["+49".into(), "+44".into()]),
            }
        );
        for (param, bad, named) in [
            (Param::SmsDailyCodes, "-1", "sms/dailyCodes"),
            (Param::SmsDailyTexts, "1000001", "sms/dailyTexts"),
            (Param::SmsAllowedCountries, "DE,UK", "sms/allowedCountries"),
        ] {
            let err = policy(&[(param, bad)]).unwrap_err();
            assert!(err.message.contains(named), "{}", err.message);
            assert!(!err.message.contains(bad), "{}", err.message);
        }
        // Where the section is not read: the defaults.
        let other = for_tests(&set, Reads(&[Section::Ledger])).unwrap();
        assert_eq!(SmsPolicy::of(&other).unwrap(), SmsPolicy::default());
    }
}
