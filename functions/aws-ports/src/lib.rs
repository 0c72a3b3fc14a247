//! The AWS adapters of the ports: [`DynamoStore`] (the store) and [`SqsQueue`] (the queue),
//! and how the environment names them. Adapters only: the Lambdas are composed in
//! `lambda-adapter`'s profile table. A crate of its own so that only the functions that use
//! them link the DynamoDB and SQS SDKs.

mod dynamo_store;
mod sqs_queue;

use std::sync::Arc;
use std::time::Duration;

use context_chat::notifications::{Ports, Store};
use context_chat::{ChatError, Result};

pub use dynamo_store::{DynamoStore, create_table};
pub use sqs_queue::{EventQueues, SqsQueue};

/// The table of subscriptions, addresses and digests.
pub const TABLE_ENV: &str = "NOTIFICATIONS_TABLE";
/// The FIFO queue of message events (webhook → notifier).
pub const QUEUE_ENV: &str = "NOTIFY_QUEUE_URL";
/// The standard queue of delayed flushes (notifier → notifier).
pub const DELAY_QUEUE_ENV: &str = "NOTIFY_DELAY_QUEUE_URL";

/// The standard queue of events to the platform (every function that emits them, and the
/// deliverer, which re-queues a failed one).
pub const EVENTS_QUEUE_ENV: &str = "EVENTS_QUEUE_URL";
/// Where the deliverer puts an event the platform did not take in a day.
pub const EVENTS_DEAD_LETTER_QUEUE_ENV: &str = "EVENTS_DEAD_LETTER_QUEUE_URL";

/// Where the deployment's HTTP API answers (for unsubscribe links in emails).
pub const PUBLIC_URL_ENV: &str = "NOTIFICATIONS_PUBLIC_URL";

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Twilio gives the webhook 5 s; a stuck call must fail (and Twilio retry) before that.
fn timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(Duration::from_millis(1500))
        .operation_timeout(Duration::from_secs(3))
        .build()
}

/// The DynamoDB table `NOTIFICATIONS_TABLE` names.
pub fn store_from_env(config: &aws_config::SdkConfig) -> Result<Arc<dyn Store>> {
    let table = var(TABLE_ENV).ok_or_else(|| {
        ChatError::internal(format!("The environment variable {TABLE_ENV} is not set."))
    })?;
    Ok(Arc::new(DynamoStore::new(
        aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(config)
                .timeout_config(timeouts())
                .build(),
        ),
        table,
    )))
}

fn sqs(config: &aws_config::SdkConfig) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(config)
            .timeout_config(timeouts())
            .build(),
    )
}

/// The events queue, when `EVENTS_QUEUE_URL` names one.
pub fn event_queue_from_env(
    config: &aws_config::SdkConfig,
) -> Option<Arc<dyn context_chat::events::EventQueue>> {
    let url = var(EVENTS_QUEUE_ENV)?;
    let queues = EventQueues {
        url,
        dead_letters: var(EVENTS_DEAD_LETTER_QUEUE_ENV),
    };
    Some(Arc::new(
        SqsQueue::new(sqs(config), None, None).with_events(Some(queues)),
    ))
}

/// What the environment names, for the functions:
/// the store when `NOTIFICATIONS_TABLE` is set, the queues when their URLs are.
pub fn ports_from_env(config: &aws_config::SdkConfig) -> Result<Ports> {
    let store = store_from_env(config)?;
    let queue = match (var(QUEUE_ENV), var(DELAY_QUEUE_ENV)) {
        (None, None) => None,
        (queue, delay) => Some(Arc::new(SqsQueue::new(sqs(config), queue, delay))
            as Arc<dyn context_chat::notifications::Queue>),
    };
    Ok(Ports {
        store,
        queue,
        public_url: var(PUBLIC_URL_ENV).and_then(|u| u.parse().ok()),
    })
}
