//! Email addresses as subscriptions and codes are keyed by them.

use std::fmt;

use crate::error::{ChatError, Result};

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

impl TryFrom<String> for EmailAddress {
    type Error = ChatError;
    fn try_from(value: String) -> Result<Self> {
        Self::parse(&value)
    }
}

impl From<EmailAddress> for String {
    fn from(value: EmailAddress) -> Self {
        value.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

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
}
