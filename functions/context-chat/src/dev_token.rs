//! The development issuer and its token API's logic: sign a context token for any identity
//! and contexts with a development key, after the same checks the verifier applies, and
//! publish the key's JWKS. Local mode makes its key; the dev-extras Lambda reads it from SSM.

use serde_json::Value;
use tokio::sync::OnceCell;

use crate::dev_keys::{ContextClaims, ContextTokenSigner, JwksShape, jwks_json, public_pem_of};
use crate::error::{ChatError, Result};
use crate::names::{check_contexts, check_identity};
use crate::settings::read_ssm_path;

/// A development key: the signer, and the JWKS (RFC 7517) that verifies its tokens.
pub struct DevIssuer {
    pub signer: ContextTokenSigner,
    pub jwks: Value,
}

impl DevIssuer {
    /// From a PKCS#8 P-256 PEM and its kid. `origin` names where the key came from, for the
    /// message when it is not such a key (the key itself is never shown).
    pub fn from_pem(private_pem: &str, kid: &str, origin: &str) -> Result<Self> {
        let not_a_key = |_| ChatError::internal(format!("{origin} is not a PKCS#8 P-256 PEM."));
        let kid = kid.trim();
        Ok(Self {
            signer: ContextTokenSigner::from_pem(private_pem, kid).map_err(not_a_key)?,
            jwks: public_pem_of(private_pem)
                .and_then(|public| jwks_json(&public, kid, JwksShape::Rfc7517))
                .map_err(not_a_key)?,
        })
    }

    /// `privateKey` and `keyId` below `path` in SSM.
    pub async fn from_ssm(ssm: &aws_sdk_ssm::Client, path: &str) -> Result<Self> {
        let found = read_ssm_path(ssm, path).await?;
        let value = |name: &str| {
            let full = format!("{path}/{name}");
            found.get(&full).cloned().ok_or_else(|| {
                ChatError::not_found(format!("The SSM parameter {full} is missing."))
            })
        };
        let (pem, kid) = (value("privateKey")?, value("keyId")?);
        Self::from_pem(&pem, &kid, &format!("{path}/privateKey"))
    }

    /// A context token for `identity` and `contexts`, valid from `now` for `ttl_secs`.
    pub fn sign(
        &self,
        identity: &str,
        contexts: &[&str],
        now: u64,
        ttl_secs: u64,
    ) -> Result<String> {
        self.sign_with_roles(identity, contexts, &[], now, ttl_secs)
    }

    /// As [`DevIssuer::sign`], with roles other than member (`("announcements", "reader")`).
    pub fn sign_with_roles(
        &self,
        identity: &str,
        contexts: &[&str],
        roles: &[(&str, &str)],
        now: u64,
        ttl_secs: u64,
    ) -> Result<String> {
        self.signer.sign(&ContextClaims {
            sub: identity.into(),
            contexts: contexts.iter().map(|c| c.to_string()).collect(),
            iat: now,
            exp: now + ttl_secs,
            iss: None,
            aud: None,
            roles: roles
                .iter()
                .map(|(c, r)| (c.to_string(), r.to_string()))
                .collect(),
        })
    }
}

/// Where the token API's issuer comes from: ready-made (local mode), or read from SSM on
/// first use and kept for the life of the process (the Lambda; a failed read is tried again
/// on the next request).
pub struct DevIssuerSource {
    issuer: OnceCell<DevIssuer>,
    ssm: Option<(aws_sdk_ssm::Client, String)>,
}

impl DevIssuerSource {
    pub fn ready(issuer: DevIssuer) -> Self {
        Self {
            issuer: OnceCell::new_with(Some(issuer)),
            ssm: None,
        }
    }

    /// SSM, with the AWS configuration of the environment (`aws_env`), under `DEV_EXTRAS_SSM_PATH` or else
    /// `/STACK-dev-extras/chat-development` (`STACK_NAME`).
    pub fn from_env() -> Self {
        let path = std::env::var("DEV_EXTRAS_SSM_PATH").unwrap_or_else(|_| {
            format!(
                "/{}-dev-extras/chat-development",
                std::env::var("STACK_NAME").unwrap_or_default().trim()
            )
        });
        Self::ssm(
            aws_sdk_ssm::Client::new(&crate::aws_env::sdk_config()),
            path,
        )
    }

    pub fn ssm(client: aws_sdk_ssm::Client, path: String) -> Self {
        Self {
            issuer: OnceCell::new(),
            ssm: Some((client, path)),
        }
    }

    pub async fn get(&self) -> Result<&DevIssuer> {
        self.issuer
            .get_or_try_init(|| async {
                let Some((client, path)) = &self.ssm else {
                    return Err(crate::feature::not_configured("The development key"));
                };
                DevIssuer::from_ssm(client, path).await.inspect_err(|err| {
                    tracing::error!(reason = %err.message, "loading the development key failed");
                })
            })
            .await
    }
}

pub const DEFAULT_TTL_SECS: u64 = 3600;
pub const MAX_TTL_SECS: u64 = 24 * 3600;

/// A signed development token and what it says, for the ledger.
#[derive(Debug, Clone)]
pub struct DevToken {
    pub token: String,
    pub identity: String,
    pub contexts: Vec<String>,
    pub issued_at: u64,
    pub expires_at: u64,
}

/// A request's query: `identity=alex&context=general,random[&ttl=SECONDS][&roles=general:reader]`.
/// The `context` parameter may also repeat.
pub fn issue(
    signer: &ContextTokenSigner,
    query: &[(String, String)],
    now: u64,
) -> Result<DevToken> {
    let identity = query
        .iter()
        .find(|(k, _)| k == "identity")
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            ChatError::bad_request("identity is required, e.g. ?identity=alex&context=general")
        })?;
    check_identity(identity)?;
    let contexts: Vec<String> = query
        .iter()
        .filter(|(k, _)| k == "context")
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect();
    if contexts.is_empty() {
        return Err(ChatError::bad_request(
            "context is required: one or more, comma-separated, e.g. context=general,random",
        ));
    }
    let contexts = check_contexts(contexts)?;
    // `roles=announcements:reader,SHIPMENT-42:moderator`; the verifier checks them.
    let roles = query
        .iter()
        .filter(|(k, _)| k == "roles")
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|r| {
            r.split_once(':')
                .map(|(c, role)| (c.trim().to_owned(), role.trim().to_owned()))
                .ok_or_else(|| {
                    ChatError::bad_request(
                        "roles are context:role, e.g. roles=announcements:reader",
                    )
                })
        })
        .collect::<Result<std::collections::BTreeMap<String, String>>>()?;
    let ttl = match query.iter().find(|(k, _)| k == "ttl") {
        None => DEFAULT_TTL_SECS,
        Some((_, v)) => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|t| (1..=MAX_TTL_SECS).contains(t))
            .ok_or_else(|| {
                ChatError::bad_request(format!("ttl must be seconds from 1 to {MAX_TTL_SECS}"))
            })?,
    };
    let token = signer.sign(&ContextClaims {
        sub: identity.to_owned(),
        contexts: contexts.clone(),
        iat: now,
        exp: now + ttl,
        iss: None,
        aud: None,
        roles,
    })?;
    Ok(DevToken {
        token,
        identity: identity.to_owned(),
        contexts,
        issued_at: now,
        expires_at: now + ttl,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dev_keys::generate_es256;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn signs_checked_claims_and_refuses_bad_ones() {
        let key = generate_es256().unwrap();
        let signer = ContextTokenSigner::from_pem(&key.private_pem, &key.kid).unwrap();
        let token = issue(
            &signer,
            &q(&[("identity", "alex"), ("context", "general,random,general")]),
            1000,
        )
        .unwrap()
        .token;
        let payload: serde_json::Value = serde_json::from_slice(
            &base64::Engine::decode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                token.split('.').nth(1).unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(payload["sub"], "alex");
        assert_eq!(
            payload["contexts"],
            serde_json::json!(["general", "random"])
        );
        assert_eq!(payload["exp"], 1000 + DEFAULT_TTL_SECS);
        for bad in [
            q(&[("context", "general")]),
            q(&[("identity", "alex")]),
            q(&[("identity", "a b"), ("context", "general")]),
            q(&[("identity", "alex"), ("context", "no/slash")]),
            q(&[
                ("identity", "alex"),
                ("context", "general"),
                ("ttl", "90000"),
            ]),
        ] {
            assert_eq!(
                issue(&signer, &bad, 1000).unwrap_err().kind,
                crate::ErrorKind::BadRequest,
                "{bad:?}"
            );
        }
    }
}
