//! Where settings come from: SSM by path, environment variables, or fixed values.

use std::collections::HashMap;

use aws_sdk_ssm::error::DisplayErrorContext;

use super::{Param, RawParams, Settings, TwilioSettings};
use crate::error::{ChatError, Result};

/// The SSM paths below `/STACK/` that the token path reads: a function reads only the paths
/// it needs, and may be allowed only those.
pub const TOKEN_PATHS: &[&str] = &["twilio", "chat"];
/// Those and SendGrid's: the functions (and the local server) that send email.
pub const ALL_PATHS: &[&str] = &["twilio", "chat", "sendgrid"];

pub enum SettingsSource {
    /// `GetParametersByPath` under each of `paths` below `/STACK/`
    /// ([`TOKEN_PATHS`] or [`ALL_PATHS`]).
    Ssm {
        client: aws_sdk_ssm::Client,
        stack: String,
        paths: &'static [&'static str],
    },
    /// Values as environment variables name them, captured once at start.
    Env(HashMap<String, String>),
    /// Settings made in-process (local mode's embedded defaults, benchmarks).
    Fixed(Box<Settings>),
}

impl SettingsSource {
    /// SSM under `STACK_NAME` when it is set, reading `paths` below it with the AWS
    /// configuration `aws` makes (awaited only then: `aws_env::sdk_config` in a Lambda,
    /// aws-config's whole chain in `chatctl`); otherwise the environment variables.
    pub async fn from_env(
        paths: &'static [&'static str],
        aws: impl std::future::Future<Output = aws_config::SdkConfig>,
    ) -> Self {
        match std::env::var("STACK_NAME") {
            Ok(stack) if !stack.trim().is_empty() => {
                let config = aws.await;
                SettingsSource::Ssm {
                    client: aws_sdk_ssm::Client::new(&config),
                    stack: stack.trim().to_owned(),
                    paths,
                }
            }
            _ => SettingsSource::from_process_env(),
        }
    }

    /// Captures the process environment's setting variables.
    pub fn from_process_env() -> Self {
        SettingsSource::Env(
            Param::ALL
                .iter()
                .filter_map(|p| Some((p.env_var().to_owned(), std::env::var(p.env_var()).ok()?)))
                .collect(),
        )
    }

    /// Where a setting lives, for messages.
    pub fn describe(&self, param: Param) -> String {
        match self {
            SettingsSource::Ssm { .. } if env_override(param).is_some() => {
                format!("environment variable {}", param.env_var())
            }
            SettingsSource::Ssm { stack, .. } => format!("SSM parameter {}", param.ssm_name(stack)),
            SettingsSource::Env(_) => format!("environment variable {}", param.env_var()),
            SettingsSource::Fixed(_) => format!("embedded setting {}", param.ssm_suffix()),
        }
    }

    pub async fn load(&self) -> Result<Settings> {
        if let SettingsSource::Fixed(settings) = self {
            return Ok((**settings).clone());
        }
        Settings::from_raw(&self.load_raw().await?, &|p| self.describe(p))
    }

    /// Only the Twilio settings: what `chatctl configure-twilio` needs.
    pub async fn load_twilio(&self) -> Result<TwilioSettings> {
        if let SettingsSource::Fixed(settings) = self {
            return Ok(settings.twilio.clone());
        }
        TwilioSettings::from_raw(&self.load_raw().await?, &|p| self.describe(p))
    }

    async fn load_raw(&self) -> Result<RawParams> {
        Ok(match self {
            SettingsSource::Fixed(_) => RawParams::new(),
            SettingsSource::Env(vars) => Param::ALL
                .iter()
                .filter_map(|p| Some((*p, vars.get(p.env_var())?.clone())))
                .collect(),
            SettingsSource::Ssm {
                client,
                stack,
                paths,
            } => {
                let mut raw = load_ssm(client, stack, paths).await?;
                for param in Param::ALL {
                    if let Some(value) = env_override(param) {
                        raw.insert(param, value);
                    }
                }
                raw
            }
        })
    }
}

/// `TWILIO_API_BASE_URL` and `SENDGRID_API_BASE_URL` win over SSM: they point one process
/// at a stand-in or a region.
fn env_override(param: Param) -> Option<String> {
    if !param.env_overrides_ssm() {
        return None;
    }
    std::env::var(param.env_var())
        .ok()
        .filter(|u| !u.trim().is_empty())
}

/// Reads the paths at once: the round trips overlap, which matters during a cold start.
async fn load_ssm(client: &aws_sdk_ssm::Client, stack: &str, paths: &[&str]) -> Result<RawParams> {
    let prefix = format!("/{stack}/");
    let loads = paths
        .iter()
        .map(|path| load_ssm_path(client, &prefix, path));
    let mut raw = RawParams::new();
    for part in futures_util::future::join_all(loads).await {
        raw.extend(part?);
    }
    Ok(raw)
}

/// Every parameter below `/{stack}/{path}` that names a setting.
async fn load_ssm_path(
    client: &aws_sdk_ssm::Client,
    prefix: &str,
    path: &str,
) -> Result<RawParams> {
    Ok(read_ssm_path(client, &format!("{prefix}{path}"))
        .await?
        .into_iter()
        .filter_map(|(name, value)| {
            let param = name.strip_prefix(prefix).and_then(Param::from_ssm_suffix)?;
            Some((param, value))
        })
        .collect())
}

/// Every parameter below `path` (recursively, decrypted), by full name, following
/// pagination. A failure is logged with the SDK's cause and answered without it.
pub async fn read_ssm_path(
    client: &aws_sdk_ssm::Client,
    path: &str,
) -> Result<HashMap<String, String>> {
    let mut found = HashMap::new();
    let mut pages = client
        .get_parameters_by_path()
        .path(path)
        .recursive(true)
        .with_decryption(true)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            tracing::error!(path = %path, error = %DisplayErrorContext(&e), "reading SSM parameters failed");
            ChatError::internal(format!(
                "Could not read the settings from SSM under {path}; see the logs for the cause."
            ))
        })?;
        for parameter in page.parameters.unwrap_or_default() {
            if let (Some(name), Some(value)) = (parameter.name, parameter.value) {
                found.insert(name, value);
            }
        }
    }
    Ok(found)
}
