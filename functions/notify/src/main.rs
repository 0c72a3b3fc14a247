//! The notifier: SQS batches of message events (FIFO queue), flushes and sweeps (delay
//! queue), each record handed to the app; failed records go back to SQS
//! (`lambda_adapter::serve_queue`).

use lambda_adapter::{Error, serve_queue, start, table};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let app = start(&table::NOTIFY).await;
    serve_queue(app, |app, message| async move {
        app.handle_queued(&message).await
    })
    .await
}
