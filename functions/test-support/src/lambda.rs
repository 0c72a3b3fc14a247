//! Lambda functions under cargo lambda's local runtime: its Runtime API emulator
//! (`cargo lambda watch --only-lambda-apis`), the function binary started against it, and
//! invocations sent the way `cargo lambda invoke` sends them.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The Runtime API emulator. It stops when dropped.
pub struct Emulator {
    _child: crate::KilledOnDrop,
    port: u16,
}

/// cargo-lambda from the project's venv (as `scripts/test` installs it), else from PATH.
fn cargo_lambda() -> PathBuf {
    if let Ok(path) = std::env::var("CARGO_LAMBDA") {
        return path.into();
    }
    let venv = crate::workspace_root().join(".venv/bin/cargo-lambda");
    if venv.exists() {
        venv
    } else {
        "cargo-lambda".into()
    }
}

impl Emulator {
    pub fn start() -> Self {
        let port = crate::free_port();
        let child = Command::new(cargo_lambda())
            .args([
                "lambda",
                "watch",
                "--only-lambda-apis",
                "-A",
                "127.0.0.1",
                "-P",
            ])
            .arg(port.to_string())
            .current_dir(crate::workspace_root())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("could not start cargo lambda ({e}); run the tests with scripts/test")
            });
        let emulator = Self {
            _child: crate::KilledOnDrop(child),
            port,
        };
        wait_for_port(port, Duration::from_secs(30));
        emulator
    }

    /// `AWS_LAMBDA_RUNTIME_API` for a function of this name.
    pub fn runtime_api(&self, function: &str) -> String {
        format!("http://127.0.0.1:{}/.rt/{function}", self.port)
    }

    /// Where `cargo lambda invoke` sends an invocation of `function`.
    pub fn invocations_url(&self, function: &str) -> String {
        format!(
            "http://127.0.0.1:{}/2015-03-31/functions/{function}/invocations",
            self.port
        )
    }

    /// Invokes `function` with the `cargo lambda invoke` command itself: its exit status
    /// and what it printed (the answer on stdout, the error type and message on stderr).
    pub fn invoke_with_cli(&self, function: &str, payload: &Value) -> (bool, String, String) {
        let output = Command::new(cargo_lambda())
            .args([
                "lambda",
                "invoke",
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
            ])
            .arg(self.port.to_string())
            .args(["--output-format", "json", "--data-ascii"])
            .arg(payload.to_string())
            .arg(function)
            .current_dir(crate::workspace_root())
            .output()
            .expect("cargo lambda invoke runs");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// Invokes `function` and waits for its answer.
    /// Invokes `function` and expects an answer.
    pub async fn answer(&self, function: &str, payload: &Value) -> Value {
        self.invoke(function, payload).await.value()
    }

    /// Invokes `function` and expects a function error: its type and message.
    pub async fn refusal(&self, function: &str, payload: &Value) -> (String, String) {
        self.invoke(function, payload).await.error()
    }

    pub async fn invoke(&self, function: &str, payload: &Value) -> Invocation {
        let response = reqwest::Client::new()
            .post(self.invocations_url(function))
            .json(payload)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .expect("the emulator answers");
        let failed = response.headers().contains_key("x-amz-function-error");
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("a JSON answer");
        if failed || status >= 400 {
            Invocation::Failed {
                error_type: body["errorType"].as_str().unwrap_or_default().to_owned(),
                error_message: body["errorMessage"].as_str().unwrap_or_default().to_owned(),
            }
        } else {
            Invocation::Answered(body)
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    Answered(Value),
    Failed {
        error_type: String,
        error_message: String,
    },
}

impl Invocation {
    pub fn value(self) -> Value {
        match self {
            Invocation::Answered(v) => v,
            failed => panic!("expected an answer, got {failed:?}"),
        }
    }

    pub fn error(self) -> (String, String) {
        match self {
            Invocation::Failed {
                error_type,
                error_message,
            } => (error_type, error_message),
            answered => panic!("expected a function error, got {answered:?}"),
        }
    }
}

/// A function process and everything it printed. It stops when dropped.
pub struct Function {
    child: crate::KilledOnDrop,
    output: Arc<Mutex<String>>,
}

impl Function {
    /// Starts `binary` as the Lambda service would, against the emulator.
    /// The handler binary at `binary` (a test's `env!("CARGO_BIN_EXE_…")`), registered
    /// under its file name.
    pub fn of(binary: &str, emulator: &Emulator, env: &[(&str, String)]) -> Self {
        let path = Path::new(binary);
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or(binary);
        Self::start(path, name, emulator, env)
    }

    pub fn start(binary: &Path, name: &str, emulator: &Emulator, env: &[(&str, String)]) -> Self {
        let mut child = Command::new(binary)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", emulator.runtime_api(name))
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the function binary starts");
        let output = Arc::new(Mutex::new(String::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let output = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut out = output.lock().unwrap();
                    out.push_str(&line);
                    out.push('\n');
                }
            });
        }
        Self {
            child: crate::KilledOnDrop(child),
            output,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }

    /// How the process ended, once it has, within `timeout`.
    pub fn wait_for_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.0.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the function has printed so far (its logs).
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// The CloudWatch EMF lines the function has written (its metrics, one object per line,
    /// in order), waiting up to 10 s for at least `at_least` of them.
    pub fn metrics(&self, at_least: usize) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let lines: Vec<serde_json::Value> = self
                .output()
                .lines()
                .filter(|l| l.contains("\"_aws\""))
                .map(|l| serde_json::from_str(l).expect("an EMF line is one JSON object"))
                .collect();
            if lines.len() >= at_least || Instant::now() >= deadline {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the output holds `needle`.
    pub fn wait_for_output(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.output().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

pub(crate) fn wait_for_port(port: u16, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on port {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An AppSync direct resolver event for `parent.field` with these arguments, shaped like
/// aws-lambda-events' `example-appsync-direct-resolver.json` with an API-key request.
/// An AppSync event for the mutation `field`.
pub fn mutation(field: &str, arguments: Value) -> Value {
    appsync_event("Mutation", field, arguments)
}

pub fn appsync_event(parent: &str, field: &str, arguments: Value) -> Value {
    let mut event: Value = serde_json::from_str(crate::fixtures::APPSYNC_DIRECT_RESOLVER).unwrap();
    event["info"]["parentTypeName"] = parent.into();
    event["info"]["fieldName"] = field.into();
    event["info"]["variables"] = arguments.clone();
    event["arguments"] = arguments;
    event
}

/// An HTTP API (payload 2.0) request as API Gateway hands it to a function on its default
/// stage: `method path?query` to `domain`, with these headers and, base64-encoded as API
/// Gateway does for form bodies, this body.
pub fn http_api_event(
    method: &str,
    domain: &str,
    path: &str,
    query: &[(&str, &str)],
    headers: Value,
    body: Option<&str>,
) -> Value {
    use base64::Engine as _;
    let raw_query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(query)
        .finish();
    let parameters: serde_json::Map<String, Value> = query
        .iter()
        .map(|(k, v)| (k.to_string(), Value::from(*v)))
        .collect();
    let route = format!("{method} {path}");
    let mut event = serde_json::json!({
        "version": "2.0",
        "routeKey": route,
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": domain,
            "domainPrefix": domain.split('.').next().unwrap_or_default(),
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "54.172.60.1", "userAgent": "test"},
            "requestId": "req-1",
            "routeKey": route,
            "stage": "$default",
            "time": "22/Nov/2026:10:00:00 +0000",
            "timeEpoch": 1795341600000u64
        },
        "isBase64Encoded": body.is_some()
    });
    if !parameters.is_empty() {
        event["queryStringParameters"] = Value::Object(parameters);
    }
    if let Some(body) = body {
        event["body"] = base64::engine::general_purpose::STANDARD
            .encode(body)
            .into();
    }
    event
}

/// The seconds an HTTP API answer's `retry-after` header asks the caller to wait.
pub fn retry_after(answer: &Value) -> u64 {
    let header = answer["headers"]["retry-after"].as_str();
    header
        .and_then(|h| h.parse().ok())
        .unwrap_or_else(|| panic!("no retry-after: {answer}"))
}
