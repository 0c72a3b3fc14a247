//! SQS batches with partial batch failures (`ReportBatchItemFailures`): each record is
//! handled on its own, and only the ones that failed are handed back for redelivery.

use std::collections::HashSet;
use std::future::Future;
use std::time::{Duration, SystemTime};

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use context_chat::ChatError;
use context_chat::metrics::{self, Counter, ErrorCounter};
use context_chat::notifications::QueueMessage;
use lambda_runtime::{LambdaEvent, service_fn};

use crate::Error;

/// A record is started only with this much of the invocation left: one record may wait
/// for Twilio (10 s) and SendGrid.
pub const RECORD_TIME: Duration = Duration::from_secs(15);

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
        // An emulator may send no deadline (one in the past): then none is enforced.
        let deadline = Some(event.context.deadline()).filter(|d| *d > SystemTime::now());
        let response = run_batch(event.payload, deadline, |message| {
            handle(state.clone(), message)
        })
        .await;
        crate::write_metrics();
        Ok::<_, Error>(response)
    }))
    .await
}

/// Records of one FIFO message group arrive in order, and a failed record must not be
/// overtaken by the later ones of its group; so records are handled one by one, and after
/// a failure the later records of the same group are reported failed untried. Records of
/// other groups, and those with no group (flushes from the delay queue), go on. Records
/// left when the invocation's `deadline` is near are reported failed untried, so that a
/// timeout never cuts one off midway.
pub async fn run_batch<F, Fut>(
    event: SqsEvent,
    deadline: Option<SystemTime>,
    handle: F,
) -> SqsBatchResponse
where
    F: Fn(QueueMessage) -> Fut,
    Fut: Future<Output = Result<(), ChatError>>,
{
    let mut failures = Vec::new();
    let mut failed_groups: HashSet<String> = HashSet::new();
    let mut out_of_time = 0usize;
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let group = record.attributes.get("MessageGroupId").cloned();
        if group.as_ref().is_some_and(|g| failed_groups.contains(g)) {
            failures.push(failure(id));
            continue;
        }
        let left = deadline.map(|d| d.duration_since(SystemTime::now()).unwrap_or_default());
        if left.is_some_and(|left| left < RECORD_TIME) {
            out_of_time += 1;
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
        metrics::count(Counter::Requests);
        if let Err(err) = handle(message).await {
            metrics::error(ErrorCounter::Errors, err.kind);
            tracing::warn!(message_id = %id, error_type = %err.kind, reason = %err.message, "record failed; SQS will deliver it again");
            failures.push(failure(id));
            if let Some(group) = group {
                failed_groups.insert(group);
            }
        }
    }
    if out_of_time > 0 {
        tracing::warn!(
            records = out_of_time,
            "the invocation's time ran short; records handed back untried"
        );
    }
    metrics::add(Counter::NotifierRecordsFailed, failures.len() as u64);
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    response
}

fn failure(id: String) -> BatchItemFailure {
    let mut failure = BatchItemFailure::default();
    failure.item_identifier = id;
    failure
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde_json::json;

    use super::*;

    fn event(records: &[(&str, Option<&str>, &str)]) -> SqsEvent {
        serde_json::from_value(json!({"Records": records.iter().map(|(id, group, sid)| {
            let body = match sid.strip_prefix("flush:") {
                Some(context) => json!({"kind": "flush", "channel": context, "email": "a@example.org"}),
                None => json!({"kind": "message", "conversationSid": "CH00000000000000000000000000000000",
                    "messageSid": sid, "author": "sam", "body": "b", "dateCreated": "d"}),
            };
            let mut attributes = json!({"ApproximateReceiveCount": "1"});
            if let Some(g) = group {
                attributes["MessageGroupId"] = json!(g);
            }
            json!({"messageId": id, "body": body.to_string(), "attributes": attributes,
                   "messageAttributes": {}})
        }).collect::<Vec<_>>()}))
        .unwrap()
    }

    fn failed(response: &SqsBatchResponse) -> Vec<&str> {
        response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect()
    }

    fn sid(message: &QueueMessage) -> String {
        match message {
            QueueMessage::Message(m) => m.message_sid.clone(),
            QueueMessage::Flush { context, .. } => format!("flush:{context}"),
            QueueMessage::Sweep { identity } => format!("sweep:{identity}"),
            QueueMessage::SmsReply(reply) => reply.message_sid.clone(),
            QueueMessage::Event(event) => event.id.clone(),
        }
    }

    /// One bad record fails only the later records of its own group.
    #[tokio::test]
    async fn a_failure_holds_back_only_its_own_group() {
        let batch = event(&[
            ("1", Some("CH-a"), "bad"),
            ("2", Some("CH-b"), "ok-b1"),
            ("3", Some("CH-a"), "ok-a2"),
            ("4", None, "flush:general"),
            ("5", Some("CH-b"), "ok-b2"),
        ]);
        let handled = Mutex::new(Vec::new());
        let deadline = Some(SystemTime::now() + Duration::from_secs(60));
        let response = run_batch(batch, deadline, |m| {
            let sid = sid(&m);
            handled.lock().unwrap().push(sid.clone());
            async move {
                if sid == "bad" {
                    Err(ChatError::internal("SendGrid is down"))
                } else {
                    Ok(())
                }
            }
        })
        .await;
        assert_eq!(failed(&response), ["1", "3"]);
        assert_eq!(
            *handled.lock().unwrap(),
            ["bad", "ok-b1", "flush:general", "ok-b2"],
            "the held-back record is not tried"
        );
    }

    /// A failed flush (no group) stops nothing.
    #[tokio::test]
    async fn flushes_never_stop_the_batch() {
        let batch = event(&[
            ("1", None, "flush:a"),
            ("2", None, "flush:b"),
            ("3", Some("CH-a"), "m"),
        ]);
        let deadline = Some(SystemTime::now() + Duration::from_secs(60));
        let response = run_batch(batch, deadline, |m| {
            let fail = sid(&m) == "flush:a";
            async move {
                if fail {
                    Err(ChatError::internal("down"))
                } else {
                    Ok(())
                }
            }
        })
        .await;
        assert_eq!(failed(&response), ["1"]);
    }

    /// Near the deadline, records are handed back untried.
    #[tokio::test]
    async fn records_left_near_the_deadline_are_failed_untried() {
        let batch = event(&[("1", Some("CH-a"), "m1"), ("2", Some("CH-b"), "m2")]);
        let tried = Mutex::new(0);
        let deadline = Some(SystemTime::now() + RECORD_TIME - Duration::from_secs(1));
        let response = run_batch(batch, deadline, |_| {
            *tried.lock().unwrap() += 1;
            async { Ok(()) }
        })
        .await;
        assert_eq!(failed(&response), ["1", "2"]);
        assert_eq!(*tried.lock().unwrap(), 0);
    }
}
