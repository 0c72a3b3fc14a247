//! The platform API on `chatctl serve`: the bearer check beside the API key, the fields
//! against the Twilio stand-in, and local mode's development authorization server used
//! through `chatctl platform`, as a platform backend would.

use std::time::Duration;

use serde_json::{Value, json};
use test_support::{TestKey, claims, now};

use crate::common::{
    API_KEY, Local, PLATFORM_AUDIENCE, PLATFORM_ISSUER, Server, call, chatctl, error_type, failed,
    json_of, serve, temp_dir,
};

fn access_token(key: &TestKey, scope: &str) -> String {
    let now = now();
    key.token(&json!({
        "iss": PLATFORM_ISSUER, "aud": PLATFORM_AUDIENCE, "sub": "toolbox@clients",
        "scope": scope, "iat": now, "exp": now + 600,
    }))
}

const SYNC: &str = "mutation($identity: ID!, $contexts: [String!]!) { syncIdentity(identity: $identity, contexts: $contexts) { joined left sweepAt } }";
const REVOKE: &str = "mutation($identity: ID!) { revokeIdentity(identity: $identity) { left subscriptionsRemoved revokedBefore sweepAt } }";
const CREATE: &str = "mutation($token: ID!) { createChatToken(deviceId: \"d\", token: $token) }";

#[tokio::test]
async fn platform_fields_take_the_bearer_and_widget_fields_the_api_key() {
    let local = Local::with_platform(
        "serve-platform",
        TestKey::es256("ctx"),
        TestKey::rs256("idp"),
        &[("RUST_LOG", "debug".to_owned())],
    )
    .await;
    let (server, twilio, data) = (&local.server, &local.twilio, &local.data);
    let (context_key, platform_key) = (&local.key, local.platform_key.as_ref().unwrap());
    let admin = access_token(platform_key, "chat:read chat:admin");
    let read = access_token(platform_key, "chat:read");

    // A token the platform issued before it syncs and revokes.
    let mut old = claims("alex", &["general"]);
    old["iat"] = json!(now() - 10);
    let old = context_key.token(&old);

    let (status, body) = call(
        server,
        SYNC,
        json!({"identity": "alex", "contexts": ["general", "random"]}),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let synced = &body["data"]["syncIdentity"];
    assert!(
        synced["sweepAt"].as_u64().is_some_and(|at| at > now()),
        "{body}"
    );
    assert_eq!(
        (&synced["joined"], &synced["left"]),
        (&json!(["general", "random"]), &json!([])),
        "{body}"
    );
    assert_eq!(twilio.memberships("alex"), ["general", "random"]);

    let (_, body) = call(
        server,
        "query { identityContexts(identity: \"alex\") contextMembers(context: \"general\") }",
        json!({}),
        Some(&read),
        None,
    )
    .await;
    assert_eq!(
        body["data"]["identityContexts"],
        json!(["general", "random"]),
        "{body}"
    );
    assert_eq!(body["data"]["contextMembers"], json!(["alex"]), "{body}");
    let (_, body) = call(
        server,
        "query { contextMembers(context: \"nowhere\") }",
        json!({}),
        Some(&read),
        None,
    )
    .await;
    assert_eq!(error_type(&body), "EntityNotFound", "{body}");

    // Each door opens only its own fields.
    let (status, body) = call(server, CREATE, json!({"token": old}), Some(&admin), None).await;
    assert_eq!(status, 200);
    assert_eq!(error_type(&body), "Unauthorized", "{body}");
    let (status, _) = call(server, CREATE, json!({"token": old}), None, None).await;
    assert_eq!(status, 401, "neither the key nor a token");
    let (_, body) = call(
        server,
        SYNC,
        json!({"identity": "alex", "contexts": []}),
        None,
        Some(API_KEY),
    )
    .await;
    assert_eq!(error_type(&body), "AccessDenied", "{body}");
    // Queries do not open mutations; a context token is not an access token.
    for (token, why) in [(&read, "a read-only token"), (&old, "a context token")] {
        let (_, body) = call(
            server,
            SYNC,
            json!({"identity": "alex", "contexts": []}),
            Some(token),
            None,
        )
        .await;
        assert_eq!(error_type(&body), "AccessDenied", "{why}: {body}");
    }
    assert_eq!(
        twilio.memberships("alex"),
        ["general", "random"],
        "nothing changed"
    );

    // Revoked: the identity leaves, and its old token is refused.
    let (_, body) = call(
        server,
        REVOKE,
        json!({"identity": "alex"}),
        Some(&admin),
        None,
    )
    .await;
    let revoked = &body["data"]["revokeIdentity"];
    assert_eq!(revoked["left"], json!(["general", "random"]), "{body}");
    assert!(revoked["revokedBefore"].as_u64().unwrap() >= now() - 2);
    // Local mode sweeps again on a timer, after the window and the provisioning budget.
    assert!(
        revoked["sweepAt"]
            .as_u64()
            .is_some_and(|at| at >= now() + 70),
        "{body}"
    );
    assert!(twilio.memberships("alex").is_empty());
    let (_, body) = call(server, CREATE, json!({"token": old}), None, Some(API_KEY)).await;
    assert_eq!(error_type(&body), "AccessDenied", "{body}");
    assert!(twilio.memberships("alex").is_empty());

    // No access token or context token in any log line, at debug level.
    let log = std::fs::read_to_string(data.join("server.log")).unwrap();
    assert!(log.contains("identity revoked"), "the log is captured");
    for token in [&admin, &read, &old] {
        let signature = token.rsplit('.').next().unwrap();
        assert!(!log.contains(signature), "a token in the log");
    }
}

/// `chatctl platform` against a local server, with the server's development client.
pub fn platform(server: &Server, data: &std::path::Path, args: &[&str]) -> std::process::Output {
    let api = format!("{}/graphql", server.base);
    let token_url = format!("{}/oauth/token", server.base);
    let mut all = vec![
        "platform",
        "--api-url",
        &api,
        "--token-url",
        &token_url,
        "--data-dir",
        data.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    chatctl(&all).output().unwrap()
}

fn cached_token(data: &std::path::Path) -> String {
    let text = std::fs::read_to_string(data.join("platform-token.json")).unwrap();
    let cached: Value = serde_json::from_str(&text).unwrap();
    cached["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn local_mode_grants_client_credentials_and_chatctl_platform_revokes() {
    let data = temp_dir("serve-platform-local");
    let server = serve(&data, &[]);
    let sample = server.token.clone().unwrap();
    let banner = server.banner.join("\n");
    assert!(banner.contains("/oauth/token"), "{banner}");
    assert!(banner.contains("PLATFORM_CLIENT_SECRET="), "{banner}");
    let client: Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("platform-client.json")).unwrap())
            .unwrap();
    let (id, secret) = (
        client["client_id"].as_str().unwrap(),
        client["client_secret"].as_str().unwrap(),
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for file in ["platform-client.json", "platform-auth-private.pem"] {
            let mode = std::fs::metadata(data.join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
    }

    // The token endpoint, as RFC 6749 has it: form or JSON, secret in the body or Basic.
    let http = reqwest::Client::new();
    let token_url = format!("{}/oauth/token", server.base);
    let answer: Value = json_of(http
        .post(&token_url)
        .json(&json!({"grant_type": "client_credentials", "client_id": id, "client_secret": secret, "scope": "chat:read"}))).await;
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["scope"], "chat:read");
    assert!(answer["expires_in"].as_u64().unwrap() > 60);
    let response = http
        .post(&token_url)
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    for (form, status, error) in [
        (
            vec![("grant_type", "password")],
            400,
            "unsupported_grant_type",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", id),
                ("client_secret", "wrong"),
            ],
            401,
            "invalid_client",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", id),
                ("client_secret", secret),
                ("scope", "chat:everything"),
            ],
            400,
            "invalid_scope",
        ),
    ] {
        let response = http.post(&token_url).form(&form).send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{form:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], error, "{form:?}");
    }

    // Revocation counts in whole seconds: the sample token must be older than it.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let output = platform(&server, &data, &["revoke-identity", "--identity", "alex"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let revoked: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        revoked["left"],
        json!([]),
        "no Twilio account in local mode"
    );
    assert!(revoked["revokedBefore"].as_u64().unwrap() >= now() - 2);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("platform-token.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let verify = "query($token: ID!) { verifyToken(token: $token) { identity } }";
    let (_, body) = call(&server, verify, json!({"token": sample}), None, None).await;
    assert_eq!(error_type(&body), "AccessDenied", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );
    let fresh: Value = json_of(http.post(format!(
        "{}/token?identity=alex&context=general",
        server.base
    )))
    .await;
    let (_, body) = call(
        &server,
        verify,
        json!({"token": fresh["token"]}),
        None,
        None,
    )
    .await;
    assert_eq!(body["data"]["verifyToken"]["identity"], "alex", "{body}");
    // That token is on record, and the platform reads the record by its xid.
    let xid = fresh["xid"].as_str().unwrap();
    let output = platform(&server, &data, &["token-issuance", "--xid", xid]);
    let record: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(record["kind"], "context-dev", "{record}");
    assert_eq!(record["identity"], "alex");
    assert_eq!(
        record["tokenSha256"],
        context_chat::ledger::sha256_hex(fresh["token"].as_str().unwrap())
    );
    let output = platform(
        &server,
        &data,
        &["token-issuances", "--identity", "alex", "--limit", "1"],
    );
    let listed: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(listed[0]["xid"], xid, "{listed}");

    // The cached token is reused by the next command.
    let first = cached_token(&data);
    let output = platform(&server, &data, &["revoke-identity", "--identity", "sam"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(cached_token(&data), first, "reused, not fetched again");

    // Another scope is another token; it does not open mutations.
    let output = platform(
        &server,
        &data,
        &[
            "--scope",
            "chat:read",
            "revoke-identity",
            "--identity",
            "sam",
        ],
    );
    let stderr = failed(&output);
    assert!(
        stderr.contains("AccessDenied") && stderr.contains("chat:admin"),
        "{stderr}"
    );
    let read_only = cached_token(&data);
    assert_ne!(read_only, first);

    // A refused fetch is not cached, and the secret is not shown.
    let output = platform(
        &server,
        &data,
        &[
            "--client-id",
            id,
            "--client-secret",
            "not-the-secret",
            "revoke-identity",
            "--identity",
            "sam",
        ],
    );
    let stderr = failed(&output);
    assert!(stderr.contains("invalid_client"), "{stderr}");
    assert!(!stderr.contains("not-the-secret"), "{stderr}");
    assert_eq!(cached_token(&data), read_only);
}
