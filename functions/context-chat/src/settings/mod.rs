//! Settings: the Twilio credentials, the context-token issuer, the webhook's and the
//! links' secrets, the platform's and Virgil's, read from SSM by name or from environment
//! variables, and checked once when loaded. A process reads only the sections it uses
//! ([`Reads`]). The notification channels read their own sections ([`Settings::section`],
//! [`Settings::feature`]): this module names no channel.

mod params;
mod source;

pub use params::{Param, Reads, Section, reads};
pub use source::{SettingsSource, read_ssm_path};

use std::collections::HashMap;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::error::{ChatError, Result};
pub use crate::feature::Feature;
use crate::ledger::LedgerPolicy;
use crate::names::looks_like_sid;
use crate::twilio::access_token::{DEFAULT_TTL_SECS, MAX_TTL_SECS, MIN_TTL_SECS};
use crate::twilio::provisioning::{Adoption, Ownership};
use crate::virgil::VirgilSigner;

/// One load of the settings. A section the process does not read is `None`, or off; the
/// sections a mistake in which must fail only their own feature are [`Feature`]s.
#[derive(Debug, Clone)]
pub struct Settings {
    pub twilio: Option<TwilioSettings>,
    pub chat: Option<ChatSettings>,
    /// The account's auth token, for webhook signatures; optional even where it is read.
    pub webhook_auth_token: Option<SecretString>,
    /// The webhook path's last segment (`webhook/pathSecret`); without it every webhook is
    /// refused.
    pub webhook_path_secret: Option<SecretString>,
    /// Optional where it is read: what needs it fails, saying it is not configured.
    pub link_secret: Option<SecretString>,
    /// `None` without an issuer: the platform API then answers that it is not configured.
    pub platform: Option<PlatformSettings>,
    /// The minting limit and the ledger's retention; the defaults where not read.
    pub ledger: LedgerPolicy,
    /// Virgil E3Kit JWTs: the signer, made at load because reading the app key is checking
    /// it. Off without an app id; a mistake is kept, not raised, so that it fails only
    /// Virgil tokens.
    pub virgil: Feature<Arc<VirgilSigner>>,
    /// The raw values of the sections their features read themselves, as loaded: a
    /// mistake in them fails only their feature, when it reads them.
    pub sections: Sections,
}

/// The loaded values of the sections a process reads whose features read them themselves
/// ([`Section::read_by_its_feature`]), with each parameter's name as its source gives it (for
/// messages). `Debug` shows the names only.
#[derive(Clone, Default)]
pub struct Sections {
    read: Vec<Section>,
    values: RawParams,
    names: HashMap<Param, String>,
}

impl std::fmt::Debug for Sections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sections")
            .field("read", &self.read)
            .field("set", &self.values.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Sections {
    /// The sections of `reads` that their features read, from `raw`.
    fn of(raw: &RawParams, describe: &dyn Fn(Param) -> String, reads: Reads) -> Self {
        let mut sections = Sections::default();
        for section in reads.0.iter().filter(|s| s.read_by_its_feature()) {
            sections.take(*section, describe, |p| raw.get(&p).cloned());
        }
        sections
    }

    fn take(
        &mut self,
        section: Section,
        describe: &dyn Fn(Param) -> String,
        value: impl Fn(Param) -> Option<String>,
    ) {
        self.read.push(section);
        for p in Param::ALL.into_iter().filter(|p| p.in_section(section)) {
            self.names.insert(p, describe(p));
            if let Some(v) = value(p) {
                self.values.insert(p, v);
            }
        }
    }
}

/// The platform API's access tokens (OAuth 2.0 client credentials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformSettings {
    /// Exactly the tokens' `iss`; a trailing slash counts.
    pub issuer: String,
    pub audience: Option<String>,
    pub jwks_url: Url,
}

#[derive(Debug, Clone)]
pub struct TwilioSettings {
    pub account_sid: String,
    pub api_key_sid: String,
    pub api_secret: SecretString,
    pub chat_service_sid: String,
    pub access_token_ttl_secs: u64,
    /// The Conversations API. `None` turns provisioning off: local mode on embedded fake
    /// credentials, where there is no Twilio account to provision in.
    pub api_base_url: Option<Url>,
    /// The deployment whose conversations these are, and what provisioning may adopt.
    pub ownership: Ownership,
    /// Mobile apps' push credential (`CR…`), put in every chat grant when set.
    pub push_credential_sid: Option<String>,
}

/// Everything the context-token verifier depends on. When a reload leaves it unchanged,
/// the verifier and its caches are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatSettings {
    pub jwks_url: Url,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    /// Context tokens that live longer, `iat` (or now) to `exp`, are refused.
    pub max_token_lifetime_secs: u64,
}

pub use crate::context_token::DEFAULT_MAX_TOKEN_LIFETIME_SECS;
/// The most `chat/maxTokenLifetime` may be: a revocation is kept longer than this.
pub const MAX_MAX_TOKEN_LIFETIME_SECS: u64 = 365 * 24 * 3600;
const _: () = assert!(MAX_MAX_TOKEN_LIFETIME_SECS < crate::revocations::KEEP_SECS);

/// Raw parameter values by [`Param`], as a source found them.
pub(crate) type RawParams = HashMap<Param, String>;

/// The shortest link secret accepted: 128 bits of base64url.
pub const MIN_LINK_SECRET_CHARS: usize = 22;

/// A new link secret: 256 random bits, base64url.
pub fn new_link_secret() -> Result<String> {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| ChatError::internal("No randomness for a link secret."))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Whether `s` can be the webhook path's secret segment: long enough to be unguessable, and
/// nothing a URL would need to escape.
pub fn is_path_secret(s: &str) -> bool {
    (MIN_LINK_SECRET_CHARS..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Where Twilio's Conversations API answers, unless `TWILIO_API_BASE_URL` says otherwise.
pub const DEFAULT_TWILIO_API_BASE_URL: &str = "https://conversations.twilio.com";

/// Reads raw values, naming a parameter the way its source does (an SSM name or an
/// environment variable) in error messages; values never appear in them.
pub struct Reader<'a> {
    raw: &'a RawParams,
    names: Names<'a>,
}

enum Names<'a> {
    Describe(&'a dyn Fn(Param) -> String),
    Known(&'a HashMap<Param, String>),
}

impl<'a> Reader<'a> {
    fn new(raw: &'a RawParams, describe: &'a dyn Fn(Param) -> String) -> Self {
        Reader {
            raw,
            names: Names::Describe(describe),
        }
    }

    /// How the source names `p`.
    pub fn name(&self, p: Param) -> String {
        match &self.names {
            Names::Describe(describe) => describe(p),
            Names::Known(names) => names
                .get(&p)
                .cloned()
                .unwrap_or_else(|| p.ssm_suffix().to_owned()),
        }
    }

    pub fn required(&self, p: Param) -> Result<&str> {
        self.raw
            .get(&p)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                ChatError::not_found(format!("The setting {} is missing.", self.name(p)))
            })
    }

    pub fn optional(&self, p: Param) -> Option<String> {
        self.raw
            .get(&p)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    }

    /// The error for a value of `p` that is wrong: what is wrong, never the value.
    pub fn invalid(&self, p: Param, what: &str) -> ChatError {
        ChatError::internal(format!("The setting {} {what}.", self.name(p)))
    }

    /// A Twilio SID starting with `prefix`.
    pub fn sid(&self, p: Param, prefix: &str) -> Result<String> {
        let value = self.required(p)?;
        if looks_like_sid(value, prefix) {
            Ok(value.to_owned())
        } else {
            Err(self.invalid(
                p,
                &format!("is not a Twilio SID ({prefix} followed by 32 hex digits)"),
            ))
        }
    }

    /// https anywhere; http only to loopback. ASCII only: the binaries leave out Unicode host
    /// names' tables (idna_adapter 1.0, `adr/002`), so an international host is written in its
    /// `xn--` form.
    pub fn url(&self, p: Param, value: &str) -> Result<Url> {
        if !value.is_ascii() {
            return Err(self.invalid(
                p,
                "is not all ASCII: write an international host name in its xn-- form",
            ));
        }
        let url = Url::parse(value).map_err(|_| self.invalid(p, "is not a URL"))?;
        if is_allowed_remote_url(&url) {
            Ok(url)
        } else {
            Err(self.invalid(
                p,
                "must use https (plain http is allowed only for loopback hosts)",
            ))
        }
    }

    /// The URL `p` sets, else `default`.
    pub fn url_or(&self, p: Param, default: &str) -> Result<Url> {
        self.url(p, self.optional(p).as_deref().unwrap_or(default))
    }
}

impl Settings {
    /// The sections `reads` names, from `raw`; the others are left out whatever `raw` holds.
    pub(crate) fn from_raw(
        raw: &RawParams,
        describe: &dyn Fn(Param) -> String,
        reads: Reads,
    ) -> Result<Self> {
        let r = Reader::new(raw, describe);
        let link_secret = match r
            .optional(Param::LinkSecret)
            .filter(|_| reads.has(Section::Links))
        {
            Some(s) if s.chars().count() < MIN_LINK_SECRET_CHARS => {
                return Err(r.invalid(
                    Param::LinkSecret,
                    &format!("is shorter than {MIN_LINK_SECRET_CHARS} characters"),
                ));
            }
            s => s.map(SecretString::from),
        };
        let webhook_path_secret = match r
            .optional(Param::WebhookPathSecret)
            .filter(|_| reads.has(Section::Webhook))
        {
            Some(s) if !is_path_secret(&s) => {
                return Err(r.invalid(
                    Param::WebhookPathSecret,
                    &format!(
                        "must be {MIN_LINK_SECRET_CHARS} to 128 of A-Z a-z 0-9 _ - (put-params makes one)"
                    ),
                ));
            }
            s => s.map(SecretString::from),
        };
        Ok(Settings {
            twilio: reads
                .has(Section::Twilio)
                .then(|| TwilioSettings::from_raw(raw, describe))
                .transpose()?,
            chat: reads
                .has(Section::Chat)
                .then(|| ChatSettings::from_raw(raw, describe))
                .transpose()?,
            webhook_auth_token: reads
                .has(Section::Webhook)
                .then(|| {
                    r.optional(Param::WebhookAuthToken)
                        .or_else(|| r.optional(Param::LegacyAuthToken))
                })
                .flatten()
                .map(SecretString::from),
            webhook_path_secret,
            link_secret,
            platform: if reads.has(Section::Platform) {
                PlatformSettings::from_raw(raw, describe)?
            } else {
                None
            },
            ledger: if reads.has(Section::Ledger) {
                ledger_policy(&r)?
            } else {
                LedgerPolicy::default()
            },
            virgil: if reads.has(Section::Virgil) {
                virgil_signer(&r)
            } else {
                not_read()
            },
            sections: Sections::of(raw, describe, reads),
        })
        .and_then(|s| s.tokens_told_apart(&r))
    }

    /// A section its feature reads itself, `None` where this process does not read it.
    pub fn section(&self, section: Section) -> Option<Reader<'_>> {
        self.sections.read.contains(&section).then_some(Reader {
            raw: &self.sections.values,
            names: Names::Known(&self.sections.names),
        })
    }

    /// A feature's part made from its section by `read`: on with `Ok(Some)`, off with
    /// `Ok(None)` (saying that the `missing` parameters are) or where this process does not
    /// read the section, misconfigured with `Err`.
    pub fn feature<T>(
        &self,
        section: Section,
        read: impl FnOnce(&Reader<'_>) -> Result<Option<T>>,
        missing: &[Param],
    ) -> Feature<T> {
        let Some(r) = self.section(section) else {
            return Feature::Off("this process does not read its settings".into());
        };
        Feature::from_section(read(&r), || {
            let names: Vec<String> = missing.iter().map(|p| r.name(*p)).collect();
            format!("{} are missing", names.join(" and "))
        })
    }

    /// These settings with `section` read from the environment variables (local mode takes
    /// the channels' settings from them).
    pub fn with_env_section(mut self, section: Section) -> Self {
        self.sections.read.retain(|s| *s != section);
        self.sections.take(
            section,
            &|p| format!("environment variable {}", p.env_var()),
            |p| std::env::var(p.env_var()).ok(),
        );
        self
    }

    /// These settings with `value` for `param` where its section (read by its feature) has
    /// none: local mode's own secrets (the events' signing key in its data directory).
    pub fn with_default(mut self, param: Param, value: impl FnOnce() -> String) -> Self {
        if self.sections.read.iter().any(|s| param.in_section(*s))
            && !self.sections.values.contains_key(&param)
        {
            self.sections.values.insert(param, value());
        }
        self
    }

    /// The token path alone: context tokens checked against `jwks_url`, access tokens made
    /// with `twilio`'s credentials; every other section off, the ledger's defaults. The
    /// benches, the fuzz target and local mode start from it.
    pub fn token_path(jwks_url: Url, twilio: Option<TwilioSettings>) -> Self {
        Settings {
            twilio,
            chat: Some(ChatSettings {
                jwks_url,
                issuer: None,
                audience: None,
                max_token_lifetime_secs: DEFAULT_MAX_TOKEN_LIFETIME_SECS,
            }),
            webhook_auth_token: None,
            webhook_path_secret: None,
            link_secret: None,
            platform: None,
            ledger: LedgerPolicy::default(),
            virgil: not_set(),
            sections: Sections::default(),
        }
    }

    /// Context tokens and platform tokens are told apart by their claims (`contexts`); an
    /// issuer that signs both must also give them different audiences, so that neither
    /// kind's rules accept the other (RFC 8725 §3.12).
    fn tokens_told_apart(self, r: &Reader<'_>) -> Result<Self> {
        if let (Some(chat), Some(platform)) = (&self.chat, &self.platform) {
            let kinds = TokenKinds {
                chat_issuer: chat.issuer.as_deref(),
                chat_audience: chat.audience.as_deref(),
                platform_issuer: Some(&platform.issuer),
                platform_audience: platform.audience.as_deref(),
            };
            if !kinds.told_apart() {
                return Err(r.invalid(Param::PlatformAudience, TOLD_APART));
            }
        }
        Ok(self)
    }
}

/// A section these settings do not set.
fn not_set<T>() -> Feature<T> {
    Feature::Off("not set in these settings".into())
}

/// A section this process does not read.
fn not_read<T>() -> Feature<T> {
    Feature::Off("this process does not read its settings".into())
}

const TOLD_APART: &str = "must differ from the context tokens' audience, which must be set, when both kinds of token come from one issuer";

/// The four settings that tell context tokens from platform access tokens, wherever they
/// come from: the loaded settings, or `put-params` merging what it puts with what is there
/// (no function reads both sections, so the check runs where they are put; issue 30, L2).
#[derive(Debug, Clone, Copy, Default)]
pub struct TokenKinds<'a> {
    pub chat_issuer: Option<&'a str>,
    pub chat_audience: Option<&'a str>,
    pub platform_issuer: Option<&'a str>,
    pub platform_audience: Option<&'a str>,
}

impl TokenKinds<'_> {
    /// Context tokens and platform tokens are told apart by their claims (`contexts`); an
    /// issuer that signs both must also give them different audiences.
    pub fn told_apart(&self) -> bool {
        let one_issuer = self.platform_issuer.is_some() && self.chat_issuer == self.platform_issuer;
        !one_issuer
            || (self.chat_audience.is_some() && self.chat_audience != self.platform_audience)
    }

    /// [`TokenKinds::told_apart`], or an error naming the SSM parameter.
    pub fn check(&self) -> Result<()> {
        if self.told_apart() {
            Ok(())
        } else {
            Err(ChatError::internal(format!(
                "The setting {} {TOLD_APART}.",
                Param::PlatformAudience.ssm_suffix()
            )))
        }
    }
}

/// Most tokens a minute the limit may be set to, and most days of retention.
pub const MAX_TOKENS_PER_MINUTE: u32 = 10_000;
pub const MAX_RETENTION_DAYS: u32 = 3650;

/// `CHAT_ISSUANCE_RETENTION_DAYS` for processes that read no settings (the dev token API),
/// else [`crate::ledger::DEFAULT_RETENTION_DAYS`].
pub fn retention_days_from_env() -> u32 {
    std::env::var(Param::IssuanceRetentionDays.env_var())
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(crate::ledger::DEFAULT_RETENTION_DAYS)
}

/// The ledger's settings from `CHAT_TOKENS_PER_MINUTE` and `CHAT_ISSUANCE_RETENTION_DAYS`
/// alone (local mode's embedded settings take them from the environment).
pub fn ledger_policy_from_env() -> Result<LedgerPolicy> {
    let raw: RawParams = [Param::TokensPerMinute, Param::IssuanceRetentionDays]
        .into_iter()
        .filter_map(|p| std::env::var(p.env_var()).ok().map(|v| (p, v)))
        .collect();
    ledger_policy(&Reader::new(&raw, &|p: Param| p.env_var().to_owned()))
}

fn ledger_policy(r: &Reader<'_>) -> Result<LedgerPolicy> {
    let number = |p: Param, default: u32, max: u32| match r.optional(p) {
        None => Ok(default),
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|n| *n <= max)
            .ok_or_else(|| r.invalid(p, &format!("must be a whole number from 0 to {max}"))),
    };
    let defaults = LedgerPolicy::default();
    Ok(LedgerPolicy {
        per_minute: number(
            Param::TokensPerMinute,
            defaults.per_minute,
            MAX_TOKENS_PER_MINUTE,
        )?,
        retention_days: number(
            Param::IssuanceRetentionDays,
            defaults.retention_days,
            MAX_RETENTION_DAYS,
        )?,
    })
}

/// The Virgil signer from `VIRGIL_*` alone (local mode uses them when set, and
/// `chatctl virgil-token`), `ttl_secs` in place of `VIRGIL_TOKEN_TTL` when given.
pub fn virgil_signer_from_env(ttl_secs: Option<u64>) -> Feature<Arc<VirgilSigner>> {
    let mut raw: RawParams = Param::ALL
        .into_iter()
        .filter(|p| p.section() == Section::Virgil)
        .filter_map(|p| std::env::var(p.env_var()).ok().map(|v| (p, v)))
        .collect();
    if let Some(ttl) = ttl_secs {
        raw.insert(Param::VirgilTokenTtl, ttl.to_string());
    }
    virgil_signer(&Reader::new(&raw, &|p: Param| p.env_var().to_owned()))
}

/// The ids are copied into tokens unchanged, so they must be what Virgil's SDKs write the
/// same way: printable ASCII without spaces.
fn virgil_signer(r: &Reader<'_>) -> Feature<Arc<VirgilSigner>> {
    if r.optional(Param::VirgilAppId).is_none() {
        return Feature::Off(format!("{} is missing", r.name(Param::VirgilAppId)));
    }
    match virgil_signer_of(r) {
        Ok(signer) => Feature::On(signer),
        Err(err) => Feature::Misconfigured(err),
    }
}

fn virgil_signer_of(r: &Reader<'_>) -> Result<Arc<VirgilSigner>> {
    let id = |p: Param| {
        let value = r.required(p)?;
        if value.len() <= 256 && value.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(value)
        } else {
            Err(r.invalid(
                p,
                "must be printable ASCII without spaces, as Virgil prints it",
            ))
        }
    };
    let app_id = id(Param::VirgilAppId)?;
    let app_key_id = id(Param::VirgilAppKeyId)?;
    let app_key = SecretString::from(r.required(Param::VirgilAppKey)?.to_owned());
    let ttl = match r.optional(Param::VirgilTokenTtl) {
        None => crate::virgil::DEFAULT_TTL_SECS,
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|t| (1..=crate::virgil::MAX_TTL_SECS).contains(t))
            .ok_or_else(|| {
                r.invalid(
                    Param::VirgilTokenTtl,
                    &format!(
                        "must be a number of seconds from 1 to {}",
                        crate::virgil::MAX_TTL_SECS
                    ),
                )
            })?,
    };
    VirgilSigner::new(app_id, app_key_id, &app_key, ttl)
        .map(Arc::new)
        .map_err(|malformed| r.invalid(Param::VirgilAppKey, &malformed.to_string()))
}

impl PlatformSettings {
    pub(crate) fn from_raw(
        raw: &RawParams,
        describe: &dyn Fn(Param) -> String,
    ) -> Result<Option<Self>> {
        let r = Reader::new(raw, describe);
        let Some(issuer) = r.optional(Param::PlatformIssuer) else {
            return Ok(None);
        };
        r.url(Param::PlatformIssuer, &issuer)?;
        let jwks_url = match r.optional(Param::PlatformJwksUrl) {
            Some(url) => r.url(Param::PlatformJwksUrl, &url)?,
            None => {
                let slash = if issuer.ends_with('/') { "" } else { "/" };
                r.url(
                    Param::PlatformIssuer,
                    &format!("{issuer}{slash}.well-known/jwks.json"),
                )?
            }
        };
        // An access token for another API of the same provider must not pass (RFC 8725
        // §3.9): without an audience there is nothing to tell them apart by (issue 30, L2).
        let audience = r.optional(Param::PlatformAudience).ok_or_else(|| {
            r.invalid(
                Param::PlatformAudience,
                "must be set with the platform issuer: the platform API accepts only access tokens made for it",
            )
        })?;
        Ok(Some(PlatformSettings {
            issuer,
            audience: Some(audience),
            jwks_url,
        }))
    }
}

impl TwilioSettings {
    pub(crate) fn from_raw(raw: &RawParams, describe: &dyn Fn(Param) -> String) -> Result<Self> {
        let r = Reader::new(raw, describe);
        let ttl = match r.optional(Param::AccessTokenTtl) {
            None => DEFAULT_TTL_SECS,
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|t| (MIN_TTL_SECS..=MAX_TTL_SECS).contains(t))
                .ok_or_else(|| {
                    r.invalid(
                        Param::AccessTokenTtl,
                        &format!(
                            "must be a number of seconds from {MIN_TTL_SECS} (Twilio's SDK warns a minute before expiry) to {MAX_TTL_SECS}"
                        ),
                    )
                })?,
        };
        let api_base_url = r.url_or(Param::ApiBaseUrl, DEFAULT_TWILIO_API_BASE_URL)?;
        let adoption = match r.optional(Param::AdoptConversations).as_deref() {
            None => Adoption::Unmarked,
            Some("true") => Adoption::Any,
            Some("false") => Adoption::Never,
            Some(_) => {
                return Err(r.invalid(
                    Param::AdoptConversations,
                    "must be true or false (unset: only conversations with no attributes)",
                ));
            }
        };
        Ok(TwilioSettings {
            account_sid: r.sid(Param::AccountSid, "AC")?,
            api_key_sid: r.sid(Param::ApiKey, "SK")?,
            api_secret: SecretString::from(r.required(Param::ApiSecret)?.to_owned()),
            chat_service_sid: r.sid(Param::ChatServiceSid, "IS")?,
            access_token_ttl_secs: ttl,
            push_credential_sid: r
                .optional(Param::PushCredentialSid)
                .map(|_| r.sid(Param::PushCredentialSid, "CR"))
                .transpose()?,
            api_base_url: Some(api_base_url),
            // The source names the stack (SSM); none in local mode.
            ownership: Ownership {
                stack: None,
                adoption,
                reopen_archived: match r.optional(Param::ReopenArchived).as_deref().map(str::trim) {
                    None | Some("false") => false,
                    Some("true") => true,
                    Some(_) => {
                        return Err(r.invalid(Param::ReopenArchived, "must be true or false"));
                    }
                },
            },
        })
    }

    /// Whether `other` talks to the same Conversation Service with the same credentials, so
    /// that a client (and what it remembers) made for one serves the other.
    pub fn same_api(&self, other: &TwilioSettings) -> bool {
        self.api_base_url == other.api_base_url
            && self.api_key_sid == other.api_key_sid
            && self.chat_service_sid == other.chat_service_sid
            && self.api_secret.expose_secret() == other.api_secret.expose_secret()
            && self.ownership == other.ownership
    }
}

impl ChatSettings {
    pub(crate) fn from_raw(raw: &RawParams, describe: &dyn Fn(Param) -> String) -> Result<Self> {
        let r = Reader::new(raw, describe);
        let max_token_lifetime_secs = match r.optional(Param::MaxTokenLifetime) {
            None => DEFAULT_MAX_TOKEN_LIFETIME_SECS,
            Some(v) => v
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|t| (60..=MAX_MAX_TOKEN_LIFETIME_SECS).contains(t))
                .ok_or_else(|| {
                    r.invalid(
                        Param::MaxTokenLifetime,
                        &format!("must be seconds from 60 to {MAX_MAX_TOKEN_LIFETIME_SECS}"),
                    )
                })?,
        };
        Ok(ChatSettings {
            jwks_url: r.url(Param::JwksUrl, r.required(Param::JwksUrl)?)?,
            issuer: r.optional(Param::Issuer),
            audience: r.optional(Param::Audience),
            max_token_lifetime_secs,
        })
    }
}

pub use crate::http_client::is_allowed_remote_url;

/// Settings of `reads` from `pairs`, named as SSM names them under `/stack/` (the tests of
/// the features that read their own sections).
#[cfg(test)]
pub(crate) fn for_tests(pairs: &[(Param, &str)], reads: Reads) -> Result<Settings> {
    let raw: RawParams = pairs.iter().map(|(p, v)| (*p, (*v).to_owned())).collect();
    Settings::from_raw(&raw, &|p: Param| p.ssm_name("stack"), reads)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn good() -> RawParams {
        [
            (Param::AccountSid, "AC0123456789abcdef0123456789abcdef"),
            (Param::ApiKey, "SKfedcba9876543210fedcba9876543210"),
            (Param::ApiSecret, "s3cr3t-value"),
            (Param::ChatServiceSid, "IS00112233445566778899aabbccddeeff"),
            (
                Param::JwksUrl,
                "https://issuer.example/.well-known/jwks.json",
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.to_owned()))
        .collect()
    }

    fn describe(p: Param) -> String {
        p.ssm_name("stack")
    }

    fn load(raw: &RawParams) -> Result<Settings> {
        Settings::from_raw(raw, &describe, reads::EVERYTHING)
    }

    #[test]
    fn a_process_holds_only_the_sections_it_reads() {
        let mut raw = good();
        raw.insert(Param::LegacyAuthToken, "the-auth-token".into());
        raw.insert(Param::LinkSecret, "a-link-secret-of-some-length".into());
        raw.insert(Param::SendGridApiKey, "SG.key".into());
        raw.insert(Param::SendGridDomain, "example.org".into());

        let verify = Settings::from_raw(&raw, &describe, reads::VERIFY_TOKEN).unwrap();
        assert!(verify.chat.is_some());
        assert!(verify.twilio.is_none());
        assert!(verify.webhook_auth_token.is_none());
        assert!(verify.link_secret.is_none());
        assert!(verify.section(Section::SendGrid).is_none());
        assert!(format!("{verify:?}").contains("Sections"));
        // A section its feature reads is kept for it, its values out of `Debug`.
        let notify = Settings::from_raw(&raw, &describe, reads::NOTIFY).unwrap();
        let sendgrid = notify.section(Section::SendGrid).unwrap();
        assert_eq!(sendgrid.required(Param::SendGridApiKey).unwrap(), "SG.key");
        assert!(!format!("{notify:?}").contains("SG.key"));
        let off = notify.feature(
            Section::Sms,
            |r| Ok(r.optional(Param::VerifyServiceSid)),
            &[Param::VerifyServiceSid, Param::MessagingServiceSid],
        );
        assert_eq!(
            off.why_not(),
            Some(
                "/stack/twilio/verifyServiceSID and /stack/twilio/messagingServiceSID are missing"
            )
        );
        let wrong = notify.feature(
            Section::SendGrid,
            |r| Err::<Option<()>, _>(r.invalid(Param::SendGridDomain, "is wrong")),
            &[],
        );
        assert_eq!(
            wrong.why_not(),
            Some("The setting /stack/sendgrid/domain is wrong.")
        );
        assert!(matches!(
            verify.feature(Section::Sms, |_| Ok(Some(())), &[]),
            Feature::Off(_)
        ));

        let webhook = Settings::from_raw(&raw, &describe, reads::TWILIO_WEBHOOK).unwrap();
        assert!(webhook.twilio.is_none() && webhook.chat.is_none());
        // The old name still serves; the new one wins.
        assert_eq!(
            webhook.webhook_auth_token.unwrap().expose_secret(),
            "the-auth-token"
        );
        raw.insert(Param::WebhookAuthToken, "the-new-place".into());
        let webhook = Settings::from_raw(&raw, &describe, reads::TWILIO_WEBHOOK).unwrap();
        assert_eq!(
            webhook.webhook_auth_token.unwrap().expose_secret(),
            "the-new-place"
        );
        assert!(webhook.link_secret.is_some());

        // A section it does not read cannot fail it.
        raw.remove(&Param::ApiSecret);
        assert!(Settings::from_raw(&raw, &describe, reads::VERIFY_TOKEN).is_ok());
        assert!(Settings::from_raw(&raw, &describe, reads::CREATE_CHAT_TOKEN).is_err());
    }

    #[test]
    fn the_platform_api_is_off_without_an_issuer_and_its_tokens_are_told_apart() {
        let mut raw = good();
        assert_eq!(load(&raw).unwrap().platform, None);
        raw.insert(Param::PlatformIssuer, "https://tenant.eu.auth0.com/".into());
        // L2: an issuer without an audience is refused (another API's tokens would pass).
        let err = load(&raw).unwrap_err();
        assert!(err.message.contains("platform/audience"), "{}", err.message);
        raw.insert(
            Param::PlatformAudience,
            "https://chat.example/platform".into(),
        );
        let platform = load(&raw).unwrap().platform.unwrap();
        assert_eq!(
            platform.jwks_url.as_str(),
            "https://tenant.eu.auth0.com/.well-known/jwks.json"
        );
        assert_eq!(
            platform.issuer, "https://tenant.eu.auth0.com/",
            "kept exactly"
        );
        raw.insert(Param::PlatformIssuer, "http://platform.example".into());
        assert!(load(&raw).is_err(), "https only, but for loopback");
        // One issuer for both kinds: the audiences must differ.
        raw.insert(Param::PlatformIssuer, "https://idp.example/".into());
        raw.insert(Param::Issuer, "https://idp.example/".into());
        let err = load(&raw).unwrap_err();
        assert!(err.message.contains("platform/audience"), "{}", err.message);
        raw.insert(Param::Audience, "chat-widget".into());
        raw.insert(Param::PlatformAudience, "chat-widget".into());
        assert!(load(&raw).is_err());
        raw.insert(Param::PlatformAudience, "chat-platform-api".into());
        assert!(load(&raw).is_ok());
    }

    #[test]
    fn a_short_link_secret_is_refused_without_showing_it() {
        let mut raw = good();
        raw.insert(Param::LinkSecret, "short-secret".into());
        let err = load(&raw).unwrap_err();
        assert!(
            err.message.contains("/stack/notifications/linkSecret"),
            "{}",
            err.message
        );
        assert!(!err.message.contains("short-secret"));
        assert!(Settings::from_raw(&raw, &describe, reads::CREATE_CHAT_TOKEN).is_ok());
    }

    #[test]
    fn complete_parameters_load_with_defaults() {
        let s = load(&good()).unwrap();
        let twilio = s.twilio.unwrap();
        assert_eq!(twilio.access_token_ttl_secs, 86_400);
        assert_eq!(twilio.api_secret.expose_secret(), "s3cr3t-value");
        assert_eq!(s.chat.unwrap().issuer, None);
        assert!(s.webhook_auth_token.is_none());
        assert_eq!(
            twilio.api_base_url.unwrap().as_str(),
            "https://conversations.twilio.com/"
        );
    }

    #[test]
    fn a_missing_parameter_is_named_and_no_value_is_shown() {
        let mut raw = good();
        raw.remove(&Param::ApiSecret);
        let err = load(&raw).unwrap_err();
        assert_eq!(err.kind, ErrorKind::EntityNotFound);
        assert!(
            err.message.contains("/stack/twilio/apiSecret"),
            "{}",
            err.message
        );

        let mut raw = good();
        raw.insert(Param::AccountSid, "not-a-sid-but-secret-looking".into());
        let err = load(&raw).unwrap_err();
        assert!(err.message.contains("/stack/twilio/accountSID"));
        assert!(!err.message.contains("secret-looking"));
    }

    #[test]
    fn virgil_settings_fail_only_virgil_tokens_and_never_show_the_key() {
        let mut raw = good();
        let loaded = load(&raw).unwrap();
        let why = loaded.virgil.why_not().unwrap();
        assert!(matches!(loaded.virgil, Feature::Off(_)));
        assert!(why.contains("/stack/virgil/appId"), "{why}");
        raw.insert(
            Param::VirgilAppId,
            "0123456789abcdef0123456789abcdef".into(),
        );
        raw.insert(
            Param::VirgilAppKeyId,
            "fedcba9876543210fedcba9876543210".into(),
        );
        let err = load(&raw).unwrap().virgil.into_section().unwrap_err();
        assert!(
            err.message.contains("/stack/virgil/appKey"),
            "{}",
            err.message
        );
        let bad_key = "MC4CAQAwBQYDK2VwBCIEIOiER8JtE3ulAbqlKQ27uZmV18-broken";
        raw.insert(Param::VirgilAppKey, bad_key.into());
        let err = load(&raw).unwrap().virgil.into_section().unwrap_err();
        assert_eq!(err.kind, ErrorKind::InternalError);
        assert!(
            err.message.contains("/stack/virgil/appKey"),
            "{}",
            err.message
        );
        assert!(!err.message.contains("MC4CAQ"), "{}", err.message);
        raw.insert(
            Param::VirgilAppKey,
            "MC4CAQAwBQYDK2VwBCIEIOiER8JtE3ulAbqlKQ27uZmV18/h3Ko7jjIoR4XcuAUD".into(),
        );
        let signer = load(&raw).unwrap().virgil.into_section().unwrap().unwrap();
        assert_eq!(signer.ttl_secs(), 1200);
        for (ttl, ok) in [
            ("3600", true),
            ("0", false),
            ("86401", false),
            ("20m", false),
        ] {
            raw.insert(Param::VirgilTokenTtl, ttl.into());
            assert_eq!(load(&raw).unwrap().virgil.on().is_some(), ok, "{ttl}");
        }
        raw.insert(Param::VirgilTokenTtl, "60".into());
        raw.insert(Param::VirgilAppId, "not ascii ë".into());
        assert!(load(&raw).unwrap().virgil.on().is_none());
        // Processes that do not make Virgil tokens do not read them.
        let webhook = Settings::from_raw(&raw, &describe, reads::TWILIO_WEBHOOK).unwrap();
        assert!(matches!(webhook.virgil, Feature::Off(_)));
    }

    #[test]
    fn a_push_credential_must_be_a_credential_sid() {
        let mut raw = good();
        assert_eq!(
            load(&raw).unwrap().twilio.unwrap().push_credential_sid,
            None
        );
        raw.insert(
            Param::PushCredentialSid,
            "CR0123456789abcdef0123456789abcdef".into(),
        );
        assert_eq!(
            load(&raw)
                .unwrap()
                .twilio
                .unwrap()
                .push_credential_sid
                .as_deref(),
            Some("CR0123456789abcdef0123456789abcdef")
        );
        raw.insert(
            Param::PushCredentialSid,
            "IS0123456789abcdef0123456789abcdef".into(),
        );
        let err = load(&raw).unwrap_err();
        assert!(
            err.message.contains("/stack/twilio/pushCredentialSID"),
            "{}",
            err.message
        );
    }

    #[test]
    fn ttl_is_from_five_minutes_to_a_day() {
        let mut raw = good();
        for ok in ["300", "3600", "86400"] {
            raw.insert(Param::AccessTokenTtl, ok.into());
            let twilio = load(&raw).unwrap().twilio.unwrap();
            assert_eq!(twilio.access_token_ttl_secs.to_string(), ok);
        }
        for bad in ["0", "1", "299", "86401", "-5", "1h"] {
            raw.insert(Param::AccessTokenTtl, bad.into());
            let err = load(&raw).unwrap_err();
            assert!(
                err.message.contains("twilio/accessTokenTTL"),
                "{bad}: {}",
                err.message
            );
            assert!(err.message.contains("from 300"), "{}", err.message);
        }
    }

    #[test]
    fn twilio_base_url_must_be_https_unless_loopback() {
        for (url, ok) in [
            ("https://conversations.dublin.ie1.twilio.com", true),
            ("http://127.0.0.1:4010", true),
            ("http://conversations.twilio.com", false),
            ("conversations.twilio.com", false),
        ] {
            let mut raw = good();
            raw.insert(Param::ApiBaseUrl, url.into());
            let loaded = load(&raw);
            assert_eq!(loaded.is_ok(), ok, "{url}");
            if let Err(err) = loaded {
                assert!(
                    err.message.contains("/stack/twilio/apiBaseURL"),
                    "{}",
                    err.message
                );
            }
        }
    }

    #[test]
    fn jwks_url_must_be_https_unless_loopback() {
        for (url, ok) in [
            ("https://issuer.example/jwks.json", true),
            ("http://127.0.0.1:4000/.well-known/jwks.json", true),
            ("http://localhost:4000/jwks.json", true),
            ("http://[::1]:4000/jwks.json", true),
            ("http://issuer.example/jwks.json", false),
            ("http://10.0.0.1/jwks.json", false),
            ("ftp://issuer.example/jwks.json", false),
            ("not a url", false),
            ("https://xn--bcher-kva.example/jwks.json", true),
            ("https://bücher.example/jwks.json", false),
        ] {
            let mut raw = good();
            raw.insert(Param::JwksUrl, url.into());
            assert_eq!(load(&raw).is_ok(), ok, "{url}");
        }
    }

    #[test]
    fn an_international_host_name_is_asked_for_in_its_xn_form() {
        let mut raw = good();
        raw.insert(Param::JwksUrl, "https://bücher.example/jwks.json".into());
        let err = load(&raw).unwrap_err();
        assert!(err.message.contains("xn--"), "{}", err.message);
    }
}
