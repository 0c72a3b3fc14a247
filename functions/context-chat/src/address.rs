//! The addresses the ports deliver to, checked where they come in: email addresses, and
//! phone numbers in E.164 for text messages. (Which channel an address belongs to is the
//! notifications' business: `notifications::channels::Address`.)

use std::fmt;

use crate::error::{ChatError, Result};

/// Serde reads a newtype through its parser (`#[serde(try_from = "String")]`) and writes its
/// string.
macro_rules! strings_both_ways {
    ($t:ident) => {
        impl TryFrom<String> for $t {
            type Error = ChatError;
            fn try_from(value: String) -> Result<Self> {
                Self::parse(&value)
            }
        }

        impl From<$t> for String {
            fn from(value: $t) -> Self {
                value.0
            }
        }
    };
}

/// A checked, normalised address: trimmed and lower-cased, so that `Alex@Example.org` and
/// `alex@example.org` are one subscriber with one confirmation.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

/// RFC 5321's limit on a forward path.
const MAX_CHARS: usize = 254;

impl EmailAddress {
    pub fn parse(input: &str) -> Result<Self> {
        let address = input.trim().to_lowercase();
        let invalid = || {
            ChatError::bad_request(
                "email must be an address like name@example.org (at most 254 characters).",
            )
        };
        if address.is_empty() || address.chars().count() > MAX_CHARS {
            return Err(invalid());
        }
        let Some((local, domain)) = address.rsplit_once('@') else {
            return Err(invalid());
        };
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '.');
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.contains('@')
            && !local.chars().any(|c| c.is_whitespace() || c.is_control())
            && !local.chars().any(|c| "<>()[],;:\\\"".contains(c));
        if domain_ok && local_ok {
            Ok(Self(address))
        } else {
            Err(invalid())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

strings_both_ways!(EmailAddress);

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A phone number in E.164: `+`, a country code, at most 15 digits in all. Spaces, dashes,
/// dots and brackets between digits are dropped; anything else is refused, so that no
/// malformed number reaches Twilio (and costs a request).
///
/// Phone numbers are personal data: `Debug` shows only the last two digits, and nothing in
/// this crate logs or counts one (`adr/016-sms.md`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub fn parse(input: &str) -> Result<Self> {
        let invalid = || {
            ChatError::bad_request(
                "phone must be a number in international form (E.164), like +15551234567.",
            )
        };
        let trimmed = input.trim();
        let Some(rest) = trimmed.strip_prefix('+') else {
            return Err(invalid());
        };
        let mut digits = String::with_capacity(16);
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => return Err(invalid()),
            }
        }
        // E.164: at most 15 digits; no country code starts with 0; 8 is the shortest
        // number in use with its country code.
        if !(8..=15).contains(&digits.len()) || digits.starts_with('0') {
            return Err(invalid());
        }
        Ok(Self(format!("+{digits}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tail = &self.0[self.0.len().saturating_sub(2)..];
        write!(f, "PhoneNumber(+…{tail})")
    }
}

strings_both_ways!(PhoneNumber);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_normalised_and_checked() {
        assert_eq!(
            EmailAddress::parse("  Alex@Example.ORG ").unwrap().as_str(),
            "alex@example.org"
        );
        assert!(EmailAddress::parse("zoë+chat@exämple.de").is_ok());
        for bad in [
            "",
            "alex",
            "@example.org",
            "alex@",
            "alex@localhost",
            "alex@example..org",
            "a b@example.org",
            "alex@exa mple.org",
            "<alex@example.org>",
            "alex@example.org\nBcc: eve@example.org",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?}");
        }
        let long = format!("{}@example.org", "a".repeat(250));
        assert!(EmailAddress::parse(&long).is_err());
    }

    #[test]
    fn phone_numbers_are_e164_with_separators_dropped() {
        for (input, expected) in [
            ("+14155550100", "+14155550100"),
            (" +1 415-555-0100 ", "+14155550100"),
            ("+44 (20) 7946.0958", "+442079460958"),
            ("+491701234567", "+491701234567"),
        ] {
            assert_eq!(PhoneNumber::parse(input).unwrap().as_str(), expected);
        }
        for bad in [
            "",
            "14155550100",
            "+",
            "+0123456789",
            "+1415555",
            "+1234567890123456",
            "+1 415 555 0100 ext 2",
            "+1415555010O",
            "++14155550100",
            "+1415/5550100",
            "tel:+14155550100",
        ] {
            let err = PhoneNumber::parse(bad).unwrap_err();
            assert_eq!(err.kind, crate::error::ErrorKind::BadRequest, "{bad:?}");
            assert!(bad.len() < 6 || !err.message.contains(bad), "{bad:?}");
        }
        assert_eq!(
            format!("{:?}", PhoneNumber::parse("+14155550100").unwrap()),
            "PhoneNumber(+…00)"
        );
    }
}
