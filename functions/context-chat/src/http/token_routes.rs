//! The REST token routes that Twilio's and Virgil's sample apps call instead of GraphQL,
//! each with `Authorization: Bearer <context token>`:
//! `GET /virgil-jwt` → `{"virgilToken": …}`, and `GET /twilio-jwt[?deviceId=…]` →
//! `{"twilioToken": …}` (provisioned as `createChatToken` is). No bearer or a refused one is
//! 401 with `WWW-Authenticate: Bearer` (RFC 6750); over the limit, 429 with `Retry-After`;
//! every error is JSON naming the contract's `errorType`.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::{error_body, refusal};
use crate::app::App;
use crate::error::{ChatError, ErrorKind};
use crate::tokens::{Authenticated, ChatTokenRequest};

pub const VIRGIL_PATH: &str = "/virgil-jwt";
pub const TWILIO_PATH: &str = "/twilio-jwt";

pub fn routes(app: Arc<App>) -> Router {
    Router::new()
        .route(VIRGIL_PATH, get(virgil_jwt))
        .route(TWILIO_PATH, get(twilio_jwt))
        .with_state(app)
}

async fn virgil_jwt(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let auth = match authenticated(&app, &headers).await {
        Ok(auth) => auth,
        Err(refusal) => return refusal,
    };
    match app.tokens().virgil_token_for(&auth).await {
        Ok(token) => token_json("virgilToken", token),
        Err(err) => refusal(&err),
    }
}

async fn twilio_jwt(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let device_id = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "deviceId")
        .map(|(_, v)| v.into_owned());
    let request = match ChatTokenRequest::new(device_id.as_deref(), None) {
        Ok(request) => request,
        Err(err) => return refusal(&err),
    };
    let auth = match authenticated(&app, &headers).await {
        Ok(auth) => auth,
        Err(refusal) => return refusal,
    };
    match app.tokens().chat_token_for(&auth, &request).await {
        Ok(receipt) => token_json("twilioToken", receipt.token),
        Err(err) => refusal(&err),
    }
}

/// The bearer's context token, checked; a missing or refused one answers 401.
async fn authenticated(app: &App, headers: &HeaderMap) -> Result<Authenticated, Response> {
    let Some(token) = bearer(headers) else {
        let err = ChatError::access_denied(
            "A context token is needed: send it as Authorization: Bearer <token>.",
        );
        return Err(unauthorized(&err, HeaderValue::from_static("Bearer")));
    };
    app.tokens().authenticate(token).await.map_err(|err| {
        if matches!(err.kind, ErrorKind::AccessDenied | ErrorKind::BadRequest) {
            unauthorized(
                &err,
                HeaderValue::from_static(r#"Bearer error="invalid_token""#),
            )
        } else {
            refusal(&err)
        }
    })
}

/// `Authorization: Bearer <token>`, the scheme in any case (RFC 7235).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn token_json(field: &str, token: String) -> Response {
    let mut response = Json(json!({ field: token })).into_response();
    // A credential: no cache keeps it.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn unauthorized(err: &ChatError, challenge: HeaderValue) -> Response {
    let mut response = (StatusCode::UNAUTHORIZED, Json(error_body(err))).into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, challenge);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_bearer_with_a_token_is_one() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            h
        };
        assert_eq!(bearer(&with("Bearer abc.def")), Some("abc.def"));
        assert_eq!(bearer(&with("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(&with("Basic abc")), None);
        assert_eq!(bearer(&with("Bearer ")), None);
        assert_eq!(bearer(&with("Bearerabc")), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }
}
