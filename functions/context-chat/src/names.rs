//! What a user identity and a context name may look like.
//!
//! Both end up in Twilio URL paths and resource fields, so they are checked before any
//! Twilio call is made (see `adr/003-identity-and-context-names.md`).

use crate::error::{ChatError, Result};

/// Twilio's limit for an identity.
pub const MAX_IDENTITY_CHARS: usize = 256;
/// Short enough to show in a widget, well under Twilio's 256-character FriendlyName limit.
pub const MAX_CONTEXT_CHARS: usize = 128;
/// More than any widget shows; the 8 KiB token limit caps it in practice anyway.
pub const MAX_CONTEXTS: usize = 100;

/// What a user may do in a context's room (a context token's `roles` claim; adr/004):
/// a reader reads; a member also posts and edits their own messages (every context the
/// claim does not name); a moderator also deletes anyone's messages and removes participants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Reader,
    Member,
    Moderator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Member => "member",
            Role::Moderator => "moderator",
        }
    }

    pub fn from_name(name: &str) -> Option<Role> {
        [Role::Reader, Role::Member, Role::Moderator]
            .into_iter()
            .find(|r| r.as_str() == name)
    }
}

/// An argument trimmed, or `BadRequest` naming it when it is empty.
pub fn required<'a>(value: &'a str, name: &str) -> Result<&'a str> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        Err(ChatError::bad_request(format!("{name} is required.")))
    } else {
        Ok(trimmed)
    }
}

/// An identity is 1 to 256 characters, none of them a control character, whitespace,
/// or one of `/ \ ? # %` (which proxies and path routers treat specially even when
/// percent-encoded), and it must not look like a Twilio User SID (error 50206).
pub fn check_identity(identity: &str) -> Result<()> {
    let chars = identity.chars().count();
    if chars == 0 {
        return Err(ChatError::bad_request(
            "The token's sub (identity) is empty.",
        ));
    }
    if chars > MAX_IDENTITY_CHARS {
        return Err(ChatError::bad_request(format!(
            "The token's sub (identity) is longer than {MAX_IDENTITY_CHARS} characters."
        )));
    }
    if let Some(c) = identity
        .chars()
        .find(|c| c.is_control() || c.is_whitespace() || matches!(c, '/' | '\\' | '?' | '#' | '%'))
    {
        return Err(ChatError::bad_request(format!(
            "The token's sub (identity) contains the character {c:?}, which is not allowed."
        )));
    }
    if identity.chars().all(|c| c == '.') {
        return Err(ChatError::bad_request(
            "The token's sub (identity) is only dots, which a URL path drops.",
        ));
    }
    if looks_like_sid(identity, "US") {
        return Err(ChatError::bad_request(
            "The token's sub (identity) looks like a Twilio User SID (US…), which Twilio rejects.",
        ));
    }
    Ok(())
}

/// A context is 1 to 128 characters from `[A-Za-z0-9_.:@-]`, and must not look like a
/// Conversation SID (Twilio error 50390).
pub fn check_context(context: &str) -> Result<()> {
    if context.is_empty() {
        return Err(ChatError::bad_request("A context in the token is empty."));
    }
    if context.len() > MAX_CONTEXT_CHARS {
        return Err(ChatError::bad_request(format!(
            "A context in the token is longer than {MAX_CONTEXT_CHARS} characters."
        )));
    }
    if let Some(c) = context.chars().find(|c| !is_context_char(*c)) {
        return Err(ChatError::bad_request(format!(
            "A context in the token contains the character {c:?}; contexts may hold only \
             letters, digits and _ . : @ -"
        )));
    }
    if context.bytes().all(|b| b == b'.') {
        return Err(ChatError::bad_request(
            "A context in the token is only dots, which a URL path drops.",
        ));
    }
    if looks_like_sid(context, "CH") {
        return Err(ChatError::bad_request(
            "A context in the token looks like a Twilio Conversation SID (CH…), which Twilio \
             rejects as a unique name.",
        ));
    }
    Ok(())
}

/// Checks every context and drops repeats, keeping the first occurrence's order.
pub fn check_contexts(contexts: Vec<String>) -> Result<Vec<String>> {
    if contexts.len() > MAX_CONTEXTS {
        return Err(ChatError::bad_request(format!(
            "The token carries {} contexts; at most {MAX_CONTEXTS} are allowed.",
            contexts.len()
        )));
    }
    let mut unique: Vec<String> = Vec::with_capacity(contexts.len());
    for context in contexts {
        check_context(&context)?;
        if !unique.contains(&context) {
            unique.push(context);
        }
    }
    Ok(unique)
}

fn is_context_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '@' | '-')
}

/// `PREFIX` followed by 32 hex digits, as Twilio SIDs are.
pub fn looks_like_sid(value: &str, prefix: &str) -> bool {
    value.len() == 34
        && value.starts_with(prefix)
        && value[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn identities_twilio_accepts_pass() {
        for ok in ["alex", "alex@example.com", "user:42", "Ünïcode-näme", "a"] {
            assert_eq!(check_identity(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn unusable_identities_are_bad_requests() {
        let long = "x".repeat(257);
        for bad in ["", " ", "a b", "a/b", "a?b", "50%", "tab\t", long.as_str()] {
            let err = check_identity(bad).unwrap_err();
            assert_eq!(err.kind, ErrorKind::BadRequest, "{bad:?}");
        }
        assert!(check_identity("US0123456789abcdef0123456789abcdef").is_err());
        assert!(check_identity(&"x".repeat(256)).is_ok());
    }

    /// Item 7 of the review: `.` and `..` vanish from a URL path, so `Users/..` would name
    /// the Users list itself.
    #[test]
    fn names_that_are_only_dots_are_refused() {
        for dots in [".", "..", "..."] {
            assert_eq!(
                check_identity(dots).unwrap_err().kind,
                ErrorKind::BadRequest
            );
            assert_eq!(check_context(dots).unwrap_err().kind, ErrorKind::BadRequest);
        }
        assert!(check_identity("a.").is_ok());
        assert!(check_context("..a").is_ok());
    }

    #[test]
    fn contexts_are_checked_and_deduplicated() {
        let got = check_contexts(vec![
            "general".into(),
            "SHIPMENT-42".into(),
            "general".into(),
        ])
        .unwrap();
        assert_eq!(got, vec!["general", "SHIPMENT-42"]);
        for bad in ["", "a b", "ä", "x/y", "CH0123456789abcdef0123456789abcdef"] {
            assert!(check_contexts(vec![bad.into()]).is_err(), "{bad:?}");
        }
        assert!(check_context(&"c".repeat(128)).is_ok());
        assert!(check_context(&"c".repeat(129)).is_err());
        assert!(check_contexts(vec!["a".to_string(); 101]).is_err());
    }
}
