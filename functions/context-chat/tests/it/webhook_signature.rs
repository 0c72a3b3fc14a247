//! `X-Twilio-Signature` against the vectors made with Twilio's own library
//! (`fixtures/twilio-vectors.json` → `webhook_signatures`).

use context_chat::twilio::webhook_signature::SignatureChecker;
use secrecy::SecretString;
use serde_json::Value;

fn vectors() -> Vec<Value> {
    let all: Value = serde_json::from_str(include_str!("../fixtures/twilio-vectors.json")).unwrap();
    all["webhook_signatures"].as_array().unwrap().clone()
}

fn params(vector: &Value) -> Vec<(String, String)> {
    vector["params"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect()
}

fn checker(token: &str) -> SignatureChecker {
    SignatureChecker::new(&SecretString::from(token))
}

#[test]
fn form_vectors_verify_with_and_without_the_default_port_and_nothing_else_does() {
    let forms: Vec<Value> = vectors()
        .into_iter()
        .filter(|v| v["kind"] == "form" && v.get("auth_token").is_some())
        .collect();
    assert_eq!(forms.len(), 3);
    for v in forms {
        let name = v["name"].as_str().unwrap();
        let c = checker(v["auth_token"].as_str().unwrap());
        let url = v["url"].as_str().unwrap();
        let p = params(&v);
        let expected = v["expected_signature"].as_str().unwrap();
        assert!(c.check_form(url, &p, expected), "{name}");
        // Signed over the URL with :443, checked against the URL without it.
        assert!(
            c.check_form(
                url,
                &p,
                v["signature_over_url_with_port_443"].as_str().unwrap()
            ),
            "{name}"
        );
        // And the URL as received with :443.
        let with_port = url.replacen("example.com/", "example.com:443/", 1);
        assert!(c.check_form(&with_port, &p, expected), "{name}");

        let mut tampered = p.clone();
        tampered
            .iter_mut()
            .find(|(k, _)| k == "Body")
            .unwrap()
            .1
            .push('!');
        assert!(
            !c.check_form(url, &tampered, expected),
            "{name}: tampered body"
        );
        assert!(
            !checker("0".repeat(32).as_str()).check_form(url, &p, expected),
            "{name}: wrong token"
        );
        let mut extra = p.clone();
        extra.push(("Injected".into(), "1".into()));
        assert!(
            !c.check_form(url, &extra, expected),
            "{name}: added parameter"
        );
        assert!(
            !c.check_form(&format!("{url}x"), &p, expected),
            "{name}: other URL"
        );
        for bad in ["", "not base64!", "AAAA", &expected[1..]] {
            assert!(!c.check_form(url, &p, bad), "{name}: {bad:?}");
        }
    }
}

#[test]
fn json_body_vector_verifies_and_a_changed_body_does_not() {
    let v = vectors().into_iter().find(|v| v["kind"] == "json").unwrap();
    let c = checker(v["auth_token"].as_str().unwrap());
    let url = v["url"].as_str().unwrap();
    let body = v["body"].as_str().unwrap();
    let signature = v["expected_signature"].as_str().unwrap();
    assert!(c.check_json(url, body.as_bytes(), signature));
    assert!(!c.check_json(
        url,
        body.replace("welcome", "welcome!").as_bytes(),
        signature
    ));
    let unsigned_url = url.split('?').next().unwrap();
    assert!(!c.check_json(unsigned_url, body.as_bytes(), signature));
}

/// The webhook reads Twilio's wire bodies: the form vector becomes a queued event, the JSON
/// vector's signature holds but it lacks a MessageSid, and any change to either is refused.
#[test]
fn the_webhook_reads_the_vectors_wire_bodies() {
    use context_chat::ErrorKind;
    use context_chat::notifications::WebhookRequest;
    use context_chat::notifications::webhook::read_event;
    for v in vectors() {
        let Some(token) = v["auth_token"].as_str() else {
            continue;
        };
        let body = v["body_form_encoded"]
            .as_str()
            .or(v["body"].as_str())
            .unwrap()
            .to_owned();
        let request = |body: &str| {
            read_event(
                &WebhookRequest {
                    url: v["url"].as_str().unwrap(),
                    signature: v["expected_signature"].as_str(),
                    content_type: v["content_type"].as_str(),
                    body: body.as_bytes(),
                },
                &checker(token),
            )
        };
        if v["kind"] == "form" {
            let Some(context_chat::notifications::webhook::Inbound::Message(event)) =
                request(&body).unwrap()
            else {
                panic!("not an onMessageAdded")
            };
            assert_eq!(event.author, "alex");
            assert_eq!(event.body, v["params"]["Body"].as_str().unwrap());
            assert_eq!(
                event.message_sid,
                v["params"]["MessageSid"].as_str().unwrap()
            );
        } else {
            assert_eq!(request(&body).unwrap_err().kind, ErrorKind::BadRequest);
        }
        let altered = body.replace("alex", "eve");
        assert_eq!(
            request(&altered).unwrap_err().kind,
            ErrorKind::AccessDenied,
            "{}",
            v["name"]
        );
    }
}
