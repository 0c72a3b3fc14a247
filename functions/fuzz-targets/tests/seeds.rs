//! Every seed in `fuzz/seeds/` and every input a fuzzer once failed on (`fuzz/regressions/`),
//! through its target, on every test run; and what the seeds must show: the signed inputs
//! reach past the signature, so the fuzzers work on what lies behind it.

use std::path::PathBuf;

use context_chat::ErrorKind;

/// `fuzz/` of the checkout the test runs in (`CARGO_MANIFEST_DIR` as the runner sets it: the
/// build cache is shared, and a path fixed at compile time may be another clone's).
fn fuzz_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .expect("CARGO_MANIFEST_DIR: run the tests with cargo (scripts/test)")
        .join("../../fuzz")
}
use context_chat::platform::Scope;

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let root = fuzz_dir();
    let mut found = Vec::new();
    for dir in ["seeds", "regressions"] {
        let dir: PathBuf = root.join(dir).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            found.push((name, std::fs::read(&path).unwrap()));
        }
    }
    found.sort();
    found
}

fn seed(target: &str, name: &str) -> Vec<u8> {
    inputs(target)
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no seed {target}/{name}"))
        .1
}

#[test]
fn context_token_inputs() {
    let all = inputs("context_token");
    assert!(all.len() >= 5);
    for (_, data) in &all {
        fuzz_targets::context_token(data);
    }
    assert!(fuzz_targets::context_token(&seed(
        "context_token",
        "signed-valid"
    )));
    assert!(fuzz_targets::context_token(&seed(
        "context_token",
        "signed-header-claims"
    )));
    for refused in [
        "signed-alg-none",
        "signed-expired",
        "signed-bad-context",
        "signed-typ-at",
        "text-garbage",
    ] {
        assert!(
            !fuzz_targets::context_token(&seed("context_token", refused)),
            "{refused}"
        );
    }
}

#[test]
fn platform_token_inputs() {
    for (_, data) in inputs("platform_token") {
        fuzz_targets::platform_token(&data);
    }
    let admin = fuzz_targets::platform_token(&seed("platform_token", "signed-admin-bearer"));
    assert_eq!(admin, [Scope::Read, Scope::Admin]);
    let read = fuzz_targets::platform_token(&seed("platform_token", "signed-read-bare"));
    assert_eq!(read, [Scope::Read]);
    // RFC 8725 §3.12: a context token is not a platform token, even signed by the same key.
    assert!(
        fuzz_targets::platform_token(&seed("platform_token", "signed-context-token")).is_empty()
    );
}

#[test]
fn jwks_inputs() {
    for (_, data) in inputs("jwks") {
        fuzz_targets::jwks(&data);
    }
    for one_key in ["okp", "ec", "rsa", "legacy-pem"] {
        assert_eq!(fuzz_targets::jwks(&seed("jwks", one_key)), 1, "{one_key}");
    }
    assert_eq!(fuzz_targets::jwks(&seed("jwks", "mixed-and-broken")), 1);
    assert_eq!(fuzz_targets::jwks(&seed("jwks", "no-keys")), 0);
}

#[test]
fn webhook_inputs() {
    for (_, data) in inputs("webhook") {
        let _ = fuzz_targets::webhook(&data);
    }
    for (name, expected) in [
        ("form-signed", Ok(true)),
        ("form-media-signed", Ok(true)),
        ("json-signed", Ok(true)),
        ("form-other-event", Ok(false)),
        ("bad-signature", Err(ErrorKind::AccessDenied)),
    ] {
        assert_eq!(
            fuzz_targets::webhook(&seed("webhook", name)),
            expected,
            "{name}"
        );
    }
}

#[test]
fn graphql_inputs() {
    for (_, data) in inputs("graphql") {
        let _ = fuzz_targets::graphql(&data);
    }
    let answer = fuzz_targets::graphql(&seed("graphql", "create-chat-token")).unwrap();
    assert!(answer["data"]["createChatToken"].is_string(), "{answer}");
    let answer = fuzz_targets::graphql(&seed("graphql", "verify-token")).unwrap();
    assert_eq!(
        answer["data"]["verifyToken"]["identity"], "alex",
        "{answer}"
    );
    let answer = fuzz_targets::graphql(&seed("graphql", "verify-token-bad")).unwrap();
    assert_eq!(
        answer["errors"][0]["extensions"]["errorType"], "BadRequest",
        "{answer}"
    );
    let answer = fuzz_targets::graphql(&seed("graphql", "platform-contexts")).unwrap();
    assert!(
        answer["errors"].is_array() || answer["data"].is_object(),
        "{answer}"
    );
    let answer = fuzz_targets::graphql(&seed("graphql", "deep")).unwrap();
    assert!(answer["errors"].is_array(), "{answer}");
}

/// `fuzz/` is only the cargo-fuzz wrapper: one binary per target, each handing its input to the
/// function of this library that these tests call. Checked here, where CI sees it, rather than
/// by compiling that crate apart (it builds with nightly and the sanitizer in `scripts/fuzz`):
/// every target file is exactly that one line, calls a target these tests replay, and is a
/// `[[bin]]` of fuzz/Cargo.toml.
#[test]
fn the_fuzz_crate_hands_each_input_to_a_replayed_target() {
    let fuzz = fuzz_dir();
    let manifest = std::fs::read_to_string(fuzz.join("Cargo.toml")).unwrap();
    let replayed = [
        "context_token",
        "jwks",
        "platform_token",
        "webhook",
        "graphql",
    ];
    let mut files: Vec<String> = std::fs::read_dir(fuzz.join("fuzz_targets"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut expected: Vec<String> = replayed.iter().map(|t| format!("{t}.rs")).collect();
    expected.sort();
    assert_eq!(files, expected, "one file per replayed target");
    for target in replayed {
        let text = std::fs::read_to_string(fuzz.join(format!("fuzz_targets/{target}.rs"))).unwrap();
        let wanted = format!(
            "#![no_main]\nlibfuzzer_sys::fuzz_target!(|data: &[u8]| {{\n    let _ = fuzz_targets::{target}(data);\n}});\n"
        );
        assert_eq!(text, wanted, "fuzz/fuzz_targets/{target}.rs");
        let bin = format!("[[bin]]\nname = \"{target}\"\npath = \"fuzz_targets/{target}.rs\"\n");
        assert!(manifest.contains(&bin), "fuzz/Cargo.toml builds {target}");
        assert!(!inputs(target).is_empty(), "{target} has seeds");
    }
}
