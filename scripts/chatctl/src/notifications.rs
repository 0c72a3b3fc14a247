//! Local mode's notifications: the embedded store and outbox in the data directory, an
//! in-process queue with one worker (retrying a failed message as SQS would), and a page
//! that lists the outbox. The webhook and unsubscribe routes are the library's.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::Html;
use context_chat::App;
use context_chat::notifications::sqlite_store::SqliteStore;
use context_chat::notifications::unsubscribe::escape;
use context_chat::notifications::{LocalQueue, Outbox, Ports, QueueMessage};
use tokio::sync::mpsc;

use crate::error::Result;

pub const OUTBOX_PATH: &str = "/outbox";

/// A message that keeps failing is dropped after this many tries (SQS's dead-letter queue
/// would take it in the cloud).
const MAX_TRIES: u32 = 5;

pub struct LocalNotifications {
    pub ports: Ports,
    pub outbox: Arc<Outbox>,
    pub store_path: PathBuf,
    /// What the queue delivers: hand it to [`start_worker`] once the app is built.
    pub receiver: mpsc::UnboundedReceiver<QueueMessage>,
}

impl LocalNotifications {
    /// `public_url` is where this server answers, for the unsubscribe links in emails.
    pub fn open(data_dir: &Path, public_url: url::Url) -> Result<Self> {
        let store = SqliteStore::open(data_dir)?;
        let store_path = store.path().to_owned();
        let (queue, receiver) = LocalQueue::new();
        Ok(Self {
            ports: Ports {
                store: Arc::new(store),
                queue: Some(Arc::new(queue)),
                public_url: Some(public_url),
            },
            outbox: Arc::new(Outbox::new(data_dir.join("outbox"))),
            store_path,
            receiver,
        })
    }
}

/// Starts the worker that hands queued messages to the notifier.
pub fn start_worker(mut receiver: mpsc::UnboundedReceiver<QueueMessage>, app: Arc<App>) {
    tokio::spawn(async move {
        while let Some(message) = receiver.recv().await {
            let app = app.clone();
            tokio::spawn(async move { deliver(&app, message).await });
        }
    });
}

async fn deliver(app: &App, message: QueueMessage) {
    for attempt in 1..=MAX_TRIES {
        let outcome = app.handle_queued(&message).await;
        match outcome {
            Ok(()) => return,
            Err(err) => {
                tracing::warn!(attempt, error_type = %err.kind, reason = %err.message, "notifying failed");
                tokio::time::sleep(Duration::from_secs(2u64.pow(attempt))).await;
            }
        }
    }
    tracing::error!("dropping a message after {MAX_TRIES} failed tries");
}

/// The outbox, newest first.
pub async fn outbox(State(outbox): State<Arc<Outbox>>) -> Html<String> {
    let mut emails = Outbox::list(outbox.dir());
    emails.reverse();
    let mut page = String::from(
        "<!doctype html><meta charset=utf-8><title>Context Chat outbox</title>\
         <style>body{font-family:sans-serif;max-width:50em;margin:2em auto}pre{white-space:pre-wrap;\
         background:#f4f4f4;padding:1em}</style><h1>Outbox</h1>",
    );
    page.push_str(&format!(
        "<p>{} email(s) in {}. Local mode writes email here instead of sending it.</p>",
        emails.len(),
        escape(&outbox.dir().display().to_string())
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
