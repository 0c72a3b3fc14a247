//! Prism (npm `@stoplight/prism-cli`) serving Twilio's Conversations OpenAPI spec as a
//! validating mock. The Twilio stand-in shows it every request it receives; Prism answers
//! 4xx for a request the spec does not allow (a missing required field, a wrong type, an
//! unknown path or method, no credentials, a body that is not form-encoded).
//!
//! `scripts/test` installs it and starts one for the whole run (`PRISM_URL`); without that,
//! each stand-in starts its own from `functions/test-support/prism/node_modules`.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// The spec Prism serves: the paths Context Chat calls, from Twilio's own spec
/// (`scripts/twilio-spec` writes it).
pub fn spec_path() -> PathBuf {
    crate::workspace_root().join("functions/test-support/fixtures/twilio.prism.json")
}

pub struct Prism {
    url: String,
    _server: Option<crate::LocalServer>,
}

impl Prism {
    pub fn start() -> Self {
        if let Some(url) = std::env::var("PRISM_URL").ok().filter(|u| !u.is_empty()) {
            return Self { url, _server: None };
        }
        let binary =
            crate::workspace_root().join("functions/test-support/prism/node_modules/.bin/prism");
        let port = crate::free_port();
        let mut command = Command::new(&binary);
        command
            .arg("mock")
            .arg(spec_path())
            .args(["-h", "127.0.0.1", "-p", &port.to_string()]);
        let server = crate::LocalServer::start(
            command,
            port,
            "Prism",
            "Run the tests with scripts/test, or `npm ci --prefix functions/test-support/prism` once",
            Duration::from_secs(60),
        );
        Self {
            url: format!("http://127.0.0.1:{port}"),
            _server: Some(server),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

/// Shows Prism one request a stand-in received; `Some(why)` when Twilio's spec does not
/// allow it.
pub async fn check(
    http: &reqwest::Client,
    prism_url: &str,
    method: &axum::http::Method,
    uri: &axum::http::Uri,
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> Option<String> {
    use axum::http::header;
    let url = format!(
        "{}{}",
        prism_url,
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
    );
    let mut request = http.request(method.clone(), url).body(body.to_vec());
    for name in [header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT] {
        if let Some(value) = headers.get(&name) {
            request = request.header(name, value.clone());
        }
    }
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => return Some(format!("Prism could not be asked: {e}")),
    };
    let status = response.status().as_u16();
    if status < 400 {
        return None;
    }
    let detail: serde_json::Value = response.json().await.unwrap_or(serde_json::Value::Null);
    let messages: Vec<String> = detail["validation"]
        .as_array()
        .map(|v| {
            v.iter()
                .map(|e| format!("{} {}", e["location"], e["message"].as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    Some(format!(
        "Prism {status}: {} {}",
        detail["title"].as_str().unwrap_or(""),
        if messages.is_empty() {
            detail["detail"].as_str().unwrap_or("").to_owned()
        } else {
            messages.join("; ")
        }
    ))
}
