//! The dev-extras token API: `POST /token?identity=alex&context=general,random` (optional
//! `ttl` seconds, at most a day) answers `{"token": …, "xid": …}`, a context token signed
//! with the development key and on record in the ledger under `xid`; `GET /token/{xid}`
//! answers that record (its hash, never the token). One client address gets at most
//! [`DEV_TOKENS_PER_MINUTE`] tokens a minute (`429` with `Retry-After`). `GET /jwks.json`
//! (and `/.well-known/jwks.json`) publishes the key's JWKS, so a test deployment can point
//! its JWKS URL here.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::Extensions;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use super::refusal;
use crate::clock::now_unix;
use crate::dev_token::{self, DevIssuerSource};
use crate::error::ChatError;
use crate::ledger::Minter;
use crate::ledger::{self, DEV_TOKENS_PER_MINUTE, Issuance, Kind, Ledger, LedgerPolicy};

/// The client's address, as the door that received the request saw it: `lambda_http`'s
/// request context in the cloud (set by `lambda-adapter`), the socket's peer locally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

/// What the token API needs: the key, and the ledger where there is a store (without one,
/// tokens are neither recorded nor limited).
pub struct DevTokens {
    pub issuer: Arc<DevIssuerSource>,
    pub ledger: Option<Arc<Ledger>>,
    /// Days records are kept past their token's expiry.
    pub retention_days: u32,
}

pub fn routes(tokens: Arc<DevTokens>) -> Router {
    Router::new()
        .route("/token", post(token))
        .route("/token/{xid}", get(record))
        .route("/jwks.json", get(jwks))
        .route("/.well-known/jwks.json", get(jwks))
        .with_state(tokens)
}

fn client_address(extensions: &Extensions) -> Option<IpAddr> {
    extensions.get::<ClientAddress>().map(|a| a.0).or_else(|| {
        extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
    })
}

async fn token(
    State(tokens): State<Arc<DevTokens>>,
    extensions: Extensions,
    RawQuery(query): RawQuery,
) -> Response {
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let issued = async {
        let issuer = tokens.issuer.get().await?;
        let signed = dev_token::issue(&issuer.signer, &query, now_unix())?;
        let xid = ledger::new_xid()?;
        if let Some(ledger) = &tokens.ledger {
            // Addresses the door could not tell share one count.
            let source =
                client_address(&extensions).map_or_else(|| "unknown".into(), |ip| ip.to_string());
            let issuance = Issuance::of(
                Kind::ContextDev,
                xid.clone(),
                &signed.identity,
                &signed.contexts,
                None,
                &signed.token,
                signed.issued_at,
                signed.expires_at,
            );
            let policy = LedgerPolicy {
                per_minute: DEV_TOKENS_PER_MINUTE,
                retention_days: tokens.retention_days,
            };
            ledger
                .record(
                    &issuance,
                    Minter::Source(source),
                    policy,
                    crate::clock::now_millis(),
                )
                .await?;
        }
        crate::metrics::count(crate::metrics::Counter::DevTokensIssued);
        tracing::info!(kid = issuer.signer.kid(), xid = %xid, "development token issued");
        Ok::<_, ChatError>((signed.token, xid))
    };
    match issued.await {
        Ok((token, xid)) => Json(json!({ "token": token, "xid": xid })).into_response(),
        Err(err) => refusal(&err),
    }
}

/// A development token's record. Only `context-dev` records: this API is open, and the
/// records of chat tokens are the platform API's to show.
async fn record(State(tokens): State<Arc<DevTokens>>, Path(xid): Path<String>) -> Response {
    let found = async {
        let ledger = tokens.ledger.as_ref().ok_or_else(|| {
            ChatError::internal("This token API keeps no ledger (it has no store).")
        })?;
        ledger
            .get(&xid, None)
            .await?
            .filter(|i| i.kind == Kind::ContextDev)
            .ok_or_else(|| ChatError::not_found("No development token is on record with this xid."))
    };
    match found.await {
        Ok(issuance) => Json(crate::fields::TokenIssuance::from(issuance)).into_response(),
        Err(err) if err.kind == crate::ErrorKind::EntityNotFound => (
            axum::http::StatusCode::NOT_FOUND,
            Json(super::error_body(&err)),
        )
            .into_response(),
        Err(err) => refusal(&err),
    }
}

async fn jwks(State(tokens): State<Arc<DevTokens>>) -> Response {
    match tokens.issuer.get().await {
        Ok(issuer) => Json(issuer.jwks.clone()).into_response(),
        Err(err) => refusal(&err),
    }
}
