//! A panic is a bug. What it costs depends on the door (`adr/017`):
//! - a Lambda function ends its process (the production profile's `panic = "abort"`; the
//!   adapter's hook does the same in debug builds, so the tests see what the cloud does): no
//!   state a panic left half-changed serves another request;
//! - `chatctl serve`, one long-lived process for every request, answers that request
//!   `InternalError` ([`unpanicked`]) and goes on.
//!
//! Either way the log gets one line: where, and the start of the message.

use std::future::Future;
use std::panic::{AssertUnwindSafe, PanicHookInfo};

use futures_util::FutureExt as _;

use crate::error::{ChatError, Result};

/// What a caller of `chatctl serve` is told when the code that served it panicked.
pub const PANIC_MESSAGE: &str =
    "Something went wrong on our side (a bug, now in our logs). Try again later.";

/// No log line may hold a whole token, and a panic's message may quote anything: it is cut
/// shorter than any signed JWT, as GraphQL's own error messages are.
const MAX_LOGGED_CHARS: usize = 120;

/// `work`'s outcome, or `InternalError` when it panicked (the hook of [`log_panics`] has
/// logged where).
pub async fn unpanicked<T>(work: impl Future<Output = Result<T>>) -> Result<T> {
    match AssertUnwindSafe(work).catch_unwind().await {
        Ok(outcome) => outcome,
        Err(_) => Err(ChatError::internal(PANIC_MESSAGE)),
    }
}

/// Replaces the default panic message on stderr with [`log`]'s line.
pub fn log_panics() {
    std::panic::set_hook(Box::new(log));
}

/// One error line for a panic: where it happened and the start of its message.
pub fn log(info: &PanicHookInfo<'_>) {
    let location = info
        .location()
        .map(|l| format!("{}:{}", l.file(), l.line()))
        .unwrap_or_default();
    let payload = info.payload();
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("");
    let message: String = message.chars().take(MAX_LOGGED_CHARS).collect();
    tracing::error!(%location, %message, "panicked (a bug)");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[tokio::test]
    async fn a_panic_becomes_internal_error_and_an_answer_stays_an_answer() {
        let answered = unpanicked(async { Ok::<_, ChatError>(7) }).await;
        assert_eq!(answered.unwrap(), 7);
        let refused = unpanicked(async { Err::<(), _>(ChatError::bad_request("no")) }).await;
        assert_eq!(refused.unwrap_err().kind, ErrorKind::BadRequest);
        let panicked = unpanicked(async {
            if std::hint::black_box(true) {
                panic!("a bug");
            }
            Ok::<(), ChatError>(())
        })
        .await
        .unwrap_err();
        assert_eq!(panicked.kind, ErrorKind::InternalError);
        assert_eq!(panicked.message, PANIC_MESSAGE);
    }
}
