//! What every chatctl test needs: the command with a clean environment, a scratch folder.
#![allow(dead_code)] // each test binary uses a part

use std::path::PathBuf;
use std::process::Command;

use test_support::unique;

pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique(name));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The command with none of the setting variables of the surrounding environment.
pub fn chatctl(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chatctl"));
    cmd.args(args);
    for var in [
        "STACK_NAME",
        "CHAT_API_KEY",
        "TWILIO_ACCOUNT_SID",
        "TWILIO_API_KEY",
        "TWILIO_API_SECRET",
        "TWILIO_CHAT_SERVICE_SID",
        "TWILIO_AUTH_TOKEN",
        "TWILIO_ACCESS_TOKEN_TTL",
        "TWILIO_API_BASE_URL",
        "TWILIO_WEBHOOK_URL",
        "CHAT_JWKS_URL",
        "CHAT_ISSUER",
        "CHAT_AUDIENCE",
        "PORT",
    ] {
        cmd.env_remove(var);
    }
    cmd
}
