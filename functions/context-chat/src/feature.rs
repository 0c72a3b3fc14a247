//! One shape for "is this part of the product on here?", whatever the part: on (with what it
//! needs), off (not set up: its settings are absent, or this process does not use it), or
//! misconfigured (a setting is wrong). A caller that needs a part that is not on gets one
//! answer, "<part> is not configured.", and the log says why (which setting, never a value):
//! the caller cannot fix a deployment, and setting names are the operator's business.

use crate::error::{ChatError, Result};

#[derive(Debug, Clone)]
pub enum Feature<T> {
    On(T),
    /// Not set up here: what is missing, or why this process has none (for the log).
    Off(String),
    /// A setting is wrong: the error names it, never its value (for the log).
    Misconfigured(ChatError),
}

impl<T> Feature<T> {
    /// On with `Ok(Some)`, off with `Ok(None)` (saying what is `missing`), misconfigured
    /// with `Err`: how a settings section reads.
    pub fn from_section(section: Result<Option<T>>, missing: impl FnOnce() -> String) -> Self {
        match section {
            Ok(Some(value)) => Feature::On(value),
            Ok(None) => Feature::Off(missing()),
            Err(err) => Feature::Misconfigured(err),
        }
    }

    /// What the part needs, or "`part` is not configured." (and a log line saying why).
    pub fn get(&self, part: &'static str) -> Result<&T> {
        match self {
            Feature::On(value) => Ok(value),
            _ => Err(refused(part, self.why_not().unwrap_or_default())),
        }
    }

    /// Back to how a settings section reads: `Ok(Some)` on, `Ok(None)` off, `Err` wrong.
    pub fn into_section(self) -> Result<Option<T>> {
        match self {
            Feature::On(value) => Ok(Some(value)),
            Feature::Off(_) => Ok(None),
            Feature::Misconfigured(err) => Err(err),
        }
    }

    /// What the part needs, or an error saying why not, setting names included: for the
    /// operator's own tools (`chatctl`), never for a caller of the API.
    pub fn for_operator(self) -> Result<T> {
        match self {
            Feature::On(value) => Ok(value),
            Feature::Off(why) => Err(ChatError::not_found(format!("{why}."))),
            Feature::Misconfigured(err) => Err(err),
        }
    }

    pub fn on(&self) -> Option<&T> {
        match self {
            Feature::On(value) => Some(value),
            _ => None,
        }
    }

    /// Why the part is not on (`None` when it is): for banners and the log.
    pub fn why_not(&self) -> Option<&str> {
        match self {
            Feature::On(_) => None,
            Feature::Off(why) => Some(why),
            Feature::Misconfigured(err) => Some(&err.message),
        }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Feature<U> {
        match self {
            Feature::On(value) => Feature::On(f(value)),
            Feature::Off(why) => Feature::Off(why),
            Feature::Misconfigured(err) => Feature::Misconfigured(err),
        }
    }

    pub fn as_ref(&self) -> Feature<&T> {
        match self {
            Feature::On(value) => Feature::On(value),
            Feature::Off(why) => Feature::Off(why.clone()),
            Feature::Misconfigured(err) => Feature::Misconfigured(err.clone()),
        }
    }
}

/// Logs why `part` is not on and answers so: one function, not one per `Feature<T>`.
fn refused(part: &str, why: &str) -> ChatError {
    tracing::error!(part, why, "not configured");
    not_configured(part)
}

/// The one answer for a part that is not on.
pub fn not_configured(part: &str) -> ChatError {
    ChatError::internal(format!("{part} is not configured."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_that_is_not_on_says_so_in_one_pattern_and_never_why() {
        let off: Feature<u8> = Feature::Off("sendgrid/apiKey is missing".into());
        let wrong: Feature<u8> = Feature::Misconfigured(ChatError::internal(
            "The setting /stack/sendgrid/domain is not a domain name.",
        ));
        for part in [off, wrong] {
            let err = part.get("Email").unwrap_err();
            assert_eq!(err.message, "Email is not configured.");
            assert_eq!(err.kind, crate::ErrorKind::InternalError);
            assert!(part.why_not().is_some());
        }
        let on = Feature::from_section(Ok(Some(7u8)), || unreachable!());
        assert_eq!(on.get("Email").copied().ok(), Some(7));
        assert!(on.why_not().is_none());
    }
}
