//! Twilio's post-event webhook, `POST /twilio/webhook` on an HTTP API (payload 2.0): the
//! signature is checked against the URL Twilio called, and `onMessageAdded` is queued.
//! Answers 200 (queued or ignored), 403 (missing or bad signature), 400 (a signed request
//! that is not a usable event), 500 (try again: Twilio retries).

use std::sync::Arc;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::HeaderMap;
use base64::Engine as _;
use context_chat::App;
use context_chat::notifications::{WebhookOutcome, WebhookRequest, unsubscribe};
use lambda_adapter::{Error, Warm, init_tracing};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::json;

/// The URL configured in Twilio, when a custom domain or path mapping makes it differ
/// from what the HTTP API sees.
const PUBLIC_URL_ENV: &str = "WEBHOOK_PUBLIC_URL";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init_tracing();
    let app = aws_ports::build_notification_app(Warm::Settings, lambda_adapter::TOKEN_PATHS).await;
    let public_url = std::env::var(PUBLIC_URL_ENV)
        .ok()
        .filter(|u| !u.trim().is_empty());
    let public_url = &public_url;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayV2httpRequest>| {
            let app: Arc<App> = app.clone();
            async move { Ok::<_, Error>(handle(&app, event.payload, public_url.as_deref()).await) }
        },
    ))
    .await
}

async fn handle(
    app: &App,
    request: ApiGatewayV2httpRequest,
    public_url: Option<&str>,
) -> ApiGatewayV2httpResponse {
    if request
        .raw_path
        .as_deref()
        .is_some_and(|p| p.ends_with(unsubscribe::PATH))
    {
        return unsubscribe_link(app, &request).await;
    }
    let url = called_url(&request, public_url);
    let body = match &request.body {
        Some(b) if request.is_base64_encoded => {
            match base64::engine::general_purpose::STANDARD.decode(b) {
                Ok(bytes) => bytes,
                Err(_) => return answer(400, "The body is not valid base64."),
            }
        }
        Some(b) => b.as_bytes().to_vec(),
        None => Vec::new(),
    };
    let header = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok());
    let outcome = app
        .receive_webhook(&WebhookRequest {
            url: &url,
            signature: header("x-twilio-signature"),
            content_type: header("content-type"),
            body: &body,
        })
        .await;
    match outcome {
        Ok(WebhookOutcome::Queued { .. }) => answer(200, "queued"),
        Ok(WebhookOutcome::Ignored { .. }) => answer(200, "ignored"),
        Err(err) => {
            let status = err.kind.http_status();
            answer(status, &err.message)
        }
    }
}

/// An email's unsubscribe link: GET shows a button (mail scanners open links), POST (the
/// button, or RFC 8058 one-click) unsubscribes.
async fn unsubscribe_link(
    app: &App,
    request: &ApiGatewayV2httpRequest,
) -> ApiGatewayV2httpResponse {
    let query = |name: &str| {
        request
            .query_string_parameters
            .first(name)
            .unwrap_or_default()
    };
    let (channel, email) = (query("channel"), query("email"));
    let (status, page) =
        if request.request_context.http.method == aws_lambda_events::http::Method::POST {
            unsubscribe::result_page(channel, app.unsubscribe(channel, email, query("sig")).await)
        } else {
            (200, unsubscribe::confirmation_page(channel, email))
        };
    let mut response = ApiGatewayV2httpResponse::default();
    response.status_code = status.into();
    response.headers.insert(
        "content-type",
        "text/html; charset=utf-8".parse().expect("a header value"),
    );
    response.body = Some(Body::Text(page));
    response
}

/// The URL Twilio signed: the public one when configured, else the HTTP API's own,
/// with the query exactly as it arrived.
fn called_url(request: &ApiGatewayV2httpRequest, public_url: Option<&str>) -> String {
    let base = match public_url {
        Some(url) => url.trim_end_matches('?').to_owned(),
        None => format!(
            "https://{}{}",
            request
                .request_context
                .domain_name
                .as_deref()
                .unwrap_or_default(),
            request.raw_path.as_deref().unwrap_or("/")
        ),
    };
    match request.raw_query_string.as_deref() {
        Some(query) if !query.is_empty() => format!("{base}?{query}"),
        _ => base,
    }
}

fn answer(status: u16, message: &str) -> ApiGatewayV2httpResponse {
    let mut headers = HeaderMap::new();
    headers.insert(
        "content-type",
        "application/json".parse().expect("a header value"),
    );
    let mut response = ApiGatewayV2httpResponse::default();
    response.status_code = status.into();
    response.headers = headers;
    response.body = Some(Body::Text(json!({ "message": message }).to_string()));
    response
}
