//! Our Verify and Messages requests against Twilio's own client: the requests twilio-python
//! 9.13.0 sends (recorded by `functions/test-support/fixtures/make_sms_requests.py`) are
//! accepted by the SMS stand-in and by Prism with Twilio's specs, and ours for the same
//! inputs go to the same paths with the same fields.

use base64::Engine as _;
use context_chat::notifications::PhoneNumber;
use context_chat::notifications::sms::{Delivery, SmsGateway};
use context_chat::notifications::twilio_sms::{TwilioSms, TwilioSmsConfig};
use secrecy::SecretString;
use serde_json::Value;
use test_support::SmsStandIn;
use test_support::sms::{MESSAGING_SERVICE_SID, VERIFY_SERVICE_SID};

const RECORDED: &str = test_support::fixtures::TWILIO_SMS_REQUESTS;

/// Our Verify and Messages client, pointed at the stand-in.
fn gateway(sms: &SmsStandIn) -> TwilioSms {
    let base = url::Url::parse(&sms.base_url()).unwrap();
    let secret = SecretString::from(test_support::API_SECRET);
    TwilioSms::new(
        reqwest::Client::new(),
        TwilioSmsConfig {
            account_sid: test_support::ACCOUNT_SID,
            api_key_sid: test_support::API_KEY_SID,
            api_secret: &secret,
            verify_service_sid: VERIFY_SERVICE_SID,
            messaging_service_sid: MESSAGING_SERVICE_SID,
            verify_base_url: &base,
            messaging_base_url: &base,
        },
        Default::default(),
    )
}

fn decoded(body: &str) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    pairs.sort();
    pairs
}

#[tokio::test]
async fn our_sms_requests_match_twilio_pythons_and_the_stand_in_takes_both() {
    let sms = SmsStandIn::start().await;
    let recorded: Value = serde_json::from_str(RECORDED).unwrap();
    let requests = recorded["requests"].as_array().unwrap();
    assert_eq!(requests.len(), 3);

    // twilio-python's requests, replayed as they were put on the wire.
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        test_support::API_KEY_SID,
        test_support::API_SECRET
    ));
    let mut theirs = Vec::new();
    for request in requests {
        let url = url::Url::parse(request["url"].as_str().unwrap()).unwrap();
        let status = reqwest::Client::new()
            .post(format!("{}{}", sms.base_url(), url.path()))
            .header("authorization", format!("Basic {credentials}"))
            .header("content-type", request["content_type"].as_str().unwrap())
            .body(request["body"].as_str().unwrap().to_owned())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        assert!(status < 300, "{} answered {status}", url.path());
        theirs.push((
            url.path().to_owned(),
            request["body"].as_str().unwrap().to_owned(),
        ));
    }

    // Ours, for the same inputs.
    let gateway = gateway(&sms);
    let to = PhoneNumber::parse("+14155550123").unwrap();
    gateway.start_verification(&to).await.unwrap();
    gateway.check_verification(&to, "123456").await.unwrap();
    let delivery = gateway
        .send(&to, "sam in \"general\": Truck at 6\nReply STOP to stop")
        .await
        .unwrap();
    assert_eq!(delivery, Delivery::Accepted);

    let ours: Vec<(String, String)> = sms.requests()[3..]
        .iter()
        .map(|r| (r.path.clone(), r.body.clone()))
        .collect();
    assert_eq!(ours.len(), 3);
    for ((their_path, their_body), (our_path, our_body)) in theirs.iter().zip(&ours) {
        assert_eq!(our_path, their_path);
        assert_eq!(decoded(our_body), decoded(their_body), "{our_path}");
    }
    assert!(sms.violations().is_empty(), "{:?}", sms.violations());
}

/// Verify's own rule through our gateway: five wrong checks end the code (429/60202), which
/// reaches the widget as `TooManyRequests`, worded for a person.
#[tokio::test]
async fn verifys_five_checks_end_the_code_and_say_so() {
    let sms = SmsStandIn::start().await;
    let gateway = gateway(&sms);
    let to = PhoneNumber::parse("+14155550199").unwrap();
    gateway.start_verification(&to).await.unwrap();
    let code = sms.last_code(to.as_str()).unwrap();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        assert!(!gateway.check_verification(&to, wrong).await.unwrap());
    }
    let err = gateway.check_verification(&to, &code).await.unwrap_err();
    assert_eq!(
        err.kind,
        context_chat::ErrorKind::TooManyRequests,
        "{}",
        err.message
    );
    assert!(err.message.contains("new code"), "{}", err.message);
}

/// M3 (in part): a verification code or a text that may have reached Twilio is never sent
/// again (a timeout or a 5xx after sending: a second try would text the person twice);
/// what surely did not (Twilio's 429) is tried again.
#[tokio::test]
async fn a_text_or_code_that_may_have_reached_twilio_is_not_sent_again() {
    let sms = SmsStandIn::start().await;
    let gateway = gateway(&sms);
    let posts = |path: &str| {
        sms.requests()
            .iter()
            .filter(|r| r.path.ends_with(path))
            .count()
    };

    let to = PhoneNumber::parse("+14155550171").unwrap();
    sms.fail_next("Verifications", 500, true);
    let err = gateway.start_verification(&to).await.unwrap_err();
    assert_eq!(
        err.kind,
        context_chat::ErrorKind::InternalError,
        "{}",
        err.message
    );
    assert_eq!(posts("Verifications"), 1, "not sent again");
    assert_eq!(sms.codes_sent(to.as_str()), 1, "the code went out once");

    let to = PhoneNumber::parse("+14155550172").unwrap();
    sms.fail_next("Verifications", 429, false);
    gateway.start_verification(&to).await.unwrap();
    assert_eq!(posts("Verifications"), 3, "a 429 is tried again");
    assert_eq!(sms.codes_sent(to.as_str()), 1);

    let sent_before = sms.sent().len();
    sms.fail_next("Messages.json", 503, true);
    assert!(gateway.send(&to, "sam in \"general\": hi").await.is_err());
    assert_eq!(posts("Messages.json"), 1, "not sent again");
    assert_eq!(sms.sent().len(), sent_before + 1, "the text went out once");
}
