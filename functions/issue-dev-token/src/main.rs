//! The dev-extras stack's token API on an HTTP API (payload 2.0): `POST /token` signs a
//! context token with the development key in SSM under `/STACK-dev-extras/chat-development/`
//! (`privateKey`, `keyId`; read once per process), `GET /jwks.json` publishes its JWKS.

use std::sync::Arc;

use context_chat::dev_token::DevIssuerSource;
use context_chat::http::dev_tokens;
use lambda_adapter::{Error, init_tracing, serve_http};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init_tracing();
    let issuer = Arc::new(DevIssuerSource::from_env());
    // Read during init; a failure is logged, and the next request tries again.
    let _ = issuer.get().await;
    serve_http(dev_tokens::routes(issuer)).await
}
