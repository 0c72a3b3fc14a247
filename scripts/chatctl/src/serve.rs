//! `chatctl serve`: the GraphQL API over HTTP on this machine, answering as AppSync does.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use async_graphql::http::GraphiQLSource;
use async_graphql_axum::GraphQLRequest;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderName, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use context_chat::graphql::{ChatSchema, schema};
use context_chat::settings::{Param, SettingsSource};
use context_chat::{App, AppOptions};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tower_http::cors::{Any, CorsLayer};
use tower_http::trace::TraceLayer;

use crate::local::{LocalIssuer, embedded_settings};
use crate::notifications::{
    OUTBOX_PATH, WEBHOOK_PATH, WebhookState, outbox, unsubscribe, unsubscribe_page, webhook,
};
use context_chat::notifications::unsubscribe::PATH as UNSUBSCRIBE_PATH;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Port on 127.0.0.1; 0 picks a free one.
    #[arg(long, default_value_t = 4000, env = "PORT")]
    port: u16,
    /// Where local mode keeps its development key.
    #[arg(long, default_value = ".context-chat", env = "CHAT_DATA_DIR")]
    data_dir: PathBuf,
}

struct ServerState {
    schema: ChatSchema,
    api_key: Option<String>,
    local_jwks: Option<Value>,
}

/// A widget's requests are small; this is far above the 8 KiB token limit.
const MAX_BODY_BYTES: usize = 64 * 1024;
const JWKS_PATH: &str = "/.well-known/jwks.json";
const WEBHOOK_MAX_BODY_BYTES: usize = context_chat::notifications::webhook::MAX_BODY_BYTES;

pub async fn run(args: ServeArgs) -> Result<(), String> {
    let listener = TcpListener::bind(("127.0.0.1", args.port))
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", args.port))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("no local address: {e}"))?;

    let (source, local) = choose_settings(&args, addr).await?;
    let mode = describe(&source, local.is_some());
    let public_url = format!("http://{addr}/")
        .parse()
        .map_err(|e| format!("public URL: {e}"))?;
    let local_notifications =
        crate::notifications::LocalNotifications::open(&args.data_dir, public_url)?;
    let store_path = local_notifications.store_path.clone();
    let app = Arc::new(
        App::new(source, AppOptions::default())
            .with_notifications(local_notifications.ports.clone()),
    );
    let (_, outbox_dir) = local_notifications.start_worker(app.clone());
    // Load now, so a configuration mistake shows at start rather than at the first request.
    let runtime = app
        .runtime()
        .await
        .map_err(|e| format!("settings: {}", e.message))?;

    let webhook_state = Arc::new(WebhookState {
        app: app.clone(),
        public_url: std::env::var("WEBHOOK_PUBLIC_URL")
            .ok()
            .filter(|u| !u.trim().is_empty()),
        outbox_dir: outbox_dir.clone(),
    });
    let state = Arc::new(ServerState {
        schema: schema(app),
        api_key: std::env::var("CHAT_API_KEY").ok().filter(|k| !k.is_empty()),
        local_jwks: local.as_ref().map(|l| l.jwks.clone()),
    });
    let router = router(state.clone(), webhook_state);

    println!("Context Chat is listening on http://{addr}/graphql (GraphiQL: open it in a browser)");
    println!("Settings: {mode}");
    if state.api_key.is_some() {
        println!("API key: required in the x-api-key header (CHAT_API_KEY)");
    }
    match &runtime.settings.twilio.api_base_url {
        Some(url) => println!(
            "Twilio: Conversations API at {url}; memberships follow the tokens (provisioning is on)"
        ),
        None => println!(
            "Twilio: fake credentials, so provisioning is off (no Twilio users or conversations \
             are made) and Twilio will not accept the tokens"
        ),
    }
    match &runtime.settings.sendgrid {
        Ok(Some(sendgrid)) => println!("Email: SendGrid, from notifications@{}", sendgrid.domain),
        Err(err) => return Err(format!("settings: {}", err.message)),
        Ok(None) => println!(
            "Email: written to the outbox, {} (list: http://{addr}{OUTBOX_PATH})",
            outbox_dir.display()
        ),
    }
    println!(
        "Notifications: subscriptions in {}; Twilio webhook at http://{addr}{WEBHOOK_PATH}{}",
        store_path.display(),
        if runtime.settings.twilio.auth_token.is_some() {
            ""
        } else {
            " (off: no TWILIO_AUTH_TOKEN)"
        }
    );
    if let Some(local) = &local {
        let token = local.sign("alex", &["general", "random"], 12 * 3600)?;
        println!("Sample context token (alex; contexts general, random; 12 h):");
        println!("{token}");
        println!("Try it:");
        println!(
            "  curl -s http://{addr}/graphql -H 'content-type: application/json' \\\n    -d '{{\"query\":\"query {{ verifyToken(token: \\\"{token}\\\") {{ identity contexts }} }}\"}}'"
        );
    }

    println!("Ready.");

    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| format!("server: {e}"))
}

fn router(state: Arc<ServerState>, webhook_state: Arc<WebhookState>) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([header::CONTENT_TYPE, HeaderName::from_static("x-api-key")]);
    let notifications = Router::new()
        .route(WEBHOOK_PATH, post(webhook))
        .route(OUTBOX_PATH, get(outbox))
        .route(UNSUBSCRIBE_PATH, get(unsubscribe_page).post(unsubscribe))
        .layer(DefaultBodyLimit::max(WEBHOOK_MAX_BODY_BYTES))
        .with_state(webhook_state);
    Router::new()
        .route("/graphql", get(graphiql).post(graphql))
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route(JWKS_PATH, get(local_jwks))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
        .merge(notifications)
        .layer(cors)
        .layer(TraceLayer::new_for_http())
}

/// SSM when `STACK_NAME` is set; environment variables when any is set; else embedded.
async fn choose_settings(
    args: &ServeArgs,
    addr: SocketAddr,
) -> Result<(SettingsSource, Option<LocalIssuer>), String> {
    // TWILIO_API_BASE_URL alone only redirects; it does not leave local mode.
    let from_env = Param::ALL
        .iter()
        .filter(|p| **p != Param::ApiBaseUrl)
        .any(|p| std::env::var(p.env_var()).is_ok_and(|v| !v.is_empty()));
    if std::env::var("STACK_NAME").is_ok_and(|v| !v.trim().is_empty()) || from_env {
        return Ok((
            App::settings_source_from_env(context_chat::settings::ALL_PATHS).await,
            None,
        ));
    }
    let local = LocalIssuer::load_or_create(&args.data_dir)?;
    let jwks_url = format!("http://{addr}{JWKS_PATH}")
        .parse()
        .map_err(|e| format!("JWKS URL: {e}"))?;
    Ok((
        SettingsSource::Fixed(Box::new(embedded_settings(jwks_url))),
        Some(local),
    ))
}

fn describe(source: &SettingsSource, local: bool) -> String {
    match source {
        SettingsSource::Ssm { stack, .. } => format!("SSM parameters under /{stack}/"),
        SettingsSource::Env(_) => "environment variables".into(),
        SettingsSource::Fixed(_) if local => {
            "embedded development defaults (no STACK_NAME, no TWILIO_*/CHAT_* variables)".into()
        }
        SettingsSource::Fixed(_) => "fixed".into(),
    }
}

async fn graphiql() -> Html<String> {
    Html(GraphiQLSource::build().endpoint("/graphql").finish())
}

async fn local_jwks(State(state): State<Arc<ServerState>>) -> Response {
    match &state.local_jwks {
        Some(jwks) => Json(jwks.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn graphql(
    State(state): State<Arc<ServerState>>,
    headers: HeaderMap,
    request: GraphQLRequest,
) -> Response {
    if let Some(expected) = &state.api_key {
        let given = headers
            .get("x-api-key")
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if !bool::from(given.ct_eq(expected.as_bytes())) {
            // AppSync's own answer to a missing or wrong API key.
            let body = json!({"errors": [{
                "errorType": "UnauthorizedException",
                "message": "You are not authorized to make this call."
            }]});
            return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
        }
    }
    let response = state.schema.execute(request.into_inner()).await;
    let mut body = serde_json::to_value(&response).unwrap_or_else(|_| json!({"data": null}));
    appsync_error_shape(&mut body);
    Json(body).into_response()
}

/// AppSync reports `errorType` on the error itself, not under `extensions`; the widget reads
/// it there. Errors async-graphql raises itself (a malformed query, a missing argument) are
/// the caller's fault: `BadRequest`.
fn appsync_error_shape(body: &mut Value) {
    let Some(errors) = body.get_mut("errors").and_then(Value::as_array_mut) else {
        return;
    };
    for error in errors {
        let kind = error
            .pointer("/extensions/errorType")
            .cloned()
            .unwrap_or_else(|| json!("BadRequest"));
        error["errorType"] = kind;
    }
}
