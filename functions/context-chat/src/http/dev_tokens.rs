//! The dev-extras token API: `POST /token?identity=alex&context=general,random` (optional
//! `ttl` seconds, at most a day) answers `{"token": …}`, a context token signed with the
//! development key; `GET /jwks.json` (and `/.well-known/jwks.json`) publishes that key's
//! JWKS, so a test deployment can point its JWKS URL here.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use super::error_json;
use crate::context_token::now_unix;
use crate::dev_token::{self, DevIssuerSource};
use crate::error::ChatError;

pub fn routes(issuer: Arc<DevIssuerSource>) -> Router {
    Router::new()
        .route("/token", post(token))
        .route("/jwks.json", get(jwks))
        .route("/.well-known/jwks.json", get(jwks))
        .with_state(issuer)
}

async fn token(State(issuer): State<Arc<DevIssuerSource>>, RawQuery(query): RawQuery) -> Response {
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let signed = match issuer.get().await {
        Ok(issuer) => dev_token::issue(&issuer.signer, &query, now_unix())
            .inspect(|_| tracing::info!(kid = issuer.signer.kid(), "development token issued")),
        Err(err) => Err(err),
    };
    match signed {
        Ok(token) => Json(json!({ "token": token })).into_response(),
        Err(err) => refusal(&err),
    }
}

async fn jwks(State(issuer): State<Arc<DevIssuerSource>>) -> Response {
    match issuer.get().await {
        Ok(issuer) => Json(issuer.jwks.clone()).into_response(),
        Err(err) => refusal(&err),
    }
}

fn refusal(err: &ChatError) -> Response {
    error_json(
        err,
        json!({ "errorType": err.kind.as_str(), "message": err.message }),
    )
}
