//! Context token verification: header, key, signature, then claims, in that order, so that
//! nothing a token says is trusted before its signature is (RFC 8725).

use std::sync::Arc;

use quick_cache::Weighter;
use quick_cache::sync::Cache;
use serde_json::Value;

use super::jwks::JwksCache;
use super::jwt::{self, MAX_TOKEN_BYTES, malformed};
use crate::error::{ChatError, Result};
use crate::names::{Role, check_contexts, check_identity};

/// A verified token is taken from the cache for at most this long, so that a key the
/// issuer withdrew stops working within the JWKS cache's own lifetime.
const VERIFIED_TTL_SECS: u64 = 600;
/// Memory for remembered tokens, counted as token bytes plus claims.
const VERIFIED_CACHE_BYTES: u64 = 4 * 1024 * 1024;

/// What a verified context token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    pub identity: String,
    pub contexts: Vec<String>,
    /// The token's `exp`, unix seconds.
    pub expires_at: u64,
    /// The token's `iat`, when it has one: a revocation refuses tokens issued before it.
    pub issued_at: Option<u64>,
    /// Its `iss` and the `kid` that signed it: the access log names them as the authority.
    pub issuer: Option<String>,
    pub key_id: String,
    /// The contexts the `roles` claim gives a role other than member, sorted by context.
    pub roles: Vec<(String, Role)>,
    /// Until when the cache may answer for this token.
    cache_until: u64,
}

impl VerifiedToken {
    /// The token's role in `context` (member unless its `roles` claim says otherwise).
    pub fn role_in(&self, context: &str) -> Role {
        self.roles
            .iter()
            .find(|(c, _)| c == context)
            .map_or(Role::Member, |(_, role)| *role)
    }
}

#[derive(Clone)]
struct TokenWeight;

impl Weighter<String, Arc<VerifiedToken>> for TokenWeight {
    fn weight(&self, key: &String, val: &Arc<VerifiedToken>) -> u64 {
        let claims: usize =
            val.identity.len() + val.contexts.iter().map(|c| c.len() + 24).sum::<usize>();
        (key.len() + claims + 128) as u64
    }
}

pub struct Verifier {
    jwks: JwksCache,
    issuer: Option<String>,
    audience: Option<String>,
    max_lifetime_secs: u64,
    verified: Cache<String, Arc<VerifiedToken>, TokenWeight>,
}

impl Verifier {
    pub fn new(jwks: JwksCache, issuer: Option<String>, audience: Option<String>) -> Self {
        Self {
            jwks,
            issuer,
            audience,
            max_lifetime_secs: DEFAULT_MAX_TOKEN_LIFETIME_SECS,
            verified: Cache::with_weighter(4096, VERIFIED_CACHE_BYTES, TokenWeight),
        }
    }

    /// Refuses tokens that live longer than `secs`, `iat` (or, without one, now) to `exp`:
    /// a revocation must outlast every token it refuses.
    pub fn with_max_lifetime(mut self, secs: u64) -> Self {
        self.max_lifetime_secs = secs;
        self
    }

    /// Fetches the issuer's keys unless they are already cached.
    pub async fn prefetch_keys(&self) -> Result<()> {
        self.jwks.prefetch().await
    }

    pub async fn verify(&self, token: &str) -> Result<Arc<VerifiedToken>> {
        self.verify_at(token, now_unix()).await
    }

    /// Verifies as if the time were `now` (unix seconds).
    pub async fn verify_at(&self, token: &str, now: u64) -> Result<Arc<VerifiedToken>> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(ChatError::bad_request(format!(
                "The token is larger than {MAX_TOKEN_BYTES} bytes."
            )));
        }
        if let Some(hit) = self.verified.get(token) {
            if now < hit.cache_until {
                return Ok(hit);
            }
            self.verified.remove(token);
        }
        let verified = Arc::new(self.verify_uncached(token, now).await?);
        self.verified.insert(token.to_owned(), verified.clone());
        Ok(verified)
    }

    async fn verify_uncached(&self, token: &str, now: u64) -> Result<VerifiedToken> {
        let rules = jwt::Rules {
            issuer: self.issuer.as_deref(),
            audience: self.audience.as_deref(),
        };
        let jwt::Signed {
            mut claims,
            expires_at,
            issued_at,
            typ,
            key_id,
        } = jwt::check(&self.jwks, token, &rules, now).await?;
        let lifetime = expires_at.saturating_sub(issued_at.unwrap_or(now));
        if lifetime > self.max_lifetime_secs {
            return Err(ChatError::access_denied(format!(
                "This token lives {lifetime} s from iat (or now) to exp; context tokens may live at most {} s (chat/maxTokenLifetime).",
                self.max_lifetime_secs
            )));
        }
        // A token typed as something else (an OAuth access token, `at+jwt`; a logout or
        // security event token) is not a context token, whatever its claims say (RFC 8725
        // §3.11–3.12). Context tokens are plain JWTs: `JWT`, or no `typ` at all.
        if let Some(typ) = typ.as_deref()
            && !typ.eq_ignore_ascii_case("JWT")
            && !typ.eq_ignore_ascii_case("application/jwt")
        {
            return Err(ChatError::access_denied(
                "This token's type (typ) says it is not a context token.",
            ));
        }
        let identity = match claims.remove("sub") {
            Some(Value::String(sub)) => sub,
            Some(_) => return Err(malformed("its sub is not a string")),
            None => return Err(malformed("it has no sub (identity)")),
        };
        check_identity(&identity)?;
        // Required: a token of another kind (a platform access token) has none, so it
        // never passes as a context token (RFC 8725 §3.12).
        let contexts = match claims.remove("contexts") {
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    _ => Err(malformed("its contexts hold something other than strings")),
                })
                .collect::<Result<Vec<_>>>()?,
            Some(_) => return Err(malformed("its contexts claim is not an array")),
            None => return Err(malformed("it has no contexts claim")),
        };
        let contexts = check_contexts(contexts)?;
        let roles = match claims.remove("roles") {
            None | Some(Value::Null) => Vec::new(),
            Some(claim) => roles_of(claim, &contexts)?,
        };
        let issuer = match claims.remove("iss") {
            Some(Value::String(iss)) => Some(iss),
            _ => None,
        };

        Ok(VerifiedToken {
            identity,
            contexts,
            expires_at,
            issued_at,
            issuer,
            key_id,
            roles,
            cache_until: expires_at.min(now + VERIFIED_TTL_SECS),
        })
    }
}

/// The `roles` claim: an object from a context of the token to `reader`, `member` or
/// `moderator`. Anything else is the platform's mistake, said as `BadRequest` (adr/004).
fn roles_of(claim: Value, contexts: &[String]) -> Result<Vec<(String, Role)>> {
    let Value::Object(claim) = claim else {
        return Err(ChatError::bad_request(
            "The token's roles claim must be an object from context to role.",
        ));
    };
    let mut roles = Vec::new();
    for (context, role) in claim {
        if !contexts.contains(&context) {
            return Err(ChatError::bad_request(
                "The token's roles claim names a context that is not in its contexts.",
            ));
        }
        let role = role.as_str().and_then(Role::from_name).ok_or_else(|| {
            ChatError::bad_request(
                "The token's roles claim holds a role other than reader, member or moderator.",
            )
        })?;
        if role != Role::Member {
            roles.push((context, role));
        }
    }
    roles.sort();
    Ok(roles)
}

/// The longest a context token may live unless `chat/maxTokenLifetime` says otherwise: a
/// day. A platform signs short tokens; a long one outlives what a revocation can hold.
pub const DEFAULT_MAX_TOKEN_LIFETIME_SECS: u64 = 24 * 3600;

pub use crate::clock::now_unix;
