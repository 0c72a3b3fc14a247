//! The emulator through its HTTP answers, as the product's client meets it.

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, HeaderValue, Method, Uri, header};
use serde_json::Value;

use super::*;

const SECRET: &str = "the-api-secret";
const BASE: &str = "http://twilio.test";

fn emulator() -> Emulator {
    Emulator::new(SECRET, BASE)
}

fn headers(secret: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let value = HeaderValue::from_str(&basic_authorization(secret)).unwrap();
    headers.insert(header::AUTHORIZATION, value);
    headers
}

/// The status, Twilio's error code (if any) and the JSON body of a request below the service.
async fn call(e: &Emulator, method: Method, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
    call_with(e, method, path, form, headers(SECRET)).await
}

async fn call_with(
    e: &Emulator,
    method: Method,
    path: &str,
    form: &[(&str, &str)],
    headers: HeaderMap,
) -> (u16, Value) {
    let uri: Uri = format!("{BASE}/v1/Services/{CHAT_SERVICE_SID}/{path}")
        .parse()
        .unwrap();
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let response = e.answer(&method, &uri, &headers, body.as_bytes()).await;
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn it_answers_as_twilio_does_with_twilios_codes() {
    let e = emulator();
    let (status, body) = call_with(&e, Method::GET, "Roles", &[], HeaderMap::new()).await;
    assert_eq!((status, body["code"].as_u64()), (401, Some(20003)));
    let (status, _) = call_with(&e, Method::GET, "Roles", &[], headers("wrong")).await;
    assert_eq!(status, 401);
    let other: Uri = format!("{BASE}/v1/Services/IS{}/Roles", "f".repeat(32))
        .parse()
        .unwrap();
    let answer = e.answer(&Method::GET, &other, &headers(SECRET), b"").await;
    assert_eq!(answer.status().as_u16(), 404);
    let (status, body) = call(&e, Method::GET, "Roles", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["roles"].as_array().unwrap().len(),
        4,
        "Twilio's defaults"
    );

    let user = [("Identity", "alex")];
    assert_eq!(call(&e, Method::POST, "Users", &user).await.0, 201);
    let (status, body) = call(&e, Method::POST, "Users", &user).await;
    assert_eq!((status, body["code"].as_u64()), (409, Some(50201)));
    let room = [("UniqueName", "SHIPMENT-42")];
    assert_eq!(call(&e, Method::POST, "Conversations", &room).await.0, 201);
    let (status, body) = call(&e, Method::POST, "Conversations", &room).await;
    assert_eq!((status, body["code"].as_u64()), (409, Some(50353)));
    let (status, body) = call(&e, Method::GET, "Conversations/nope", &[]).await;
    assert_eq!((status, body["code"].as_u64()), (404, Some(20404)));
}

#[tokio::test]
async fn messages_take_the_next_index_and_page_in_order_and_a_refusal_stores_nothing() {
    let e = emulator();
    create_general(&e).await;
    let path = "Conversations/general/Messages";
    for (n, body) in ["one", "two", "three"].iter().enumerate() {
        let (status, m) = call(
            &e,
            Method::POST,
            path,
            &[("Author", "alex"), ("Body", body)],
        )
        .await;
        assert_eq!(status, 201);
        assert_eq!(m["index"], n as u64);
        assert_eq!(m["author"], "alex");
        assert!(m["sid"].as_str().unwrap().starts_with("IM"));
        assert!(m["date_created"].as_str().unwrap().ends_with('Z'));
    }
    let (_, system) = call(&e, Method::POST, path, &[("Body", "four")]).await;
    assert_eq!(system["author"], "system");

    let (_, first) = call(&e, Method::GET, &format!("{path}?PageSize=3"), &[]).await;
    let bodies = |page: &Value| -> Vec<String> {
        page["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["body"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(bodies(&first), ["one", "two", "three"]);
    let next = first["meta"]["next_page_url"].as_str().unwrap();
    let next = &next[next.find("Messages").unwrap()..];
    let (_, second) = get(&e, &format!("Conversations/general/{next}")).await;
    assert_eq!(bodies(&second), ["four"]);
    assert!(second["meta"]["next_page_url"].is_null());
    let (_, newest) = get(&e, &format!("{path}?Order=desc&PageSize=2")).await;
    assert_eq!(bodies(&newest), ["four", "three"]);
    let sid = newest["messages"][0]["sid"].as_str().unwrap().to_owned();
    let (status, one) = call(&e, Method::GET, &format!("{path}/{sid}"), &[]).await;
    assert_eq!((status, one["body"].as_str()), (200, Some("four")));

    let long = "ü".repeat(1_601);
    for form in [
        vec![("Body", long.as_str())],
        vec![("Body", "x"), ("Attributes", "[1]")],
        vec![("Body", "x"), ("Attributes", "{not json")],
        vec![("Author", "alex")],
    ] {
        let (status, body) = call(&e, Method::POST, path, &form).await;
        assert_eq!(
            (status, body["code"].as_u64()),
            (400, Some(20001)),
            "{form:?}"
        );
    }
    let at_limit = "ü".repeat(1_600);
    assert_eq!(
        call(&e, Method::POST, path, &[("Body", &at_limit)]).await.0,
        201
    );
    let (_, all) = call(&e, Method::GET, path, &[]).await;
    assert_eq!(
        all["messages"].as_array().unwrap().len(),
        5,
        "refusals stored nothing"
    );
    assert_eq!(all["messages"][4]["index"], 4);
}

/// A GET below the service.
async fn get(e: &Emulator, path: &str) -> (u16, Value) {
    call(e, Method::GET, path, &[]).await
}

/// The conversation `general`.
async fn create_general(e: &Emulator) {
    let general = [("UniqueName", "general")];
    call(e, Method::POST, "Conversations", &general).await;
}

/// The conversation `general`, with alex in it.
async fn general_with_alex(e: &Emulator) {
    create_general(e).await;
    let alex = [("Identity", "alex")];
    call(e, Method::POST, "Conversations/general/Participants", &alex).await;
}

/// Alex's one conversation, as the user's conversations list gives it.
async fn mine(e: &Emulator) -> Value {
    let (_, list) = call(e, Method::GET, "Users/alex/Conversations", &[]).await;
    list["conversations"][0].clone()
}

#[tokio::test]
async fn a_read_horizon_counts_what_is_unread() {
    let e = emulator();
    create_general(&e).await;
    let member = [("Identity", "alex")];
    call(
        &e,
        Method::POST,
        "Conversations/general/Participants",
        &member,
    )
    .await;
    for body in ["one", "two", "three"] {
        let form = [("Author", "sam"), ("Body", body)];
        call(&e, Method::POST, "Conversations/general/Messages", &form).await;
    }
    let before = mine(&e).await;
    assert!(before["unread_messages_count"].is_null());
    assert!(before["last_read_message_index"].is_null());
    let horizon = "Conversations/general/Participants/alex";
    let (status, p) = call(&e, Method::POST, horizon, &[("LastReadMessageIndex", "0")]).await;
    assert_eq!(
        (status, p["last_read_message_index"].as_u64()),
        (200, Some(0))
    );
    let after = mine(&e).await;
    assert_eq!(after["unread_messages_count"], 2);
    assert_eq!(after["last_read_message_index"], 0);
    let (status, _) = call(
        &e,
        Method::POST,
        horizon,
        &[("LastReadMessageIndex", "two")],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        mine(&e).await["last_read_message_index"],
        0,
        "nothing changed"
    );
    let (status, body) = call(
        &e,
        Method::POST,
        "Conversations/general/Participants/sam",
        &[("LastReadMessageIndex", "1")],
    )
    .await;
    assert_eq!((status, body["code"].as_u64()), (404, Some(50432)));
}

/// A webhook as the receiver got it: its signature and form.
type Received = (String, Vec<(String, String)>);

#[tokio::test]
async fn an_added_message_posts_onmessageadded_signed_as_twilio_signs_when_asked() {
    let received: Arc<Mutex<Vec<Received>>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", listener.local_addr().unwrap());
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: HeaderMap, body: axum::body::Bytes| async move {
                let signature = headers["x-twilio-signature"].to_str().unwrap().to_owned();
                let form = url::form_urlencoded::parse(&body).into_owned().collect();
                sink.lock().unwrap().push((signature, form));
            },
        ),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });

    let e = emulator().with_auth_token("the-auth-token");
    general_with_alex(&e).await;
    let hooks = [
        ("PostWebhookUrl", hook_url.as_str()),
        ("Method", "POST"),
        ("Filters", "onMessageAdded"),
    ];
    call(&e, Method::POST, "Configuration/Webhooks", &hooks).await;
    let message = [("Author", "alex"), ("Body", "Grüße & more")];
    // A REST request fires no webhook unless it asks for one.
    call(&e, Method::POST, "Conversations/general/Messages", &message).await;
    let mut asking = headers(SECRET);
    asking.insert("X-Twilio-Webhook-Enabled", HeaderValue::from_static("true"));
    call_with(
        &e,
        Method::POST,
        "Conversations/general/Messages",
        &message,
        asking,
    )
    .await;
    for _ in 0..100 {
        if !received.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), 1, "{received:?}");
    let (signature, form) = &received[0];
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("EventType"), Some("onMessageAdded"));
    assert_eq!(get("Index"), Some("1"));
    assert_eq!(get("Body"), Some("Grüße & more"));
    assert_eq!(get("Source"), Some("API"));
    assert!(get("ParticipantSid").is_some_and(|p| p.starts_with("MB")));
    let checker = context_chat::twilio::webhook_signature::SignatureChecker::new(
        &secrecy::SecretString::from("the-auth-token"),
    );
    assert!(checker.check_form(&hook_url, form, signature));
    assert!(!checker.check_form(&format!("{hook_url}?x=1"), form, signature));
}

#[tokio::test]
async fn a_create_given_up_midway_leaves_nothing_behind() {
    let e = emulator();
    e.set_create_window(std::time::Duration::from_millis(500));
    let user = [("Identity", "alex")];
    let given_up = tokio::time::timeout(
        std::time::Duration::from_millis(20),
        call(&e, Method::POST, "Users", &user),
    )
    .await;
    assert!(given_up.is_err(), "the caller went away mid-create");
    e.set_create_window(std::time::Duration::ZERO);
    assert_eq!(call(&e, Method::POST, "Users", &user).await.0, 201);
}

/// A change to an access token's claims.
type Edit = Box<dyn FnOnce(&mut Value)>;

/// An access token as the product mints it (Twilio's format), with `claims` changed by `edit`.
fn access_token(secret: &str, edit: impl FnOnce(&mut Value)) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut claims = serde_json::json!({
        "jti": format!("{API_KEY_SID}-{now}"),
        "iss": API_KEY_SID,
        "sub": ACCOUNT_SID,
        "nbf": now - 1,
        "exp": now + 600,
        "grants": {"identity": "alex", "chat": {"service_sid": CHAT_SERVICE_SID}},
    });
    edit(&mut claims);
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.cty = Some("twilio-fpa;v=1".into());
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

#[tokio::test]
async fn the_browser_api_takes_only_this_services_live_access_tokens() {
    let e = emulator();
    general_with_alex(&e).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}{}", listener.local_addr().unwrap(), browser::PATH);
    tokio::spawn(async move { axum::serve(listener, browser::routes(Arc::new(e))).await });
    let status = |token: String| {
        let url = format!("{base}/conversations");
        async move {
            let answer = reqwest::Client::new()
                .get(url)
                .bearer_auth(token)
                .send()
                .await;
            answer.unwrap().status().as_u16()
        }
    };
    assert_eq!(status(access_token(SECRET, |_| {})).await, 200);
    let refused: [(&str, Edit); 6] = [
        (
            "expired",
            Box::new(|c| c["exp"] = (c["nbf"].as_u64().unwrap() - 60).into()),
        ),
        (
            "not yet",
            Box::new(|c| c["nbf"] = serde_json::json!(c["exp"].as_u64().unwrap() - 1)),
        ),
        (
            "another service",
            Box::new(|c| {
                c["grants"]["chat"]["service_sid"] = format!("IS{}", "f".repeat(32)).into()
            }),
        ),
        (
            "no chat grant",
            Box::new(|c| c["grants"]["chat"] = Value::Null),
        ),
        (
            "another key",
            Box::new(|c| c["iss"] = format!("SK{}", "0".repeat(32)).into()),
        ),
        (
            "another account",
            Box::new(|c| c["sub"] = format!("AC{}", "0".repeat(32)).into()),
        ),
    ];
    for (why, edit) in refused {
        assert_eq!(status(access_token(SECRET, edit)).await, 401, "{why}");
    }
    assert_eq!(
        status(access_token("another-secret", |_| {})).await,
        401,
        "forged"
    );
    // One kind of token never passes as another: a context token (ES256, no grant).
    let context = context_chat::dev_keys::generate_es256().unwrap();
    let signer =
        context_chat::dev_keys::ContextTokenSigner::from_pem(&context.private_pem, "k").unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let context_token = signer
        .sign(&context_chat::dev_keys::ContextClaims {
            sub: "alex".into(),
            contexts: vec!["general".into()],
            iat: now,
            exp: now + 600,
            iss: None,
            aud: None,
            roles: Default::default(),
        })
        .unwrap();
    assert_eq!(status(context_token).await, 401, "a context token");
    let unsigned = format!(
        "{}.{}.",
        base64_url(r#"{"alg":"none","typ":"JWT","cty":"twilio-fpa;v=1"}"#),
        base64_url(&serde_json::json!({"grants": {"identity": "alex"}}).to_string())
    );
    assert_eq!(status(unsigned).await, 401, "alg none");
}

fn base64_url(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}
