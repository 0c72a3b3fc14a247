//! The dev-extras stack's token API on an HTTP API (payload 2.0): `POST /token` signs a
//! context token with the development key in SSM under `/STACK-dev-extras/chat-development/`
//! (`privateKey`, `keyId`; read once per process) and records it in the ledger (the table
//! `NOTIFICATIONS_TABLE` names), limited per client address; `GET /token/{xid}` reads the
//! record; `GET /jwks.json` publishes the key's JWKS.

use std::sync::Arc;

use context_chat::dev_token::DevIssuerSource;
use context_chat::http::dev_tokens::{self, DevTokens};
use context_chat::ledger::Ledger;
use context_chat::settings::retention_days_from_env;
use lambda_adapter::{Error, init, serve_http};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init(env!("CARGO_PKG_NAME"));
    let issuer = Arc::new(DevIssuerSource::from_env());
    // Read during init; a failure is logged, and the next request tries again.
    let _ = issuer.get().await;
    let ledger = aws_ports::store_from_env(&context_chat::aws_env::sdk_config())
        .inspect_err(|e| tracing::error!(reason = %e.message, "no ledger: tokens are neither recorded nor limited"))
        .ok()
        .map(|store| Arc::new(Ledger::new(store)));
    serve_http(dev_tokens::routes(Arc::new(DevTokens {
        issuer,
        ledger,
        retention_days: retention_days_from_env(),
    })))
    .await
}
