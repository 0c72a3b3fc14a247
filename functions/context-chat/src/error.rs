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
}

impl ErrorKind {
    /// The exact string AppSync and the widget see as `errorType`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::BadRequest => "BadRequest",
            ErrorKind::AccessDenied => "AccessDenied",
            ErrorKind::EntityNotFound => "EntityNotFound",
            ErrorKind::Conflict => "Conflict",
            ErrorKind::InternalError => "InternalError",
        }
    }
}

impl ErrorKind {
    /// The status an HTTP door (webhook, unsubscribe link, dev token API) answers with.
    /// Behind those doors `EntityNotFound` means a missing setting, so it is the server's
    /// problem like the rest: 500 (which Twilio retries).
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::BadRequest => 400,
            ErrorKind::AccessDenied => 403,
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
}

impl ChatError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
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
}

pub type Result<T, E = ChatError> = std::result::Result<T, E>;
