//! The HTTP routes that `chatctl serve` and the Lambdas behind the HTTP API answer with the
//! same code (axum routers; the Lambdas run them under `lambda_http`): Twilio's webhook and
//! the unsubscribe pages, the REST token routes, and the dev-extras token API.

pub mod dev_tokens;
pub mod notifications;
pub mod token_routes;

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::error::ChatError;
use crate::metrics::{self, ErrorCounter};

/// A JSON answer with the status of `err`'s kind.
fn error_json(err: &ChatError, body: Value) -> Response {
    metrics::error(ErrorCounter::Errors, err.kind);
    (status_of(err), Json(body)).into_response()
}

/// `{"errorType", "message"}`: the API's refusals, as GraphQL names them.
fn error_body(err: &ChatError) -> Value {
    serde_json::json!({ "errorType": err.kind.as_str(), "message": err.message })
}

/// An API refusal: its status, its body, and `Retry-After` when over a limit.
fn refusal(err: &ChatError) -> Response {
    let mut response = error_json(err, error_body(err));
    if let Some(secs) = err.retry_after_secs {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

fn status_of(err: &ChatError) -> StatusCode {
    StatusCode::from_u16(err.kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The URL a request was sent to, query exactly as it arrived: `public_url` when one is
/// configured (a custom domain, a tunnel); else the absolute URI `lambda_http` hands over
/// (`https://{domain}{path}`); else, on a local server, `http://{Host}{path}`.
pub fn called_url(uri: &Uri, headers: &HeaderMap, public_url: Option<&str>) -> String {
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    if let Some(public) = public_url {
        return format!("{}{query}", public.trim_end_matches('?'));
    }
    if let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) {
        return format!("{scheme}://{authority}{}{query}", uri.path());
    }
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}{}{query}", uri.path())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_called_url_keeps_the_query_as_it_arrived() {
        let mut headers = HeaderMap::new();
        headers.insert("host", "127.0.0.1:4000".parse().unwrap());
        let local: Uri = "/twilio/webhook?b=2&a=1".parse().unwrap();
        assert_eq!(
            called_url(&local, &headers, None),
            "http://127.0.0.1:4000/twilio/webhook?b=2&a=1"
        );
        let lambda: Uri = "https://abc.execute-api.eu-west-1.amazonaws.com/twilio/webhook?x=%20"
            .parse()
            .unwrap();
        assert_eq!(
            called_url(&lambda, &headers, None),
            "https://abc.execute-api.eu-west-1.amazonaws.com/twilio/webhook?x=%20"
        );
        assert_eq!(
            called_url(&lambda, &headers, Some("https://chat.example.org/hook?")),
            "https://chat.example.org/hook?x=%20"
        );
    }
}
