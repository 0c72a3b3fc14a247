//! Failures to answer instead of the real answer, for tests of retries and give-ups.

use std::time::Duration;

use axum::http::Method;

/// A failure to answer instead of the real one, `times` times, to requests whose method
/// and path match.
#[derive(Debug, Clone)]
pub struct Fault {
    pub(super) method: Option<Method>,
    pub(super) path_contains: String,
    pub(super) status: u16,
    pub(super) code: u32,
    pub(super) times: usize,
    pub(super) retry_after: Option<u64>,
    pub(super) delay: Duration,
}

impl Fault {
    pub fn new(status: u16, code: u32) -> Self {
        Self {
            method: None,
            path_contains: String::new(),
            status,
            code,
            times: 1,
            retry_after: None,
            delay: Duration::ZERO,
        }
    }

    /// No failure: the request is answered as usual, only after `delay` (one still in flight
    /// while something else happens).
    pub fn slow(delay: Duration) -> Self {
        Self::new(0, 0).after(delay)
    }

    /// Only requests with this method whose path contains `path_contains`.
    pub fn on(mut self, method: Method, path_contains: &str) -> Self {
        self.method = Some(method);
        self.path_contains = path_contains.to_owned();
        self
    }

    pub fn times(mut self, times: usize) -> Self {
        self.times = times;
        self
    }

    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// Answers only after `delay`: a Twilio that hangs.
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

impl Fault {
    /// Whether this fault is armed for a request.
    pub(super) fn matches(&self, method: &Method, path: &str) -> bool {
        self.times > 0
            && self.method.as_ref().is_none_or(|m| m == method)
            && path.contains(&self.path_contains)
    }
}
