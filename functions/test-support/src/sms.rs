//! A stateful stand-in for Twilio's SMS side on loopback: Verify v2 (one Verify Service:
//! `POST /v2/Services/{VA…}/Verifications` and `/VerificationCheck`) and the Messages
//! resource of the 2010 API (`POST /2010-04-01/Accounts/{AC…}/Messages.json`), answering as
//! Twilio does, statuses and error codes included:
//!
//! - a verification lives 10 minutes; a new send to a pending number reuses it (same code)
//!   and counts, the 6th send is 429/60203; each wrong check counts, the 6th check is
//!   429/60202; an approved, expired or never-started one is 404/20404 on check;
//! - [`LANDLINE`] is 400/60205, [`FRAUD_BLOCKED`] 403/60410 (Fraud Guard), [`GEO_BLOCKED`]
//!   403/60605 (geo permissions); a malformed `To` is 400/60200;
//! - a message to a number that replied STOP ([`SmsStandIn::reply_stop`]) is 400/21610;
//!   without the Messaging Service it is 400/21603 (no `From`), 401/20003 without the API key.
//!
//! Every request is first shown to Prism with Twilio's specs (as the Conversations stand-in
//! does); one they do not allow is answered 400 and recorded, and the stand-in then fails
//! its test when dropped.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::ACCOUNT_SID;
use crate::prism::Prism;

pub const VERIFY_SERVICE_SID: &str = "VA0123456789abcdef0123456789abcdef";
pub const MESSAGING_SERVICE_SID: &str = "MG0123456789abcdef0123456789abcdef";
/// Verify answers 60205: SMS is not supported by landline phone number.
pub const LANDLINE: &str = "+14155550190";
/// Verify answers 60410: Fraud Guard blocked the delivery.
pub const FRAUD_BLOCKED: &str = "+14155550191";
/// Verify answers 60605: the country is not in the service's geo permissions.
pub const GEO_BLOCKED: &str = "+882355550192";

const TTL: Duration = Duration::from_secs(600);
const MAX_SENDS: u32 = 5;
const MAX_CHECKS: u32 = 5;

/// One text message Twilio accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentSms {
    pub to: String,
    pub body: String,
    pub messaging_service_sid: String,
}

/// One request as the stand-in received it (its path, and its status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsRequest {
    pub path: String,
    pub body: String,
    pub status: u16,
}

struct Verification {
    sid: String,
    code: String,
    started: Instant,
    sends: u32,
    checks: u32,
}

#[derive(Default)]
struct Held {
    verifications: HashMap<String, Verification>,
    /// Codes sent, per number, oldest first: what the phone received.
    codes: HashMap<String, Vec<String>>,
    sent: Vec<SentSms>,
    stopped: HashSet<String>,
    log: Vec<SmsRequest>,
    violations: Vec<String>,
    faults: Vec<SmsFault>,
}

/// A failure the next matching request gets, once.
#[derive(Debug, Clone)]
struct SmsFault {
    path_ends_with: String,
    status: u16,
    /// Done first, then failed: Twilio acted and the answer was lost (a 5xx after sending).
    after_processing: bool,
}

struct Inner {
    authorization: String,
    prism_url: Option<String>,
    http: reqwest::Client,
    state: Mutex<Held>,
    next_sid: AtomicU64,
}

pub struct SmsStandIn {
    addr: SocketAddr,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
    _prism: Option<Prism>,
}

impl SmsStandIn {
    pub async fn start() -> Self {
        let prism = tokio::task::spawn_blocking(Prism::start).await.unwrap();
        let inner = Arc::new(Inner {
            authorization: crate::twilio::basic_authorization(),
            prism_url: Some(prism.url().to_owned()),
            http: reqwest::Client::new(),
            state: Mutex::new(Held::default()),
            next_sid: AtomicU64::new(1),
        });
        let app = Router::new().fallback(handle).with_state(inner.clone());
        let (addr, task) = crate::serve_on_loopback(app).await;
        Self {
            addr,
            inner,
            task,
            _prism: Some(prism),
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The settings variables that point Context Chat here (with the Twilio stand-in's
    /// account and API key).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("TWILIO_VERIFY_SERVICE_SID", VERIFY_SERVICE_SID.into()),
            ("TWILIO_MESSAGING_SERVICE_SID", MESSAGING_SERVICE_SID.into()),
            ("TWILIO_VERIFY_API_BASE_URL", self.base_url()),
            ("TWILIO_MESSAGING_API_BASE_URL", self.base_url()),
        ]
    }

    /// Only the base URLs (a Lambda reads the service SIDs from SSM: [`crate::put_sms_settings`]).
    pub fn base_url_env(&self) -> Vec<(&'static str, String)> {
        self.env().split_off(2)
    }

    /// The last code texted to `to`, as its owner would read it.
    pub fn last_code(&self, to: &str) -> Option<String> {
        let state = self.inner.state.lock().unwrap();
        state.codes.get(to).and_then(|c| c.last().cloned())
    }

    /// How many codes were texted to `to`.
    pub fn codes_sent(&self, to: &str) -> usize {
        let state = self.inner.state.lock().unwrap();
        state.codes.get(to).map_or(0, Vec::len)
    }

    /// Every notification text accepted, oldest first.
    pub fn sent(&self) -> Vec<SentSms> {
        self.inner.state.lock().unwrap().sent.clone()
    }

    /// The next request whose path ends with `path_ends_with` (`Verifications`,
    /// `VerificationCheck`, `Messages.json`) is answered `status`; `after_processing`: after
    /// Twilio did what it asked (a code or a text went out, and the answer was lost), else
    /// before (as a 429 is).
    pub fn fail_next(&self, path_ends_with: &str, status: u16, after_processing: bool) {
        self.inner.state.lock().unwrap().faults.push(SmsFault {
            path_ends_with: path_ends_with.to_owned(),
            status,
            after_processing,
        });
    }

    pub fn requests(&self) -> Vec<SmsRequest> {
        self.inner.state.lock().unwrap().log.clone()
    }

    /// The owner of `to` replies STOP: Twilio refuses further messages with 21610.
    pub fn reply_stop(&self, to: &str) {
        self.inner
            .state
            .lock()
            .unwrap()
            .stopped
            .insert(to.to_owned());
    }

    /// The owner of `to` texts START: Twilio sends to the number again.
    pub fn reply_start(&self, to: &str) {
        self.inner.state.lock().unwrap().stopped.remove(to);
    }

    /// Ten minutes pass for every pending verification.
    pub fn expire_verifications(&self) {
        let mut state = self.inner.state.lock().unwrap();
        for v in state.verifications.values_mut() {
            v.started = Instant::now().checked_sub(TTL).unwrap_or(v.started);
        }
    }

    pub fn violations(&self) -> Vec<String> {
        self.inner.state.lock().unwrap().violations.clone()
    }
}

impl Drop for SmsStandIn {
    fn drop(&mut self) {
        self.task.abort();
        let violations = self.violations();
        if !violations.is_empty() && !std::thread::panicking() {
            panic!(
                "requests that break Twilio's OpenAPI specs:\n{}",
                violations.join("\n")
            );
        }
    }
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fault = {
        let mut state = inner.state.lock().unwrap();
        let found = state
            .faults
            .iter()
            .position(|f| uri.path().ends_with(&f.path_ends_with));
        found.map(|i| state.faults.remove(i))
    };
    let (status, answer) = match fault {
        Some(f) if !f.after_processing => error(f.status, 20429, "injected by the test"),
        Some(f) => {
            inner.answer(&method, &uri, &headers, &body).await;
            error(f.status, 20500, "injected by the test, after processing")
        }
        None => inner.answer(&method, &uri, &headers, &body).await,
    };
    inner.state.lock().unwrap().log.push(SmsRequest {
        path: uri.path().to_owned(),
        body: String::from_utf8_lossy(&body).into_owned(),
        status,
    });
    (
        StatusCode::from_u16(status).unwrap(),
        [(header::CONTENT_TYPE, "application/json")],
        answer.to_string(),
    )
        .into_response()
}

fn error(status: u16, code: u32, message: &str) -> (u16, Value) {
    (status, crate::twilio::error_body(status, code, message))
}

impl Inner {
    fn sid(&self, prefix: &str) -> String {
        format!(
            "{prefix}{:032x}",
            self.next_sid.fetch_add(1, Ordering::SeqCst)
        )
    }

    async fn answer(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> (u16, Value) {
        if let Some(prism_url) = &self.prism_url
            && let Some(violation) =
                crate::prism::check(&self.http, prism_url, method, uri, headers, body).await
        {
            let message = format!("{method} {}: {violation}", uri.path());
            self.state.lock().unwrap().violations.push(message.clone());
            return error(
                400,
                0,
                &format!("not allowed by Twilio's OpenAPI spec: {message}"),
            );
        }
        let authorized = headers
            .get(header::AUTHORIZATION)
            .is_some_and(|v| v.as_bytes() == self.authorization.as_bytes());
        if !authorized {
            return error(401, 20003, "Authenticate");
        }
        let form: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
        let field = |name: &str| {
            form.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let segments: Vec<&str> = uri.path().trim_start_matches('/').split('/').collect();
        match (method.as_str(), segments.as_slice()) {
            ("POST", ["v2", "Services", VERIFY_SERVICE_SID, "Verifications"]) => {
                self.start_verification(&field("To"), &field("Channel"))
            }
            ("POST", ["v2", "Services", VERIFY_SERVICE_SID, "VerificationCheck"]) => {
                self.check_verification(&field("To"), &field("Code"))
            }
            ("POST", ["2010-04-01", "Accounts", ACCOUNT_SID, "Messages.json"]) => {
                self.send(&field("To"), &field("MessagingServiceSid"), &field("Body"))
            }
            _ => error(
                404,
                20404,
                &format!("The requested resource {} was not found", uri.path()),
            ),
        }
    }

    fn start_verification(&self, to: &str, channel: &str) -> (u16, Value) {
        if channel != "sms" {
            return error(400, 60200, "Invalid parameter `Channel`");
        }
        if !e164(to) {
            return error(400, 60200, "Invalid parameter `To`");
        }
        match to {
            LANDLINE => return error(400, 60205, "SMS is not supported by landline phone number"),
            FRAUD_BLOCKED => return error(403, 60410, "Verification delivery attempt blocked"),
            GEO_BLOCKED => {
                return error(
                    403,
                    60605,
                    "Verification delivery attempt blocked: the country is not allowed by the service's geo permissions",
                );
            }
            _ => {}
        }
        let mut state = self.state.lock().unwrap();
        if state
            .verifications
            .get(to)
            .is_some_and(|v| v.started.elapsed() >= TTL)
        {
            state.verifications.remove(to);
        }
        if !state.verifications.contains_key(to) {
            let code = format!(
                "{:06}",
                self.next_sid.fetch_add(7919, Ordering::SeqCst) % 1_000_000
            );
            state.verifications.insert(
                to.to_owned(),
                Verification {
                    sid: self.sid("VE"),
                    code,
                    started: Instant::now(),
                    sends: 0,
                    checks: 0,
                },
            );
        }
        let verification = state.verifications.get_mut(to).unwrap();
        if verification.sends >= MAX_SENDS {
            return error(429, 60203, "Max send attempts reached");
        }
        verification.sends += 1;
        let (sid, code) = (verification.sid.clone(), verification.code.clone());
        state.codes.entry(to.to_owned()).or_default().push(code);
        (201, self.verification_json(&sid, to, "pending", false))
    }

    fn check_verification(&self, to: &str, code: &str) -> (u16, Value) {
        let mut state = self.state.lock().unwrap();
        let not_found = || {
            error(
                404,
                20404,
                &format!(
                    "The requested resource /Services/{VERIFY_SERVICE_SID}/VerificationCheck was not found"
                ),
            )
        };
        let Some(verification) = state.verifications.get_mut(to) else {
            return not_found();
        };
        if verification.started.elapsed() >= TTL {
            state.verifications.remove(to);
            return not_found();
        }
        if verification.checks >= MAX_CHECKS {
            return error(429, 60202, "Max check attempts reached");
        }
        verification.checks += 1;
        let sid = verification.sid.clone();
        if verification.code == code {
            state.verifications.remove(to);
            return (200, self.verification_json(&sid, to, "approved", true));
        }
        (200, self.verification_json(&sid, to, "pending", false))
    }

    fn verification_json(&self, sid: &str, to: &str, status: &str, valid: bool) -> Value {
        json!({
            "sid": sid,
            "service_sid": VERIFY_SERVICE_SID,
            "account_sid": ACCOUNT_SID,
            "to": to,
            "channel": "sms",
            "status": status,
            "valid": valid,
            "lookup": {},
            "amount": null,
            "payee": null,
            "send_code_attempts": [],
            "date_created": "2026-11-24T10:00:00Z",
            "date_updated": "2026-11-24T10:00:00Z",
            "sna": null,
            "url": format!("https://verify.twilio.com/v2/Services/{VERIFY_SERVICE_SID}/Verifications/{sid}"),
        })
    }

    fn send(&self, to: &str, messaging_service_sid: &str, body: &str) -> (u16, Value) {
        if messaging_service_sid.is_empty() {
            return error(
                400,
                21603,
                "A 'From' or 'MessagingServiceSid' parameter is required",
            );
        }
        if messaging_service_sid != MESSAGING_SERVICE_SID {
            return error(404, 20404, "The requested resource was not found");
        }
        if !e164(to) {
            return error(400, 21211, "The 'To' number is not a valid phone number.");
        }
        if body.is_empty() {
            return error(400, 21602, "Message body is required.");
        }
        let mut state = self.state.lock().unwrap();
        if state.stopped.contains(to) {
            return error(400, 21610, "Attempt to send to unsubscribed recipient");
        }
        state.sent.push(SentSms {
            to: to.to_owned(),
            body: body.to_owned(),
            messaging_service_sid: messaging_service_sid.to_owned(),
        });
        let sid = self.sid("SM");
        (
            201,
            json!({
                "sid": sid,
                "account_sid": ACCOUNT_SID,
                "messaging_service_sid": messaging_service_sid,
                "to": to,
                "from": null,
                "body": body,
                "status": "accepted",
                "num_segments": "0",
                "direction": "outbound-api",
                "api_version": "2010-04-01",
                "uri": format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json"),
            }),
        )
    }
}

fn e164(to: &str) -> bool {
    to.strip_prefix('+').is_some_and(|d| {
        (8..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0')
    })
}
