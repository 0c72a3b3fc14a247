//! What every Context Chat Lambda shares, so that each handler crate is its row of the
//! profile table and what it serves: AppSync direct resolver events in (the fields of
//! `context_chat::fields`), the contract's errors out; SQS batches with partial failures;
//! the library's HTTP routes under `lambda_http` (feature `http`); JSON logs that carry the
//! request id; and one [`App`] per process, composed as [`profiles`] says.

mod batch;
pub mod profiles;

use std::future::Future;
use std::io::Write as _;
use std::sync::{Arc, OnceLock};

use aws_lambda_events::appsync::AppSyncDirectResolverEvent;
use context_chat::fields::{self, Resolve};
use context_chat::metrics::{self, Counter, ErrorCounter};
use context_chat::{App, ChatError};

pub use batch::serve_queue;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
pub use profiles::{Profile, Warm, start, table};
use serde_json::Value;
use tracing::Instrument;
use tracing_subscriber::filter::LevelFilter;

pub use lambda_runtime::Error;

/// An AppSync direct resolver event, arguments and all.
pub type ResolverEvent = AppSyncDirectResolverEvent<Value>;

/// A failed resolution. AppSync reports the function error's type as `errorType` and its
/// message as `message`, which is what the widget reads.
pub struct ResolverError(pub ChatError);

/// The runtime logs a failed invocation with this: `errorType: message`, nothing more.
impl std::fmt::Debug for ResolverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.0.kind, self.0.message)
    }
}

impl From<ChatError> for ResolverError {
    fn from(err: ChatError) -> Self {
        Self(err)
    }
}

impl From<ResolverError> for Diagnostic {
    fn from(ResolverError(err): ResolverError) -> Self {
        Diagnostic {
            error_type: err.kind.as_str().to_owned(),
            error_message: err.message,
        }
    }
}

/// Names the function for its metrics (`function`: the handler crate's name, as
/// `env!("CARGO_PKG_NAME")` gives it) and sets up its logs.
pub fn init(function: &'static str) {
    let stack = std::env::var("STACK_NAME").unwrap_or_default();
    let _ = FUNCTION.set((function, stack));
    init_tracing();
    std::panic::set_hook(Box::new(end_on_panic));
}

/// A panic is a bug, and ends the process: the production profile has `panic = "abort"`, and
/// this hook ends debug builds too, so the tests see what the cloud does (`adr/017`). Before it
/// goes, the process logs where (`context_chat::panics::log`) and writes the invocation's
/// metrics with an `InternalError`, so the dashboard and the alarm count it. Lambda reports the
/// invocation failed (`Runtime.ExitError`) and the next one gets a fresh process: no state a
/// panic left half-changed serves another request.
fn end_on_panic(info: &std::panic::PanicHookInfo<'_>) {
    context_chat::panics::log(info);
    metrics::count(Counter::Requests);
    metrics::error(ErrorCounter::Errors, context_chat::ErrorKind::InternalError);
    write_metrics();
    std::process::abort();
}

/// The `Function` and `Stack` dimensions of this process's metrics.
static FUNCTION: OnceLock<(&'static str, String)> = OnceLock::new();

/// Writes what this invocation counted as CloudWatch EMF lines on stdout, where Lambda's
/// log stream and CloudWatch's metric extraction find them.
pub fn write_metrics() {
    let (function, stack) = FUNCTION
        .get()
        .map_or(("unknown", ""), |(f, s)| (*f, s.as_str()));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut out = std::io::stdout().lock();
    for line in metrics::take_emf(function, stack, now) {
        let _ = writeln!(out, "{line}");
    }
}

/// JSON log lines on stdout, for CloudWatch. Every line inside an invocation carries the
/// runtime's span, so its `requestId`. The level (`error` … `trace`) comes from Lambda's
/// `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else `info`. A plain level rather than an
/// `EnvFilter` keeps the regex engine out of the binary.
fn init_tracing() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|l| l.trim().parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    tracing_subscriber::fmt()
        .json()
        .with_max_level(level)
        .with_target(false)
        .with_current_span(false)
        .with_span_list(true)
        .with_ansi(false)
        .init();
}

/// Serves invocations until the runtime stops: each AppSync event goes to `resolve` with a
/// clone of `state`; its value is the field's value and its error the contract's error.
pub async fn serve<S, F, Fut>(state: S, resolve: F) -> Result<(), Error>
where
    S: Clone,
    F: Fn(S, ResolverEvent) -> Fut,
    Fut: Future<Output = Result<Value, ChatError>>,
{
    let resolve = &resolve;
    let state = &state;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let outcome = match resolver_event(event.payload) {
            Ok(call) => {
                let span = tracing::info_span!(
                    "resolver",
                    field = %call.info.field_name,
                    appsync_request_id = call
                        .request
                        .headers
                        .get("x-amzn-requestid")
                        .and_then(|v| v.as_deref())
                        .unwrap_or_default(),
                );
                resolve(state.clone(), call).instrument(span).await
            }
            Err(ResolverError(err)) => Err(err),
        };
        metrics::count(Counter::Requests);
        if let Err(err) = &outcome {
            metrics::error(ErrorCounter::Errors, err.kind);
        }
        write_metrics();
        outcome.map_err(ResolverError)
    }))
    .await
}

/// Serves the fields of group `G` (`context_chat::fields`): each event's field and
/// arguments read as the group's, resolved with the request's `Authorization` header.
pub async fn serve_fields<G: Resolve>(app: Arc<App>) -> Result<(), Error> {
    serve(app, |app, mut call| async move {
        let field: G = fields::parse(&call.info.field_name, call.arguments.take())?;
        field.resolve(&app, authorization(&call)).await
    })
    .await
}

/// Serves HTTP API (payload 2.0) invocations with the library's axum routes, as
/// `chatctl serve` answers the same paths.
#[cfg(feature = "http")]
pub async fn serve_http(routes: axum::Router) -> Result<(), Error> {
    lambda_http::run(
        routes
            .layer(axum::middleware::map_request(with_client_address))
            .layer(axum::middleware::map_response(counted)),
    )
    .await
}

/// Counts the request and writes the invocation's metrics once its answer is ready (error
/// answers counted themselves, by `errorType`).
#[cfg(feature = "http")]
async fn counted(response: axum::response::Response) -> axum::response::Response {
    metrics::count(Counter::Requests);
    write_metrics();
    response
}

/// The HTTP API's view of the caller's address, as the routes read it (the dev token API
/// limits by it).
#[cfg(feature = "http")]
async fn with_client_address(mut request: axum::extract::Request) -> axum::extract::Request {
    use lambda_http::RequestExt;
    use lambda_http::request::RequestContext;
    let address = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context
            .http
            .source_ip
            .as_deref()
            .and_then(|ip| ip.parse().ok()),
        _ => None,
    };
    if let Some(address) = address {
        request
            .extensions_mut()
            .insert(context_chat::http::dev_tokens::ClientAddress(address));
    }
    request
}

/// The event as an AppSync direct resolver event, or `BadRequest`.
pub fn resolver_event(payload: Value) -> Result<ResolverEvent, ResolverError> {
    serde_json::from_value(payload).map_err(|_| {
        ResolverError(ChatError::bad_request(
            "The event is not an AppSync direct resolver event.",
        ))
    })
}

/// The request's `Authorization` header: the access token AppSync's OpenID Connect mode
/// checked, which the function checks again (issuer, audience, scope) before acting.
pub fn authorization(event: &ResolverEvent) -> Option<&str> {
    event
        .request
        .headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("authorization"))
        .and_then(|(_, value)| value.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_become_diagnostics_with_the_contract_error_type() {
        let diagnostic = Diagnostic::from(ResolverError(ChatError::access_denied("no")));
        assert_eq!(diagnostic.error_type, "AccessDenied");
        assert_eq!(diagnostic.error_message, "no");
        let not_appsync = resolver_event(serde_json::json!({"hello": "world"})).unwrap_err();
        assert_eq!(Diagnostic::from(not_appsync).error_type, "BadRequest");
    }
}
