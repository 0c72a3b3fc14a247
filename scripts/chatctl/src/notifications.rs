//! Local mode's notifications: the embedded store and outbox in the data directory, an
//! in-process queue with one worker (retrying a failed message as SQS would), the webhook
//! route and a page that lists the outbox.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use context_chat::App;
use context_chat::notifications::file_store::FileStore;
use context_chat::notifications::operations::NotificationPorts;
use context_chat::notifications::unsubscribe::escape;
use context_chat::notifications::{
    LocalQueue, Outbox, QueueMessage, WebhookOutcome, WebhookRequest,
};
use serde_json::json;
use tokio::sync::mpsc;

pub const WEBHOOK_PATH: &str = "/twilio/webhook";
pub const OUTBOX_PATH: &str = "/outbox";

/// A message that keeps failing is dropped after this many tries (SQS's dead-letter queue
/// would take it in the cloud).
const MAX_TRIES: u32 = 5;

pub struct LocalNotifications {
    pub ports: NotificationPorts,
    pub outbox_dir: PathBuf,
    pub store_path: PathBuf,
    receiver: mpsc::UnboundedReceiver<QueueMessage>,
    sender: Arc<LocalQueue>,
}

impl LocalNotifications {
    /// `public_url` is where this server answers, for the unsubscribe links in emails.
    pub fn open(data_dir: &Path, public_url: url::Url) -> Result<Self, String> {
        let store = FileStore::open(data_dir).map_err(|e| e.message)?;
        let store_path = store.path().to_owned();
        let outbox_dir = data_dir.join("outbox");
        let (queue, receiver) = LocalQueue::new();
        let queue = Arc::new(queue);
        Ok(Self {
            ports: NotificationPorts {
                store: Arc::new(store),
                queue: Some(queue.clone()),
                fallback_mailer: Some(Arc::new(Outbox::new(outbox_dir.clone()))),
                public_url: Some(public_url),
            },
            outbox_dir,
            store_path,
            receiver,
            sender: queue,
        })
    }

    /// Starts the worker that hands queued messages to the notifier.
    pub fn start_worker(self, app: Arc<App>) -> (NotificationPorts, PathBuf) {
        let Self {
            ports,
            outbox_dir,
            mut receiver,
            sender,
            ..
        } = self;
        tokio::spawn(async move {
            while let Some(message) = receiver.recv().await {
                let app = app.clone();
                let sender = sender.clone();
                tokio::spawn(async move { deliver(&app, &sender, message).await });
            }
        });
        (ports, outbox_dir)
    }
}

async fn deliver(app: &App, _queue: &LocalQueue, message: QueueMessage) {
    for attempt in 1..=MAX_TRIES {
        match app.notify(&message).await {
            Ok(_) => return,
            Err(err) => {
                tracing::warn!(attempt, error_type = %err.kind, reason = %err.message, "notifying failed");
                tokio::time::sleep(Duration::from_secs(2u64.pow(attempt))).await;
            }
        }
    }
    tracing::error!("dropping a message after {MAX_TRIES} failed tries");
}

pub struct WebhookState {
    pub app: Arc<App>,
    /// The URL configured in Twilio (a tunnel's), when it differs from what this server sees.
    pub public_url: Option<String>,
    pub outbox_dir: PathBuf,
}

pub async fn webhook(
    State(state): State<Arc<WebhookState>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    let url = match &state.public_url {
        Some(public) => format!("{}{query}", public.trim_end_matches('?')),
        None => format!(
            "http://{}{}{query}",
            headers
                .get("host")
                .and_then(|h| h.to_str().ok())
                .unwrap_or("127.0.0.1"),
            uri.path()
        ),
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let outcome = state
        .app
        .receive_webhook(&WebhookRequest {
            url: &url,
            signature: header("x-twilio-signature"),
            content_type: header("content-type"),
            body: &body,
        })
        .await;
    let (status, message) = match outcome {
        Ok(WebhookOutcome::Queued { .. }) => (StatusCode::OK, "queued".to_owned()),
        Ok(WebhookOutcome::Ignored { .. }) => (StatusCode::OK, "ignored".to_owned()),
        Err(err) => (
            StatusCode::from_u16(err.kind.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            err.message,
        ),
    };
    (status, Json(json!({ "message": message }))).into_response()
}

#[derive(serde::Deserialize)]
pub struct UnsubscribeQuery {
    #[serde(default)]
    channel: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    sig: String,
}

/// The link in an email: a page with a button, so that a mail scanner that opens links does
/// not unsubscribe anyone; the button (and RFC 8058 one-click) POSTs to the same URL.
pub async fn unsubscribe_page(
    axum::extract::Query(q): axum::extract::Query<UnsubscribeQuery>,
) -> Html<String> {
    Html(context_chat::notifications::unsubscribe::confirmation_page(
        &q.channel, &q.email,
    ))
}

pub async fn unsubscribe(
    State(state): State<Arc<WebhookState>>,
    axum::extract::Query(q): axum::extract::Query<UnsubscribeQuery>,
) -> Response {
    let outcome = state.app.unsubscribe(&q.channel, &q.email, &q.sig).await;
    let (status, page) = context_chat::notifications::unsubscribe::result_page(&q.channel, outcome);
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        Html(page),
    )
        .into_response()
}

/// The outbox, newest first.
pub async fn outbox(State(state): State<Arc<WebhookState>>) -> Html<String> {
    let mut emails = Outbox::list(&state.outbox_dir);
    emails.reverse();
    let mut page = String::from(
        "<!doctype html><meta charset=utf-8><title>Context Chat outbox</title>\
         <style>body{font-family:sans-serif;max-width:50em;margin:2em auto}pre{white-space:pre-wrap;\
         background:#f4f4f4;padding:1em}</style><h1>Outbox</h1>",
    );
    page.push_str(&format!(
        "<p>{} email(s) in {}. Local mode writes email here instead of sending it.</p>",
        emails.len(),
        escape(&state.outbox_dir.display().to_string())
    ));
    for (name, content) in emails {
        page.push_str(&format!(
            "<h2>{}</h2><pre>{}</pre>",
            escape(&name),
            escape(&content)
        ));
    }
    Html(page)
}
