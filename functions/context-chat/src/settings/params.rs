//! The parameters, by their SSM name and their environment variable, grouped in the
//! sections that features need; each function reads only its sections' parameters.

/// One setting. SSM names are those of the existing integration (`shared/PRODUCT.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Param {
    AccountSid,
    ApiKey,
    ApiSecret,
    ChatServiceSid,
    /// The account's auth token, which signs Twilio's webhooks: only the webhook reads it.
    WebhookAuthToken,
    /// Where the existing integration kept the auth token, read when `WebhookAuthToken` is
    /// not set, and never written.
    LegacyAuthToken,
    /// A random secret of this deployment: signs unsubscribe links, keys code hashes.
    LinkSecret,
    AccessTokenTtl,
    ApiBaseUrl,
    /// Which unmarked conversations provisioning takes over (`Adoption`).
    AdoptConversations,
    JwksUrl,
    Issuer,
    Audience,
    SendGridApiKey,
    SendGridDomain,
    SendGridApiBaseUrl,
    PlatformIssuer,
    PlatformAudience,
    PlatformJwksUrl,
    /// Tokens one identity may mint a minute (0: no limit).
    TokensPerMinute,
    /// Days the ledger keeps a record past its token's expiry.
    IssuanceRetentionDays,
    /// Mobile apps' push credential (`CR…`), put in every chat grant.
    PushCredentialSid,
    VirgilAppId,
    VirgilAppKeyId,
    /// The Virgil app key: base64 PKCS#8 Ed25519, as Virgil prints it (PEM accepted).
    VirgilAppKey,
    VirgilTokenTtl,
    /// Twilio Verify v2 service (`VA…`): phone verification codes.
    VerifyServiceSid,
    /// The Messaging Service (`MG…`) notifications by text go out through.
    MessagingServiceSid,
    VerifyApiBaseUrl,
    MessagingApiBaseUrl,
    /// The longest a context token may live, `iat` to `exp` (issue 30, L4).
    MaxTokenLifetime,
    /// The unguessable last segment of the webhook's path: Twilio is given
    /// `…/twilio/webhook/<it>`, and every other path is refused before any work (issue 30, M2).
    WebhookPathSecret,
    /// Verification codes the whole deployment may send in one UTC day (issue 30, M3).
    SmsDailyCodes,
    /// Notification texts the whole deployment may send in one UTC day.
    SmsDailyTexts,
    /// The country calling codes texts may go to (`+49,+44`); unset: any.
    SmsAllowedCountries,
    /// Where events go to the platform (issue 35); unset: no events.
    EventsUrl,
    /// Standard Webhooks' `whsec_…` key events are signed with (put-params makes one).
    EventsSecret,
    /// Whether `message.added` carries the message's text (default false).
    EventsIncludeBody,
    /// Whether a token naming an archived context gets a new room (default false: Conflict).
    ReopenArchived,
}

impl Param {
    pub const ALL: [Param; 39] = [
        Param::AccountSid,
        Param::ApiKey,
        Param::ApiSecret,
        Param::ChatServiceSid,
        Param::WebhookAuthToken,
        Param::LegacyAuthToken,
        Param::LinkSecret,
        Param::AccessTokenTtl,
        Param::ApiBaseUrl,
        Param::AdoptConversations,
        Param::JwksUrl,
        Param::Issuer,
        Param::Audience,
        Param::SendGridApiKey,
        Param::SendGridDomain,
        Param::SendGridApiBaseUrl,
        Param::PlatformIssuer,
        Param::PlatformAudience,
        Param::PlatformJwksUrl,
        Param::TokensPerMinute,
        Param::IssuanceRetentionDays,
        Param::PushCredentialSid,
        Param::VirgilAppId,
        Param::VirgilAppKeyId,
        Param::VirgilAppKey,
        Param::VirgilTokenTtl,
        Param::VerifyServiceSid,
        Param::MessagingServiceSid,
        Param::VerifyApiBaseUrl,
        Param::MessagingApiBaseUrl,
        Param::MaxTokenLifetime,
        Param::WebhookPathSecret,
        Param::SmsDailyCodes,
        Param::SmsDailyTexts,
        Param::SmsAllowedCountries,
        Param::EventsUrl,
        Param::EventsSecret,
        Param::EventsIncludeBody,
        Param::ReopenArchived,
    ];

    /// The name below `/STACK/`.
    pub fn ssm_suffix(self) -> &'static str {
        match self {
            Param::AccountSid => "twilio/accountSID",
            Param::ApiKey => "twilio/apiKey",
            Param::ApiSecret => "twilio/apiSecret",
            Param::ChatServiceSid => "twilio/chatServiceSID",
            Param::WebhookAuthToken => "webhook/authToken",
            Param::LegacyAuthToken => "twilio/authToken",
            Param::LinkSecret => "notifications/linkSecret",
            Param::AccessTokenTtl => "twilio/accessTokenTTL",
            Param::ApiBaseUrl => "twilio/apiBaseURL",
            Param::AdoptConversations => "chat/adoptConversations",
            Param::JwksUrl => "chat/jwks.json",
            Param::Issuer => "chat/issuer",
            Param::Audience => "chat/audience",
            Param::SendGridApiKey => "sendgrid/apiKey",
            Param::SendGridDomain => "sendgrid/domain",
            Param::SendGridApiBaseUrl => "sendgrid/apiBaseURL",
            Param::PlatformIssuer => "platform/issuer",
            Param::PlatformAudience => "platform/audience",
            Param::PlatformJwksUrl => "platform/jwks.json",
            Param::TokensPerMinute => "chat/tokensPerMinute",
            Param::IssuanceRetentionDays => "chat/issuanceRetentionDays",
            Param::PushCredentialSid => "twilio/pushCredentialSID",
            Param::VirgilAppId => "virgil/appId",
            Param::VirgilAppKeyId => "virgil/appKeyId",
            Param::VirgilAppKey => "virgil/appKey",
            Param::VirgilTokenTtl => "virgil/tokenTTL",
            Param::VerifyServiceSid => "twilio/verifyServiceSID",
            Param::MessagingServiceSid => "twilio/messagingServiceSID",
            Param::VerifyApiBaseUrl => "twilio/verifyApiBaseURL",
            Param::MessagingApiBaseUrl => "twilio/messagingApiBaseURL",
            Param::MaxTokenLifetime => "chat/maxTokenLifetime",
            Param::WebhookPathSecret => "webhook/pathSecret",
            Param::SmsDailyCodes => "sms/dailyCodes",
            Param::SmsDailyTexts => "sms/dailyTexts",
            Param::SmsAllowedCountries => "sms/allowedCountries",
            Param::EventsUrl => "platform/eventsUrl",
            Param::EventsSecret => "platform/eventsSecret",
            Param::EventsIncludeBody => "platform/eventsIncludeBody",
            Param::ReopenArchived => "platform/reopenArchived",
        }
    }

    pub fn ssm_name(self, stack: &str) -> String {
        format!("/{stack}/{}", self.ssm_suffix())
    }

    pub fn env_var(self) -> &'static str {
        match self {
            Param::AccountSid => "TWILIO_ACCOUNT_SID",
            Param::ApiKey => "TWILIO_API_KEY",
            Param::ApiSecret => "TWILIO_API_SECRET",
            Param::ChatServiceSid => "TWILIO_CHAT_SERVICE_SID",
            Param::WebhookAuthToken | Param::LegacyAuthToken => "TWILIO_AUTH_TOKEN",
            Param::LinkSecret => "CHAT_LINK_SECRET",
            Param::AccessTokenTtl => "TWILIO_ACCESS_TOKEN_TTL",
            Param::ApiBaseUrl => "TWILIO_API_BASE_URL",
            Param::AdoptConversations => "CHAT_ADOPT_CONVERSATIONS",
            Param::JwksUrl => "CHAT_JWKS_URL",
            Param::Issuer => "CHAT_ISSUER",
            Param::Audience => "CHAT_AUDIENCE",
            Param::SendGridApiKey => "SENDGRID_API_KEY",
            Param::SendGridDomain => "SENDGRID_DOMAIN",
            Param::SendGridApiBaseUrl => "SENDGRID_API_BASE_URL",
            Param::PlatformIssuer => "PLATFORM_ISSUER",
            Param::PlatformAudience => "PLATFORM_AUDIENCE",
            Param::PlatformJwksUrl => "PLATFORM_JWKS_URL",
            Param::TokensPerMinute => "CHAT_TOKENS_PER_MINUTE",
            Param::IssuanceRetentionDays => "CHAT_ISSUANCE_RETENTION_DAYS",
            Param::PushCredentialSid => "TWILIO_PUSH_CREDENTIAL_SID",
            Param::VirgilAppId => "VIRGIL_APP_ID",
            Param::VirgilAppKeyId => "VIRGIL_APP_KEY_ID",
            Param::VirgilAppKey => "VIRGIL_APP_KEY",
            Param::VirgilTokenTtl => "VIRGIL_TOKEN_TTL",
            Param::VerifyServiceSid => "TWILIO_VERIFY_SERVICE_SID",
            Param::MessagingServiceSid => "TWILIO_MESSAGING_SERVICE_SID",
            Param::VerifyApiBaseUrl => "TWILIO_VERIFY_API_BASE_URL",
            Param::MessagingApiBaseUrl => "TWILIO_MESSAGING_API_BASE_URL",
            Param::MaxTokenLifetime => "CHAT_MAX_TOKEN_LIFETIME",
            Param::WebhookPathSecret => "TWILIO_WEBHOOK_PATH_SECRET",
            Param::SmsDailyCodes => "SMS_DAILY_CODES",
            Param::SmsDailyTexts => "SMS_DAILY_TEXTS",
            Param::SmsAllowedCountries => "SMS_ALLOWED_COUNTRIES",
            Param::EventsUrl => "PLATFORM_EVENTS_URL",
            Param::EventsSecret => "PLATFORM_EVENTS_SECRET",
            Param::EventsIncludeBody => "PLATFORM_EVENTS_INCLUDE_BODY",
            Param::ReopenArchived => "PLATFORM_REOPEN_ARCHIVED",
        }
    }

    /// SecureString in SSM.
    pub fn is_secret(self) -> bool {
        matches!(
            self,
            Param::ApiSecret
                | Param::WebhookAuthToken
                | Param::LegacyAuthToken
                | Param::LinkSecret
                | Param::WebhookPathSecret
                | Param::SendGridApiKey
                | Param::VirgilAppKey
                | Param::EventsSecret
        )
    }

    /// Where an environment variable wins over SSM: it points one process at a stand-in.
    pub fn env_overrides_ssm(self) -> bool {
        matches!(
            self,
            Param::ApiBaseUrl
                | Param::SendGridApiBaseUrl
                | Param::VerifyApiBaseUrl
                | Param::MessagingApiBaseUrl
        )
    }

    pub fn from_ssm_suffix(suffix: &str) -> Option<Param> {
        Param::ALL.into_iter().find(|p| p.ssm_suffix() == suffix)
    }

    pub fn section(self) -> Section {
        match self {
            Param::AccountSid
            | Param::ApiKey
            | Param::ApiSecret
            | Param::ChatServiceSid
            | Param::AccessTokenTtl
            | Param::ApiBaseUrl
            | Param::AdoptConversations
            | Param::PushCredentialSid
            | Param::ReopenArchived => Section::Twilio,
            Param::JwksUrl | Param::Issuer | Param::Audience | Param::MaxTokenLifetime => {
                Section::Chat
            }
            Param::WebhookAuthToken | Param::LegacyAuthToken | Param::WebhookPathSecret => {
                Section::Webhook
            }
            Param::LinkSecret => Section::Links,
            Param::SendGridApiKey | Param::SendGridDomain | Param::SendGridApiBaseUrl => {
                Section::SendGrid
            }
            Param::PlatformIssuer | Param::PlatformAudience | Param::PlatformJwksUrl => {
                Section::Platform
            }
            Param::TokensPerMinute | Param::IssuanceRetentionDays => Section::Ledger,
            Param::VirgilAppId
            | Param::VirgilAppKeyId
            | Param::VirgilAppKey
            | Param::VirgilTokenTtl => Section::Virgil,
            Param::VerifyServiceSid
            | Param::MessagingServiceSid
            | Param::VerifyApiBaseUrl
            | Param::MessagingApiBaseUrl
            | Param::SmsDailyCodes
            | Param::SmsDailyTexts
            | Param::SmsAllowedCountries => Section::Sms,
            Param::EventsUrl | Param::EventsIncludeBody => Section::Events,
            Param::EventsSecret => Section::EventDelivery,
        }
    }

    /// Whether a process reading `section` reads this parameter: its own section's, and the
    /// account and API key for text messages, which Verify and Messages are called with.
    pub fn in_section(self, section: Section) -> bool {
        self.section() == section
            || (section == Section::Sms
                && matches!(self, Param::AccountSid | Param::ApiKey | Param::ApiSecret))
            || (section == Section::EventDelivery && self == Param::EventsUrl)
    }
}

/// The settings one feature needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// The API key and Conversation Service: minting access tokens, provisioning (and what
    /// it may adopt), presence.
    Twilio,
    /// The context-token issuer.
    Chat,
    /// Twilio's webhook signatures.
    Webhook,
    /// Unsubscribe links and confirmation-code hashes.
    Links,
    SendGrid,
    /// The platform API's access tokens: their issuer, audience and keys.
    Platform,
    /// The minting limit and how long the token ledger keeps records.
    Ledger,
    /// Virgil E3Kit JWTs: the application and its app key.
    Virgil,
    /// Text messages: the Verify and Messaging services (with the account's API key).
    Sms,
    /// Events to the platform, as the processes that emit them read it: whether they go out
    /// (the URL) and what `message.added` holds.
    Events,
    /// What sends them: the URL and the signing key (only the deliverer holds the key).
    EventDelivery,
}

impl Section {
    /// Whether its feature reads it itself ([`super::Settings::section`]): the notification
    /// channels, whose mistakes must fail only their channel. The others `settings` reads.
    pub const fn read_by_its_feature(self) -> bool {
        matches!(
            self,
            Section::SendGrid | Section::Sms | Section::Events | Section::EventDelivery
        )
    }
}

/// The sections a process reads. A Lambda reads only its own, and the deployment grants it
/// only their parameters ([`reads::BY_FUNCTION`]), so that no function holds a secret it
/// does not use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reads(pub &'static [Section]);

impl Reads {
    /// Whether these sections include `section`; `const`, so that a composition can decide
    /// by it at compile time.
    pub const fn has(self, section: Section) -> bool {
        let mut i = 0;
        while i < self.0.len() {
            if self.0[i] as u8 == section as u8 {
                return true;
            }
            i += 1;
        }
        false
    }

    /// The parameters of these sections, in [`Param::ALL`]'s order.
    pub fn params(self) -> impl Iterator<Item = Param> {
        Param::ALL
            .into_iter()
            .filter(move |p| self.0.iter().any(|s| p.in_section(*s)))
    }
}

/// What each process reads.
pub mod reads {
    use super::Reads;
    use super::Section::*;

    /// Verifies context tokens, nothing more.
    pub const VERIFY_TOKEN: Reads = Reads(&[Chat]);
    /// `createChatToken`, `issueChatToken`, `createVirgilToken`, and the REST token routes.
    pub const CREATE_CHAT_TOKEN: Reads = Reads(&[Twilio, Chat, Ledger, Virgil, Events]);
    /// `enableChannelNotifications` and `enableChannelSmsNotifications`.
    pub const ENABLE_CHANNEL_NOTIFICATIONS: Reads = Reads(&[Chat, Links, SendGrid, Sms]);
    /// `verifyEmail` and `verifyPhone`.
    pub const VERIFY_EMAIL: Reads = Reads(&[Chat, Links, Sms]);
    /// Webhook signatures, and unsubscribe links (answered where the webhook is).
    pub const TWILIO_WEBHOOK: Reads = Reads(&[Webhook, Links]);
    pub const NOTIFY: Reads = Reads(&[Twilio, Links, SendGrid, Sms, Events]);
    /// The platform API's fields: provisioning, the platform's access tokens; erasure's
    /// hashes are keyed with the link secret.
    pub const PLATFORM_API: Reads = Reads(&[Twilio, Platform, Links, Events]);
    /// Sends the events to the platform.
    pub const DELIVER_EVENTS: Reads = Reads(&[EventDelivery]);
    /// `chatctl configure-twilio` (the webhook's path secret goes into the URL it sets).
    pub const CONFIGURE_TWILIO: Reads = Reads(&[Twilio, Sms, Webhook]);
    /// `chatctl serve`: every feature in one process.
    pub const EVERYTHING: Reads = Reads(&[
        Twilio,
        Chat,
        Webhook,
        Links,
        SendGrid,
        Platform,
        Ledger,
        Virgil,
        Sms,
        Events,
        EventDelivery,
    ]);

    /// The Lambdas that read settings, by crate name: the deployment grants each exactly
    /// its parameters (`chatctl parameters` prints them for `infra/`).
    pub const BY_FUNCTION: [(&str, Reads); 9] = [
        ("verify-token", VERIFY_TOKEN),
        ("create-chat-token", CREATE_CHAT_TOKEN),
        ("enable-channel-notifications", ENABLE_CHANNEL_NOTIFICATIONS),
        ("verify-email", VERIFY_EMAIL),
        ("twilio-webhook", TWILIO_WEBHOOK),
        ("notify", NOTIFY),
        ("platform-api", PLATFORM_API),
        ("token-routes", CREATE_CHAT_TOKEN),
        ("deliver-events", DELIVER_EVENTS),
    ];
}
