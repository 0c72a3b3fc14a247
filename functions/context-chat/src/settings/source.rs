//! Where settings come from: SSM by name, environment variables, or fixed values.

use std::collections::HashMap;

use aws_sdk_ssm::error::DisplayErrorContext;

use super::{Param, RawParams, Reads, Settings, TwilioSettings, reads};
use crate::error::{ChatError, Result};

/// At most this many names per `GetParameters` call (SSM's limit).
const NAMES_PER_CALL: usize = 10;

pub enum SettingsSource {
    /// `GetParameters` by name below `/STACK/`: the parameters of the sections `reads` names,
    /// which is all the function is allowed to read.
    Ssm {
        client: aws_sdk_ssm::Client,
        stack: String,
        reads: Reads,
    },
    /// Values as environment variables name them, captured once at start; `reads` as above.
    Env(HashMap<String, String>, Reads),
    /// Settings made in-process (local mode's embedded defaults, benchmarks).
    Fixed(Box<Settings>),
}

impl SettingsSource {
    /// SSM under `STACK_NAME` when it is set, reading what `reads` names below it with the
    /// AWS configuration `aws` makes (awaited only then: `aws_env::sdk_config` in a Lambda,
    /// aws-config's whole chain in `chatctl`); otherwise the environment variables.
    pub async fn from_env(
        reads: Reads,
        aws: impl std::future::Future<Output = aws_config::SdkConfig>,
    ) -> Self {
        match std::env::var("STACK_NAME") {
            Ok(stack) if !stack.trim().is_empty() => {
                let config = aws.await;
                SettingsSource::Ssm {
                    client: aws_sdk_ssm::Client::new(&config),
                    stack: stack.trim().to_owned(),
                    reads,
                }
            }
            _ => SettingsSource::from_process_env(reads),
        }
    }

    /// Captures the process environment's setting variables.
    pub fn from_process_env(reads: Reads) -> Self {
        SettingsSource::Env(
            Param::ALL
                .iter()
                .filter_map(|p| Some((p.env_var().to_owned(), std::env::var(p.env_var()).ok()?)))
                .collect(),
            reads,
        )
    }

    /// Every section, from environment variables as `vars` names them (checking values
    /// before they are put anywhere).
    pub fn env_vars(vars: HashMap<String, String>) -> Self {
        SettingsSource::Env(vars, reads::EVERYTHING)
    }

    /// Where a setting lives, for messages.
    pub fn describe(&self, param: Param) -> String {
        match self {
            SettingsSource::Ssm { .. } if env_override(param).is_some() => {
                format!("environment variable {}", param.env_var())
            }
            SettingsSource::Ssm { stack, .. } => format!("SSM parameter {}", param.ssm_name(stack)),
            SettingsSource::Env(..) => format!("environment variable {}", param.env_var()),
            SettingsSource::Fixed(_) => format!("embedded setting {}", param.ssm_suffix()),
        }
    }

    pub async fn load(&self) -> Result<Settings> {
        if let SettingsSource::Fixed(settings) = self {
            return Ok((**settings).clone());
        }
        let mut settings =
            Settings::from_raw(&self.load_raw().await?, &|p| self.describe(p), self.reads())?;
        if let (SettingsSource::Ssm { stack, .. }, Some(twilio)) = (self, settings.twilio.as_mut())
        {
            twilio.ownership.stack = Some(stack.clone());
        }
        Ok(settings)
    }

    /// The sections this source reads.
    pub fn reads(&self) -> Reads {
        match self {
            SettingsSource::Ssm { reads, .. } | SettingsSource::Env(_, reads) => *reads,
            SettingsSource::Fixed(_) => reads::EVERYTHING,
        }
    }

    /// Only the Twilio settings: what `chatctl configure-twilio` needs.
    pub async fn load_twilio(&self) -> Result<TwilioSettings> {
        if let SettingsSource::Fixed(settings) = self {
            return settings
                .twilio
                .clone()
                .ok_or_else(|| ChatError::not_found("These settings have no Twilio credentials."));
        }
        let mut twilio = TwilioSettings::from_raw(&self.load_raw().await?, &|p| self.describe(p))?;
        if let SettingsSource::Ssm { stack, .. } = self {
            twilio.ownership.stack = Some(stack.clone());
        }
        Ok(twilio)
    }

    async fn load_raw(&self) -> Result<RawParams> {
        Ok(match self {
            SettingsSource::Fixed(_) => RawParams::new(),
            SettingsSource::Env(vars, reads) => reads
                .params()
                .filter_map(|p| Some((p, vars.get(p.env_var())?.clone())))
                .collect(),
            SettingsSource::Ssm {
                client,
                stack,
                reads,
            } => {
                let mut raw = load_ssm(client, stack, *reads).await?;
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

/// Reads the parameters by name, the calls at once: the round trips overlap, which matters
/// during a cold start. A parameter that does not exist is simply absent.
async fn load_ssm(client: &aws_sdk_ssm::Client, stack: &str, reads: Reads) -> Result<RawParams> {
    let params: Vec<Param> = reads.params().collect();
    let calls = params
        .chunks(NAMES_PER_CALL)
        .map(|chunk| get_parameters(client, stack, chunk));
    let mut raw = RawParams::new();
    for part in futures_util::future::try_join_all(calls).await? {
        raw.extend(part);
    }
    Ok(raw)
}

async fn get_parameters(
    client: &aws_sdk_ssm::Client,
    stack: &str,
    params: &[Param],
) -> Result<RawParams> {
    let names: Vec<String> = params.iter().map(|p| p.ssm_name(stack)).collect();
    let found = client
        .get_parameters()
        .set_names(Some(names))
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| {
            tracing::error!(stack = %stack, error = %DisplayErrorContext(&e), "reading SSM parameters failed");
            ChatError::internal(format!(
                "Could not read the settings from SSM under /{stack}/; see the logs for the cause."
            ))
        })?;
    Ok(found
        .parameters
        .unwrap_or_default()
        .into_iter()
        .filter_map(|parameter| {
            let param = params
                .iter()
                .find(|p| Some(p.ssm_name(stack).as_str()) == parameter.name.as_deref())?;
            Some((*param, parameter.value?))
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
