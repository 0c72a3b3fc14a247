//! Twilio's post-event webhook (`POST /twilio/webhook/<webhook/pathSecret>`) and the
//! unsubscribe links of notification emails (`GET|POST /notifications/unsubscribe`) on an
//! HTTP API (payload 2.0): the library's routes, as `chatctl serve` answers them.
//! `WEBHOOK_PUBLIC_URL` is the webhook's base URL configured in Twilio when a custom domain
//! makes it differ from what the HTTP API sees.

use context_chat::http::notifications;
use lambda_adapter::{Error, serve_http, start, table};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let app = start(&table::TWILIO_WEBHOOK).await;
    let public_url = std::env::var("WEBHOOK_PUBLIC_URL").ok();
    serve_http(notifications::routes(app, public_url)).await
}
