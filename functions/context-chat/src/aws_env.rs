//! The AWS SDK's configuration as a Lambda function has it: region and credentials in the
//! environment (`AWS_REGION`, `AWS_ACCESS_KEY_ID`, …), and `AWS_ENDPOINT_URL` for a stand-in.
//! Reading only those, rather than aws-config's default chain (profiles, SSO, web identity,
//! assume-role through STS), keeps aws-sdk-sts and the rest of that chain out of the
//! function binaries. `chatctl`, on a developer's machine, loads the whole chain itself.
//!
//! The SDK sends its requests with the process's one HTTP client ([`crate::http_client`])
//! rather than its own hyper client: one HTTP and TLS stack in the binary (the SDK's brought
//! HTTP/2 and a second TLS client: 0.15 MiB of every zip), and the root certificates read
//! once per cold start instead of once per service.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;

pub fn sdk_config() -> SdkConfig {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let mut config = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .credentials_provider(SharedCredentialsProvider::new(
            EnvironmentVariableCredentialsProvider::new(),
        ))
        .http_client(http_client());
    if let Some(region) = var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")) {
        config = config.region(Region::new(region));
    }
    if let Some(url) = var("AWS_ENDPOINT_URL") {
        config = config.endpoint_url(url);
    }
    config.build()
}

/// The process's one SDK HTTP client, so every service client shares its connections.
fn http_client() -> SharedHttpClient {
    static CLIENT: OnceLock<SharedHttpClient> = OnceLock::new();
    CLIENT
        .get_or_init(|| SharedHttpClient::new(ReqwestClient::default()))
        .clone()
}

/// The SDK's `HttpClient`: a reqwest client for each pair of connect and read timeouts the SDK
/// asks for, kept for the process (its other timeouts, per attempt and per operation, the SDK
/// enforces itself).
#[derive(Debug, Default)]
struct ReqwestClient {
    connectors: Mutex<HashMap<Timeouts, SharedHttpConnector>>,
}

/// Connect and read timeouts.
type Timeouts = (Option<Duration>, Option<Duration>);

impl HttpClient for ReqwestClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let key = (settings.connect_timeout(), settings.read_timeout());
        let mut connectors = self.connectors.lock().unwrap_or_else(|p| p.into_inner());
        connectors
            .entry(key)
            .or_insert_with(|| connector(key.0, key.1))
            .clone()
    }
}

fn connector(
    connect_timeout: Option<Duration>,
    read_timeout: Option<Duration>,
) -> SharedHttpConnector {
    {
        let mut builder = crate::http_client::builder()
            // The SDK signs the request for its host: a redirect must not take it elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(Duration::from_secs(60));
        if let Some(timeout) = connect_timeout {
            builder = builder.connect_timeout(timeout);
        }
        if let Some(timeout) = read_timeout {
            builder = builder.read_timeout(timeout);
        }
        let client = builder.build().unwrap_or_else(|err| {
            tracing::error!(%err, "the AWS SDK's HTTP client could not be built as configured");
            reqwest::Client::new()
        });
        SharedHttpConnector::new(ReqwestConnector(client))
    }
}

#[derive(Debug, Clone)]
struct ReqwestConnector(reqwest::Client);

impl HttpConnector for ReqwestConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let client = self.0.clone();
        HttpConnectorFuture::new(async move {
            let request = request
                .try_into_http1x()
                .map_err(|err| ConnectorError::user(err.into()))?;
            let (parts, body) = request.into_parts();
            // SSM, DynamoDB and SQS requests are small JSON documents, held in memory.
            let body = body
                .bytes()
                .ok_or_else(|| ConnectorError::user("a streaming request body".into()))?
                .to_vec();
            let response = client
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await
                .map_err(connector_error)?;
            let mut answer = http::Response::builder().status(response.status());
            if let Some(headers) = answer.headers_mut() {
                *headers = response.headers().clone();
            }
            let bytes = response.bytes().await.map_err(connector_error)?;
            let answer = answer
                .body(SdkBody::from(bytes))
                .map_err(|err| ConnectorError::other(err.into(), None))?;
            HttpResponse::try_from(answer).map_err(|err| ConnectorError::other(err.into(), None))
        })
    }
}

/// The SDK retries timeouts and I/O errors by their kind.
fn connector_error(err: reqwest::Error) -> ConnectorError {
    if err.is_timeout() {
        ConnectorError::timeout(err.into())
    } else {
        ConnectorError::io(err.into())
    }
}
