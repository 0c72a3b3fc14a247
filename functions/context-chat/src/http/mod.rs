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

/// A layer for every router (`axum::middleware::from_fn(catch_panics)`): a handler that panics
/// answers 500 with the contract's `InternalError`, as a resolver does (`crate::panics`),
/// rather than dropping the connection.
pub async fn catch_panics(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match crate::panics::unpanicked(async { Ok(next.run(request).await) }).await {
        Ok(response) => response,
        Err(err) => refusal(&err),
    }
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

    #[tokio::test]
    async fn a_panicking_handler_answers_500_internal_error_and_the_server_goes_on() {
        async fn boom() -> &'static str {
            if std::hint::black_box(true) {
                panic!("a bug");
            }
            "never"
        }
        let app = axum::Router::new()
            .route("/boom", axum::routing::get(boom))
            .route("/fine", axum::routing::get(|| async { "fine" }))
            .layer(axum::middleware::from_fn(catch_panics));
        let (addr, task) = test_support::serve_on_loopback(app).await;
        let client = reqwest::Client::new();
        let answer = client
            .get(format!("http://{addr}/boom"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 500);
        let body: Value = serde_json::from_slice(&answer.bytes().await.unwrap()).unwrap();
        assert_eq!(body["errorType"], "InternalError");
        assert_eq!(body["message"], crate::panics::PANIC_MESSAGE);
        let fine = client
            .get(format!("http://{addr}/fine"))
            .send()
            .await
            .unwrap();
        assert_eq!(fine.text().await.unwrap(), "fine");
        task.abort();
    }
}
