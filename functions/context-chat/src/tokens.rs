//! The token service: `verifyToken` and `createChatToken`, and the one gate every operation
//! that takes a context token passes through.

use std::sync::Arc;

use futures_util::future::BoxFuture;

use crate::context_token::{VerifiedToken, now_unix};
use crate::error::{ChatError, Result};
use crate::ledger::{self, Issuance, Kind, Ledger};
use crate::names::required;
use crate::revocations::Revocations;
use crate::settings_holder::{Configured, SettingsHolder};
use crate::store::Minter;
use crate::twilio::access_token::Grant;
use crate::twilio::provisioning::Provisioned;

/// The answer to `verifyToken`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub identity: String,
    pub contexts: Vec<String>,
}

/// The answer to `issueChatToken`: the token, the transaction id it is on record by, and
/// when it expires (unix seconds), so that a client can refresh before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatTokenReceipt {
    pub token: String,
    pub xid: String,
    pub expires_at: u64,
}

/// Longest `deviceId` accepted; it becomes part of the token's endpoint id.
const MAX_DEVICE_ID_CHARS: usize = 128;

/// Told when provisioning takes contexts from an identity, so that what hangs on access
/// (email subscriptions) ends with it. The notification feature implements it; this
/// service does not know what it ends.
pub trait AccessEnded: Send + Sync {
    /// Answers how many subscriptions ended.
    fn contexts_left<'a>(
        &'a self,
        identity: &'a str,
        contexts: &'a [String],
    ) -> BoxFuture<'a, Result<usize>>;
}

pub struct TokenService {
    settings: Arc<SettingsHolder>,
    access_ended: Option<Arc<dyn AccessEnded>>,
    /// Where there is a store: revoked identities' older tokens are refused.
    revocations: Option<Arc<Revocations>>,
    /// Where there is a store: every token minted is recorded, and minting is limited.
    ledger: Option<Arc<Ledger>>,
}

impl TokenService {
    pub fn new(
        settings: Arc<SettingsHolder>,
        access_ended: Option<Arc<dyn AccessEnded>>,
        revocations: Option<Arc<Revocations>>,
        ledger: Option<Arc<Ledger>>,
    ) -> Self {
        Self {
            settings,
            access_ended,
            revocations,
            ledger,
        }
    }

    /// Verifies a context token with the current settings, logging a refusal (its reason,
    /// never the token).
    pub async fn verified(&self, token: &str) -> Result<Arc<VerifiedToken>> {
        let token = required(token, "token")?;
        let configured = self.settings.current().await?;
        self.verified_with(&configured, token).await
    }

    async fn verified_with(
        &self,
        configured: &Configured,
        token: &str,
    ) -> Result<Arc<VerifiedToken>> {
        let checked = async {
            let verified = configured.verifier()?.verify(token).await?;
            if let Some(revocations) = &self.revocations {
                revocations.check(&verified).await?;
            }
            Ok(verified)
        };
        checked.await.inspect_err(|err: &ChatError| {
            tracing::info!(error_type = %err.kind, reason = %err.message, "context token refused");
        })
    }

    /// `verifyToken`: who the token names and which contexts it carries.
    pub async fn verify_token(&self, token: &str) -> Result<TokenInfo> {
        let verified = self.verified(token).await?;
        Ok(TokenInfo {
            identity: verified.identity.clone(),
            contexts: verified.contexts.clone(),
        })
    }

    /// `createChatToken`: a Twilio access token for the token's identity, handed out once
    /// the identity's Conversations memberships match the token's contexts. Recorded in the
    /// ledger (where there is one) under a new transaction id.
    pub async fn create_chat_token(&self, device_id: &str, token: &str) -> Result<String> {
        self.mint_chat_token(device_id, token, None, false)
            .await
            .map(|receipt| receipt.token)
    }

    /// `issueChatToken`: as `createChatToken`, on record under the caller's `xid` (or a new
    /// one); an `xid` already on record is `Conflict` and mints nothing.
    pub async fn issue_chat_token(
        &self,
        device_id: &str,
        token: &str,
        xid: Option<&str>,
    ) -> Result<ChatTokenReceipt> {
        self.mint_chat_token(device_id, token, xid, true).await
    }

    async fn mint_chat_token(
        &self,
        device_id: &str,
        token: &str,
        xid: Option<&str>,
        needs_ledger: bool,
    ) -> Result<ChatTokenReceipt> {
        let token = required(token, "token")?;
        let device_id = required(device_id, "deviceId")?;
        if device_id.chars().count() > MAX_DEVICE_ID_CHARS
            || device_id
                .chars()
                .any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(ChatError::bad_request(format!(
                "deviceId must be at most {MAX_DEVICE_ID_CHARS} characters, without spaces or control characters."
            )));
        }
        let xid = match xid.map(str::trim).filter(|x| !x.is_empty()) {
            Some(xid) => {
                ledger::check_xid(xid)?;
                xid.to_owned()
            }
            None => ledger::new_xid()?,
        };
        if needs_ledger && self.ledger.is_none() {
            return Err(ChatError::internal(
                "Transaction ids need the token ledger, which this server does not have.",
            ));
        }
        let configured = self.settings.current().await?;
        let verified = self.verified_with(&configured, token).await?;
        // Minted first (no round trip), so that the limit and the record are one store call
        // that comes before any Twilio work; handed out only once provisioning is done.
        let endpoint_id = format!("dachat:{}:{device_id}", verified.identity);
        let minter = configured.minter()?;
        let issued_at = now_unix();
        let access_token = minter.mint(
            Grant {
                identity: &verified.identity,
                endpoint_id: Some(&endpoint_id),
            },
            issued_at,
        );
        let expires_at = issued_at + minter.ttl_secs();
        let recorded = match &self.ledger {
            Some(ledger) => {
                let issuance = Issuance::of(
                    Kind::TwilioChat,
                    xid.clone(),
                    &verified.identity,
                    &verified.contexts,
                    Some(device_id),
                    &access_token,
                    issued_at,
                    expires_at,
                );
                Some(
                    ledger
                        .record(
                            &issuance,
                            Minter::Identity(verified.identity.clone()),
                            configured.settings.ledger,
                            now_millis(),
                        )
                        .await?,
                )
            }
            None => None,
        };
        let provisioned = match self.provision(&configured, &verified).await {
            Ok(provisioned) => provisioned,
            Err(err) => {
                if let (Some(ledger), Some(recorded)) = (&self.ledger, recorded) {
                    ledger.take_back(recorded).await;
                }
                return Err(err);
            }
        };
        tracing::info!(
            identity = %verified.identity,
            contexts = verified.contexts.len(),
            provisioning = provisioned,
            xid = %xid,
            "chat token issued"
        );
        Ok(ChatTokenReceipt {
            token: access_token,
            xid,
            expires_at,
        })
    }

    /// Makes the identity's memberships match the token's contexts; says how.
    async fn provision(
        &self,
        configured: &Configured,
        verified: &VerifiedToken,
    ) -> Result<&'static str> {
        let Some(twilio) = &configured.twilio else {
            return Ok("off");
        };
        // What this process remembers from before a revocation is not trusted.
        let revoked_before = match &self.revocations {
            Some(r) => r.revoked_before(&verified.identity).await?,
            None => None,
        };
        match twilio
            .provisioner
            .ensure_since(&verified.identity, &verified.contexts, revoked_before)
            .await?
        {
            Provisioned::Remembered => Ok("remembered"),
            Provisioned::Checked(changes) => {
                tracing::info!(
                    identity = %verified.identity,
                    user_created = changes.user_created,
                    conversations_created = changes.conversations_created,
                    conversations_adopted = changes.conversations_adopted,
                    joined = changes.joined.len(),
                    left = changes.left.len(),
                    "conversations provisioned"
                );
                self.end_access(&verified.identity, &changes.left).await;
                Ok("checked")
            }
        }
    }

    async fn end_access(&self, identity: &str, left: &[String]) {
        end_access(self.access_ended.as_ref(), identity, left).await;
    }
}

/// Ends what hangs on the contexts left; answers how many subscriptions ended. A failure
/// does not hold back the caller: the notifier checks participation before every email,
/// and ends a subscription itself.
pub(crate) async fn end_access(
    listener: Option<&Arc<dyn AccessEnded>>,
    identity: &str,
    left: &[String],
) -> usize {
    let Some(listener) = listener.filter(|_| !left.is_empty()) else {
        return 0;
    };
    listener
        .contexts_left(identity, left)
        .await
        .inspect_err(|err| {
            tracing::warn!(identity, error_type = %err.kind, reason = %err.message, "ending what followed access failed; the notifier will");
        })
        .unwrap_or(0)
}

/// The clock in milliseconds: the ledger orders an identity's records by it.
pub(crate) fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}
