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
    crate::workspace_root().join("functions/test-support/fixtures/twilio-conversations.prism.json")
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
