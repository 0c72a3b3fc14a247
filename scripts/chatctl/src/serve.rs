//! `chatctl serve`: the GraphQL API over HTTP on this machine, answering as AppSync does,
//! beside the library's HTTP routes (webhook, unsubscribe links, and in local mode the dev
//! token API) that the Lambdas behind the HTTP API answer in the cloud.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_graphql_axum::GraphQLRequest;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use context_chat::dev_token::{DevIssuer, DevIssuerSource};
use context_chat::graphql::{ChatSchema, RequestAuth, schema};
use context_chat::http::dev_tokens::{self, DevTokens};
use context_chat::http::notifications as notification_routes;
use context_chat::http::notifications::WEBHOOK_PATH;
use context_chat::http::token_routes;
use context_chat::ledger::Ledger;
use context_chat::metrics::{self, Counter};
use context_chat::settings::{Param, SettingsSource, reads};
use context_chat::twilio::service_setup::Setup;
use context_chat::{App, AppOptions};
use conversations_emulator::{Emulator, browser};
use secrecy::ExposeSecret;
use serde_json::json;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

use crate::dev_auth::{DevAuthServer, TOKEN_PATH};
use crate::error::{CliError, Result};
use crate::guard;
use crate::local::{
    EMULATOR_PATH, LocalTwilio, embedded_settings, load_or_create_events_secret,
    load_or_create_issuer, load_or_create_link_secret, load_or_create_webhook_path_secret,
    virgil_signer,
};
use crate::notifications::{LocalNotifications, OUTBOX_PATH, outbox, start_worker};
use crate::pages::{self, StartPage};
use context_chat::events::EventJournal;
use context_chat::notifications::channels::email::{self, settings::SendGridSettings};
use context_chat::notifications::channels::sms::{self, settings::SmsSettings};
use context_chat::notifications::service::EndsAccess;
use context_chat::notifications::sms::LocalSms;
use context_chat::notifications::twilio_sms::TwilioSms;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Port on 127.0.0.1; 0 picks a free one.
    #[arg(long, default_value_t = 4000, env = "PORT")]
    port: u16,
    /// Where local mode keeps its development key.
    #[arg(long, default_value = ".context-chat", env = "CHAT_DATA_DIR")]
    data_dir: PathBuf,
}

/// Local mode's development servers: the context token issuer and the authorization server.
struct Local {
    issuer: DevIssuer,
    auth: Arc<DevAuthServer>,
    /// The embedded Conversation Service the settings point at.
    twilio: Arc<Emulator>,
}

struct ServerState {
    schema: ChatSchema,
    api_key: Option<Arc<str>>,
}

/// Every event local mode emits, sent or not, one JSON line each (`chatctl events tail`).
pub const EVENTS_JOURNAL_FILE: &str = "events.jsonl";

/// A widget's requests are small; this is far above the 8 KiB token limit.
const MAX_BODY_BYTES: usize = 64 * 1024;
/// Prometheus scrapes the counters here.
pub const METRICS_PATH: &str = "/metrics";

pub async fn run(args: ServeArgs) -> Result<()> {
    context_chat::panics::log_panics();
    let listener = TcpListener::bind(("127.0.0.1", args.port))
        .await
        .map_err(|e| CliError::Failed(format!("cannot listen on 127.0.0.1:{}: {e}", args.port)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| CliError::Failed(format!("no local address: {e}")))?;

    crate::local::secure_secret_files(&args.data_dir)?;
    let (source, local) = choose_settings(&args, addr).await?;
    let mode = describe(&source, local.is_some());
    let public_url = format!("http://{addr}/")
        .parse()
        .map_err(|e| CliError::Failed(format!("public URL: {e}")))?;
    let notifications = LocalNotifications::open(&args.data_dir, public_url)?;
    let mut options = AppOptions::default();
    if let Some(window) = notify_window_from_env()? {
        options.notify.window = window;
    }
    let mut builder = App::builder(source, options)
        .ports(notifications.ports.clone())
        .lend(email::settings::Fallback(notifications.outbox.clone()))
        .lend(sms::settings::Maker(TwilioSms::gateway))
        .lend(EndsAccess::HOOK)
        .lend(EventJournal(args.data_dir.join(EVENTS_JOURNAL_FILE)));
    if let Some(queue) = &notifications.ports.queue {
        builder = builder.event_queue(queue.clone());
    }
    // Local mode verifies numbers itself and texts to the outbox; with the environment's
    // settings, text messages need Twilio's services (or are "not configured").
    if local.is_some() {
        builder = builder.lend(sms::settings::Fallback(Arc::new(LocalSms::new(
            notifications.outbox.clone(),
        ))));
    }
    let app = Arc::new(builder.build());
    start_worker(notifications.receiver, app.clone());
    // Load now, so a configuration mistake shows at start rather than at the first request.
    let configured = app.settings().current().await?;
    let settings = &configured.settings;

    let api_key: Option<Arc<str>> = std::env::var("CHAT_API_KEY")
        .ok()
        .filter(|k| !k.is_empty())
        .map(Arc::from);
    let state = Arc::new(ServerState {
        schema: schema(app.clone()),
        api_key: api_key.clone(),
    });
    let origins = guard::Origins::from_env(&format!("http://{addr}")).map_err(CliError::usage)?;
    let origins_text = origins.to_string();
    let webhook_public_url = std::env::var("WEBHOOK_PUBLIC_URL").ok();
    let hosts = Arc::new(guard::Hosts::new(webhook_public_url.as_deref()));
    let auth = local.as_ref().map(|l| l.auth.clone());
    let emulator = local.as_ref().map(|l| l.twilio.clone());
    let local = local.map(|l| Arc::new(DevIssuerSource::ready(l.issuer)));
    let ledger = Arc::new(Ledger::new(notifications.ports.store.clone()));
    // Browsers may call the GraphQL route (and the token routes) from the allowed origins,
    // and no other route.
    let graphql_routes = Router::new()
        .route("/graphql", get(graphiql).post(graphql))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(origins.cors())
        .with_state(state.clone());
    let keyed_routes = Router::new()
        .route(
            OUTBOX_PATH,
            get(outbox).with_state(notifications.outbox.clone()),
        )
        .route(METRICS_PATH, get(prometheus_metrics))
        .route_layer(middleware::from_fn_with_state(
            api_key,
            guard::api_key_required,
        ));
    let start_page = Arc::new(StartPage {
        origin: format!("http://{addr}"),
        mode: mode.clone(),
        api_key_required: state.api_key.is_some(),
        issuer: local.clone(),
        platform_keys: auth.is_some(),
        demo: emulator.is_some() && state.api_key.is_none(),
    });
    let demo = match (&local, &emulator) {
        (Some(issuer), Some(_)) => Some(Arc::new(crate::widget::Demo {
            issuer: issuer.clone(),
        })),
        _ => None,
    };
    let mut router = Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .merge(pages::routes(start_page))
        .merge(crate::widget::routes(demo))
        .merge(graphql_routes)
        .merge(keyed_routes)
        .merge(notification_routes::routes(app.clone(), webhook_public_url))
        // Sample apps' REST token routes: the bearer is the credential, and browsers may call
        // them as they call /graphql.
        .merge(token_routes::routes(app).layer(origins.cors()));
    if let Some(issuer) = &local {
        router = router.merge(dev_tokens::routes(Arc::new(DevTokens {
            issuer: issuer.clone(),
            ledger: Some(ledger.clone()),
            retention_days: settings.ledger.retention_days,
        })));
    }
    if let Some(auth) = &auth {
        router = router.merge(auth.clone().routes());
    }
    if let Some(emulator) = &emulator {
        router = router
            .route(
                &format!("{EMULATOR_PATH}/{{*rest}}"),
                any(emulated).with_state(emulator.clone()),
            )
            // Local mode's browser API: browsers may call it as they call /graphql.
            .merge(browser::routes(emulator.clone()).route_layer(origins.cors()));
    }

    println!(
        "Context Chat is listening on http://{addr}/graphql (in a browser: http://{addr}/ for the start page and GraphiQL)"
    );
    println!("Settings: {mode}");
    if state.api_key.is_some() {
        println!(
            "API key: required in the x-api-key header (CHAT_API_KEY), for /graphql, /outbox and /metrics"
        );
    }
    println!(
        "Browsers: /graphql, /virgil-jwt and /twilio-jwt answer pages from {origins_text} (CHAT_ALLOWED_ORIGINS)"
    );
    match settings
        .twilio
        .as_ref()
        .and_then(|t| t.api_base_url.as_ref())
    {
        Some(url) if emulator.is_some() => {
            println!(
                "Twilio: an embedded Conversation Service at {url} (local credentials in {}; its \
                 webhook posts to this server); memberships follow the tokens (provisioning is on)",
                args.data_dir.display()
            );
            println!(
                "Chat API: http://{addr}{}/conversations, …/messages, …/events (Bearer: the \
                 access token createChatToken answers; a local development API, README)",
                browser::PATH
            );
        }
        Some(url) => println!(
            "Twilio: Conversations API at {url}; memberships follow the tokens (provisioning is on)"
        ),
        None => println!(
            "Twilio: fake credentials, so provisioning is off (no Twilio users or conversations \
             are made) and Twilio will not accept the tokens"
        ),
    }
    match SendGridSettings::of(settings).into_section() {
        Ok(Some(sendgrid)) => println!("Email: SendGrid, from notifications@{}", sendgrid.domain),
        Err(err) => return Err(err.into()),
        Ok(None) => println!(
            "Email: written to the outbox, {} (list: http://{addr}{OUTBOX_PATH})",
            notifications.outbox.dir().display()
        ),
    }
    match (SmsSettings::of(settings).into_section(), local.is_some()) {
        (Ok(Some(sms)), _) => println!(
            "SMS: Twilio Verify {} and Messaging Service {}",
            sms.verify_service_sid, sms.messaging_service_sid
        ),
        (Err(err), _) => println!("SMS: not configured ({})", err.message),
        (Ok(None), true) => println!(
            "SMS: an embedded Verify (10-minute codes, 5 checks, 5 sends); codes and texts written to the outbox"
        ),
        (Ok(None), false) => println!(
            "SMS: not configured (set TWILIO_VERIFY_SERVICE_SID and TWILIO_MESSAGING_SERVICE_SID)"
        ),
    }
    // The data directory's path secret is this machine's, and shown; a deployment's is not.
    let local_path_secret = load_or_create_webhook_path_secret(&args.data_dir)?;
    let path = match &settings.webhook_path_secret {
        Some(s) if s.expose_secret() == local_path_secret.expose_secret() => {
            s.expose_secret().to_owned()
        }
        Some(_) => format!("<{}>", Param::WebhookPathSecret.ssm_suffix()),
        None => "<not set: every webhook is refused>".to_owned(),
    };
    println!(
        "Notifications: subscriptions in {}; Twilio webhook at http://{addr}{WEBHOOK_PATH}/{path}{}",
        notifications.store_path.display(),
        if settings.webhook_auth_token.is_some() {
            ""
        } else {
            " (off: no TWILIO_AUTH_TOKEN)"
        }
    );
    println!(
        "Token ledger: every minted token on record (its SHA-256) for {} days past expiry; {}",
        settings.ledger.retention_days,
        match settings.ledger.per_minute {
            0 => "no minting limit (CHAT_TOKENS_PER_MINUTE=0)".to_owned(),
            n => format!("{n} chat tokens per identity a minute (CHAT_TOKENS_PER_MINUTE)"),
        }
    );
    if let Some(issuer) = &local {
        let token = issuer.get().await?.sign(
            pages::SAMPLE_IDENTITY,
            &pages::SAMPLE_CONTEXTS,
            context_chat::context_token::now_unix(),
            pages::SAMPLE_LIFETIME_SECS,
        )?;
        println!(
            "Sample context token ({}; contexts {}; {} h):",
            pages::SAMPLE_IDENTITY,
            pages::SAMPLE_CONTEXTS.join(", "),
            pages::SAMPLE_LIFETIME_SECS / 3600
        );
        println!("{token}");
        println!("Try it:");
        println!(
            "  {}",
            pages::verify_token_curl(&format!("http://{addr}"), &token)
        );
        println!("More tokens: curl -s -X POST 'http://{addr}/token?identity=sam&context=general'");
    }
    match (&auth, &settings.platform) {
        (Some(auth), _) => {
            let client = &auth.client;
            println!(
                "Platform API: development authorization server at http://{addr}{TOKEN_PATH} \
                 (client credentials kept in {}):",
                args.data_dir.display()
            );
            println!(
                "  export PLATFORM_CLIENT_ID={} PLATFORM_CLIENT_SECRET={}",
                client.client_id, client.client_secret
            );
            println!(
                "  curl -s http://{addr}{TOKEN_PATH} -d grant_type=client_credentials \\\n    \
                 -d client_id=$PLATFORM_CLIENT_ID -d client_secret=$PLATFORM_CLIENT_SECRET -d 'scope=chat:read chat:admin'"
            );
            println!(
                "  chatctl platform identity-contexts --identity alex   (or: context-members, unread-counts, update-context, sync-identity, revoke-identity)"
            );
        }
        (None, Some(platform)) => println!(
            "Platform API: access tokens of {} (audience {})",
            platform.issuer,
            platform.audience.as_deref().unwrap_or("not checked")
        ),
        (None, None) => println!("Platform API: off (no PLATFORM_ISSUER)"),
    }

    if let (Some(_), Some(twilio)) = (&emulator, &settings.twilio) {
        let webhook = format!(
            "http://{addr}{WEBHOOK_PATH}/{}",
            local_path_secret.expose_secret()
        );
        tokio::spawn(configure_embedded_twilio(twilio.clone(), webhook));
    }
    println!("Ready.");

    axum::serve(
        listener,
        router
            .layer(middleware::from_fn(context_chat::http::catch_panics))
            .layer(middleware::from_fn_with_state(hosts, guard::check_host))
            .layer(middleware::map_request(counted))
            .layer(TraceLayer::new_for_http())
            // The peer's address: the dev token API limits by it.
            .into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .map_err(|e| CliError::Failed(format!("server: {e}")))
}

/// SSM when `STACK_NAME` is set; environment variables when any is set; else embedded, with
/// the local development issuer.
async fn choose_settings(
    args: &ServeArgs,
    addr: SocketAddr,
) -> Result<(SettingsSource, Option<Local>)> {
    // TWILIO_API_BASE_URL alone only redirects, CHAT_LINK_SECRET only keys links, the
    // ledger's two only tune it, VIRGIL_* and the push credential only add to tokens, the
    // SMS services only replace the embedded Verify: none leaves local mode.
    let from_env = Param::ALL
        .iter()
        .filter(|p| {
            !matches!(
                p,
                Param::ApiBaseUrl
                    | Param::LinkSecret
                    | Param::TokensPerMinute
                    | Param::IssuanceRetentionDays
                    | Param::PushCredentialSid
                    | Param::ReopenArchived
            ) && !matches!(
                p.section(),
                context_chat::settings::Section::Virgil
                    | context_chat::settings::Section::Sms
                    | context_chat::settings::Section::Events
                    | context_chat::settings::Section::EventDelivery
            )
        })
        .any(|p| std::env::var(p.env_var()).is_ok_and(|v| !v.is_empty()));
    if std::env::var("STACK_NAME").is_ok_and(|v| !v.trim().is_empty()) || from_env {
        let mut source = SettingsSource::from_env(reads::EVERYTHING, crate::aws()).await;
        // Variables without a link secret or a webhook path secret use the data directory's,
        // as local mode does.
        if let SettingsSource::Env(vars, _) = &mut source {
            for (param, load) in [
                (
                    Param::LinkSecret,
                    load_or_create_link_secret as fn(&Path) -> _,
                ),
                (Param::WebhookPathSecret, load_or_create_webhook_path_secret),
                (Param::EventsSecret, load_or_create_events_secret),
            ] {
                if !vars.contains_key(param.env_var()) {
                    let secret = load(&args.data_dir)?;
                    vars.insert(
                        param.env_var().to_owned(),
                        secret.expose_secret().to_owned(),
                    );
                }
            }
        }
        return Ok((source, None));
    }
    let issuer = load_or_create_issuer(&args.data_dir)?;
    let server_url: url::Url = format!("http://{addr}/")
        .parse()
        .map_err(|e| CliError::Failed(format!("server URL: {e}")))?;
    let auth = DevAuthServer::load_or_create(&args.data_dir, server_url.to_string())?;
    let link_secret = load_or_create_link_secret(&args.data_dir)?;
    let path_secret = load_or_create_webhook_path_secret(&args.data_dir)?;
    let virgil = virgil_signer(&args.data_dir)?;
    let twilio = LocalTwilio::load_or_create(&args.data_dir)?;
    let events_secret = load_or_create_events_secret(&args.data_dir)?;
    let emulator = Emulator::new(
        twilio.api_secret.expose_secret(),
        format!("http://{addr}{EMULATOR_PATH}"),
    )
    .with_auth_token(twilio.auth_token.expose_secret())
    .with_store(&args.data_dir)
    .map_err(CliError::Failed)?;
    Ok((
        SettingsSource::Fixed(Box::new(
            embedded_settings(&server_url, &twilio, link_secret, path_secret, virgil)?
                .with_default(Param::EventsSecret, || {
                    events_secret.expose_secret().to_owned()
                }),
        )),
        Some(Local {
            issuer,
            auth: Arc::new(auth),
            twilio: Arc::new(emulator),
        }),
    ))
}

/// The embedded Conversation Service's answer, as Twilio's would be, to a request below
/// [`EMULATOR_PATH`].
async fn emulated(
    State(emulator): State<Arc<Emulator>>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let below = uri.path().strip_prefix(EMULATOR_PATH).unwrap_or("/");
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    match format!("{below}{query}").parse::<axum::http::Uri>() {
        Ok(uri) => emulator.answer(&method, &uri, &headers, &body).await,
        Err(_) => conversations_emulator::twilio_error(400, 20001, "Not a URL"),
    }
}

/// Configures the embedded Conversation Service as `chatctl configure-twilio` configures
/// Twilio's (roles, reachability, the webhook to this server), through the product's own
/// client, once the server answers.
async fn configure_embedded_twilio(
    twilio: context_chat::settings::TwilioSettings,
    webhook: String,
) {
    let Some((api, _)) = crate::configure::conversations_api(&twilio) else {
        return;
    };
    let setup = Setup {
        api: &api,
        webhook_url: Some(&webhook),
        dry_run: false,
        deadline: std::time::Instant::now() + std::time::Duration::from_secs(30),
    };
    match setup.apply().await {
        Ok(steps) => {
            let changes = steps.iter().filter(|s| s.is_change()).count();
            tracing::info!(changes, "the embedded Conversation Service is configured");
        }
        Err(err) => {
            tracing::warn!(reason = %err.message, "configuring the embedded Conversation Service failed")
        }
    }
}

fn describe(source: &SettingsSource, local: bool) -> String {
    match source {
        SettingsSource::Ssm { stack, .. } => format!("SSM parameters under /{stack}/"),
        SettingsSource::Env(..) => "environment variables".into(),
        SettingsSource::Fixed(_) if local => {
            "embedded development defaults (no STACK_NAME, no TWILIO_*/CHAT_* variables)".into()
        }
        SettingsSource::Fixed(_) => "fixed".into(),
    }
}

/// `CHAT_NOTIFY_WINDOW_SECS`: the digest window (at most one email per context and address
/// in this long; 10 minutes unless set), shorter to try notifications locally.
fn notify_window_from_env() -> Result<Option<std::time::Duration>> {
    let Ok(value) = std::env::var("CHAT_NOTIFY_WINDOW_SECS") else {
        return Ok(None);
    };
    match value.trim().parse::<u64>() {
        Ok(secs @ 1..=86_400) => Ok(Some(std::time::Duration::from_secs(secs))),
        _ => Err(CliError::usage(
            "CHAT_NOTIFY_WINDOW_SECS must be seconds from 1 to 86400",
        )),
    }
}

/// Counts every request but the scrapes of the counters themselves and what the product
/// asks the embedded Conversation Service (Twilio's requests, not the product's).
async fn counted(request: axum::extract::Request) -> axum::extract::Request {
    let path = request.uri().path();
    if path != METRICS_PATH && !path.starts_with(EMULATOR_PATH) {
        metrics::count(Counter::Requests);
    }
    request
}

/// The same counters the Lambdas write as CloudWatch metrics, in Prometheus text.
async fn prometheus_metrics() -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics::prometheus(),
    )
        .into_response()
}

async fn graphiql(State(state): State<Arc<ServerState>>) -> Html<String> {
    pages::graphiql(state.api_key.is_some())
}

async fn graphql(
    State(state): State<Arc<ServerState>>,
    headers: HeaderMap,
    request: GraphQLRequest,
) -> Response {
    let api_key = guard::api_key_given(state.api_key.as_deref(), &headers);
    let authorization = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // As AppSync with two modes: a request with neither the API key nor an access token is
    // refused whole; one with only a token reaches the platform fields, whose resolvers
    // check it, and the widget's fields refuse it.
    if !api_key && authorization.is_none() {
        // AppSync's own answer to a missing or wrong API key.
        let body = json!({"errors": [{
            "errorType": "UnauthorizedException",
            "message": "You are not authorized to make this call."
        }]});
        return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    }
    let request = request.into_inner().data(RequestAuth {
        api_key,
        authorization,
    });
    let response = state.schema.execute(request).await;
    if response.errors.is_empty() {
        return Json(response).into_response();
    }
    let mut body = serde_json::to_value(&response).unwrap_or_else(|_| json!({"data": null}));
    context_chat::graphql::appsync_error_shape(&mut body);
    Json(body).into_response()
}
