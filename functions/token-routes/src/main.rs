//! The REST token routes of Twilio's and Virgil's sample apps on the HTTP API (payload 2.0):
//! `GET /virgil-jwt` and `GET /twilio-jwt[?deviceId=…]`, each with
//! `Authorization: Bearer <context token>`; the library's routes, as `chatctl serve` answers
//! them. The same settings, ledger and limit as `createChatToken` (the table
//! `NOTIFICATIONS_TABLE` names).

use context_chat::http::token_routes;
use lambda_adapter::{Error, serve_http, start, table};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let app = start(&table::TOKEN_ROUTES).await;
    serve_http(token_routes::routes(app)).await
}
