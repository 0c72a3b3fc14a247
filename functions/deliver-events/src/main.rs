//! Events to the platform (`platform/eventsUrl`), from their SQS queue: each record one
//! event, signed and POSTed; one the platform does not take is queued again with a delay
//! by the library, or dead-lettered after a day (`context_chat::events`).

use lambda_adapter::{Error, serve_queue, start, table};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let app = start(&table::DELIVER_EVENTS).await;
    serve_queue(app, |app, message| async move {
        app.handle_queued(&message).await
    })
    .await
}
