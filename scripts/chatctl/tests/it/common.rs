//! What every chatctl test needs: the command with a clean environment, a scratch folder.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

use test_support::TempDir;

pub fn temp_dir(name: &str) -> TempDir {
    TempDir::new(name)
}

/// The command with none of the setting variables of the surrounding environment.
pub fn chatctl(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chatctl"));
    cmd.args(args);
    for var in [
        "STACK_NAME",
        "CHAT_API_KEY",
        "TWILIO_ACCOUNT_SID",
        "TWILIO_API_KEY",
        "TWILIO_API_SECRET",
        "TWILIO_CHAT_SERVICE_SID",
        "TWILIO_AUTH_TOKEN",
        "TWILIO_ACCESS_TOKEN_TTL",
        "TWILIO_API_BASE_URL",
        "TWILIO_WEBHOOK_URL",
        "TWILIO_WEBHOOK_PATH_SECRET",
        "CHAT_JWKS_URL",
        "CHAT_ISSUER",
        "CHAT_AUDIENCE",
        "PORT",
        "SENDGRID_API_KEY",
        "SENDGRID_DOMAIN",
        "SENDGRID_API_BASE_URL",
        "WEBHOOK_PUBLIC_URL",
        "CHAT_DATA_DIR",
        "CHAT_API_URL",
        "PLATFORM_ISSUER",
        "PLATFORM_AUDIENCE",
        "PLATFORM_JWKS_URL",
        "PLATFORM_CLIENT_ID",
        "PLATFORM_CLIENT_SECRET",
        "PLATFORM_TOKEN_URL",
        "PLATFORM_TOKEN_AUDIENCE",
        "PLATFORM_TOKEN_CACHE",
        "TWILIO_PUSH_CREDENTIAL_SID",
        "VIRGIL_APP_ID",
        "VIRGIL_APP_KEY_ID",
        "VIRGIL_APP_KEY",
        "VIRGIL_TOKEN_TTL",
        "CHAT_TOKENS_PER_MINUTE",
        "CHAT_ISSUANCE_RETENTION_DAYS",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// The exact documents the existing widget sends (a copy of `shared/contract/`).
pub const OPERATIONS: &str = include_str!("../fixtures/operations.graphql");

/// A running `chatctl serve`, stopped when dropped.
pub struct Server {
    pub child: Child,
    pub base: String,
    /// The sample token, in local mode.
    pub token: Option<String>,
    /// What it printed up to "Ready.".
    pub banner: Vec<String>,
}

impl Server {
    /// Twilio's webhook URL, path secret and all, as the banner shows it for a secret of the
    /// data directory.
    pub fn webhook_url(&self) -> String {
        self.banner
            .iter()
            .find_map(|line| line.split("Twilio webhook at ").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .filter(|url| !url.contains('<'))
            .unwrap_or_else(|| panic!("no webhook URL in {:?}", self.banner))
            .to_owned()
    }

    /// Posts `params` to the webhook as Twilio does, signed with `auth_token`; the status.
    pub async fn post_webhook(&self, params: &[(&str, &str)], auth_token: &str) -> u16 {
        let url = self.webhook_url();
        reqwest::Client::new()
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header(
                "x-twilio-signature",
                test_support::sign_form(auth_token, &url, params),
            )
            .body(test_support::form_body(params))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn serve(data_dir: &Path, env: &[(&str, String)]) -> Server {
    let mut cmd = chatctl(&[
        "serve",
        "--port",
        "0",
        "--data-dir",
        data_dir.to_str().unwrap(),
    ]);
    // The server's log lines, for tests that look at what it logs.
    let log = std::fs::File::create(data_dir.join("server.log")).unwrap();
    cmd.envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(log);
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut base = None;
    let mut token = None;
    let mut next_is_token = false;
    let mut banner = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(20)) {
        banner.push(line.clone());
        if let Some(rest) = line.strip_prefix("Context Chat is listening on ") {
            base = Some(rest.split("/graphql").next().unwrap().to_owned());
        } else if line.starts_with("Sample context token") {
            next_is_token = true;
        } else if next_is_token {
            token = Some(line.trim().to_owned());
            next_is_token = false;
        } else if line == "Ready." {
            break;
        }
    }
    let base = base.expect("the server announced its address");
    Server {
        child,
        base,
        token,
        banner,
    }
}

pub async fn post(server: &Server, body: Value, api_key: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/graphql", server.base))
        .json(&body);
    if let Some(key) = api_key {
        request = request.header("x-api-key", key);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// One contract operation, by name, with variables.
pub async fn operation(server: &Server, name: &str, variables: Value) -> Value {
    let (status, body) = post(
        server,
        json!({"query": OPERATIONS, "operationName": name, "variables": variables}),
        None,
    )
    .await;
    assert_eq!(status, 200);
    body
}

/// A GraphQL call with the given headers; the status and the body.
pub async fn call(
    server: &Server,
    query: &str,
    variables: Value,
    bearer: Option<&str>,
    api_key: Option<&str>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/graphql", server.base))
        .json(&json!({"query": query, "variables": variables}));
    if let Some(token) = bearer {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if let Some(key) = api_key {
        request = request.header("x-api-key", key);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

pub fn error_type(body: &Value) -> &str {
    body["errors"][0]["errorType"].as_str().unwrap_or("none")
}

/// The platform API's issuer and audience the tests' platform tokens carry.
pub const PLATFORM_ISSUER: &str = "https://platform.example.org/";
pub const PLATFORM_AUDIENCE: &str = "https://chat.example.org/platform";
/// The widget's API key where a test sets one.
pub const API_KEY: &str = "da2-widget-key";

/// `chatctl serve` on stand-ins: an issuer of context tokens signed with `key` and Twilio's
/// Conversations stand-in (with `TWILIO_AUTH_TOKEN` for signed webhooks), and, with
/// [`Local::with_platform`], the platform API's issuer and the widget's API key. `env` comes
/// last and wins.
pub struct Local {
    pub server: Server,
    pub key: test_support::TestKey,
    pub platform_key: Option<test_support::TestKey>,
    pub twilio: test_support::TwilioStandIn,
    pub data: TempDir,
    _issuers: Vec<test_support::Issuer>,
}

impl Local {
    pub async fn start(name: &str, key: test_support::TestKey, env: &[(&str, String)]) -> Local {
        Self::start_on(name, key, None, env).await
    }

    /// With the platform API (its issuer signs with `platform_key`) and `CHAT_API_KEY`.
    pub async fn with_platform(
        name: &str,
        key: test_support::TestKey,
        platform_key: test_support::TestKey,
        env: &[(&str, String)],
    ) -> Local {
        Self::start_on(name, key, Some(platform_key), env).await
    }

    async fn start_on(
        name: &str,
        key: test_support::TestKey,
        platform_key: Option<test_support::TestKey>,
        extra: &[(&str, String)],
    ) -> Local {
        use test_support::{AUTH_TOKEN, Issuer, TwilioStandIn, jwks};
        let issuer = Issuer::start(jwks(&[&key])).await;
        let twilio = TwilioStandIn::start().await;
        let mut env = twilio.env();
        env.extend([
            ("CHAT_JWKS_URL", issuer.url()),
            ("TWILIO_AUTH_TOKEN", AUTH_TOKEN.to_owned()),
        ]);
        let mut issuers = vec![issuer];
        if let Some(platform_key) = &platform_key {
            let platform = Issuer::start(jwks(&[platform_key])).await;
            env.extend([
                ("CHAT_API_KEY", API_KEY.to_owned()),
                ("PLATFORM_ISSUER", PLATFORM_ISSUER.to_owned()),
                ("PLATFORM_AUDIENCE", PLATFORM_AUDIENCE.to_owned()),
                ("PLATFORM_JWKS_URL", platform.url()),
            ]);
            issuers.push(platform);
        }
        env.extend(extra.iter().cloned());
        let data = temp_dir(name);
        let server = serve(&data, &env);
        Local {
            server,
            key,
            platform_key,
            twilio,
            data,
            _issuers: issuers,
        }
    }
}

impl Server {
    /// Whether a line of the banner starts with `prefix` and says `text`.
    pub fn says(&self, prefix: &str, text: &str) -> bool {
        let line = |l: &String| l.starts_with(prefix) && l.contains(text);
        self.banner.iter().any(line)
    }

    /// GET `path` as text.
    pub async fn page(&self, path: &str) -> String {
        let response = reqwest::get(format!("{}{path}", self.base)).await.unwrap();
        response.text().await.unwrap()
    }

    /// GET `path` as JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        let response = reqwest::get(format!("{}{path}", self.base)).await.unwrap();
        response.json().await.unwrap()
    }
}

/// A widget call (no bearer, no API key) that must be answered with 200; its body.
pub async fn answered(server: &Server, query: &str, variables: Value) -> Value {
    let (status, body) = call(server, query, variables, None, None).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The standard error of a chatctl run that must have failed.
pub fn failed(output: &std::process::Output) -> String {
    assert!(!output.status.success(), "it succeeded");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Sends `request` and reads its answer as JSON.
pub async fn json_of(request: reqwest::RequestBuilder) -> Value {
    request.send().await.unwrap().json().await.unwrap()
}

/// `enableChannelNotifications` as the widget sends it.
pub async fn subscribe_email(server: &Server, channel: &str, email: &str, token: &str) -> Value {
    let variables = json!({"channel": channel, "email": email, "token": token});
    operation(server, "enableChannelNotifications", variables).await
}

/// `chatctl keygen` of a key `kid` into `dir`.
pub fn keygen(kid: &str, dir: &Path) -> std::process::Output {
    let dir = dir.to_str().unwrap();
    chatctl(&["keygen", "--kid", kid, "--out-dir", dir])
        .output()
        .unwrap()
}
