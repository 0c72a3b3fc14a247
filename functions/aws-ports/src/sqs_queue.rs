//! The queues on SQS: message events on a FIFO queue, one group per conversation (in order)
//! and de-duplicated by message SID; flushes on a standard queue, which alone allows a
//! per-message delay; events to the platform on a standard queue of their own (with a
//! dead-letter queue the deliverer writes to when the platform did not take one in a day).

use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::DisplayErrorContext;
use context_chat::events::{Delivery, EventQueue};
use context_chat::notifications::{Queue, QueueMessage};
use context_chat::{ChatError, Result};
use futures_util::future::BoxFuture;

/// SQS's longest per-message delay.
const MAX_DELAY: Duration = Duration::from_secs(900);

pub struct SqsQueue {
    client: Client,
    queue_url: Option<String>,
    delay_queue_url: Option<String>,
    events: Option<EventQueues>,
}

/// The events queue, and its dead-letter queue (`EVENTS_DEAD_LETTER_QUEUE_URL`, only where
/// events are delivered).
#[derive(Debug, Clone, Default)]
pub struct EventQueues {
    pub url: String,
    pub dead_letters: Option<String>,
}

impl SqsQueue {
    pub fn new(client: Client, queue_url: Option<String>, delay_queue_url: Option<String>) -> Self {
        Self {
            client,
            queue_url,
            delay_queue_url,
            events: None,
        }
    }

    pub fn with_events(mut self, events: Option<EventQueues>) -> Self {
        self.events = events;
        self
    }

    fn events_url(&self) -> Result<&str> {
        self.events
            .as_ref()
            .map(|e| e.url.as_str())
            .ok_or_else(|| missing(crate::EVENTS_QUEUE_ENV))
    }

    async fn send(&self, url: &str, message: &QueueMessage, delay: Duration) -> Result<()> {
        self.client
            .send_message()
            .queue_url(url)
            .message_body(message.to_json())
            // Whole seconds, rounded up: a sweep must not come early.
            .delay_seconds(delay.min(MAX_DELAY).as_secs_f64().ceil() as i32)
            .send()
            .await
            .map_err(|e| {
                tracing::error!(error = %DisplayErrorContext(&e), "SQS SendMessage (delayed) failed");
                ChatError::internal(match message {
                    QueueMessage::Sweep { .. } => "A sweep could not be queued.",
                    QueueMessage::Event(_) => "An event could not be queued.",
                    _ => "A flush could not be queued.",
                })
            })?;
        Ok(())
    }
}

fn missing(name: &str) -> ChatError {
    ChatError::internal(format!("The environment variable {name} is not set."))
}

impl Queue for SqsQueue {
    fn enqueue<'a>(&'a self, message: &'a QueueMessage) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let url = self
                .queue_url
                .as_deref()
                .ok_or_else(|| missing(crate::QUEUE_ENV))?;
            let (group, id) = message.ordering().ok_or_else(|| {
                ChatError::internal("Only the webhook's events are queued in order.")
            })?;
            self.client
                .send_message()
                .queue_url(url)
                .message_body(message.to_json())
                .message_group_id(group)
                .message_deduplication_id(id)
                .send()
                .await
                .map_err(|e| {
                    tracing::error!(error = %DisplayErrorContext(&e), "SQS SendMessage failed");
                    ChatError::internal("The message could not be queued.")
                })?;
            Ok(())
        })
    }

    /// On the delay queue, handled after `delay` (at most SQS's 15 minutes); an event on
    /// the events queue.
    fn later(&self, message: QueueMessage, delay: Duration) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let url = match &message {
                QueueMessage::Event(_) => self.events_url()?,
                _ => self
                    .delay_queue_url
                    .as_deref()
                    .ok_or_else(|| missing(crate::DELAY_QUEUE_ENV))?,
            };
            self.send(url, &message, delay).await
        })
    }
}

impl EventQueue for SqsQueue {
    fn send_event(&self, delivery: Delivery, delay: Duration) -> BoxFuture<'_, Result<()>> {
        self.later(QueueMessage::Event(delivery), delay)
    }

    fn dead_letter(&self, delivery: Delivery) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let message = QueueMessage::Event(delivery);
            let url = self
                .events
                .as_ref()
                .and_then(|e| e.dead_letters.as_deref())
                .ok_or_else(|| missing(crate::EVENTS_DEAD_LETTER_QUEUE_ENV))?;
            self.send(url, &message, Duration::ZERO).await
        })
    }
}
