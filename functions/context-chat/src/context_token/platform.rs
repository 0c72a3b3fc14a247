//! Platform access tokens: OAuth 2.0 client-credentials tokens of the platform's identity
//! provider, checked with the context tokens' machinery (`context_token::jwt`) under rules
//! of their own: `iss` exactly the configured issuer, `aud` the configured audience, scopes
//! from `scope` (space-separated) or `permissions` (an array). A token with a `contexts`
//! claim is a context token and never passes here, as a platform token (no `contexts`)
//! never passes as a context token (RFC 8725 §3.12).

use serde_json::Value;

use super::JwksCache;
use super::jwt::{self, malformed};
use crate::clock::now_unix;
use crate::error::{ChatError, Result};

/// What an operation needs: `chat:read` for queries, `chat:admin` for mutations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Read,
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "chat:read",
            Scope::Admin => "chat:admin",
        }
    }
}

/// Who called: the token's subject (a client id) and its scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformCaller {
    pub client: String,
    pub scopes: Vec<String>,
}

pub struct PlatformVerifier {
    jwks: JwksCache,
    issuer: String,
    audience: Option<String>,
}

impl PlatformVerifier {
    pub fn new(jwks: JwksCache, issuer: String, audience: Option<String>) -> Self {
        Self {
            jwks,
            issuer,
            audience,
        }
    }

    /// Fetches the platform's keys now, so that the first call does not wait for them.
    pub async fn prefetch_keys(&self) -> Result<()> {
        self.jwks.prefetch().await
    }

    /// Checks `authorization` (`Bearer <token>`, or the bare token as AppSync's OIDC mode
    /// passes it) and that it grants `needs`.
    pub async fn verify(&self, authorization: &str, needs: Scope) -> Result<PlatformCaller> {
        self.verify_at(authorization, needs, now_unix()).await
    }

    pub async fn verify_at(
        &self,
        authorization: &str,
        needs: Scope,
        now: u64,
    ) -> Result<PlatformCaller> {
        let token = bearer(authorization)?;
        let rules = jwt::Rules {
            issuer: Some(&self.issuer),
            audience: self.audience.as_deref(),
        };
        let signed = jwt::check(&self.jwks, token, &rules, now).await?;
        if signed.claims.contains_key("contexts") {
            return Err(ChatError::access_denied(
                "This is a context token; the platform API takes the platform's access tokens.",
            ));
        }
        let client = match signed.claims.get("sub") {
            Some(Value::String(sub)) if !sub.is_empty() => sub.clone(),
            _ => return Err(malformed("it has no sub (the client)")),
        };
        let scopes = scopes(&signed.claims);
        if !scopes.iter().any(|s| s == needs.as_str()) {
            return Err(ChatError::access_denied(format!(
                "The access token does not grant {}.",
                needs.as_str()
            )));
        }
        Ok(PlatformCaller { client, scopes })
    }
}

/// The token of an `Authorization` value: `Bearer <token>` (any case) or the bare token.
pub fn bearer(authorization: &str) -> Result<&str> {
    let value = authorization.trim();
    if value.eq_ignore_ascii_case("bearer") {
        return Err(ChatError::access_denied(
            "The platform API needs an access token (Authorization: Bearer …).",
        ));
    }
    let token = match value.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        Some(_) => {
            return Err(ChatError::access_denied(
                "The platform API takes Authorization: Bearer <access token>.",
            ));
        }
        None => value,
    };
    if token.is_empty() {
        return Err(ChatError::access_denied(
            "The platform API needs an access token (Authorization: Bearer …).",
        ));
    }
    Ok(token)
}

/// Scopes from `scope` (OAuth 2.0, space-separated) and `permissions` (Auth0's RBAC array).
fn scopes(claims: &serde_json::Map<String, Value>) -> Vec<String> {
    let mut found: Vec<String> = claims
        .get("scope")
        .and_then(Value::as_str)
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    if let Some(Value::Array(items)) = claims.get("permissions") {
        found.extend(items.iter().filter_map(Value::as_str).map(str::to_owned));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_or_bare_and_nothing_else() {
        assert_eq!(bearer("Bearer abc.def.ghi").unwrap(), "abc.def.ghi");
        assert_eq!(bearer("bearer  abc").unwrap(), "abc");
        assert_eq!(bearer("abc.def.ghi").unwrap(), "abc.def.ghi");
        for bad in ["", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc"] {
            assert!(bearer(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn scopes_come_from_scope_or_permissions() {
        let claims =
            serde_json::json!({"scope": "openid chat:read", "permissions": ["chat:admin"]});
        assert_eq!(
            scopes(claims.as_object().unwrap()),
            ["openid", "chat:read", "chat:admin"]
        );
        let claims = serde_json::json!({"scope": ["chat:admin"]});
        assert!(scopes(claims.as_object().unwrap()).is_empty());
    }
}
