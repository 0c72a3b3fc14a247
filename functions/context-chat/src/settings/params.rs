//! The parameters, by their SSM name and their environment variable.

/// One setting. SSM names are those of the existing integration (`shared/PRODUCT.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Param {
    AccountSid,
    ApiKey,
    ApiSecret,
    ChatServiceSid,
    AuthToken,
    AccessTokenTtl,
    ApiBaseUrl,
    JwksUrl,
    Issuer,
    Audience,
    SendGridApiKey,
    SendGridDomain,
    SendGridApiBaseUrl,
}

impl Param {
    pub const ALL: [Param; 13] = [
        Param::AccountSid,
        Param::ApiKey,
        Param::ApiSecret,
        Param::ChatServiceSid,
        Param::AuthToken,
        Param::AccessTokenTtl,
        Param::ApiBaseUrl,
        Param::JwksUrl,
        Param::Issuer,
        Param::Audience,
        Param::SendGridApiKey,
        Param::SendGridDomain,
        Param::SendGridApiBaseUrl,
    ];

    /// The name below `/STACK/`.
    pub fn ssm_suffix(self) -> &'static str {
        match self {
            Param::AccountSid => "twilio/accountSID",
            Param::ApiKey => "twilio/apiKey",
            Param::ApiSecret => "twilio/apiSecret",
            Param::ChatServiceSid => "twilio/chatServiceSID",
            Param::AuthToken => "twilio/authToken",
            Param::AccessTokenTtl => "twilio/accessTokenTTL",
            Param::ApiBaseUrl => "twilio/apiBaseURL",
            Param::JwksUrl => "chat/jwks.json",
            Param::Issuer => "chat/issuer",
            Param::Audience => "chat/audience",
            Param::SendGridApiKey => "sendgrid/apiKey",
            Param::SendGridDomain => "sendgrid/domain",
            Param::SendGridApiBaseUrl => "sendgrid/apiBaseURL",
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
            Param::AuthToken => "TWILIO_AUTH_TOKEN",
            Param::AccessTokenTtl => "TWILIO_ACCESS_TOKEN_TTL",
            Param::ApiBaseUrl => "TWILIO_API_BASE_URL",
            Param::JwksUrl => "CHAT_JWKS_URL",
            Param::Issuer => "CHAT_ISSUER",
            Param::Audience => "CHAT_AUDIENCE",
            Param::SendGridApiKey => "SENDGRID_API_KEY",
            Param::SendGridDomain => "SENDGRID_DOMAIN",
            Param::SendGridApiBaseUrl => "SENDGRID_API_BASE_URL",
        }
    }

    /// SecureString in SSM.
    pub fn is_secret(self) -> bool {
        matches!(
            self,
            Param::ApiSecret | Param::AuthToken | Param::SendGridApiKey
        )
    }

    /// Where an environment variable wins over SSM: it points one process at a stand-in.
    pub fn env_overrides_ssm(self) -> bool {
        matches!(self, Param::ApiBaseUrl | Param::SendGridApiBaseUrl)
    }

    pub fn from_ssm_suffix(suffix: &str) -> Option<Param> {
        Param::ALL.into_iter().find(|p| p.ssm_suffix() == suffix)
    }
}
