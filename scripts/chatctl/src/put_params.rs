//! `chatctl put-params`: puts a deployment's SSM parameters (`shared/PRODUCT.md`'s table) from
//! the environment variables that name them, or `--set`, as SecureString where the table
//! says. The values are checked as the functions will load them before anything is written.
//! The link secret (`notifications/linkSecret`) and the webhook path secret
//! (`webhook/pathSecret`) are made when the stack has none; the auth
//! token goes to `webhook/authToken`, never to the old `twilio/authToken`.

use std::collections::HashMap;
use std::path::PathBuf;

use aws_sdk_ssm::error::DisplayErrorContext;
use aws_sdk_ssm::types::ParameterType;
use context_chat::notifications::channels::email::settings::SendGridSettings;
use context_chat::notifications::channels::sms::{policy::SmsPolicy, settings::SmsSettings};
use context_chat::settings::{Param, Section, SettingsSource};

use crate::error::{CliError, Result};

#[derive(clap::Args)]
pub struct PutParamsArgs {
    /// The stack: parameters go under /STACK/.
    #[arg(long, env = "STACK_NAME")]
    stack: String,
    /// A value by its SSM name below /STACK/, e.g. --set twilio/accountSID=AC…; wins over the
    /// environment variable of the same parameter.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
    /// Put only what is given, without checking that the whole set loads.
    #[arg(long)]
    partial: bool,
    /// The dev-extras signing key (PKCS#8 P-256 PEM), for /STACK-dev-extras/chat-development/.
    #[arg(long, requires = "dev_key_id")]
    dev_private_key: Option<PathBuf>,
    #[arg(long)]
    dev_key_id: Option<String>,
    /// Print what would be put (secrets masked), put nothing.
    #[arg(long)]
    dry_run: bool,
    /// Put nothing given; only make the secrets the stack is missing (the link secret and the
    /// webhook path secret),
    /// replacing none: what `scripts/deploy` runs before `cdk deploy`, so that a deployment
    /// of the old integration's parameters gets them (issue 30, M4).
    #[arg(long, conflicts_with_all = ["set", "partial", "dev_private_key"])]
    make_missing: bool,
}

pub async fn run(args: PutParamsArgs) -> Result<()> {
    let stack = args.stack.trim();
    if stack.is_empty()
        || !stack
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(CliError::usage(
            "--stack must be a stack name (letters, digits, - and _)",
        ));
    }
    if args.make_missing {
        let names: Vec<String> = MADE.iter().map(|p| p.ssm_name(stack)).collect();
        if args.dry_run {
            for name in &names {
                println!("would make {name} [SecureString] unless it exists");
            }
            return Ok(());
        }
        make_all(&ssm_client().await, &names).await?;
        return Ok(());
    }
    let mut values: HashMap<Param, String> = writable()
        .filter_map(|p| {
            Some((
                p,
                std::env::var(p.env_var())
                    .ok()
                    .filter(|v| !v.trim().is_empty())?,
            ))
        })
        .collect();
    for pair in &args.set {
        let (name, value) = pair.split_once('=').ok_or_else(|| {
            CliError::usage(format!(
                "--set {name:?} must be NAME=VALUE",
                name = pair.split('=').next().unwrap_or_default()
            ))
        })?;
        if Param::from_ssm_suffix(name.trim()) == Some(Param::LegacyAuthToken) {
            return Err(CliError::usage(format!(
                "--set: twilio/authToken is where the old integration kept the auth token; \
                 put it at {}",
                Param::WebhookAuthToken.ssm_suffix()
            )));
        }
        let param = Param::from_ssm_suffix(name.trim()).ok_or_else(|| {
            CliError::usage(format!(
                "--set: {name:?} is not one of the parameters ({})",
                names()
            ))
        })?;
        values.insert(param, value.to_owned());
    }
    if values.is_empty() && args.dev_private_key.is_none() {
        return Err(CliError::usage(format!(
            "nothing to put: set the variables ({}) or use --set",
            env_names()
        )));
    }
    if !args.partial {
        let env: HashMap<String, String> = values
            .iter()
            .map(|(p, v)| (p.env_var().to_owned(), v.clone()))
            .collect();
        let nothing_put = |e: context_chat::ChatError| {
            CliError::usage(format!("{} (nothing was put)", e.message))
        };
        let settings = SettingsSource::env_vars(env)
            .load()
            .await
            .map_err(nothing_put)?;
        SendGridSettings::of(&settings)
            .into_section()
            .map_err(nothing_put)?;
        // Virgil's settings are optional as a whole; once any is given, all must load.
        if values.iter().any(|(p, _)| p.section() == Section::Virgil)
            && let Some(why) = settings.virgil.why_not()
        {
            return Err(CliError::usage(format!("{why} (nothing was put)")));
        }
        // So are the SMS services: both, with the account's API key; and their budgets.
        SmsSettings::of(&settings)
            .into_section()
            .map_err(nothing_put)?;
        SmsPolicy::of(&settings).map_err(nothing_put)?;
    } else if let Some((_, key)) = values.iter().find(|(p, _)| **p == Param::VirgilAppKey)
        && context_chat::virgil::parse_app_key(key).is_err()
    {
        return Err(CliError::usage(format!(
            "{} {} (nothing was put)",
            Param::VirgilAppKey.env_var(),
            context_chat::virgil::MalformedKey
        )));
    }
    if args.partial {
        check_token_kinds(stack, &values, args.dry_run).await?;
    }
    let mut puts: Vec<(String, String, bool)> = values
        .iter()
        .map(|(p, v)| (p.ssm_name(stack), v.trim().to_owned(), p.is_secret()))
        .collect();
    if let (Some(file), Some(kid)) = (&args.dev_private_key, &args.dev_key_id) {
        let pem = std::fs::read_to_string(file).map_err(CliError::file(file))?;
        context_chat::dev_keys::ContextTokenSigner::from_pem(&pem, kid).map_err(|_| {
            CliError::usage(format!(
                "{} is not a PKCS#8 P-256 private key",
                file.display()
            ))
        })?;
        let base = format!("/{stack}-dev-extras/chat-development");
        puts.push((format!("{base}/privateKey"), pem, true));
        puts.push((format!("{base}/keyId"), kid.trim().to_owned(), false));
    }
    puts.sort();
    let to_make: Vec<String> = MADE
        .iter()
        .filter(|p| !values.contains_key(p))
        .map(|p| p.ssm_name(stack))
        .collect();
    if args.dry_run {
        for (name, value, secure) in &puts {
            let shown = if *secure {
                "(secret)".to_owned()
            } else {
                value.clone()
            };
            println!(
                "would put {name} = {shown}{}",
                if *secure { " [SecureString]" } else { "" }
            );
        }
        for name in &to_make {
            println!("would make {name} [SecureString] unless it exists");
        }
        return Ok(());
    }
    let ssm = ssm_client().await;
    make_all(&ssm, &to_make).await?;
    for (name, value, secure) in &puts {
        let kind = match secure {
            true => ParameterType::SecureString,
            false => ParameterType::String,
        };
        ssm.put_parameter()
            .name(name)
            .value(value)
            .r#type(kind)
            .overwrite(true)
            .send()
            .await
            .map_err(|e| {
                CliError::Failed(format!(
                    "putting {name} failed: {}",
                    DisplayErrorContext(&e)
                ))
            })?;
        println!("put {name}{}", if *secure { " [SecureString]" } else { "" });
    }
    Ok(())
}

/// The secrets this command makes when a stack has none (256 random bits, base64url), and
/// never replaces: the link secret (replacing it voids every link and code) and the webhook
/// path secret (replacing it stops the webhook until configure-twilio runs again); and the
/// events' signing key in Standard Webhooks' `whsec_` form (replacing it fails every
/// platform's verification until it has the new one).
const MADE: [Param; 3] = [
    Param::LinkSecret,
    Param::WebhookPathSecret,
    Param::EventsSecret,
];

/// The settings that tell context tokens from platform tokens.
const TOKEN_KINDS: [Param; 4] = [
    Param::Issuer,
    Param::Audience,
    Param::PlatformIssuer,
    Param::PlatformAudience,
];

/// With `--partial`: what is put, merged with what the stack has, must still tell context
/// tokens from platform tokens. No function reads both sections, so this is where it is
/// checked (issue 30, L2). A dry run that cannot read the stack says so and goes on.
async fn check_token_kinds(
    stack: &str,
    values: &HashMap<Param, String>,
    dry_run: bool,
) -> Result<()> {
    if !values.keys().any(|p| TOKEN_KINDS.contains(p)) {
        return Ok(());
    }
    let config = crate::aws().await;
    let ssm = aws_sdk_ssm::Client::new(&config);
    let names: Vec<String> = TOKEN_KINDS.iter().map(|p| p.ssm_name(stack)).collect();
    let current: HashMap<Param, String> = match ssm
        .get_parameters()
        .set_names(Some(names))
        .send()
        .await
    {
        Ok(found) => found
            .parameters()
            .iter()
            .filter_map(|p| {
                let param = TOKEN_KINDS
                    .into_iter()
                    .find(|k| Some(k.ssm_name(stack).as_str()) == p.name())?;
                Some((param, p.value()?.to_owned()))
            })
            .collect(),
        Err(e) if dry_run => {
            eprintln!(
                "could not read the stack's issuer and audiences to check them with these ({}); not checked",
                DisplayErrorContext(&e)
            );
            return Ok(());
        }
        Err(e) => {
            return Err(CliError::Failed(format!(
                "reading the stack's issuer and audiences failed: {}",
                DisplayErrorContext(&e)
            )));
        }
    };
    let get = |p: Param| {
        values
            .get(&p)
            .or_else(|| current.get(&p))
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    };
    if get(Param::PlatformIssuer).is_some() && get(Param::PlatformAudience).is_none() {
        return Err(CliError::usage(format!(
            "{} must be set with {} (nothing was put)",
            Param::PlatformAudience.ssm_suffix(),
            Param::PlatformIssuer.ssm_suffix()
        )));
    }
    context_chat::settings::TokenKinds {
        chat_issuer: get(Param::Issuer),
        chat_audience: get(Param::Audience),
        platform_issuer: get(Param::PlatformIssuer),
        platform_audience: get(Param::PlatformAudience),
    }
    .check()
    .map_err(|e| CliError::usage(format!("{} (nothing was put)", e.message)))
}

/// Puts a new random secret at `name` unless one is there: replacing a link secret would void
/// every unsubscribe link and pending code.
async fn make_unless_present(ssm: &aws_sdk_ssm::Client, name: &str) -> Result<()> {
    let secret = match name.ends_with(Param::EventsSecret.ssm_suffix()) {
        true => context_chat::events::signing::new_secret()?,
        false => context_chat::settings::new_link_secret()?,
    };
    let put = ssm
        .put_parameter()
        .name(name)
        .value(secret)
        .r#type(ParameterType::SecureString)
        .overwrite(false)
        .send()
        .await;
    match put {
        Ok(_) => println!("made {name} [SecureString]"),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_parameter_already_exists()) =>
        {
            println!("kept {name}")
        }
        Err(e) => {
            return Err(CliError::Failed(format!(
                "making {name} failed: {}",
                DisplayErrorContext(&e)
            )));
        }
    }
    Ok(())
}

/// The parameters this command writes: all but the old place of the auth token.
fn writable() -> impl Iterator<Item = Param> {
    Param::ALL
        .into_iter()
        .filter(|p| *p != Param::LegacyAuthToken)
}

fn names() -> String {
    writable()
        .map(|p| p.ssm_suffix())
        .collect::<Vec<_>>()
        .join(", ")
}

fn env_names() -> String {
    writable()
        .map(|p| p.env_var())
        .collect::<Vec<_>>()
        .join(", ")
}

async fn ssm_client() -> aws_sdk_ssm::Client {
    aws_sdk_ssm::Client::new(&crate::aws().await)
}

/// Makes each of `names` that is not there yet.
async fn make_all(ssm: &aws_sdk_ssm::Client, names: &[String]) -> Result<()> {
    for name in names {
        make_unless_present(ssm, name).await?;
    }
    Ok(())
}
