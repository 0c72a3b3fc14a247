//! The dev-extras stack's token API, `POST /token?identity=alex&context=general,random`
//! (optional `ttl` seconds, at most a day) on an HTTP API (payload 2.0): a context token
//! signed with the development key in SSM under `/STACK-dev-extras/chat-development/`
//! (`privateKey`, `keyId`), read once per process. Answers `{"token": …}`.
//! `GET /jwks.json` publishes the key's public half (RFC 7517), so a test deployment can
//! point `/STACK/chat/jwks.json` here and need no JWKS host of its own.

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use aws_sdk_ssm::error::DisplayErrorContext;
use context_chat::context_token::now_unix;
use context_chat::dev_keys::{ContextTokenSigner, JwksShape, jwks_json, public_pem_of};
use context_chat::{ChatError, dev_token};
use lambda_adapter::{Error, init_tracing};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init_tracing();
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let ssm = aws_sdk_ssm::Client::new(&config);
    let path = key_path();
    let key: OnceCell<DevKey> = OnceCell::new();
    if let Err(err) = key.get_or_try_init(|| load_key(&ssm, &path)).await {
        tracing::error!(reason = %err.message, "loading the development key failed; invocations will retry");
    }
    let (ssm, path, key) = (&ssm, &path, &key);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayV2httpRequest>| async move {
            let outcome = match key.get_or_try_init(|| load_key(ssm, path)).await {
                Ok(key) => route(key, &event.payload),
                Err(err) => Err(err),
            };
            Ok::<_, Error>(answer(outcome))
        },
    ))
    .await
}

/// `/STACK-dev-extras/chat-development`, or `DEV_EXTRAS_SSM_PATH` when set.
fn key_path() -> String {
    std::env::var("DEV_EXTRAS_SSM_PATH").unwrap_or_else(|_| {
        format!(
            "/{}-dev-extras/chat-development",
            std::env::var("STACK_NAME").unwrap_or_default().trim()
        )
    })
}

/// The development key, as a signer and as the JWKS that verifies its tokens.
struct DevKey {
    signer: ContextTokenSigner,
    jwks: Value,
}

async fn load_key(ssm: &aws_sdk_ssm::Client, path: &str) -> Result<DevKey, ChatError> {
    let output = ssm
        .get_parameters_by_path()
        .path(path)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| {
            tracing::error!(path, error = %DisplayErrorContext(&e), "reading the development key failed");
            ChatError::internal(format!("Could not read the development key under {path}."))
        })?;
    let value = |name: &str| {
        output
            .parameters()
            .iter()
            .find(|p| p.name() == Some(&format!("{path}/{name}")))
            .and_then(|p| p.value().map(str::to_owned))
            .ok_or_else(|| {
                ChatError::not_found(format!("The SSM parameter {path}/{name} is missing."))
            })
    };
    let (pem, kid) = (value("privateKey")?, value("keyId")?);
    let not_a_key =
        |_| ChatError::internal(format!("{path}/privateKey is not a PKCS#8 P-256 PEM."));
    let signer = ContextTokenSigner::from_pem(&pem, kid.trim()).map_err(not_a_key)?;
    let jwks = public_pem_of(&pem)
        .and_then(|public| jwks_json(&public, kid.trim(), JwksShape::Rfc7517))
        .map_err(not_a_key)?;
    Ok(DevKey { signer, jwks })
}

/// `GET …/jwks.json` gets the JWKS; anything else is a token request.
fn route(key: &DevKey, request: &ApiGatewayV2httpRequest) -> Result<Value, ChatError> {
    let is_get = request.request_context.http.method == aws_lambda_events::http::Method::GET;
    if is_get
        && request
            .raw_path
            .as_deref()
            .is_some_and(|p| p.ends_with("/jwks.json"))
    {
        return Ok(key.jwks.clone());
    }
    issue(&key.signer, request).map(|token| json!({ "token": token }))
}

fn issue(
    signer: &ContextTokenSigner,
    request: &ApiGatewayV2httpRequest,
) -> Result<String, ChatError> {
    if request.request_context.http.method != aws_lambda_events::http::Method::POST {
        return Err(ChatError::bad_request("Use POST."));
    }
    let query: Vec<(String, String)> = request
        .query_string_parameters
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let token = dev_token::issue(signer, &query, now_unix())?;
    tracing::info!(kid = signer.kid(), "development token issued");
    Ok(token)
}

fn answer(outcome: Result<Value, ChatError>) -> ApiGatewayV2httpResponse {
    let (status, body) = match outcome {
        Ok(body) => (200, body),
        Err(err) => (
            err.kind.http_status(),
            json!({ "errorType": err.kind.as_str(), "message": err.message }),
        ),
    };
    let mut response = ApiGatewayV2httpResponse::default();
    response.status_code = status.into();
    response.headers.insert(
        "content-type",
        "application/json".parse().expect("a header value"),
    );
    response.body = Some(Body::Text(body.to_string()));
    response
}
