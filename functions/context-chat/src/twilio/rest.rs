//! Talking to Twilio's REST API: Basic auth with the API key, form-encoded bodies, Twilio's
//! error shape, and retries of what Twilio says is safe to retry (429, 5xx, no answer),
//! with exponential backoff and jitter, honouring `Retry-After`, inside a deadline.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;
use url::Url;

use crate::metrics::{self, Counter};

/// How calls are retried and bounded.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// The backoff before the first retry; it doubles with each further one.
    pub first_delay: Duration,
    /// No single backoff is longer than this (a `Retry-After` may be, within the deadline).
    pub max_delay: Duration,
    /// How long one request may take: connect, headers and body.
    pub attempt_timeout: Duration,
    /// Requests in flight to Twilio from this process at once, over all callers.
    pub max_in_flight: usize,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            first_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(2),
            attempt_timeout: Duration::from_secs(5),
            max_in_flight: 32,
        }
    }
}

/// A call that did not succeed. The message is Twilio's own (it names resources, never
/// credentials) or says why no answer came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwilioError {
    /// The HTTP status, or `None` when no answer came (timeout, connection refused).
    pub status: Option<u16>,
    /// Twilio's error code (`50201`, `20404`, …) when the body carried one.
    pub code: Option<u32>,
    pub message: String,
    /// How many requests were sent, retries included.
    pub attempts: u32,
}

impl TwilioError {
    pub fn is_not_found(&self) -> bool {
        self.status == Some(404)
    }

    pub fn has_code(&self, codes: &[u32]) -> bool {
        self.code.is_some_and(|c| codes.contains(&c))
    }

    fn local(message: impl Into<String>) -> Self {
        Self {
            status: None,
            code: None,
            message: message.into(),
            attempts: 0,
        }
    }
}

impl fmt::Display for TwilioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.status, self.code) {
            (Some(status), Some(code)) => {
                write!(f, "HTTP {status}, Twilio error {code}: {}", self.message)?
            }
            (Some(status), None) => write!(f, "HTTP {status}: {}", self.message)?,
            (None, _) => write!(f, "no answer from Twilio: {}", self.message)?,
        }
        if self.attempts > 1 {
            write!(f, " (after {} attempts)", self.attempts)?;
        }
        Ok(())
    }
}

/// Twilio's legacy error body.
#[derive(Deserialize)]
struct ErrorBody {
    code: Option<u32>,
    message: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Delete,
}

impl Method {
    fn as_reqwest(self) -> reqwest::Method {
        match self {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Delete => reqwest::Method::DELETE,
        }
    }
}

/// A form body: repeated keys for lists, as Twilio reads them.
#[derive(Debug, Default, Clone)]
pub struct Form(Vec<(&'static str, String)>);

impl Form {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, name: &'static str, value: &str) -> Self {
        self.0.push((name, value.to_owned()));
        self
    }

    pub fn with_all<'a>(
        mut self,
        name: &'static str,
        values: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        self.0
            .extend(values.into_iter().map(|v| (name, v.to_owned())));
        self
    }

    fn finish(self) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(self.0)
            .finish()
    }
}

/// One Twilio REST resource tree (a Conversation Service, a Verify Service, an account's
/// Messages), with one account's API key.
pub struct RestClient {
    http: reqwest::Client,
    /// Where the resources are, ending in `/`: `{base}/v1/Services/{IS…}/` for Conversations.
    service_url: Url,
    authorization: HeaderValue,
    policy: RetryPolicy,
    in_flight: Arc<Semaphore>,
}

impl RestClient {
    pub fn new(
        http: reqwest::Client,
        base_url: &Url,
        chat_service_sid: &str,
        api_key_sid: &str,
        api_secret: &SecretString,
        policy: RetryPolicy,
    ) -> Self {
        Self::below(
            http,
            base_url,
            &["v1", "Services", chat_service_sid],
            api_key_sid,
            api_secret,
            policy,
        )
    }

    /// The resources below `base_url` + `segments` (each one path segment, encoded).
    pub fn below(
        http: reqwest::Client,
        base_url: &Url,
        segments: &[&str],
        api_key_sid: &str,
        api_secret: &SecretString,
        policy: RetryPolicy,
    ) -> Self {
        let mut service_url = base_url.clone();
        if let Ok(mut path) = service_url.path_segments_mut() {
            path.pop_if_empty().extend(segments).push("");
        }
        let credentials = STANDARD.encode(format!("{api_key_sid}:{}", api_secret.expose_secret()));
        let mut authorization = HeaderValue::from_str(&format!("Basic {credentials}"))
            .unwrap_or_else(|_| HeaderValue::from_static(""));
        authorization.set_sensitive(true);
        Self {
            http,
            service_url,
            authorization,
            policy,
            in_flight: Arc::new(Semaphore::new(policy.max_in_flight.max(1))),
        }
    }

    /// An HTTP client for Twilio: no redirects, since a redirect would carry the credentials
    /// somewhere else.
    pub fn http_client() -> reqwest::Client {
        crate::http_client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new())
    }

    /// The URL of a resource below the service, each segment percent-encoded, so that an
    /// identity or a unique name is always exactly one path segment.
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.service_url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// Whether `url` (a `next_page_url` from Twilio) points at the same origin as the
    /// service, so that following it sends the credentials nowhere else.
    pub fn is_own(&self, url: &Url) -> bool {
        url.origin() == self.service_url.origin() && url.path().starts_with(self.service_url.path())
    }

    pub async fn get<T: DeserializeOwned>(
        &self,
        url: Url,
        deadline: Instant,
    ) -> Result<T, TwilioError> {
        let body = self.send(Method::Get, url, None, deadline, true).await?;
        parse(&body)
    }

    pub async fn post<T: DeserializeOwned>(
        &self,
        url: Url,
        form: Form,
        deadline: Instant,
    ) -> Result<T, TwilioError> {
        self.post_once_or_more(url, form, deadline, true).await
    }

    /// A POST that, unless `repeatable`, must not happen twice (a text, a verification code:
    /// each costs money and reaches a person): tried again only when it surely did not reach
    /// Twilio (no connection was made, or Twilio answered 429), never after a timeout or a
    /// 5xx.
    pub async fn post_once_or_more<T: DeserializeOwned>(
        &self,
        url: Url,
        form: Form,
        deadline: Instant,
        repeatable: bool,
    ) -> Result<T, TwilioError> {
        let body = self.send(Method::Post, url, Some(form.finish()), deadline, repeatable);
        parse(&body.await?)
    }

    pub async fn delete(&self, url: Url, deadline: Instant) -> Result<(), TwilioError> {
        self.send(Method::Delete, url, None, deadline, true)
            .await
            .map(drop)
    }

    /// Sends until success, a failure not worth retrying, or the deadline; `repeatable`:
    /// false where a request that may have reached Twilio must not be sent again.
    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<String>,
        deadline: Instant,
        repeatable: bool,
    ) -> Result<Vec<u8>, TwilioError> {
        let mut attempts = 0u32;
        // When the time runs out, Twilio's last answer says more than the timeout that cut
        // the final try short.
        let mut last_answer: Option<TwilioError> = None;
        let out_of_time = |error: TwilioError, last_answer: Option<TwilioError>| match last_answer {
            Some(answer) if error.status.is_none() => TwilioError {
                attempts: error.attempts,
                ..answer
            },
            _ => error,
        };
        loop {
            attempts += 1;
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                let error = TwilioError {
                    attempts: attempts - 1,
                    ..TwilioError::local("the time for this request ran out")
                };
                return Err(out_of_time(error, last_answer));
            }
            let outcome = {
                let _permit = self.in_flight.acquire().await;
                self.once(
                    method,
                    &url,
                    body.as_deref(),
                    remaining.min(self.policy.attempt_timeout),
                )
                .await
            };
            let failure = match outcome {
                Ok(bytes) => return Ok(bytes),
                Err(failure) => failure,
            };
            let error = TwilioError {
                attempts,
                ..failure.error
            };
            if !failure.retryable || (!repeatable && failure.maybe_sent) {
                return Err(error);
            }
            let delay = failure
                .retry_after
                .unwrap_or_else(|| self.backoff(attempts));
            if Instant::now() + delay >= deadline {
                let error = out_of_time(error, last_answer);
                tracing::warn!(
                    method = ?method, path = url.path(), error = %error,
                    "Twilio call failed; no time left to retry"
                );
                return Err(error);
            }
            if error.status.is_some() {
                last_answer = Some(error.clone());
            }
            metrics::count(Counter::TwilioRetries);
            tracing::warn!(
                method = ?method, path = url.path(), error = %error,
                retry_in_ms = delay.as_millis() as u64, "Twilio call failed; retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// Exponential backoff with "equal jitter": between half and all of the capped delay,
    /// so that racing callers spread out but none retries at once.
    pub(crate) fn backoff(&self, attempts: u32) -> Duration {
        let exp = self
            .policy
            .first_delay
            .saturating_mul(1u32 << attempts.saturating_sub(1).min(16))
            .min(self.policy.max_delay);
        let mut random = [0u8; 4];
        let fraction = match aws_lc_rs::rand::fill(&mut random) {
            Ok(()) => f64::from(u32::from_le_bytes(random)) / f64::from(u32::MAX),
            Err(_) => 0.5,
        };
        exp / 2 + exp.mul_f64(fraction / 2.0)
    }

    async fn once(
        &self,
        method: Method,
        url: &Url,
        body: Option<&str>,
        timeout: Duration,
    ) -> Result<Vec<u8>, Failure> {
        let mut request = self
            .http
            .request(method.as_reqwest(), url.clone())
            .header(AUTHORIZATION, self.authorization.clone())
            .header(ACCEPT, "application/json")
            .timeout(timeout);
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(body.to_owned());
        }
        metrics::count(Counter::TwilioRequests);
        let started = Instant::now();
        let response = request.send().await;
        metrics::twilio_latency(started.elapsed());
        let response = response.map_err(|e| {
            metrics::count(Counter::TwilioServerErrors);
            Failure {
                // Without a connection nothing was sent; after one, it may have been.
                maybe_sent: !e.is_connect(),
                error: TwilioError::local(describe_transport(&e)),
                retryable: true,
                retry_after: None,
            }
        })?;
        let status = response.status().as_u16();
        match status {
            429 => metrics::count(Counter::TwilioThrottled),
            500.. => metrics::count(Counter::TwilioServerErrors),
            _ => {}
        }
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = response.bytes().await.map_err(|e| Failure {
            error: TwilioError::local(describe_transport(&e)),
            retryable: true,
            retry_after: None,
            maybe_sent: true,
        })?;
        if (200..300).contains(&status) {
            return Ok(bytes.to_vec());
        }
        let (code, message) = match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => (body.code, body.message),
            Err(_) => (None, None),
        };
        Err(Failure {
            error: TwilioError {
                status: Some(status),
                code,
                message: message.unwrap_or_else(|| {
                    reqwest::StatusCode::from_u16(status)
                        .ok()
                        .and_then(|s| s.canonical_reason())
                        .unwrap_or("error")
                        .to_owned()
                }),
                attempts: 0,
            },
            // Verify's 429s (60202, 60203) are its rules, final: trying again only counts
            // against the number.
            retryable: (status == 429 && !code.is_some_and(|c| (60000..61000).contains(&c)))
                || status >= 500,
            retry_after,
            // A 429 is Twilio refusing before doing anything; a 5xx may come after.
            maybe_sent: status != 429,
        })
    }
}

struct Failure {
    error: TwilioError,
    retryable: bool,
    retry_after: Option<Duration>,
    /// The request may have reached Twilio (and been acted on).
    maybe_sent: bool,
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, TwilioError> {
    serde_json::from_slice(body).map_err(|e| TwilioError {
        status: Some(200),
        ..TwilioError::local(format!("Twilio's answer could not be read: {e}"))
    })
}

/// reqwest's errors print the URL; ours name the path in the log line already.
fn describe_transport(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".into()
    } else if error.is_connect() {
        "could not connect".into()
    } else if error.is_body() || error.is_decode() {
        "the answer broke off".into()
    } else {
        "the request failed".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str) -> RestClient {
        RestClient::new(
            reqwest::Client::new(),
            &Url::parse(base).unwrap(),
            "IS00112233445566778899aabbccddeeff",
            "SKfedcba9876543210fedcba9876543210",
            &SecretString::from("secret_for_tests_0123456789abcdef"),
            RetryPolicy::default(),
        )
    }

    mod names_in_paths {
        use super::client;
        use crate::names::{check_context, check_identity};
        use proptest::prelude::*;

        /// Names mostly of the allowed characters, some with what a URL path treats
        /// specially (`/ ? # % ; = + &`, spaces, dots), other scripts, control characters.
        fn names() -> impl Strategy<Value = String> {
            prop_oneof![
                4 => "[A-Za-z0-9_.:@-]{1,40}",
                4 => "[A-Za-z0-9_.:@;,=+&~!$'()*éß日本\u{1F600}\\[\\]-]{1,40}",
                2 => "[A-Za-z0-9_.:@/\\\\?#% ;,=+&~!$'()*éß日本\u{1F600}\u{7}\\[\\]-]{0,40}",
            ]
        }

        /// The name as Twilio reads it: the URL's segment after `prefix`, percent-decoded;
        /// `None` when the name did not stay one segment.
        fn segment_after(url: &url::Url, prefix: &str) -> Option<String> {
            let segments: Vec<&str> = url.path_segments()?.collect();
            let at = segments.iter().position(|s| *s == prefix)?;
            (segments.len() == at + 2).then(|| {
                percent_encoding::percent_decode_str(segments[at + 1])
                    .decode_utf8()
                    .expect("UTF-8")
                    .into_owned()
            })
        }

        // What the name checks accept reaches Twilio unchanged, as one path segment.
        #[test]
        fn an_accepted_context_is_one_unchanged_path_segment() {
            let client = client("https://conversations.twilio.com");
            proptest!(|(name in names())| {
                prop_assume!(check_context(&name).is_ok());
                let url = client.url(&["Conversations", &name]);
                prop_assert_eq!(segment_after(&url, "Conversations"), Some(name.clone()));
                // Contexts need no encoding at all: what Twilio logs is what the token said.
                let tail = format!("/Conversations/{}", name);
                prop_assert!(url.path().ends_with(&tail));
            });
        }

        #[test]
        fn an_accepted_identity_is_one_unchanged_path_segment() {
            let client = client("https://conversations.twilio.com");
            proptest!(|(name in names())| {
                prop_assume!(check_identity(&name).is_ok());
                let url = client.url(&["Users", &name, "Conversations"]);
                let segments: Vec<&str> = url.path_segments().unwrap().collect();
                prop_assert_eq!(segments.last().copied(), Some("Conversations"));
                let mut without_tail = url.clone();
                without_tail.path_segments_mut().unwrap().pop();
                prop_assert_eq!(segment_after(&without_tail, "Users"), Some(name.clone()));
            });
        }
    }

    #[test]
    fn paths_are_built_below_the_service_with_each_segment_encoded() {
        let c = client("https://conversations.twilio.com");
        assert_eq!(
            c.url(&["Users", "alex@example.com/x y"]).as_str(),
            "https://conversations.twilio.com/v1/Services/IS00112233445566778899aabbccddeeff/Users/alex@example.com%2Fx%20y"
        );
        assert_eq!(
            c.url(&["Conversations", "shipment:42", "Participants"])
                .as_str(),
            "https://conversations.twilio.com/v1/Services/IS00112233445566778899aabbccddeeff/Conversations/shipment:42/Participants"
        );
        // A base with a path prefix (a proxy) keeps it.
        let c = client("http://127.0.0.1:4010/twilio/");
        assert_eq!(
            c.url(&["Users"]).as_str(),
            "http://127.0.0.1:4010/twilio/v1/Services/IS00112233445566778899aabbccddeeff/Users"
        );
    }

    #[test]
    fn only_urls_of_the_same_service_are_followed() {
        let c = client("https://conversations.twilio.com");
        let own = "https://conversations.twilio.com/v1/Services/IS00112233445566778899aabbccddeeff/Users/alex/Conversations?PageToken=x";
        assert!(c.is_own(&Url::parse(own).unwrap()));
        for other in [
            "https://evil.example/v1/Services/IS00112233445566778899aabbccddeeff/Users",
            "http://conversations.twilio.com/v1/Services/IS00112233445566778899aabbccddeeff/Users",
            "https://conversations.twilio.com/v1/Services/IS99999999999999999999999999999999/Users",
        ] {
            assert!(!c.is_own(&Url::parse(other).unwrap()), "{other}");
        }
    }

    #[test]
    fn the_authorization_header_matches_twilio_python_and_is_sensitive() {
        let c = client("https://conversations.twilio.com");
        assert!(c.authorization.is_sensitive());
        // vectors.json → rest_requests[*].authorization
        assert_eq!(
            c.authorization.to_str().unwrap(),
            "Basic U0tmZWRjYmE5ODc2NTQzMjEwZmVkY2JhOTg3NjU0MzIxMDpzZWNyZXRfZm9yX3Rlc3RzXzAxMjM0NTY3ODlhYmNkZWY="
        );
    }

    #[test]
    fn forms_repeat_keys_for_lists_and_encode_as_twilio_python_does() {
        let body = Form::new()
            .with("FriendlyName", "ctx-member")
            .with("Type", "conversation")
            .with_all("Permission", ["sendMessage", "sendMediaMessage"])
            .finish();
        assert_eq!(
            body,
            "FriendlyName=ctx-member&Type=conversation&Permission=sendMessage&Permission=sendMediaMessage"
        );
        let body = Form::new()
            .with("FriendlyName", "Shipment 42")
            .with("UniqueName", "shipment:42")
            .with("Attributes", r#"{"context":"shipment:42"}"#)
            .finish();
        assert_eq!(
            body,
            "FriendlyName=Shipment+42&UniqueName=shipment%3A42&Attributes=%7B%22context%22%3A%22shipment%3A42%22%7D"
        );
    }

    #[test]
    fn backoff_grows_is_capped_and_never_zero() {
        let c = client("https://conversations.twilio.com");
        for attempt in 1..=20 {
            let d = c.backoff(attempt);
            let cap = (Duration::from_millis(200) * 2u32.pow((attempt - 1).min(16)))
                .min(Duration::from_secs(2));
            assert!(
                d >= cap / 2 && d <= cap,
                "attempt {attempt}: {d:?} vs cap {cap:?}"
            );
        }
    }

    #[test]
    fn errors_read_as_twilio_wrote_them() {
        let e = TwilioError {
            status: Some(409),
            code: Some(50201),
            message: "User already exists".into(),
            attempts: 1,
        };
        assert_eq!(
            e.to_string(),
            "HTTP 409, Twilio error 50201: User already exists"
        );
        let e = TwilioError {
            status: Some(503),
            code: None,
            message: "Service Unavailable".into(),
            attempts: 4,
        };
        assert_eq!(
            e.to_string(),
            "HTTP 503: Service Unavailable (after 4 attempts)"
        );
    }
}
