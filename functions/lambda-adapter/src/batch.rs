//! SQS batches with partial batch failures (`ReportBatchItemFailures`): each record is
//! handled on its own, and only the ones that failed are handed back for redelivery.

use std::future::Future;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use context_chat::ChatError;
use context_chat::notifications::QueueMessage;
use lambda_runtime::{LambdaEvent, service_fn};

use crate::Error;

/// Serves SQS invocations until the runtime stops, handing each record's message to
/// `handle` with a clone of `state`.
pub async fn serve_queue<S, F, Fut>(state: S, handle: F) -> Result<(), Error>
where
    S: Clone,
    F: Fn(S, QueueMessage) -> Fut,
    Fut: Future<Output = Result<(), ChatError>>,
{
    let (state, handle) = (&state, &handle);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(run_batch(event.payload, |message| handle(state.clone(), message)).await)
    }))
    .await
}

/// Records of one FIFO group arrive in order, and a failed record must stop the rest of
/// its batch from overtaking it; so records are handled one by one, and after a failure
/// the remaining ones are reported failed too.
async fn run_batch<F, Fut>(event: SqsEvent, handle: F) -> SqsBatchResponse
where
    F: Fn(QueueMessage) -> Fut,
    Fut: Future<Output = Result<(), ChatError>>,
{
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
        if let Err(err) = handle(message).await {
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
