//! `chatctl`: run Context Chat on one machine, make development keys and tokens, export
//! the GraphQL schema, set up the Twilio Conversation Service.

mod configure;
mod dev;
mod dev_auth;
mod error;
mod events;
mod guard;
mod local;
mod notifications;
mod pages;
mod platform;
mod put_params;
mod serve;
mod widget;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "chatctl",
    version,
    about = "Context Chat: serve locally, keys, tokens, schema, Twilio setup"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the GraphQL API on this machine (settings: SSM under STACK_NAME, environment
    /// variables, or embedded development defaults).
    Serve(serve::ServeArgs),
    /// Make an ES256 key pair as PEM files, with a kid.
    Keygen {
        /// The key id; the key's RFC 7638 thumbprint when not given.
        #[arg(long)]
        kid: Option<String>,
        /// Where to write ecdsa-p256-KID-private.pem and ecdsa-p256-KID-public.pem.
        #[arg(long, default_value = ".")]
        out_dir: PathBuf,
    },
    /// Print the JWKS of a public key (P-256 or Ed25519 PEM).
    Jwks {
        #[arg(long)]
        public_key: PathBuf,
        /// The key id; the key's RFC 7638 thumbprint when not given.
        #[arg(long)]
        kid: Option<String>,
        /// The old integration's shape: the PEM under "key".
        #[arg(long)]
        legacy: bool,
    },
    /// Sign a context token, as the platform would.
    Token {
        #[arg(long)]
        private_key: PathBuf,
        /// The key id; the key's RFC 7638 thumbprint when not given.
        #[arg(long)]
        kid: Option<String>,
        /// The user's chat identity (sub).
        #[arg(long)]
        identity: String,
        /// The contexts, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        context: Vec<String>,
        /// Lifetime: seconds, or a number with s, m, h or d.
        #[arg(long, default_value = "1h", value_parser = dev::parse_duration_secs)]
        ttl: u64,
        #[arg(long)]
        issuer: Option<String>,
        #[arg(long)]
        audience: Option<String>,
        /// Sign this many, for identities `<identity>-1` … `<identity>-N`, one per line
        /// (the load test's distinct tokens).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        count: u32,
    },
    /// Print a Virgil E3Kit JWT for an identity, signed with the app key of VIRGIL_APP_ID,
    /// VIRGIL_APP_KEY_ID and VIRGIL_APP_KEY (as createVirgilToken makes it).
    VirgilToken {
        #[arg(long)]
        identity: String,
        /// Issued at (unix seconds): now when not given; a fixed one gives the same token.
        #[arg(long)]
        issued_at: Option<u64>,
        /// Lifetime: seconds, or a number with s, m, h or d (at most a day); VIRGIL_TOKEN_TTL
        /// or 20 minutes when not given.
        #[arg(long, value_parser = dev::parse_duration_secs)]
        ttl: Option<u64>,
    },
    /// Print the GraphQL schema (SDL) that AppSync serves.
    Schema {
        /// With the platform API's fields (`@aws_oidc`), for a deployment that names a
        /// platform issuer.
        #[arg(long)]
        platform: bool,
    },
    /// Print, as JSON, the SSM parameters (below /STACK/) each function reads: the
    /// deployment grants each function exactly these (infra/ssm-parameters.json).
    Parameters,
    /// Print, as JSON, AppSync's resolvers: each root field of the schema with the function
    /// that resolves it (infra/appsync-resolvers.json, which the CDK app reads).
    Resolvers,
    /// Set up the Twilio Conversation Service for this product: roles, default roles,
    /// reachability, and the onMessageAdded webhook. Safe to run again.
    ConfigureTwilio(configure::ConfigureArgs),
    /// Call the platform API as a platform backend does: an access token by client
    /// credentials (cached, 0600), then the GraphQL field.
    Platform(platform::PlatformArgs),
    /// Put the deployment's SSM parameters under /STACK/ from the environment (TWILIO_*,
    /// CHAT_*, SENDGRID_*) or --set, SecureString where the product says; checked first.
    PutParams(put_params::PutParamsArgs),
    /// Events to the platform: `tail` prints what local mode emitted and what became of it.
    Events(events::EventsArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_http=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();

    let outcome = match cli.command {
        Command::Serve(args) => serve::run(args).await,
        Command::Keygen { kid, out_dir } => dev::keygen(kid, &out_dir),
        Command::Jwks {
            public_key,
            kid,
            legacy,
        } => dev::jwks(&public_key, kid, legacy),
        Command::Token {
            private_key,
            kid,
            identity,
            context,
            ttl,
            issuer,
            audience,
            count,
        } => dev::token(
            &private_key,
            kid,
            dev::Subjects { identity, count },
            context,
            ttl,
            dev::Audience { issuer, audience },
        ),
        Command::VirgilToken {
            identity,
            issued_at,
            ttl,
        } => dev::virgil_token(&identity, issued_at, ttl),
        Command::ConfigureTwilio(args) => configure::run(args).await,
        Command::PutParams(args) => put_params::run(args).await,
        Command::Platform(args) => platform::run(args).await,
        Command::Events(args) => events::run(args).await,
        Command::Schema { platform } => {
            use context_chat::graphql::{Fields, sdl};
            print!(
                "{}",
                sdl(if platform {
                    Fields::WithPlatform
                } else {
                    Fields::Widget
                })
            );
            Ok(())
        }
        Command::Resolvers => context_chat::graphql::resolvers()
            .map_err(|e| error::CliError::Failed(e.message))
            .and_then(|resolvers| {
                serde_json::to_string_pretty(&resolvers)
                    .map_err(|e| error::CliError::Failed(format!("JSON: {e}")))
            })
            .map(|json| println!("{json}")),
        Command::Parameters => {
            let by_function: serde_json::Map<String, serde_json::Value> =
                context_chat::settings::reads::BY_FUNCTION
                    .iter()
                    .map(|(function, reads)| {
                        let names = reads.params().map(|p| p.ssm_suffix().into()).collect();
                        ((*function).to_owned(), serde_json::Value::Array(names))
                    })
                    .collect();
            match serde_json::to_string_pretty(&by_function) {
                Ok(json) => {
                    println!("{json}");
                    Ok(())
                }
                Err(e) => Err(error::CliError::Failed(format!("JSON: {e}"))),
            }
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("chatctl: {err}");
            ExitCode::FAILURE
        }
    }
}

/// The AWS configuration of a developer's or operator's machine: aws-config's whole chain
/// (`AWS_PROFILE`, SSO, credential processes, …), unlike the Lambdas' environment-only one.
async fn aws() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}
