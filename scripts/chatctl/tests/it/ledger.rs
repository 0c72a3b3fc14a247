//! The token ledger and the minting limit on `chatctl serve`, as the widget and a platform
//! backend see them: receipts, the platform API's reading of the ledger, `Conflict` on a
//! reused xid, `TooManyRequests` past the limit; and the dev token API's xid, record and
//! per-address limit. The embedded store, read back as bytes, holds no token.

use context_chat::ledger::sha256_hex;
use serde_json::{Value, json};
use test_support::{TestKey, claims, early_in_a_minute, jwt_payload, now};

use crate::common::{
    API_KEY, Local, PLATFORM_AUDIENCE, PLATFORM_ISSUER, Server, call, error_type, json_of, serve,
    temp_dir,
};

const ISSUE: &str = "mutation($token: ID!, $xid: ID) { issueChatToken(deviceId: \"browser-1\", token: $token, xid: $xid) { token xid expiresAt } }";
const CREATE: &str =
    "mutation($token: ID!) { createChatToken(deviceId: \"browser-2\", token: $token) }";
const ISSUANCE: &str = "query($xid: ID!) { tokenIssuance(xid: $xid) { xid kind identity contexts deviceId issuedAt expiresAt tokenSha256 } }";
const ISSUANCES: &str = "query($identity: ID!, $limit: Int) { tokenIssuances(identity: $identity, limit: $limit) { xid tokenSha256 } }";

/// A widget's call: the API key, no bearer.
async fn widget(server: &Server, query: &str, variables: Value) -> (u16, Value) {
    call(server, query, variables, None, Some(API_KEY)).await
}

/// Every byte of the embedded store: the database and its write-ahead log.
fn store_bytes(data: &std::path::Path) -> String {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(data).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("store.sqlite3"))
        {
            bytes.extend(std::fs::read(path).unwrap());
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[tokio::test]
async fn every_chat_token_is_on_record_and_minting_is_limited() {
    let local = Local::with_platform(
        "serve-ledger",
        TestKey::es256("ctx"),
        TestKey::rs256("idp"),
        &[],
    )
    .await;
    let (server, data) = (&local.server, &local.data);
    let (context_key, platform_key) = (&local.key, local.platform_key.as_ref().unwrap());
    let now = now();
    let reader = platform_key.token(&json!({
        "iss": PLATFORM_ISSUER, "aud": PLATFORM_AUDIENCE, "sub": "ledger@clients",
        "scope": "chat:read", "iat": now, "exp": now + 600,
    }));
    let alex = context_key.token(&claims("alex", &["general", "SHIPMENT-42"]));
    let sam = context_key.token(&claims("sam", &["general"]));
    early_in_a_minute().await;

    // A receipt, and the ledger's record of it matches the token.
    let (status, body) = widget(
        server,
        ISSUE,
        json!({"token": alex, "xid": "order-17:try_1"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let receipt = &body["data"]["issueChatToken"];
    assert_eq!(receipt["xid"], "order-17:try_1", "{body}");
    let token = receipt["token"].as_str().unwrap().to_owned();
    let claims_of = jwt_payload(&token);
    assert_eq!(receipt["expiresAt"], claims_of["exp"]);
    assert_eq!(claims_of["grants"]["identity"], "alex");
    let (_, body) = call(
        server,
        ISSUANCE,
        json!({"xid": "order-17:try_1"}),
        Some(&reader),
        None,
    )
    .await;
    assert_eq!(
        body["data"]["tokenIssuance"],
        json!({
            "xid": "order-17:try_1", "kind": "twilio-chat", "identity": "alex",
            "contexts": ["general", "SHIPMENT-42"], "deviceId": "browser-1",
            "issuedAt": claims_of["nbf"], "expiresAt": claims_of["exp"],
            "tokenSha256": sha256_hex(&token),
        }),
        "{body}"
    );
    // Unknown: null. The widget's API key does not read the ledger.
    let (_, body) = call(
        server,
        ISSUANCE,
        json!({"xid": "never-issued"}),
        Some(&reader),
        None,
    )
    .await;
    assert_eq!(body["data"]["tokenIssuance"], Value::Null, "{body}");
    let (_, body) = widget(server, ISSUANCE, json!({"xid": "order-17:try_1"})).await;
    assert_eq!(body["data"], Value::Null, "{body}");
    assert!(
        ["AccessDenied", "Unauthorized"].contains(&error_type(&body)),
        "{body}"
    );

    // A reused xid: Conflict, nothing minted; a malformed one: BadRequest.
    let (_, body) = widget(
        server,
        ISSUE,
        json!({"token": alex, "xid": "order-17:try_1"}),
    )
    .await;
    assert_eq!(error_type(&body), "Conflict", "{body}");
    assert_eq!(body["data"], Value::Null);
    let (_, body) = widget(server, ISSUE, json!({"token": alex, "xid": "has space"})).await;
    assert_eq!(error_type(&body), "BadRequest", "{body}");

    // createChatToken is unchanged, and on record with a generated xid.
    let mut tokens = vec![token];
    let (_, body) = widget(server, CREATE, json!({"token": alex})).await;
    let created = body["data"]["createChatToken"].as_str().unwrap().to_owned();
    let (_, body) = call(
        server,
        ISSUANCES,
        json!({"identity": "alex"}),
        Some(&reader),
        None,
    )
    .await;
    let listed = body["data"]["tokenIssuances"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 2, "{body}");
    assert_eq!(
        listed[0]["tokenSha256"],
        sha256_hex(&created),
        "newest first: {body}"
    );
    assert_eq!(
        listed[0]["xid"].as_str().unwrap().len(),
        36,
        "a UUID: {body}"
    );
    assert_eq!(listed[1]["xid"], "order-17:try_1");
    tokens.push(created);

    // Up to 20 a minute for alex (two so far, and the reused xid counted: issue 30, L1); the
    // 21st is refused and not recorded.
    for n in 4..=20 {
        let (_, body) = widget(
            server,
            ISSUE,
            json!({"token": alex, "xid": format!("bulk-{n}")}),
        )
        .await;
        tokens.push(
            body["data"]["issueChatToken"]["token"]
                .as_str()
                .unwrap_or_else(|| panic!("mint {n}: {body}"))
                .to_owned(),
        );
    }
    let (_, body) = widget(server, ISSUE, json!({"token": alex, "xid": "bulk-21"})).await;
    assert_eq!(error_type(&body), "TooManyRequests", "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("Try again in"), "{message}");
    let (_, body) = widget(server, CREATE, json!({"token": alex})).await;
    assert_eq!(
        error_type(&body),
        "TooManyRequests",
        "createChatToken counts too: {body}"
    );
    let (_, body) = call(
        server,
        ISSUANCE,
        json!({"xid": "bulk-21"}),
        Some(&reader),
        None,
    )
    .await;
    assert_eq!(body["data"]["tokenIssuance"], Value::Null, "{body}");
    let (_, body) = call(
        server,
        ISSUANCES,
        json!({"identity": "alex", "limit": 100}),
        Some(&reader),
        None,
    )
    .await;
    assert_eq!(
        body["data"]["tokenIssuances"].as_array().unwrap().len(),
        19,
        "20 counted, one of them the reused xid: {body}"
    );
    let (_, body) = call(
        server,
        ISSUANCES,
        json!({"identity": "alex", "limit": 101}),
        Some(&reader),
        None,
    )
    .await;
    assert_eq!(error_type(&body), "BadRequest", "{body}");
    // Another identity is unaffected.
    let (_, body) = widget(server, ISSUE, json!({"token": sam})).await;
    tokens.push(
        body["data"]["issueChatToken"]["token"]
            .as_str()
            .unwrap_or_else(|| panic!("{body}"))
            .to_owned(),
    );

    // The store holds each token's hash and never the token.
    let stored = store_bytes(data);
    for token in &tokens {
        assert!(!stored.contains(token.as_str()), "a token is stored");
        assert!(
            stored.contains(&sha256_hex(token)),
            "a token's hash is missing"
        );
    }
    // Nor does any log line hold one.
    let log = std::fs::read_to_string(data.join("server.log")).unwrap();
    assert!(tokens.iter().all(|t| !log.contains(t.as_str())));
}

#[tokio::test]
async fn the_dev_token_api_records_its_tokens_and_limits_each_address() {
    let data = temp_dir("serve-dev-ledger");
    let server = serve(&data, &[]);
    let client = reqwest::Client::new();
    early_in_a_minute().await;
    let mut issued = Vec::new();
    for n in 0..10 {
        let response = client
            .post(format!(
                "{}/token?identity=dev-{n}&context=general,random&ttl=600",
                server.base
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        issued.push((
            body["token"].as_str().unwrap().to_owned(),
            body["xid"].as_str().unwrap().to_owned(),
        ));
    }
    // The 11th from this address in the minute.
    let refused = client
        .post(format!(
            "{}/token?identity=dev-11&context=general",
            server.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    let retry: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["errorType"], "TooManyRequests", "{body}");

    // The record of one, by its xid.
    let (token, xid) = &issued[3];
    let record: Value = json_of(client.get(format!("{}/token/{xid}", server.base))).await;
    let claims_of = jwt_payload(token);
    assert_eq!(
        record,
        json!({
            "xid": xid, "kind": "context-dev", "identity": "dev-3", "contexts": ["general", "random"],
            "deviceId": null, "issuedAt": claims_of["iat"], "expiresAt": claims_of["exp"],
            "tokenSha256": sha256_hex(token),
        })
    );
    let unknown = client
        .get(format!("{}/token/no-such-xid", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let stored = store_bytes(&data);
    assert!(issued.iter().all(|(t, _)| !stored.contains(t.as_str())));
}
