//! The Twilio access token against the vectors made with Twilio's own library
//! (`fixtures/twilio-vectors.json`, a copy of `shared/twilio/vectors.json`).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use context_chat::twilio::access_token::{AccessTokenMinter, Grant};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::SecretString;
use serde_json::Value;

fn vectors() -> Value {
    let text = include_str!("../fixtures/twilio-vectors.json");
    serde_json::from_str(text).unwrap()
}

fn vector(name: &str) -> Value {
    vectors()["access_tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap()
        .clone()
}

fn minter_for(inputs: &Value) -> AccessTokenMinter {
    AccessTokenMinter::new(
        inputs["account_sid"].as_str().unwrap(),
        inputs["api_key_sid"].as_str().unwrap(),
        &SecretString::from(inputs["api_key_secret"].as_str().unwrap().to_owned()),
        inputs["grants"]["chat"]["service_sid"].as_str().unwrap(),
        inputs["ttl"].as_u64().unwrap(),
    )
}

fn decode_part(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[test]
fn matches_twilio_python_vector_header_payload_and_signature() {
    let v = vector("chat_grant_main");
    let inputs = &v["inputs"];
    let minted = minter_for(inputs).mint(
        Grant {
            identity: inputs["identity"].as_str().unwrap(),
            endpoint_id: inputs["grants"]["chat"]["endpoint_id"].as_str(),
        },
        inputs["now_unix"].as_u64().unwrap(),
    );
    let expected = v["jwt"].as_str().unwrap();

    // Semantic comparison, as twilio.md asks: header and payload as JSON values.
    let got: Vec<&str> = minted.split('.').collect();
    let want: Vec<&str> = expected.split('.').collect();
    assert_eq!(got.len(), 3);
    assert_eq!(decode_part(got[0]), decode_part(want[0]));
    assert_eq!(decode_part(got[1]), decode_part(want[1]));
    // The key order is twilio-python's, so the bytes and the signature match too.
    assert_eq!(minted, expected);
}

#[test]
fn signature_verifies_with_the_api_key_secret_and_not_another() {
    let v = vector("chat_grant_main");
    let inputs = &v["inputs"];
    let now = context_chat::context_token::now_unix();
    let minted = minter_for(inputs).mint(
        Grant {
            identity: "alex",
            endpoint_id: None,
        },
        now,
    );
    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["exp", "nbf", "sub", "iss"]);
    let secret = inputs["api_key_secret"].as_str().unwrap();
    let decoded = jsonwebtoken::decode::<Value>(
        &minted,
        &DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .expect("verifies with the secret");
    let claims = decoded.claims;
    assert_eq!(decoded.header.cty.as_deref(), Some("twilio-fpa;v=1"));
    assert_eq!(claims["grants"]["identity"], "alex");
    assert_eq!(
        claims["grants"]["chat"]["service_sid"],
        inputs["grants"]["chat"]["service_sid"]
    );
    assert!(claims["grants"]["chat"].get("endpoint_id").is_none());
    assert_eq!(claims["sub"], inputs["account_sid"]);
    assert_eq!(claims["iss"], inputs["api_key_sid"]);
    // The relations twilio.md names.
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["nbf"].as_u64().unwrap(),
        86_400
    );
    assert_eq!(
        claims["jti"],
        format!("{}-{now}", inputs["api_key_sid"].as_str().unwrap())
    );

    let wrong = DecodingKey::from_secret(b"another secret");
    assert!(jsonwebtoken::decode::<Value>(&minted, &wrong, &validation).is_err());
}

#[test]
fn ttl_follows_settings_and_never_exceeds_a_day() {
    let v = vector("chat_grant_all_fields");
    let mut inputs = v["inputs"].clone();
    let grant = Grant {
        identity: "alex",
        endpoint_id: None,
    };
    let token = minter_for(&inputs).mint(grant, 1_700_000_000);
    let payload = decode_part(token.split('.').nth(1).unwrap());
    assert_eq!(payload["exp"], 1_700_000_000u64 + 3600);

    inputs["ttl"] = serde_json::json!(10 * 86_400u64);
    let minter = minter_for(&inputs);
    assert_eq!(minter.ttl_secs(), 86_400);
    let payload = decode_part(minter.mint(grant, 1_700_000_000).split('.').nth(1).unwrap());
    assert_eq!(payload["exp"], 1_700_000_000u64 + 86_400);
}

/// `fixtures/twilio-push-vector.json`, made by `fixtures/make_push_vector.py` with
/// twilio-python: the push credential in the chat grant, byte for byte.
#[test]
fn a_push_credential_goes_into_the_chat_grant_as_twilio_python_writes_it() {
    let v: Value =
        serde_json::from_str(include_str!("../fixtures/twilio-push-vector.json")).unwrap();
    let inputs = &v["inputs"];
    let s = |k: &str| inputs[k].as_str().unwrap();
    let minter = AccessTokenMinter::new(
        s("account_sid"),
        s("api_key_sid"),
        &SecretString::from(s("api_key_secret").to_owned()),
        s("service_sid"),
        inputs["ttl"].as_u64().unwrap(),
    );
    let now = inputs["now_unix"].as_u64().unwrap();
    let without_push = minter.mint(
        Grant {
            identity: s("identity"),
            endpoint_id: Some(s("endpoint_id")),
        },
        now,
    );
    let minter = minter.with_push_credential(Some(s("push_credential_sid")));
    for (endpoint_id, expected) in [
        (Some(s("endpoint_id")), &v["jwt_with_endpoint"]),
        (None, &v["jwt_without_endpoint"]),
    ] {
        let minted = minter.mint(
            Grant {
                identity: s("identity"),
                endpoint_id,
            },
            now,
        );
        assert_eq!(minted, expected.as_str().unwrap());
    }
    assert_ne!(without_push, v["jwt_with_endpoint"].as_str().unwrap());
}
