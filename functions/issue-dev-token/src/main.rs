//! The dev-extras stack's token API on an HTTP API (payload 2.0): `POST /token` signs a
//! context token with the development key in SSM under `/STACK-dev-extras/chat-development/`
//! (`privateKey`, `keyId`; read once per process) and records it in the ledger (the table
//! `NOTIFICATIONS_TABLE` names), limited per client address; `GET /token/{xid}` reads the
//! record; `GET /jwks.json` publishes the key's JWKS.

use lambda_adapter::{Error, profiles, serve_http};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    serve_http(profiles::start_dev_tokens().await).await
}
