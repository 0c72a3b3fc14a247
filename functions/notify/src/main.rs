//! The notifier: SQS batches of message events (FIFO queue), flushes and sweeps (delay
//! queue), each record handed to the app; failed records go back to SQS
//! (`lambda_adapter::serve_queue`).

use lambda_adapter::{Error, Warm, init, reads, serve_queue};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init(env!("CARGO_PKG_NAME"));
    let app = aws_ports::build_texting_app(Warm::Settings, reads::NOTIFY).await;
    serve_queue(app, |app, message| async move {
        app.handle_queued(&message).await
    })
    .await
}
