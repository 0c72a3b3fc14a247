//! Tokens for more clients on `chatctl serve`, as a browser and a sample app see them:
//! `createVirgilToken`, the REST token routes (`GET /virgil-jwt`, `GET /twilio-jwt`) with
//! their 401s and CORS, local mode's development Virgil key, the push credential in the chat
//! grant; and `chatctl virgil-token`.

use context_chat::virgil::VirgilSigner;
use secrecy::SecretString;
use serde_json::{Value, json};
use test_support::{TestKey, claims, jwt_payload};

use crate::common::{Local, Server, call, chatctl, error_type, failed, serve, temp_dir};

const VIRGIL: &str = "mutation($token: ID!) { createVirgilToken(token: $token) }";
const CREATE: &str =
    "mutation($token: ID!) { createChatToken(deviceId: \"phone-1\", token: $token) }";
/// Made by npm `virgil-crypto` 5.1.2 (`generateKeys`, `exportPrivateKey`).
const VIRGIL_KEY: &str = "MC4CAQAwBQYDK2VwBCIEIOiER8JtE3ulAbqlKQ27uZmV18/h3Ko7jjIoR4XcuAUD";
/// npm `virgil-sdk` 6.2.0's `JwtGenerator` with that key, app id `app123`, key id `kid456`,
/// identity `alex`, its clock frozen at 1700000000 s.
const FROM_VIRGIL_SDK: &str = "eyJhbGciOiJWRURTNTEyIiwia2lkIjoia2lkNDU2IiwidHlwIjoiSldUIiwiY3R5IjoidmlyZ2lsLWp3dDt2PTEifQ.eyJpc3MiOiJ2aXJnaWwtYXBwMTIzIiwic3ViIjoiaWRlbnRpdHktYWxleCIsImlhdCI6MTcwMDAwMDAwMCwiZXhwIjoxNzAwMDAxMjAwfQ.MFEwDQYJYIZIAWUDBAIDBQAEQLZn04K9jfWJSChHpt8GY7OXSBZktl0AnLXwNce7tGASwvJ0U4t8sSGQKIc-s1L6y4h3_h7CDvYA6R15YlJpbQc";

async fn rest(server: &Server, path: &str, bearer: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(format!("{}{path}", server.base));
    if let Some(token) = bearer {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn local_mode_makes_virgil_tokens_with_its_development_key_and_serves_the_rest_routes() {
    let data = temp_dir("serve-virgil");
    let server = serve(&data, &[]);
    let sample = server
        .token
        .clone()
        .expect("local mode prints a sample token");
    let identity = jwt_payload(&sample)["sub"].as_str().unwrap().to_owned();

    // GraphQL: signed with the data directory's key, for the clearly fake app.
    let (status, body) = call(&server, VIRGIL, json!({"token": sample}), None, None).await;
    assert_eq!(status, 200, "{body}");
    let virgil = body["data"]["createVirgilToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let claims_of = jwt_payload(&virgil);
    assert_eq!(
        claims_of["iss"],
        "virgil-local-development-not-a-virgil-app"
    );
    assert_eq!(claims_of["sub"], format!("identity-{identity}"));
    assert_eq!(
        claims_of["exp"].as_u64().unwrap() - claims_of["iat"].as_u64().unwrap(),
        1200
    );
    let key = std::fs::read_to_string(data.join("dev-virgil-app-key")).unwrap();
    let signer = VirgilSigner::new(
        "local-development-not-a-virgil-app",
        "local-development-key",
        &SecretString::from(key.clone()),
        1200,
    )
    .unwrap();
    let iat = claims_of["iat"].as_u64().unwrap();
    assert_eq!(virgil, signer.mint(&identity, iat).unwrap());

    // The REST routes, with the bearer.
    let response = rest(&server, "/virgil-jwt", Some(&sample)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        jwt_payload(body["virgilToken"].as_str().unwrap())["sub"],
        claims_of["sub"]
    );
    let body: Value = rest(&server, "/twilio-jwt", Some(&sample))
        .await
        .json()
        .await
        .unwrap();
    let grants = &jwt_payload(body["twilioToken"].as_str().unwrap())["grants"];
    assert_eq!(grants["identity"], identity.as_str());
    assert!(grants["chat"].get("endpoint_id").is_none(), "{grants}");
    let body: Value = rest(&server, "/twilio-jwt?deviceId=tablet-2", Some(&sample))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        jwt_payload(body["twilioToken"].as_str().unwrap())["grants"]["chat"]["endpoint_id"],
        format!("dachat:{identity}:tablet-2")
    );

    // No bearer, or a tampered one: 401 with the challenge, JSON naming the errorType.
    let response = rest(&server, "/virgil-jwt", None).await;
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["errorType"], "AccessDenied");
    let (head, _) = sample.rsplit_once('.').unwrap();
    let tampered = format!("{head}.{}", "A".repeat(86));
    let response = rest(&server, "/twilio-jwt", Some(&tampered)).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Bearer error="invalid_token""#
    );

    // Browsers: the allowed origins may send the bearer; others get no CORS answer.
    let preflight = |origin: &'static str| {
        reqwest::Client::new()
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/virgil-jwt", server.base),
            )
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let allowed = preflight("http://localhost:5173").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "http://localhost:5173"
    );
    let headers = allowed.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(headers.contains("authorization"), "{headers}");
    let refused = preflight("https://elsewhere.example").await.unwrap();
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    // The key never in the log, nor a token.
    drop(server);
    let log = std::fs::read_to_string(data.join("server.log")).unwrap();
    assert!(!log.contains(key.trim()) && !log.contains(&virgil) && !log.contains(&sample));
    assert!(log.contains("virgil token issued"), "{log}");
    // The same key on the next start.
    let server = serve(&data, &[]);
    let (_, body) = call(&server, VIRGIL, json!({"token": sample}), None, None).await;
    let again = body["data"]["createVirgilToken"].as_str().unwrap();
    assert_eq!(
        again,
        signer
            .mint(&identity, jwt_payload(again)["iat"].as_u64().unwrap())
            .unwrap()
    );
}

#[tokio::test]
async fn without_virgil_settings_only_virgil_tokens_fail_and_the_push_credential_is_granted() {
    let push = "CR0123456789abcdef0123456789abcdef".to_owned();
    let env = [("TWILIO_PUSH_CREDENTIAL_SID", push)];
    let local = Local::start("serve-no-virgil", TestKey::es256("k1"), &env).await;
    let Local {
        server,
        key,
        twilio,
        ..
    } = &local;
    let token = key.token(&claims("alex", &["general"]));

    let (_, body) = call(server, VIRGIL, json!({"token": token}), None, None).await;
    // One answer for every part that is off (adr/018); the log names the setting.
    assert_eq!(error_type(&body), "InternalError", "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert_eq!(message, "Virgil is not configured.");
    let response = rest(server, "/virgil-jwt", Some(&token)).await;
    assert_eq!(response.status(), 500);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["errorType"], "InternalError");
    let log = std::fs::read_to_string(local.data.join("server.log")).unwrap();
    assert!(log.contains("VIRGIL_APP_ID is missing"), "{log}");

    // Chat tokens are unaffected, and carry the push credential.
    let (_, body) = call(server, CREATE, json!({"token": token}), None, None).await;
    let chat = body["data"]["createChatToken"]
        .as_str()
        .expect("a chat token");
    assert_eq!(
        jwt_payload(chat)["grants"]["chat"]["push_credential_sid"],
        "CR0123456789abcdef0123456789abcdef"
    );
    assert_eq!(twilio.memberships("alex"), ["general"]);
}

#[tokio::test]
async fn virgil_token_prints_the_virgil_sdks_token_for_a_fixed_time() {
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = chatctl(args);
        cmd.envs(env.iter().copied());
        cmd.output().unwrap()
    };
    let env = [
        ("VIRGIL_APP_ID", "app123"),
        ("VIRGIL_APP_KEY_ID", "kid456"),
        ("VIRGIL_APP_KEY", VIRGIL_KEY),
    ];
    let args = [
        "virgil-token",
        "--identity",
        "alex",
        "--issued-at",
        "1700000000",
    ];
    let out = run(&args, &env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        FROM_VIRGIL_SDK
    );

    let out = run(&[&args[..], &["--ttl", "1h"]].concat(), &env);
    let claims_of = jwt_payload(String::from_utf8(out.stdout).unwrap().trim());
    assert_eq!(claims_of["exp"], 1_700_003_600u64);

    let out = run(&[&args[..], &["--ttl", "2d"]].concat(), &env);
    assert!(!out.status.success());
    let out = run(&args, &env[..2]);
    let stderr = failed(&out);
    assert!(stderr.contains("VIRGIL_APP_KEY"), "{stderr}");
    let out = run(
        &args,
        &[env[0], env[1], ("VIRGIL_APP_KEY", "MC4CAQ-broken")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && !stderr.contains("MC4CAQ"),
        "{stderr}"
    );
}
