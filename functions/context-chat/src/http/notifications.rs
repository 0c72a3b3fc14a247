//! `POST /twilio/webhook` (Twilio's signed post-event webhook) and
//! `GET|POST /notifications/unsubscribe` (the link in every notification email).
//!
//! The webhook answers 200 (queued or ignored), 403 (missing or bad signature), 400 (a signed
//! request that is not a usable event), 500 (try again: Twilio retries).

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use super::{called_url, error_json};
use crate::app::App;
use crate::notifications::unsubscribe::{self, PATH as UNSUBSCRIBE_PATH};
use crate::notifications::webhook::MAX_BODY_BYTES;
use crate::notifications::{WebhookOutcome, WebhookRequest};

pub const WEBHOOK_PATH: &str = "/twilio/webhook";

struct Routes {
    app: Arc<App>,
    /// The webhook URL configured in Twilio, when it differs from what this server sees.
    webhook_public_url: Option<String>,
}

/// The routes, answering through `app`'s notification service.
pub fn routes(app: Arc<App>, webhook_public_url: Option<String>) -> Router {
    let state = Arc::new(Routes {
        app,
        webhook_public_url: webhook_public_url.filter(|u| !u.trim().is_empty()),
    });
    Router::new()
        .route(WEBHOOK_PATH, post(webhook))
        .route(UNSUBSCRIBE_PATH, get(unsubscribe_page).post(unsubscribe))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn webhook(
    State(routes): State<Arc<Routes>>,
    // The routes are merged, never nested, so this is the URI as it arrived.
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let url = called_url(&uri, &headers, routes.webhook_public_url.as_deref());
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let request = WebhookRequest {
        url: &url,
        signature: header("x-twilio-signature"),
        content_type: header("content-type"),
        body: &body,
    };
    let outcome = match routes.app.notifications() {
        Ok(notifications) => notifications.receive_webhook(&request).await,
        Err(err) => Err(err),
    };
    match outcome {
        Ok(WebhookOutcome::Queued { .. }) => {
            (StatusCode::OK, Json(json!({ "message": "queued" }))).into_response()
        }
        Ok(WebhookOutcome::Ignored { .. }) => {
            (StatusCode::OK, Json(json!({ "message": "ignored" }))).into_response()
        }
        Err(err) => error_json(&err, json!({ "message": err.message })),
    }
}

#[derive(serde::Deserialize)]
struct UnsubscribeQuery {
    /// The context, spelt as the links already sent spell it.
    #[serde(default)]
    channel: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    sig: String,
}

/// The link in an email: a page with a button, so that a mail scanner that opens links does
/// not unsubscribe anyone; the button (and RFC 8058 one-click) POSTs to the same URL.
async fn unsubscribe_page(Query(q): Query<UnsubscribeQuery>) -> Html<String> {
    Html(unsubscribe::confirmation_page(&q.channel, &q.email))
}

async fn unsubscribe(
    State(routes): State<Arc<Routes>>,
    Query(q): Query<UnsubscribeQuery>,
) -> Response {
    let outcome = match routes.app.notifications() {
        Ok(notifications) => {
            notifications
                .unsubscribe(&q.channel, &q.email, &q.sig)
                .await
        }
        Err(err) => Err(err),
    };
    let (status, page) = unsubscribe::result_page(&q.channel, outcome);
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        Html(page),
    )
        .into_response()
}
