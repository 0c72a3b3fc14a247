//! Prism (npm `@stoplight/prism-cli`) serving Twilio's Conversations OpenAPI spec as a
//! validating mock. The Twilio stand-in shows it every request it receives; Prism answers
//! 4xx for a request the spec does not allow (a missing required field, a wrong type, an
//! unknown path or method, no credentials, a body that is not form-encoded).
//!
//! `scripts/test` installs it and starts one for the whole run (`PRISM_URL`); without that,
//! each stand-in starts its own from `functions/test-support/prism/node_modules`.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The spec Prism serves: the paths Context Chat calls, from Twilio's own spec
/// (`scripts/twilio-spec` writes it).
pub fn spec_path() -> PathBuf {
    crate::workspace_root().join("functions/test-support/fixtures/twilio-conversations.prism.json")
}

pub struct Prism {
    url: String,
    child: Option<Child>,
}

impl Prism {
    pub fn start() -> Self {
        if let Some(url) = std::env::var("PRISM_URL").ok().filter(|u| !u.is_empty()) {
            return Self { url, child: None };
        }
        let binary =
            crate::workspace_root().join("functions/test-support/prism/node_modules/.bin/prism");
        let port = crate::free_port();
        let child = Command::new(&binary)
            .arg("mock")
            .arg(spec_path())
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "could not start Prism ({}): {e}. Run the tests with scripts/test, or \
                     `npm ci --prefix functions/test-support/prism` once",
                    binary.display()
                )
            });
        let prism = Self {
            url: format!("http://127.0.0.1:{port}"),
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "Prism did not start listening");
            std::thread::sleep(Duration::from_millis(50));
        }
        prism
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for Prism {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
