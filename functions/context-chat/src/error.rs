//! The one error type of the domain. Its kind is the contract's `errorType`.

use std::fmt;

/// The `errorType` values of the API contract (`shared/PRODUCT.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    BadRequest,
    AccessDenied,
    EntityNotFound,
    Conflict,
    InternalError,
    /// Over a rate limit; the message says when to try again (`adr/013-token-ledger.md`).
    TooManyRequests,
}

impl ErrorKind {
    /// Every kind, in declaration order (metrics index by it).
    pub const ALL: [ErrorKind; 6] = [
        ErrorKind::BadRequest,
        ErrorKind::AccessDenied,
        ErrorKind::EntityNotFound,
        ErrorKind::Conflict,
        ErrorKind::InternalError,
        ErrorKind::TooManyRequests,
    ];

    /// The kind an `errorType` string names.
    pub fn from_name(name: &str) -> Option<ErrorKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The exact string AppSync and the widget see as `errorType`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::BadRequest => "BadRequest",
            ErrorKind::AccessDenied => "AccessDenied",
            ErrorKind::EntityNotFound => "EntityNotFound",
            ErrorKind::Conflict => "Conflict",
            ErrorKind::InternalError => "InternalError",
            ErrorKind::TooManyRequests => "TooManyRequests",
        }
    }
}

impl ErrorKind {
    /// The status an HTTP door (webhook, unsubscribe link, dev token API) answers with.
    /// Behind those doors `EntityNotFound` means a missing setting, so it is the server's
    /// problem like the rest: 500 (Twilio does not retry a post-event webhook: ADR 010).
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::BadRequest => 400,
            ErrorKind::AccessDenied => 403,
            ErrorKind::TooManyRequests => 429,
            ErrorKind::EntityNotFound | ErrorKind::Conflict | ErrorKind::InternalError => 500,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error a person can act on. The message never holds a secret or a whole token:
/// every constructor takes text written by this crate, never raw input echoed back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct ChatError {
    pub kind: ErrorKind,
    pub message: String,
    /// For `TooManyRequests`: seconds until a retry can succeed (HTTP's `Retry-After`).
    pub retry_after_secs: Option<u64>,
}

impl ChatError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, message)
    }

    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::AccessDenied, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::EntityNotFound, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InternalError, message)
    }

    /// Over a limit: try again in `retry_after_secs`.
    pub fn too_many(what: &str, retry_after_secs: u64) -> Self {
        Self {
            retry_after_secs: Some(retry_after_secs),
            ..Self::new(
                ErrorKind::TooManyRequests,
                format!("{what} Try again in {retry_after_secs} s."),
            )
        }
    }
}

pub type Result<T, E = ChatError> = std::result::Result<T, E>;
