//! `chatctl configure-twilio`: sets up the Conversation Service for this product, with the
//! Twilio settings the deployment uses (SSM under STACK_NAME, or environment variables).

use std::time::{Duration, Instant};

use context_chat::notifications::channels::sms::policy::{SmsPolicy, warn_of_any_country};
use context_chat::notifications::channels::sms::settings::SmsSettings;
use context_chat::settings::{Param, SettingsSource, TwilioSettings, is_allowed_remote_url};
use context_chat::twilio::conversations::ConversationsApi;
use context_chat::twilio::rest::{RestClient, RetryPolicy};
use context_chat::twilio::service_setup::Setup;

use secrecy::{ExposeSecret, SecretString};

use crate::error::{CliError, Result};

#[derive(clap::Args)]
pub struct ConfigureArgs {
    /// Where Twilio posts onMessageAdded: the deployment's webhook receiver (the stack output
    /// twilioWebhookReceiverURL, ending in /twilio/webhook); the path secret
    /// (webhook/pathSecret) is appended. Without it the webhook is left as it is.
    #[arg(long, env = "TWILIO_WEBHOOK_URL")]
    webhook_url: Option<String>,
    /// Print what would change, and change nothing.
    #[arg(long)]
    dry_run: bool,
}

/// The whole run, retries included.
const BUDGET: Duration = Duration::from_secs(60);

pub async fn run(args: ConfigureArgs) -> Result<()> {
    if let Some(url) = &args.webhook_url {
        let parsed = url::Url::parse(url)
            .map_err(|_| CliError::usage(format!("--webhook-url {url:?} is not a URL")))?;
        if !is_allowed_remote_url(&parsed) {
            return Err(CliError::usage(
                "--webhook-url must use https (http only for loopback)",
            ));
        }
    }
    let source = settings_source().await?;
    let twilio = source.load_twilio().await?;
    let settings = source.load().await?;
    let path_secret = settings.webhook_path_secret.clone();
    let webhook_url = match &args.webhook_url {
        None => None,
        Some(base) => Some(with_path_secret(base, path_secret.as_ref(), &source)?),
    };
    let sms = SmsSettings::of(&settings)
        .into_section()
        .map_err(|e| CliError::usage(e.message))?;
    let sms_policy = SmsPolicy::of(&settings).map_err(|e| CliError::usage(e.message))?;
    if sms.is_some() {
        warn_of_any_country(&sms_policy);
    }
    let (api, base_url) = conversations_api(&twilio)
        .ok_or_else(|| CliError::usage("these settings have no Conversations API"))?;
    println!(
        "Conversation Service {} at {}{}",
        twilio.chat_service_sid,
        base_url,
        if args.dry_run {
            " (dry run: nothing is changed)"
        } else {
            ""
        }
    );
    let report = Setup {
        api: &api,
        webhook_url: webhook_url.as_deref(),
        dry_run: args.dry_run,
        deadline: Instant::now() + BUDGET,
    }
    .apply()
    .await?;
    // The path secret is Twilio's and the deployment's to know, not the terminal's.
    let hidden = |text: String| match &path_secret {
        Some(secret) => text.replace(
            secret.expose_secret(),
            &format!("<{}>", Param::WebhookPathSecret.ssm_suffix()),
        ),
        None => text,
    };
    for step in &report {
        println!("{}", hidden(step.to_string()));
    }
    match sms {
        Some(sms) => {
            println!(
                "Text messages: Verify service {} and Messaging Service {} (their senders and \
                 geographic permissions are set in Twilio's console); at most {} codes and {} \
                 texts a day",
                sms.verify_service_sid,
                sms.messaging_service_sid,
                sms_policy.daily_codes,
                sms_policy.daily_texts
            );
            println!(
                "Text messages: set the Messaging Service's incoming-message webhook (Integration, \
                 Send a webhook) to the webhook URL, so that a STOP or START texted back reaches \
                 the deployment"
            );
            match &sms_policy.allowed_countries {
                Some(codes) => println!("Text messages go only to {}", codes.join(", ")),
                // warn_of_any_country said so on stderr.
                None => println!(
                    "Text messages go to any country ({} is not set)",
                    source.describe(Param::SmsAllowedCountries)
                ),
            }
        }
        None => println!(
            "Text messages: not configured ({} and {} are not set)",
            source.describe(Param::VerifyServiceSid),
            source.describe(Param::MessagingServiceSid)
        ),
    }
    let changes = report.iter().filter(|s| s.is_change()).count();
    match (changes, args.dry_run) {
        (0, _) => println!("Nothing to change."),
        (n, true) => println!("{n} change(s) would be made; run without --dry-run to make them."),
        (n, false) => println!("{n} change(s) made."),
    }
    Ok(())
}

/// The webhook's base URL (…/twilio/webhook) with the path secret as its last segment.
fn with_path_secret(
    base: &str,
    secret: Option<&SecretString>,
    source: &SettingsSource,
) -> Result<String> {
    let base = base.trim_end_matches('/');
    if !base.ends_with(context_chat::http::notifications::WEBHOOK_PATH) {
        return Err(CliError::usage(format!(
            "--webhook-url must end with {} (the stack output twilioWebhookReceiverURL); the path secret is added to it",
            context_chat::http::notifications::WEBHOOK_PATH
        )));
    }
    let secret = secret.ok_or_else(|| {
        CliError::usage(format!(
            "{} is not set, and the webhook answers nowhere without it: run chatctl put-params (it makes one)",
            source.describe(Param::WebhookPathSecret)
        ))
    })?;
    Ok(format!("{base}/{}", secret.expose_secret()))
}

/// The Conversations API of these settings (with its base URL), if they name one.
pub fn conversations_api(twilio: &TwilioSettings) -> Option<(ConversationsApi, &url::Url)> {
    let base_url = twilio.api_base_url.as_ref()?;
    let client = RestClient::new(
        RestClient::http_client(),
        base_url,
        &twilio.chat_service_sid,
        &twilio.api_key_sid,
        &twilio.api_secret,
        RetryPolicy::default(),
    );
    Some((ConversationsApi::new(client), base_url))
}

/// SSM under STACK_NAME, else the TWILIO_* variables; never the embedded fake credentials.
async fn settings_source() -> Result<SettingsSource> {
    let stack = std::env::var("STACK_NAME").is_ok_and(|v| !v.trim().is_empty());
    let twilio_vars = [
        Param::AccountSid,
        Param::ApiKey,
        Param::ApiSecret,
        Param::ChatServiceSid,
    ]
    .iter()
    .any(|p| std::env::var(p.env_var()).is_ok_and(|v| !v.is_empty()));
    if !stack && !twilio_vars {
        return Err(CliError::usage(
            "configure-twilio needs the Twilio credentials of a deployment: set STACK_NAME (read \
             from SSM) or TWILIO_ACCOUNT_SID, TWILIO_API_KEY, TWILIO_API_SECRET and \
             TWILIO_CHAT_SERVICE_SID",
        ));
    }
    Ok(SettingsSource::from_env(
        context_chat::settings::reads::CONFIGURE_TWILIO,
        crate::aws(),
    )
    .await)
}
