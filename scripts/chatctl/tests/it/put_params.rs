//! `chatctl put-params` against SSM on moto: what it puts is what the functions load.

use context_chat::notifications::channels::email::settings::SendGridSettings;
use context_chat::settings::{SettingsSource, reads};
use secrecy::ExposeSecret;
use test_support::{ACCOUNT_SID, API_KEY_SID, CHAT_SERVICE_SID, Moto, unique};

use crate::common::{chatctl, failed, keygen, temp_dir};

fn settings_env(stack: &str) -> Vec<(&'static str, String)> {
    vec![
        ("STACK_NAME", stack.to_owned()),
        ("TWILIO_ACCOUNT_SID", ACCOUNT_SID.into()),
        ("TWILIO_API_KEY", API_KEY_SID.into()),
        ("TWILIO_API_SECRET", "the-api-secret".into()),
        ("TWILIO_CHAT_SERVICE_SID", CHAT_SERVICE_SID.into()),
        ("TWILIO_AUTH_TOKEN", "the-auth-token".into()),
        (
            "CHAT_JWKS_URL",
            "https://toolbox.example.org/.well-known/jwks.json".into(),
        ),
        ("SENDGRID_API_KEY", "SG.the-key".into()),
        ("SENDGRID_DOMAIN", "chat.example.org".into()),
    ]
}

#[tokio::test]
async fn puts_what_the_functions_load_with_secrets_as_securestrings() {
    let moto = Moto::start();
    let stack = unique("params");
    let ssm = moto.ssm().await;
    let key_dir = temp_dir("params-keys");
    let keygen = keygen("dev-1", &key_dir);
    assert!(keygen.status.success());
    let private = key_dir.join("ecdsa-p256-dev-1-private.pem");

    let output = chatctl(&[
        "put-params",
        "--dev-private-key",
        private.to_str().unwrap(),
        "--dev-key-id",
        "dev-1",
        "--set",
        "chat/issuer=toolbox",
    ])
    .envs(moto.env())
    .envs(settings_env(&stack))
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!stdout.contains("the-api-secret") && !stdout.contains("SG.the-key"));

    let source = SettingsSource::Ssm {
        client: ssm.clone(),
        stack: stack.clone(),
        reads: reads::EVERYTHING,
    };
    let settings = source.load().await.unwrap();
    assert_eq!(
        settings.twilio.as_ref().unwrap().api_secret.expose_secret(),
        "the-api-secret"
    );
    assert_eq!(
        settings.chat.as_ref().unwrap().issuer.as_deref(),
        Some("toolbox")
    );
    assert_eq!(
        settings
            .webhook_auth_token
            .as_ref()
            .unwrap()
            .expose_secret(),
        "the-auth-token"
    );
    let link_secret = settings
        .link_secret
        .as_ref()
        .unwrap()
        .expose_secret()
        .to_owned();
    assert!(link_secret.len() >= 43, "256 random bits");
    assert!(!stdout.contains(&link_secret));
    assert_eq!(
        SendGridSettings::of(&settings)
            .for_operator()
            .unwrap()
            .domain,
        "chat.example.org"
    );
    for (name, secure) in [
        ("twilio/apiSecret", true),
        ("webhook/authToken", true),
        ("notifications/linkSecret", true),
        ("webhook/pathSecret", true),
        ("sendgrid/apiKey", true),
        ("twilio/accountSID", false),
        ("chat/jwks.json", false),
    ] {
        let p = ssm
            .get_parameter()
            .name(format!("/{stack}/{name}"))
            .send()
            .await
            .unwrap()
            .parameter
            .unwrap();
        assert_eq!(
            p.r#type().unwrap().as_str() == "SecureString",
            secure,
            "{name}"
        );
    }
    let dev = ssm
        .get_parameter()
        .name(format!("/{stack}-dev-extras/chat-development/privateKey"))
        .with_decryption(true)
        .send()
        .await
        .unwrap()
        .parameter
        .unwrap();
    assert_eq!(dev.r#type().unwrap().as_str(), "SecureString");
    assert!(dev.value().unwrap().contains("PRIVATE KEY"));
    // Item 4: the auth token is not put where every token function could read it.
    let old = ssm
        .get_parameter()
        .name(format!("/{stack}/twilio/authToken"))
        .send()
        .await;
    assert!(old.is_err(), "twilio/authToken must not be written");

    // Run again: the link secret is kept, or every link sent would stop working.
    let again = chatctl(&["put-params"])
        .envs(moto.env())
        .envs(settings_env(&stack))
        .output()
        .unwrap();
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("kept"));
    let kept = source.load().await.unwrap().link_secret.unwrap();
    assert_eq!(kept.expose_secret(), link_secret);
    let refused = chatctl(&["put-params", "--set", "twilio/authToken=x"])
        .envs(moto.env())
        .envs(settings_env(&stack))
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("webhook/authToken"));
}

#[tokio::test]
async fn a_bad_value_is_named_and_nothing_is_put() {
    let moto = Moto::start();
    let stack = unique("params-bad");
    let mut env = settings_env(&stack);
    env.retain(|(k, _)| *k != "TWILIO_ACCOUNT_SID");
    env.push(("TWILIO_ACCOUNT_SID", "AC-not-a-sid".into()));
    let output = chatctl(&["put-params"])
        .envs(moto.env())
        .envs(env)
        .output()
        .unwrap();
    let stderr = failed(&output);
    assert!(
        stderr.contains("TWILIO_ACCOUNT_SID") && stderr.contains("nothing was put"),
        "{stderr}"
    );
    assert!(!stderr.contains("the-api-secret"));
    // A Virgil app key that is no key, with the rest of the set or alone: named, never shown.
    let broken_key = "MC4CAQAwBQYDK2VwBCIEI-not-a-key";
    let virgil = [
        ("VIRGIL_APP_ID", "0123456789abcdef0123456789abcdef"),
        ("VIRGIL_APP_KEY_ID", "fedcba9876543210fedcba9876543210"),
        ("VIRGIL_APP_KEY", broken_key),
    ];
    for args in [&["put-params"][..], &["put-params", "--partial"][..]] {
        let output = chatctl(args)
            .envs(moto.env())
            .envs(settings_env(&stack))
            .envs(virgil)
            .output()
            .unwrap();
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("VIRGIL_APP_KEY") && stderr.contains("nothing was put"),
            "{stderr}"
        );
        assert!(!stderr.contains("not-a-key"), "{stderr}");
    }
    // The SMS services: one without the other, or a SID of the wrong kind, is refused.
    for sms in [
        &[(
            "TWILIO_VERIFY_SERVICE_SID",
            test_support::sms::VERIFY_SERVICE_SID,
        )][..],
        &[
            (
                "TWILIO_VERIFY_SERVICE_SID",
                test_support::sms::MESSAGING_SERVICE_SID,
            ),
            (
                "TWILIO_MESSAGING_SERVICE_SID",
                test_support::sms::MESSAGING_SERVICE_SID,
            ),
        ][..],
    ] {
        let output = chatctl(&["put-params"])
            .envs(moto.env())
            .envs(settings_env(&stack))
            .envs(sms.iter().copied())
            .output()
            .unwrap();
        assert!(!output.status.success(), "{sms:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("TWILIO_") && stderr.contains("nothing was put"),
            "{stderr}"
        );
    }
    let found = moto
        .ssm()
        .await
        .get_parameters_by_path()
        .path(format!("/{stack}"))
        .recursive(true)
        .send()
        .await
        .unwrap();
    assert!(found.parameters().is_empty());

    // Both, well formed: put where the functions read them.
    let output = chatctl(&["put-params"])
        .envs(moto.env())
        .envs(settings_env(&stack))
        .envs([
            (
                "TWILIO_VERIFY_SERVICE_SID",
                test_support::sms::VERIFY_SERVICE_SID,
            ),
            (
                "TWILIO_MESSAGING_SERVICE_SID",
                test_support::sms::MESSAGING_SERVICE_SID,
            ),
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let ssm = moto.ssm().await;
    for (name, value) in [
        (
            "twilio/verifyServiceSID",
            test_support::sms::VERIFY_SERVICE_SID,
        ),
        (
            "twilio/messagingServiceSID",
            test_support::sms::MESSAGING_SERVICE_SID,
        ),
    ] {
        let found = ssm
            .get_parameter()
            .name(format!("/{stack}/{name}"))
            .send()
            .await
            .unwrap();
        assert_eq!(found.parameter().unwrap().value(), Some(value), "{name}");
    }
}

/// Every parameter under /STACK/, decrypted, sorted by name.
async fn parameters(ssm: &aws_sdk_ssm::Client, stack: &str) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = ssm
        .get_parameters_by_path()
        .path(format!("/{stack}/"))
        .recursive(true)
        .with_decryption(true)
        .into_paginator()
        .send()
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .flat_map(|page| page.unwrap().parameters.unwrap_or_default())
        .map(|p| (p.name.unwrap_or_default(), p.value.unwrap_or_default()))
        .collect();
    all.sort();
    all
}

/// M4: a stack with the old integration's parameters and no link secret, as a drop-in switch
/// finds it: `put-params --make-missing` (what `scripts/deploy` runs before `cdk deploy`)
/// makes the link secret, changes nothing else, and keeps it on the next deploy.
#[tokio::test]
async fn deploying_over_the_old_integrations_parameters_makes_the_missing_secrets() {
    let deploy =
        std::fs::read_to_string(test_support::workspace_root().join("scripts/deploy")).unwrap();
    assert!(
        deploy.contains("-p chatctl -- put-params --stack \"$stack\" --make-missing\n"),
        "scripts/deploy makes the missing secrets"
    );
    let moto = Moto::start();
    let stack = unique("params-old");
    let ssm = moto.ssm().await;
    // The old integration's set: Twilio's four, the auth token at its old name, the JWKS.
    test_support::put_settings(&ssm, &stack, "https://toolbox.example.org/jwks.json", "s").await;
    let old_token = format!("/{stack}/twilio/authToken");
    test_support::put_parameter(&ssm, &old_token, "old-token", true).await;
    let source = SettingsSource::Ssm {
        client: ssm.clone(),
        stack: stack.clone(),
        reads: reads::EVERYTHING,
    };
    assert!(source.load().await.unwrap().link_secret.is_none());
    let before = parameters(&ssm, &stack).await;

    for said in ["made", "kept"] {
        let output = chatctl(&["put-params", "--stack", &stack, "--make-missing"])
            .envs(moto.env())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        for made in [
            "notifications/linkSecret",
            "webhook/pathSecret",
            "platform/eventsSecret",
        ] {
            let line = format!("{said} /{stack}/{made}");
            assert!(stdout.contains(&line), "{stdout}");
        }
    }
    let after = parameters(&ssm, &stack).await;
    let made = |suffix: &str| {
        after
            .iter()
            .find(|(name, _)| name.ends_with(suffix))
            .unwrap_or_else(|| panic!("{suffix}"))
            .clone()
    };
    let (link, path) = (
        made("/notifications/linkSecret"),
        made("/webhook/pathSecret"),
    );
    assert!(link.1.len() >= 43 && path.1.len() >= 43, "256 random bits");
    assert_ne!(link.1, path.1);
    // Standard Webhooks' form, which the platform's library reads.
    let events = made("/platform/eventsSecret");
    assert!(
        events.1.starts_with("whsec_") && events.1.len() == 50,
        "{}",
        events.1
    );
    let rest: Vec<_> = after
        .iter()
        .filter(|p| **p != link && **p != path && **p != events)
        .cloned()
        .collect();
    assert_eq!(rest, before, "nothing else changed");
    let loaded = source.load().await.unwrap();
    assert_eq!(loaded.link_secret.unwrap().expose_secret(), link.1);
    assert_eq!(loaded.webhook_path_secret.unwrap().expose_secret(), path.1);
}

/// L2: one issuer signing both kinds of token needs two audiences. No function reads both
/// sections, so `put-params` checks what it puts against what the stack has (with
/// `--partial` too), `chatctl serve` checks at start, and a platform issuer needs an audience.
#[tokio::test]
async fn one_issuer_for_both_kinds_needs_two_audiences_wherever_the_settings_are_put() {
    let moto = Moto::start();
    let stack = unique("params-kinds");
    let idp = "https://idp.example.org/";
    let full = chatctl(&[
        "put-params",
        "--set",
        &format!("chat/issuer={idp}"),
        "--set",
        "chat/audience=https://chat.example.org",
    ])
    .envs(moto.env())
    .envs(settings_env(&stack))
    .output()
    .unwrap();
    assert!(
        full.status.success(),
        "{}",
        String::from_utf8_lossy(&full.stderr)
    );
    let partial = |sets: &[&str]| {
        let mut args = vec!["put-params", "--partial"];
        for set in sets {
            args.extend(["--set", set]);
        }
        chatctl(&args)
            .envs(moto.env())
            .env("STACK_NAME", &stack)
            .output()
            .unwrap()
    };
    let same_issuer = format!("platform/issuer={idp}");
    for sets in [
        vec![
            same_issuer.as_str(),
            "platform/audience=https://chat.example.org",
        ],
        vec![same_issuer.as_str()],
    ] {
        let refused = partial(&sets);
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(!refused.status.success(), "{sets:?}");
        assert!(
            stderr.contains("platform/audience") && stderr.contains("nothing was put"),
            "{stderr}"
        );
    }
    let ssm = moto.ssm().await;
    let platform_issuer = ssm
        .get_parameter()
        .name(format!("/{stack}/platform/issuer"))
        .send()
        .await;
    assert!(platform_issuer.is_err(), "nothing was put");
    let ok = partial(&[
        &same_issuer,
        "platform/audience=https://chat.example.org/platform",
    ]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // Now the context tokens' audience may not become the platform's.
    let refused = partial(&["chat/audience=https://chat.example.org/platform"]);
    assert!(!refused.status.success());

    // chatctl serve on these settings in the environment: refused at start.
    let data = temp_dir("kinds");
    let serve = chatctl(&["serve", "--port", "0", "--data-dir", data.to_str().unwrap()])
        .envs(
            settings_env(&stack)
                .into_iter()
                .filter(|(k, _)| *k != "STACK_NAME"),
        )
        .env("CHAT_ISSUER", idp)
        .env("CHAT_AUDIENCE", "https://chat.example.org")
        .env("PLATFORM_ISSUER", idp)
        .env("PLATFORM_AUDIENCE", "https://chat.example.org")
        .output()
        .unwrap();
    let stderr = failed(&serve);
    assert!(stderr.contains("PLATFORM_AUDIENCE"), "{stderr}");
}
