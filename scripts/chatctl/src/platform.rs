//! `chatctl platform …`: the platform API's client half, as a platform backend runs it. It
//! gets an access token by client credentials (RFC 6749 §4.4) from the platform's identity
//! provider, keeps it in a 0600 cache file and reuses it until a minute before it expires;
//! only one process fetches at a time (an exclusive lock on the cache), and a failed fetch
//! is never cached. Then it calls the GraphQL API with `Authorization: Bearer`.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::dev_auth::Client;
use crate::error::{CliError, Result};

/// Reuse a cached token until this long before it expires.
const EARLY_SECS: u64 = 60;
const CLIENT_FILE: &str = "platform-client.json";

#[derive(clap::Args)]
pub struct PlatformArgs {
    #[command(subcommand)]
    call: Call,
    /// The GraphQL API (AppSync's URL, or chatctl serve's).
    #[arg(
        long,
        env = "CHAT_API_URL",
        default_value = "http://127.0.0.1:4000/graphql"
    )]
    api_url: String,
    /// The identity provider's token endpoint (Auth0: https://TENANT/oauth/token).
    #[arg(
        long,
        env = "PLATFORM_TOKEN_URL",
        default_value = "http://127.0.0.1:4000/oauth/token"
    )]
    token_url: String,
    /// The client id; without it and the secret, local mode's development client (from the
    /// data directory).
    #[arg(long, env = "PLATFORM_CLIENT_ID")]
    client_id: Option<String>,
    /// The client secret (prefer the environment variable: arguments show in `ps`).
    #[arg(long, env = "PLATFORM_CLIENT_SECRET", hide_env_values = true)]
    client_secret: Option<String>,
    /// The API's identifier at the identity provider (Auth0 needs it), sent as `audience`.
    #[arg(long, env = "PLATFORM_TOKEN_AUDIENCE")]
    audience: Option<String>,
    /// The scopes to ask for.
    #[arg(long, default_value = "chat:read chat:admin")]
    scope: String,
    /// Where the access token is cached (mode 0600).
    #[arg(long, env = "PLATFORM_TOKEN_CACHE")]
    token_cache: Option<PathBuf>,
    /// Local mode's data directory (its development client, and the default cache).
    #[arg(long, default_value = ".context-chat", env = "CHAT_DATA_DIR")]
    data_dir: PathBuf,
}

#[derive(clap::Subcommand)]
enum Call {
    /// The contexts whose conversations the identity is in (chat:read).
    IdentityContexts {
        #[arg(long)]
        identity: String,
    },
    /// The identities in a context's conversation (chat:read).
    ContextMembers {
        #[arg(long)]
        context: String,
    },
    /// For each room the identity is in: its unread count and read horizon (chat:read).
    UnreadCounts {
        #[arg(long)]
        identity: String,
    },
    /// Who could read a context's room from --from to --to (unix seconds; default: all of
    /// the log until now), and on whose authority (chat:read).
    ContextAccess {
        #[arg(long)]
        context: String,
        #[arg(long, default_value_t = 0)]
        from: i32,
        #[arg(long)]
        to: Option<i32>,
    },
    /// Set the title a context's room shows (chat:admin).
    UpdateContext {
        #[arg(long)]
        context: String,
        #[arg(long)]
        title: String,
    },
    /// The ledger's record of a minted token, by its transaction id (chat:read).
    TokenIssuance {
        #[arg(long)]
        xid: String,
        /// Whose record: an xid is unique per identity.
        #[arg(long)]
        identity: Option<String>,
    },
    /// An identity's minted tokens, newest first (chat:read).
    TokenIssuances {
        #[arg(long)]
        identity: String,
        /// How many (at most 100).
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Make the identity's memberships match the contexts now (chat:admin).
    SyncIdentity {
        #[arg(long)]
        identity: String,
        /// The contexts, comma-separated; none leaves every conversation.
        #[arg(long, value_delimiter = ',', num_args = 0..)]
        context: Vec<String>,
    },
    /// End the identity's chat access; its context tokens issued before now are refused
    /// (chat:admin).
    RevokeIdentity {
        #[arg(long)]
        identity: String,
    },
    /// Everything stored about the identity, as one JSON document (chat:read).
    ExportIdentity {
        #[arg(long)]
        identity: String,
    },
    /// Erase the identity: revoked, out of every room, its records deleted or hashed
    /// (chat:admin).
    EraseIdentity {
        #[arg(long)]
        identity: String,
        /// Also delete the messages it wrote.
        #[arg(long)]
        delete_messages: bool,
    },
    /// Archive a context's room (printed as JSON) and close it at Twilio (chat:admin).
    ArchiveContext {
        #[arg(long)]
        context: String,
    },
}

impl Call {
    fn request(&self) -> (&'static str, &'static str, Value) {
        match self {
            Call::IdentityContexts { identity } => (
                "query($identity: ID!) { identityContexts(identity: $identity) }",
                "identityContexts",
                json!({ "identity": identity }),
            ),
            Call::ContextMembers { context } => (
                "query($context: String!) { contextMembers(context: $context) }",
                "contextMembers",
                json!({ "context": context }),
            ),
            Call::UnreadCounts { identity } => (
                "query($identity: ID!) { unreadCounts(identity: $identity) { context unread lastReadIndex } }",
                "unreadCounts",
                json!({ "identity": identity }),
            ),
            Call::ContextAccess { context, from, to } => (
                "query($context: String!, $from: Int!, $to: Int!) { contextAccess(context: $context, from: $from, to: $to) { identity from to cause { kind xid issuer keyId client } endedBy { kind xid issuer keyId client } } }",
                "contextAccess",
                json!({
                    "context": context,
                    "from": from,
                    "to": to.unwrap_or_else(|| i32::try_from(context_chat::context_token::now_unix()).unwrap_or(i32::MAX)),
                }),
            ),
            Call::UpdateContext { context, title } => (
                "mutation($context: String!, $title: String!) { updateContext(context: $context, title: $title) { context title } }",
                "updateContext",
                json!({ "context": context, "title": title }),
            ),
            Call::TokenIssuance { xid, identity } => (
                "query($xid: ID!, $identity: ID) { tokenIssuance(xid: $xid, identity: $identity) { xid kind identity contexts deviceId issuedAt expiresAt tokenSha256 } }",
                "tokenIssuance",
                json!({ "xid": xid, "identity": identity }),
            ),
            Call::TokenIssuances { identity, limit } => (
                "query($identity: ID!, $limit: Int) { tokenIssuances(identity: $identity, limit: $limit) { xid kind identity contexts deviceId issuedAt expiresAt tokenSha256 } }",
                "tokenIssuances",
                json!({ "identity": identity, "limit": limit }),
            ),
            Call::SyncIdentity { identity, context } => (
                "mutation($identity: ID!, $contexts: [String!]!) { syncIdentity(identity: $identity, contexts: $contexts) { joined left sweepAt } }",
                "syncIdentity",
                json!({ "identity": identity, "contexts": context }),
            ),
            Call::RevokeIdentity { identity } => (
                "mutation($identity: ID!) { revokeIdentity(identity: $identity) { left subscriptionsRemoved revokedBefore sweepAt } }",
                "revokeIdentity",
                json!({ "identity": identity }),
            ),
            Call::ExportIdentity { identity } => (
                "query($identity: ID!) { exportIdentity(identity: $identity) }",
                "exportIdentity",
                json!({ "identity": identity }),
            ),
            Call::EraseIdentity {
                identity,
                delete_messages,
            } => (
                "mutation($identity: ID!, $delete: Boolean) { eraseIdentity(identity: $identity, deleteMessages: $delete) { pseudonym left recordsDeleted recordsPseudonymized messagesDeleted alreadyErased } }",
                "eraseIdentity",
                json!({ "identity": identity, "delete": delete_messages }),
            ),
            Call::ArchiveContext { context } => (
                "mutation($context: String!) { archiveContext(context: $context) { context archivedName participants messages archive } }",
                "archiveContext",
                json!({ "context": context }),
            ),
        }
    }
}

pub async fn run(args: PlatformArgs) -> Result<()> {
    let client = match (&args.client_id, &args.client_secret) {
        (Some(id), Some(secret)) => Client {
            client_id: id.clone(),
            client_secret: secret.clone(),
        },
        (None, None) => local_client(&args.data_dir)?,
        _ => {
            return Err(CliError::usage(
                "give both --client-id and the client secret (PLATFORM_CLIENT_SECRET), or neither for local mode's client",
            ));
        }
    };
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(|e| CliError::Failed(format!("HTTP client: {e}")))?;
    let source = TokenSource {
        http: http.clone(),
        token_url: args.token_url.clone(),
        client,
        audience: args.audience.clone(),
        scope: args.scope.clone(),
        cache: args
            .token_cache
            .clone()
            .unwrap_or_else(|| args.data_dir.join("platform-token.json")),
    };
    let token = source.token().await?;
    let (query, field, variables) = args.call.request();
    let response = http
        .post(&args.api_url)
        .bearer_auth(&token)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .map_err(|e| CliError::Failed(format!("{}: {e}", args.api_url)))?;
    let status = response.status();
    let body: Value = response.json().await.map_err(|_| {
        CliError::Failed(format!("{}: answered {status} without JSON", args.api_url))
    })?;
    if let Some(error) = body.pointer("/errors/0") {
        let kind = error["errorType"].as_str().unwrap_or("Error");
        let message = error["message"].as_str().unwrap_or("no message");
        return Err(CliError::Failed(format!("{field}: {kind}: {message}")));
    }
    let mut value = body
        .pointer(&format!("/data/{field}"))
        .cloned()
        .unwrap_or(Value::Null);
    // AWSJSON comes as its text: printed as the document it is.
    parse_json_text(&mut value);
    if let Some(archive) = value_at(&mut value, "archive") {
        parse_json_text(archive);
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&value).unwrap_or_else(|_| value.to_string())
    );
    Ok(())
}

fn parse_json_text(value: &mut Value) {
    if let Some(parsed) = value
        .as_str()
        .and_then(|t| serde_json::from_str::<Value>(t).ok())
    {
        *value = parsed;
    }
}

fn value_at<'a>(value: &'a mut Value, name: &str) -> Option<&'a mut Value> {
    value.as_object_mut()?.get_mut(name)
}

/// Local mode's development client, from the data directory `chatctl serve` made.
fn local_client(data_dir: &Path) -> Result<Client> {
    let path = data_dir.join(CLIENT_FILE);
    let text = std::fs::read_to_string(&path).map_err(|_| {
        CliError::usage(format!(
            "no client credentials: give --client-id and PLATFORM_CLIENT_SECRET, or start `chatctl serve` in local mode, which makes {}",
            path.display()
        ))
    })?;
    serde_json::from_str(&text)
        .map_err(|_| CliError::Failed(format!("{} is not a client file", path.display())))
}

/// What the cache file holds: the token and what it was asked for, so that a token is only
/// reused for the same request.
#[derive(Serialize, Deserialize, PartialEq)]
struct Cached {
    token_url: String,
    client_id: String,
    audience: Option<String>,
    scope: String,
    access_token: String,
    expires_at: u64,
}

/// Client-credentials access tokens, cached in a file.
pub struct TokenSource {
    http: reqwest::Client,
    token_url: String,
    client: Client,
    audience: Option<String>,
    scope: String,
    cache: PathBuf,
}

impl TokenSource {
    /// A token valid for at least a minute more: the cached one, or a new one. The cache file
    /// stays locked while a token is fetched, so concurrent commands fetch once.
    pub async fn token(&self) -> Result<String> {
        let mut file = open_private(&self.cache)?;
        file.lock().map_err(CliError::file(&self.cache))?;
        let now = context_chat::context_token::now_unix();
        let mut text = String::new();
        // An unreadable or foreign cache is only a miss.
        let _ = file.read_to_string(&mut text);
        if let Ok(cached) = serde_json::from_str::<Cached>(&text)
            && cached.token_url == self.token_url
            && cached.client_id == self.client.client_id
            && cached.audience == self.audience
            && cached.scope == self.scope
            && cached.expires_at > now + EARLY_SECS
        {
            return Ok(cached.access_token);
        }
        let (access_token, expires_in) = self.fetch().await?;
        let cached = Cached {
            token_url: self.token_url.clone(),
            client_id: self.client.client_id.clone(),
            audience: self.audience.clone(),
            scope: self.scope.clone(),
            access_token,
            expires_at: now + expires_in,
        };
        let text = serde_json::to_string(&cached)
            .map_err(|e| CliError::Failed(format!("token cache: {e}")))?;
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(text.as_bytes()))
            .and_then(|()| file.sync_data())
            .map_err(CliError::file(&self.cache))?;
        Ok(cached.access_token)
    }

    async fn fetch(&self) -> Result<(String, u64)> {
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", self.client.client_id.as_str()),
            ("client_secret", self.client.client_secret.as_str()),
            ("scope", self.scope.as_str()),
        ];
        if let Some(audience) = &self.audience {
            form.push(("audience", audience));
        }
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let response = self
            .http
            .post(&self.token_url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| CliError::Failed(format!("{}: {e}", self.token_url)))?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let error = answer["error"].as_str().unwrap_or("no error code");
            let description = answer["error_description"].as_str().unwrap_or_default();
            return Err(CliError::Failed(format!(
                "{} refused the client credentials: {status} {error} {description}",
                self.token_url
            )));
        }
        let token = answer["access_token"].as_str().filter(|t| !t.is_empty());
        let Some(token) = token else {
            return Err(CliError::Failed(format!(
                "{} answered without an access_token",
                self.token_url
            )));
        };
        // RFC 6749 recommends expires_in; without it, use the token once.
        let expires_in = answer["expires_in"].as_u64().unwrap_or(0);
        Ok((token.to_owned(), expires_in))
    }
}

/// The cache file, made with mode 0600 (and its directory) when missing.
fn open_private(path: &Path) -> Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(CliError::file(dir))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map_err(CliError::file(path))
}
