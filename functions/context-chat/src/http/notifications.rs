//! `POST /twilio/webhook/<webhook/pathSecret>` (Twilio's signed post-event webhook) and
//! `GET|POST /notifications/unsubscribe` (the link in every notification email).
//!
//! The webhook answers 404 for any other path, before any work (a flood of guesses costs a
//! settings lookup and a comparison); 200 (queued or ignored), 403 (missing or bad signature),
//! 400 (a signed request that is not a usable event), 500 (not queued). Twilio does not retry
//! a post-event webhook that fails: a 500 loses that notification (ADR 010), which is why the
//! route has its own throttle and the function its own concurrency.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use secrecy::ExposeSecret;
use serde_json::json;
use subtle::ConstantTimeEq;

use super::{called_url, error_json};
use crate::app::App;
use crate::notifications::unsubscribe::{self, PATH as UNSUBSCRIBE_PATH};
use crate::notifications::webhook::MAX_BODY_BYTES;
use crate::notifications::{WebhookOutcome, WebhookRequest};

/// The webhook's base path; Twilio is given `WEBHOOK_PATH/<webhook/pathSecret>`.
pub const WEBHOOK_PATH: &str = "/twilio/webhook";

struct Routes {
    app: Arc<App>,
    /// The webhook's base URL as Twilio sees it (…/twilio/webhook), when it differs from what
    /// this server sees (a custom domain, a tunnel); the path secret is appended to it.
    webhook_public_url: Option<String>,
}

/// The routes, answering through `app`'s notification service.
pub fn routes(app: Arc<App>, webhook_public_url: Option<String>) -> Router {
    let state = Arc::new(Routes {
        app,
        webhook_public_url: webhook_public_url.filter(|u| !u.trim().is_empty()),
    });
    Router::new()
        .route(&format!("{WEBHOOK_PATH}/{{secret}}"), post(webhook))
        .route(UNSUBSCRIBE_PATH, get(unsubscribe_page).post(unsubscribe))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

impl Routes {
    /// Whether `given` is the path secret, compared in constant time; no secret set refuses
    /// everything (and says so in the log).
    async fn path_secret_is(&self, given: &str) -> bool {
        let configured = self.app.settings().current().await.ok();
        let secret = configured
            .as_ref()
            .and_then(|c| c.settings.webhook_path_secret.as_ref());
        let Some(secret) = secret else {
            tracing::error!(
                "webhook/pathSecret is not set: every webhook is refused (chatctl put-params makes it)"
            );
            return false;
        };
        bool::from(secret.expose_secret().as_bytes().ct_eq(given.as_bytes()))
    }
}

async fn webhook(
    State(routes): State<Arc<Routes>>,
    Path(secret): Path<String>,
    // The routes are merged, never nested, so this is the URI as it arrived.
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Before any work: anyone on the internet can post here, only Twilio knows the path.
    if !routes.path_secret_is(&secret).await {
        crate::metrics::error(
            crate::metrics::ErrorCounter::WebhooksRefused,
            crate::ErrorKind::EntityNotFound,
        );
        return (
            StatusCode::NOT_FOUND,
            Json(json!({ "message": "Not Found" })),
        )
            .into_response();
    }
    let public = routes
        .webhook_public_url
        .as_deref()
        .map(|base| format!("{}/{secret}", base.trim_end_matches('/')));
    let url = called_url(&uri, &headers, public.as_deref());
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
        Ok(WebhookOutcome::Queued { .. } | WebhookOutcome::ReplyQueued { .. }) => {
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
