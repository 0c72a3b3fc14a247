//! SendGrid's v3 mail API on loopback: `POST /v3/mail/send` checked as SendGrid checks it
//! (Bearer key, JSON body with personalizations, from, subject and content), answering 202
//! with no body, or SendGrid's `{"errors":[…]}` with its status codes; faults on demand.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

pub const SENDGRID_API_KEY: &str = "SG.stand-in-key.not-a-real-one";
pub const SENDGRID_DOMAIN: &str = "chat.example.org";

/// One email SendGrid accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentEmail {
    pub to: Vec<String>,
    pub from: String,
    pub subject: String,
    pub text: String,
    /// The `List-Unsubscribe` header asked for, if any.
    pub list_unsubscribe: Option<String>,
}

#[derive(Default)]
struct Inner {
    sent: Mutex<Vec<SentEmail>>,
    refused: Mutex<Vec<(u16, String)>>,
    faults: Mutex<VecDeque<u16>>,
}

pub struct SendGridStandIn {
    addr: SocketAddr,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl SendGridStandIn {
    pub async fn start() -> Self {
        let inner = Arc::new(Inner::default());
        let app = Router::new()
            .route("/v3/mail/send", post(send))
            .with_state(inner.clone());
        let (addr, task) = crate::serve_on_loopback(app).await;
        Self { addr, inner, task }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The settings variables that point Context Chat here.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("SENDGRID_API_KEY", SENDGRID_API_KEY.into()),
            ("SENDGRID_DOMAIN", SENDGRID_DOMAIN.into()),
            ("SENDGRID_API_BASE_URL", self.base_url()),
        ]
    }

    /// Accepted emails, oldest first.
    pub fn sent(&self) -> Vec<SentEmail> {
        self.inner.sent.lock().unwrap().clone()
    }

    pub fn sent_to(&self, address: &str) -> Vec<SentEmail> {
        self.sent()
            .into_iter()
            .filter(|e| e.to.iter().any(|t| t == address))
            .collect()
    }

    /// Requests refused for their shape or key: (status, reason). A test expects none.
    pub fn refused(&self) -> Vec<(u16, String)> {
        self.inner.refused.lock().unwrap().clone()
    }

    /// The next `times` requests get `status` (429, 500, 503…).
    pub fn fail_next(&self, status: u16, times: usize) {
        let mut faults = self.inner.faults.lock().unwrap();
        faults.extend(std::iter::repeat_n(status, times));
    }
}

impl Drop for SendGridStandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn error(status: u16, message: &str, field: Option<&str>) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        axum::Json(json!({"errors": [{"message": message, "field": field, "help": null}]})),
    )
        .into_response()
}

async fn send(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let refuse = |status: u16, message: &str, field: Option<&str>| {
        inner
            .refused
            .lock()
            .unwrap()
            .push((status, message.to_owned()));
        error(status, message, field)
    };
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if auth != format!("Bearer {SENDGRID_API_KEY}") {
        return refuse(
            401,
            "The provided authorization grant is invalid, expired, or revoked",
            None,
        );
    }
    if let Some(status) = inner.faults.lock().unwrap().pop_front() {
        return error(status, "stand-in fault", None);
    }
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !content_type.starts_with("application/json") {
        return refuse(415, "Content-Type should be application/json.", None);
    }
    let Ok(mail) = serde_json::from_slice::<Value>(&body) else {
        return refuse(400, "Bad Request", None);
    };
    let Some(personalizations) = mail["personalizations"]
        .as_array()
        .filter(|p| !p.is_empty())
    else {
        return refuse(
            400,
            "The personalizations field is required and must have at least one personalization.",
            Some("personalizations"),
        );
    };
    let mut to = Vec::new();
    for p in personalizations {
        let Some(recipients) = p["to"].as_array().filter(|t| !t.is_empty()) else {
            return refuse(
                400,
                "The to array is required for all personalization objects, and must have at least one email object with a valid email address.",
                Some("personalizations.0.to"),
            );
        };
        for r in recipients {
            match r["email"].as_str() {
                Some(e) if e.contains('@') => to.push(e.to_owned()),
                _ => {
                    return refuse(
                        400,
                        "Does not contain a valid address.",
                        Some("personalizations.0.to.0.email"),
                    );
                }
            }
        }
    }
    let Some(from) = mail["from"]["email"].as_str().filter(|f| f.contains('@')) else {
        return refuse(
            400,
            "The from object must be provided for every email send. It is an object that requires an email parameter, but may also contain a name parameter.",
            Some("from"),
        );
    };
    let Some(subject) = mail["subject"].as_str().filter(|s| !s.is_empty()) else {
        return refuse(
            400,
            "The subject is required. You can get around this requirement if you use a template with a subject defined or if every personalization has a subject defined.",
            Some("subject"),
        );
    };
    let Some(text) = mail["content"].as_array().and_then(|c| {
        c.iter()
            .find(|part| part["type"] == "text/plain")
            .and_then(|part| part["value"].as_str())
            .filter(|v| !v.is_empty())
    }) else {
        return refuse(
            400,
            "Unless a valid template_id is provided, the content parameter is required. There must be at least one defined content block.",
            Some("content"),
        );
    };
    // Custom headers: an object of strings, none of the ones SendGrid reserves.
    let headers = &mail["headers"];
    if !headers.is_null() {
        let Some(map) = headers.as_object() else {
            return refuse(
                400,
                "Invalid type. Expected: object, given: string.",
                Some("headers"),
            );
        };
        for (name, value) in map {
            let reserved = [
                "x-sg-id",
                "x-sg-eid",
                "received",
                "dkim-signature",
                "content-type",
                "content-transfer-encoding",
                "to",
                "from",
                "subject",
                "reply-to",
                "cc",
                "bcc",
            ];
            if !value.is_string() || reserved.contains(&name.to_ascii_lowercase().as_str()) {
                return refuse(400, "Invalid or reserved header.", Some("headers"));
            }
        }
    }
    inner.sent.lock().unwrap().push(SentEmail {
        to,
        from: from.to_owned(),
        subject: subject.to_owned(),
        text: text.to_owned(),
        list_unsubscribe: headers["List-Unsubscribe"].as_str().map(str::to_owned),
    });
    StatusCode::ACCEPTED.into_response()
}
