//! The notifier: SQS batches of message events (FIFO queue) and flushes (delay queue).
//! Each record is handled on its own; the ones that failed are reported as partial batch
//! failures, so SQS redelivers only them (`ReportBatchItemFailures`).

use std::sync::Arc;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use context_chat::App;
use context_chat::notifications::QueueMessage;
use lambda_adapter::{Error, Warm, init_tracing};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init_tracing();
    let app = aws_ports::build_notification_app(Warm::Settings, lambda_adapter::ALL_PATHS).await;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let app: Arc<App> = app.clone();
        async move { Ok::<_, Error>(handle(&app, event.payload).await) }
    }))
    .await
}

/// Records of one FIFO group arrive in order, and a failed record must stop the rest of
/// its batch from overtaking it; so records are handled one by one, and after a failure
/// the remaining ones are reported failed too.
async fn handle(app: &App, event: SqsEvent) -> SqsBatchResponse {
    let mut failures = Vec::new();
    let mut failed = false;
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        if failed {
            failures.push(failure(id));
            continue;
        }
        let message = match QueueMessage::from_json(record.body.as_deref().unwrap_or_default()) {
            Ok(m) => m,
            Err(err) => {
                // Redelivering it cannot help; say so and drop it.
                tracing::error!(message_id = %id, reason = %err.message, "dropping a record that is not a notifier message");
                continue;
            }
        };
        if let Err(err) = app.notify(&message).await {
            tracing::warn!(message_id = %id, error_type = %err.kind, reason = %err.message, "record failed; SQS will deliver it again");
            failures.push(failure(id));
            failed = true;
        }
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    response
}

fn failure(id: String) -> BatchItemFailure {
    let mut failure = BatchItemFailure::default();
    failure.item_identifier = id;
    failure
}
