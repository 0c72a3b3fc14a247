//! `chatctl serve` as a user runs it: a real process on loopback, sent the exact documents
//! the existing widget sends (`fixtures/operations.graphql`, a copy of `shared/contract/`).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use context_chat::dev_keys::{ContextClaims, ContextTokenSigner};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use test_support::{
    API_KEY_SID, API_SECRET, CHAT_SERVICE_SID, Issuer, Moto, TestKey, TwilioStandIn, claims,
    put_parameter, unique,
};

use crate::common::{
    Server, chatctl, failed, keygen, operation, post, serve, subscribe_email, temp_dir,
};

/// A GET of the embedded Conversation Service's REST API with the local credentials.
async fn embedded_twilio(server: &Server, secret: &str, path: &str) -> Value {
    let url = format!(
        "{}/local/twilio/v1/Services/{CHAT_SERVICE_SID}/{path}",
        server.base
    );
    let response = reqwest::Client::new()
        .get(&url)
        .basic_auth(API_KEY_SID, Some(secret))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{url}");
    response.json().await.unwrap()
}

fn error_type(body: &Value) -> &str {
    body["errors"][0]["errorType"]
        .as_str()
        .unwrap_or_else(|| panic!("no errorType in {body}"))
}

fn twilio_claims(token: &str, secret: &str) -> Value {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_aud = false;
    jsonwebtoken::decode::<Value>(
        token,
        &DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .expect("the access token verifies with the API key secret")
    .claims
}

#[tokio::test]
async fn local_mode_answers_the_widgets_operations_from_the_printed_token() {
    let data = temp_dir("serve-local");
    let server = serve(&data, &[]);
    let token = server.token.clone().expect("a sample token is printed");
    assert!(
        server.says("Twilio:", "embedded Conversation Service")
            && server.says("Twilio:", "provisioning is on"),
        "{:#?}",
        server.banner
    );
    // Local credentials, made on first start and kept in the data directory.
    let secret = std::fs::read_to_string(data.join("twilio-api-secret")).unwrap();

    let body = operation(&server, "verifyToken", json!({"token": token})).await;
    assert_eq!(
        body["data"]["verifyToken"],
        json!({"identity": "alex", "contexts": ["general", "random"]})
    );

    let body = operation(
        &server,
        "createChatToken",
        json!({"deviceId": "device-1", "token": token}),
    )
    .await;
    let access = body["data"]["createChatToken"].as_str().unwrap();
    let claims = twilio_claims(access, secret.trim());
    assert_eq!(claims["grants"]["identity"], "alex");
    assert_eq!(claims["grants"]["chat"]["service_sid"], CHAT_SERVICE_SID);
    // The token's contexts are conversations alex is in, made through the product's client.
    let mine = embedded_twilio(&server, secret.trim(), "Users/alex/Conversations").await;
    let mut rooms: Vec<&str> = mine["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["unique_name"].as_str().unwrap())
        .collect();
    rooms.sort();
    assert_eq!(rooms, ["general", "random"]);
    // Its webhook posts to this server's, as configure-twilio would set it (in the
    // background, once the server answers).
    let mut hooks = Value::Null;
    for _ in 0..100 {
        hooks = embedded_twilio(&server, secret.trim(), "Configuration/Webhooks").await;
        if !hooks["post_webhook_url"].is_null() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(hooks["post_webhook_url"], server.webhook_url(), "{hooks}");
    assert_eq!(hooks["filters"], json!(["onMessageAdded"]));
    // Nothing answers without the local credentials.
    let url = format!(
        "{}/local/twilio/v1/Services/{CHAT_SERVICE_SID}/Roles",
        server.base
    );
    let refused = reqwest::Client::new()
        .get(&url)
        .basic_auth(API_KEY_SID, Some("not-the-secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(
        claims["grants"]["chat"]["endpoint_id"],
        "dachat:alex:device-1"
    );
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(access.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["cty"], "twilio-fpa;v=1");

    // The notification documents are answered (details in tests/notifications.rs).
    let body = subscribe_email(&server, "general", "alex@example.com", &token).await;
    assert_eq!(
        body["data"]["enableChannelNotifications"]["emailVerified"], false,
        "{body}"
    );
    let body = operation(
        &server,
        "verifyEmail",
        json!({"email": "alex@example.com", "code": "123456"}),
    )
    .await;
    assert_eq!(error_type(&body), "BadRequest", "codes have 8 digits");

    // The development key survives a restart: the same kid is published again.
    let jwks: Value = server.get_json("/.well-known/jwks.json").await;
    let kid = jwks["keys"][0]["kid"].as_str().unwrap().to_owned();
    drop(server);
    let again = serve(&data, &[]);
    let jwks: Value = again.get_json("/.well-known/jwks.json").await;
    assert_eq!(jwks["keys"][0]["kid"], kid);
    let body = operation(&again, "verifyToken", json!({"token": token})).await;
    assert_eq!(body["data"]["verifyToken"]["identity"], "alex");
}

#[tokio::test]
async fn bad_requests_get_appsync_shaped_errors() {
    let data = temp_dir("serve-errors");
    let server = serve(&data, &[]);
    let pem = std::fs::read_to_string(data.join("dev-issuer-private.pem")).unwrap();
    let kid = std::fs::read_to_string(data.join("dev-issuer.kid")).unwrap();
    let signer = ContextTokenSigner::from_pem(&pem, kid.trim()).unwrap();
    let now = test_support::now();
    let sign = |sub: &str, contexts: &[&str], exp: u64| {
        signer
            .sign(&ContextClaims {
                sub: sub.into(),
                contexts: contexts.iter().map(|c| c.to_string()).collect(),
                iat: now - 7200,
                exp,
                iss: None,
                aud: None,
                roles: Default::default(),
            })
            .unwrap()
    };
    let cases = [
        (sign("alex", &["general"], now - 3600), "AccessDenied"),
        (sign("alex", &["not allowed!"], now + 3600), "BadRequest"),
        (
            TestKey::es256("stranger").token(&claims("alex", &["general"])),
            "AccessDenied",
        ),
        ("not-a-token".to_owned(), "BadRequest"),
        (String::new(), "BadRequest"),
    ];
    for (token, expected) in cases {
        for name in ["verifyToken", "createChatToken"] {
            let body = operation(&server, name, json!({"deviceId": "d", "token": token})).await;
            assert_eq!(error_type(&body), expected, "{name}: {body}");
            assert!(body["data"].is_null());
            let message = body["errors"][0]["message"].as_str().unwrap();
            assert!(token.is_empty() || !message.contains(&token));
        }
    }
    // A missing variable is the caller's mistake.
    let body = operation(&server, "createChatToken", json!({"token": "x"})).await;
    assert_eq!(error_type(&body), "BadRequest");
    let body = operation(
        &server,
        "createChatToken",
        json!({"deviceId": "has space", "token": sign("alex", &["general"], now + 60)}),
    )
    .await;
    assert_eq!(error_type(&body), "BadRequest");

    let health: Value = server.get_json("/healthz").await;
    assert_eq!(health["status"], "ok");
    let page = server.page("/graphql").await;
    assert!(
        page.contains("graphiql"),
        "GraphiQL is served on GET /graphql"
    );

    // GraphiQL loads the schema with the standard introspection query.
    let (status, body) = post(&server, json!({"query": INTROSPECTION}), None).await;
    assert_eq!(status, 200);
    assert!(body.get("errors").is_none(), "{body}");
    let types = body["data"]["__schema"]["types"].as_array().unwrap();
    assert!(types.iter().any(|t| t["name"] == "TokenInfo"));
}

/// The introspection query GraphiQL sends (graphql-js `getIntrospectionQuery`).
const INTROSPECTION: &str = "query IntrospectionQuery { __schema { queryType { name } mutationType { name } \
    subscriptionType { name } types { ...FullType } directives { name description locations args { ...InputValue } } } } \
    fragment FullType on __Type { kind name description fields(includeDeprecated: true) { name description \
    args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason } inputFields { ...InputValue } \
    interfaces { ...TypeRef } enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason } \
    possibleTypes { ...TypeRef } } \
    fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue } \
    fragment TypeRef on __Type { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name \
    ofType { kind name ofType { kind name ofType { kind name } } } } } } } }";

#[tokio::test]
async fn an_api_key_is_required_when_one_is_set() {
    let data = temp_dir("serve-key");
    let server = serve(&data, &[("CHAT_API_KEY", "da2-local-key".into())]);
    let body = json!({"query": "query { __typename }"});
    let (status, answer) = post(&server, body.clone(), None).await;
    assert_eq!(status, 401);
    assert_eq!(answer["errors"][0]["errorType"], "UnauthorizedException");
    let (status, _) = post(&server, body.clone(), Some("da2-wrong")).await;
    assert_eq!(status, 401);
    let (status, answer) = post(&server, body, Some("da2-local-key")).await;
    assert_eq!(status, 200);
    assert_eq!(answer["data"]["__typename"], "Query");
}

const ACCOUNT: &str = test_support::ACCOUNT_SID;
const API_KEY: &str = test_support::API_KEY_SID;
const SERVICE: &str = test_support::CHAT_SERVICE_SID;

#[tokio::test]
async fn with_stack_name_settings_come_from_ssm() {
    let moto = Moto::start();
    let ssm = moto.ssm().await;
    let stack = unique("serve");
    let (key, issuer) = Issuer::with(TestKey::es256("platform-2026")).await;
    let twilio = TwilioStandIn::start().await;
    for (name, value, secure) in [
        ("twilio/accountSID", ACCOUNT, false),
        ("twilio/apiKey", API_KEY, false),
        ("twilio/apiSecret", API_SECRET, true),
        ("twilio/chatServiceSID", SERVICE, false),
        ("chat/jwks.json", issuer.url().as_str(), false),
    ] {
        put_parameter(&ssm, &format!("/{stack}/{name}"), value, secure).await;
    }
    let mut env = moto.env();
    env.push(("STACK_NAME", stack));
    env.push(("TWILIO_API_BASE_URL", twilio.base_url()));
    let data = temp_dir("serve-ssm");
    let server = serve(&data, &env);
    assert!(
        server.token.is_none(),
        "no development issuer outside local mode"
    );
    assert!(
        server.says("Twilio:", "provisioning is on"),
        "{:#?}",
        server.banner
    );

    let token = key.token(&claims("sam", &["SHIPMENT-42"]));
    let body = operation(
        &server,
        "createChatToken",
        json!({"deviceId": "phone", "token": token}),
    )
    .await;
    let access = body["data"]["createChatToken"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"));
    let claims = twilio_claims(access, API_SECRET);
    assert_eq!(claims["sub"], ACCOUNT);
    assert_eq!(twilio.participants("SHIPMENT-42"), ["sam"]);
    assert_eq!(claims["iss"], API_KEY);
    assert_eq!(claims["grants"]["identity"], "sam");
    assert_eq!(claims["grants"]["chat"]["service_sid"], SERVICE);
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["nbf"].as_u64().unwrap(),
        86_400
    );
}

#[tokio::test]
async fn environment_settings_work_and_a_missing_one_stops_the_start() {
    let (key, issuer) = Issuer::with(TestKey::rs256("platform-rsa")).await;
    let twilio = TwilioStandIn::start().await;
    let mut env = twilio.env();
    env.extend([
        ("TWILIO_ACCESS_TOKEN_TTL", "3600".to_owned()),
        ("CHAT_JWKS_URL", issuer.url()),
        ("CHAT_AUDIENCE", "context-chat".to_owned()),
    ]);
    let data = temp_dir("serve-env");
    let server = serve(&data, &env);
    let mut c = claims("kim", &["general"]);
    c["aud"] = json!("context-chat");
    let body = operation(
        &server,
        "createChatToken",
        json!({"deviceId": "d", "token": key.token(&c)}),
    )
    .await;
    let access = body["data"]["createChatToken"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"));
    let claims = twilio_claims(access, API_SECRET);
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["nbf"].as_u64().unwrap(),
        3600
    );
    assert_eq!(twilio.memberships("kim"), ["general"]);
    let wrong_audience = key.token(&test_support::claims("kim", &["general"]));
    let body = operation(&server, "verifyToken", json!({"token": wrong_audience})).await;
    assert_eq!(error_type(&body), "AccessDenied");
    drop(server);

    env.retain(|(k, _)| *k != "TWILIO_API_SECRET");
    let output = chatctl(&["serve", "--port", "0"])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    let stderr = failed(&output);
    assert!(stderr.contains("TWILIO_API_SECRET"), "{stderr}");
    assert!(!stderr.contains(API_SECRET));
}

#[test]
fn the_committed_schemas_are_the_exported_ones() {
    let exported = |args: &[&str]| {
        let output = chatctl(args).output().unwrap();
        assert!(output.status.success());
        String::from_utf8(output.stdout).unwrap()
    };
    let committed = |file: &str| {
        std::fs::read_to_string(test_support::workspace_root().join("infra").join(file)).unwrap()
    };
    let with_platform = exported(&["schema", "--platform"]);
    assert_eq!(
        with_platform,
        committed("schema-platform.graphql"),
        "infra/schema-platform.graphql is stale: run `cargo run -p chatctl -- schema --platform > infra/schema-platform.graphql`"
    );
    for field in [
        "identityContexts(identity: ID!): [String!]! @aws_oidc",
        "contextMembers(context: String!): [ID!]! @aws_oidc",
        "syncIdentity(identity: ID!, contexts: [String!]!): SyncResult! @aws_oidc",
        "revokeIdentity(identity: ID!): RevokeResult! @aws_oidc",
        "createChatToken(deviceId: ID!, token: ID!): ID! @aws_api_key",
    ] {
        assert!(
            with_platform.contains(field),
            "{field} missing:\n{with_platform}"
        );
    }
    let exported = exported(&["schema"]);
    assert_eq!(
        exported,
        committed("schema.graphql"),
        "infra/schema.graphql is stale: run `cargo run -p chatctl -- schema > infra/schema.graphql`"
    );
    for field in [
        "createChatToken(deviceId: ID!, token: ID!): ID!",
        "verifyToken(token: ID!): TokenInfo!",
        "enableChannelNotifications(channel: ID!, email: String!, token: ID!): SubscriptionResult!",
        // A new optional argument keeps the contract's operation valid.
        "verifyEmail(email: String!, code: String!, token: ID): Boolean",
    ] {
        assert!(exported.contains(field), "the contract's {field}");
    }
}

#[tokio::test]
async fn keygen_jwks_and_token_make_tokens_the_verifier_accepts() {
    let dir = temp_dir("keys");
    let out = keygen("toolbox-1", &dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let private = dir.join("ecdsa-p256-toolbox-1-private.pem");
    let public = dir.join("ecdsa-p256-toolbox-1-public.pem");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&private).unwrap().permissions().mode() & 0o077,
            0
        );
    }
    let token = String::from_utf8(
        chatctl(&[
            "token",
            "--private-key",
            private.to_str().unwrap(),
            "--kid",
            "toolbox-1",
            "--identity",
            "alex",
            "--context",
            "general,SHIPMENT-42",
            "--ttl",
            "10m",
        ])
        .output()
        .unwrap()
        .stdout,
    )
    .unwrap();
    for legacy in [false, true] {
        let mut args = vec![
            "jwks",
            "--public-key",
            public.to_str().unwrap(),
            "--kid",
            "toolbox-1",
        ];
        if legacy {
            args.push("--legacy");
        }
        let doc: Value = serde_json::from_slice(&chatctl(&args).output().unwrap().stdout).unwrap();
        assert_eq!(doc["keys"][0].get("key").is_some(), legacy);
        let issuer = Issuer::start(doc).await;
        let verifier = context_chat::context_token::Verifier::new(
            context_chat::context_token::JwksCache::new(
                issuer.url().parse().unwrap(),
                context_chat::context_token::jwks::http_client(),
                Default::default(),
            ),
            None,
            None,
        );
        let verified = verifier.verify(token.trim()).await.unwrap();
        assert_eq!(verified.identity, "alex");
        assert_eq!(verified.contexts, ["general", "SHIPMENT-42"]);
        assert!(verified.expires_at <= test_support::now() + 600);
    }
    // A context the API would refuse is refused where it is typed.
    let private = private.to_str().unwrap();
    let args = ["token", "--private-key", private, "--identity", "alex"];
    let bad = chatctl(&[&args[..], &["--context", "no spaces"]].concat())
        .output()
        .unwrap();
    assert!(!bad.status.success());
}

#[test]
fn the_committed_appsync_resolvers_are_the_exported_ones() {
    let output = chatctl(&["resolvers"]).output().unwrap();
    assert!(output.status.success());
    let exported = String::from_utf8(output.stdout).unwrap();
    let committed = std::fs::read_to_string(
        test_support::workspace_root().join("infra/appsync-resolvers.json"),
    )
    .unwrap();
    assert_eq!(
        exported, committed,
        "infra/appsync-resolvers.json is stale: run `cargo run -p chatctl -- resolvers > infra/appsync-resolvers.json`"
    );
}

#[test]
fn the_committed_parameter_grants_are_the_exported_ones() {
    let output = chatctl(&["parameters"]).output().unwrap();
    assert!(output.status.success());
    let exported = String::from_utf8(output.stdout).unwrap();
    let committed =
        std::fs::read_to_string(test_support::workspace_root().join("infra/ssm-parameters.json"))
            .unwrap();
    assert_eq!(
        exported, committed,
        "infra/ssm-parameters.json is stale: run `cargo run -p chatctl -- parameters > infra/ssm-parameters.json`"
    );
    let grants: serde_json::Value = serde_json::from_str(&exported).unwrap();
    // Item 4: the auth token only for the webhook; verify-token no Twilio parameter at all.
    for (function, names) in grants.as_object().unwrap() {
        let names: Vec<&str> = names
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect();
        assert_eq!(
            names.iter().any(|n| n.ends_with("authToken")),
            function == "twilio-webhook",
            "{function}: {names:?}"
        );
    }
    assert!(
        grants["verify-token"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n.as_str().unwrap().starts_with("chat/"))
    );
}

/// A preflight from `origin` to `path`: the origin it allows back, if any.
async fn preflight(server: &Server, path: &str, origin: &str) -> Option<String> {
    let response = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, format!("{}{path}", server.base))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    response
        .headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn cors_only_for_graphql_and_allowed_origins_outbox_behind_the_key_and_hosts_checked() {
    let data = temp_dir("serve-guard");
    let server = serve(&data, &[("CHAT_API_KEY", "local-key".into())]);
    let own = server.base.clone();

    // CORS: the server's own origin and a localhost widget, on the GraphQL route only.
    assert_eq!(
        preflight(&server, "/graphql", &own).await,
        Some(own.clone())
    );
    let widget = "http://localhost:5173";
    assert_eq!(
        preflight(&server, "/graphql", widget).await.as_deref(),
        Some(widget)
    );
    assert_eq!(
        preflight(&server, "/graphql", "https://evil.example").await,
        None
    );
    for path in [
        "/outbox",
        "/twilio/webhook",
        "/notifications/unsubscribe",
        "/token",
    ] {
        assert_eq!(preflight(&server, path, widget).await, None, "{path}");
    }

    // The outbox holds confirmation codes: the API key is needed when one is set.
    let client = reqwest::Client::new();
    let outbox = format!("{}/outbox", server.base);
    assert_eq!(client.get(&outbox).send().await.unwrap().status(), 401);
    let with_key = client
        .get(&outbox)
        .header("x-api-key", "local-key")
        .send()
        .await
        .unwrap();
    assert_eq!(with_key.status(), 200);

    // DNS rebinding: a page whose name resolves to 127.0.0.1 sends its own Host.
    let port = server.base.rsplit(':').next().unwrap().to_owned();
    for (host, expected) in [
        (format!("evil.example:{port}"), 421),
        (format!("localhost:{port}"), 200),
        (format!("127.0.0.1:{port}"), 200),
    ] {
        let response = client
            .get(format!("{}/healthz", server.base))
            .header("host", &host)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), expected, "{host}");
    }
    drop(server);

    // Origins the operator lists replace the defaults.
    let server = serve(
        &data,
        &[("CHAT_ALLOWED_ORIGINS", "https://app.example.org".into())],
    );
    assert_eq!(
        preflight(&server, "/graphql", "https://app.example.org")
            .await
            .as_deref(),
        Some("https://app.example.org")
    );
    assert_eq!(preflight(&server, "/graphql", widget).await, None);
    // No key set: the outbox is open, as before.
    let outbox = format!("{}/outbox", server.base);
    assert_eq!(client.get(&outbox).send().await.unwrap().status(), 200);
}

/// L8: with a tunnel (`WEBHOOK_PUBLIC_URL`) and no API key, the tunnel's host reaches the
/// webhook and the unsubscribe links and nothing else; a secret file left readable by others
/// is owner-only after start; the outbox's files are written owner-only.
#[tokio::test]
async fn the_tunnels_host_reaches_only_the_webhook_and_unsubscribe_links() {
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;
    let data = temp_dir("serve-l8");
    let secret = data.join("link-secret");
    std::fs::write(&secret, "a-link-secret-an-older-version-left-readable").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let server = serve(
        &data,
        &[(
            "WEBHOOK_PUBLIC_URL",
            "https://tunnel.example/twilio/webhook".into(),
        )],
    );
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&secret), 0o600);

    let client = reqwest::Client::new();
    let request = |method: reqwest::Method, path: &str, host: &str| {
        client
            .request(method, format!("{}{path}", server.base))
            .header("host", host)
    };
    for (method, path) in [
        (reqwest::Method::GET, "/outbox"),
        (reqwest::Method::GET, "/metrics"),
        (reqwest::Method::GET, "/"),
        (reqwest::Method::POST, "/graphql"),
        (reqwest::Method::POST, "/token"),
        (reqwest::Method::POST, "/oauth/token"),
        (reqwest::Method::GET, "/.well-known/jwks.json"),
    ] {
        let status = |host| {
            let sent = request(method.clone(), path, host).send();
            async move { sent.await.unwrap().status() }
        };
        assert_eq!(
            status("tunnel.example").await,
            404,
            "{method} {path} through the tunnel"
        );
        assert_ne!(
            status("localhost").await,
            404,
            "{method} {path} on loopback"
        );
    }
    // Twilio's webhook under its path secret (refused for its missing signature, by the route
    // itself) and the unsubscribe page (refused for its missing link) are reached.
    let webhook_path = server.webhook_url().replacen(&server.base, "", 1);
    let webhook = request(reqwest::Method::POST, &webhook_path, "tunnel.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("EventType=onMessageAdded")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(webhook, 403);
    let unsubscribe = request(
        reqwest::Method::GET,
        "/notifications/unsubscribe",
        "tunnel.example",
    )
    .send()
    .await
    .unwrap()
    .status();
    assert!(![404, 421].contains(&unsubscribe.as_u16()), "{unsubscribe}");

    // A confirmation email in the outbox: owner-only.
    let token = server.token.clone().unwrap();
    let body = subscribe_email(&server, "general", "alex@example.org", &token).await;
    assert!(body["errors"].is_null(), "{body}");
    let files: Vec<_> = std::fs::read_dir(data.join("outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(!files.is_empty());
    for file in files {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}
