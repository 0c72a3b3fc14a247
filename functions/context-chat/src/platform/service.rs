//! The platform API's operations: what a platform backend does to chat access now, rather
//! than when the user next asks for a chat token. Every call is authorized by the caller's
//! access token first; nothing is read or changed for a refused one.

use std::sync::Arc;

use super::token::{PlatformCaller, Scope};
use crate::context_token::now_unix;
use crate::error::{ChatError, Result};
use crate::ledger::{DEFAULT_LIST, Issuance, Ledger, MAX_LIST, check_xid};
use crate::names::{check_context, check_contexts, check_identity};
use crate::revocations::Revocations;
use crate::settings_holder::{Configured, SettingsHolder, TwilioApi};
use crate::tokens::AccessEnded;

/// What `syncIdentity` changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncResult {
    pub joined: Vec<String>,
    pub left: Vec<String>,
}

/// What `revokeIdentity` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokeResult {
    pub left: Vec<String>,
    pub subscriptions_removed: usize,
    /// Context tokens issued before this (unix seconds) are refused.
    pub revoked_before: u64,
}

pub struct PlatformService {
    settings: Arc<SettingsHolder>,
    revocations: Option<Arc<Revocations>>,
    access_ended: Option<Arc<dyn AccessEnded>>,
    ledger: Option<Arc<Ledger>>,
}

impl PlatformService {
    pub fn new(
        settings: Arc<SettingsHolder>,
        revocations: Option<Arc<Revocations>>,
        access_ended: Option<Arc<dyn AccessEnded>>,
        ledger: Option<Arc<Ledger>>,
    ) -> Self {
        Self {
            settings,
            revocations,
            access_ended,
            ledger,
        }
    }

    fn ledger(&self) -> Result<&Ledger> {
        self.ledger.as_deref().ok_or_else(|| {
            ChatError::internal(
                "The token ledger needs the store, which this server does not have.",
            )
        })
    }

    /// `tokenIssuance`: the ledger's record of `xid`, while it is kept.
    pub async fn token_issuance(
        &self,
        authorization: Option<&str>,
        xid: &str,
    ) -> Result<Option<Issuance>> {
        self.authorize(authorization, Scope::Read, "tokenIssuance")
            .await?;
        check_xid(xid)?;
        self.ledger()?.get(xid).await
    }

    /// `tokenIssuances`: the identity's records, newest first (`limit`: default 20, at most
    /// 100).
    pub async fn token_issuances(
        &self,
        authorization: Option<&str>,
        identity: &str,
        limit: Option<i64>,
    ) -> Result<Vec<Issuance>> {
        self.authorize(authorization, Scope::Read, "tokenIssuances")
            .await?;
        check_identity(identity)?;
        let limit = match limit {
            None => DEFAULT_LIST,
            Some(n) => usize::try_from(n)
                .ok()
                .filter(|n| (1..=MAX_LIST).contains(n))
                .ok_or_else(|| {
                    ChatError::bad_request(format!("limit must be from 1 to {MAX_LIST}."))
                })?,
        };
        self.ledger()?.of_identity(identity, limit).await
    }

    /// The caller, when `authorization` grants `needs`; logged without the token.
    async fn authorize(
        &self,
        authorization: Option<&str>,
        needs: Scope,
        operation: &str,
    ) -> Result<(Arc<Configured>, PlatformCaller)> {
        let configured = self.settings.current().await?;
        let verifier = configured.platform()?;
        let authorization = authorization.ok_or_else(|| {
            ChatError::access_denied(
                "The platform API needs an access token (Authorization: Bearer …).",
            )
        })?;
        let caller = verifier
            .verify(authorization, needs)
            .await
            .inspect_err(|err| {
                tracing::info!(operation, error_type = %err.kind, reason = %err.message, "platform call refused");
            })?;
        tracing::info!(operation, client = %caller.client, "platform call");
        Ok((configured, caller))
    }

    fn twilio(configured: &Configured) -> Result<&TwilioApi> {
        configured.twilio.as_ref().ok_or_else(|| {
            ChatError::internal(
                "There is no Twilio account to act on: these settings turn provisioning off.",
            )
        })
    }

    /// `identityContexts`: the contexts whose conversations the identity is in.
    pub async fn identity_contexts(
        &self,
        authorization: Option<&str>,
        identity: &str,
    ) -> Result<Vec<String>> {
        let (configured, _) = self
            .authorize(authorization, Scope::Read, "identityContexts")
            .await?;
        check_identity(identity)?;
        Self::twilio(&configured)?
            .provisioner
            .contexts_of(identity)
            .await
    }

    /// `contextMembers`: the identities in the context's conversation.
    pub async fn context_members(
        &self,
        authorization: Option<&str>,
        context: &str,
    ) -> Result<Vec<String>> {
        let (configured, _) = self
            .authorize(authorization, Scope::Read, "contextMembers")
            .await?;
        check_context(context)?;
        Self::twilio(&configured)?
            .provisioner
            .members_of(context)
            .await?
            .ok_or_else(|| {
                ChatError::not_found(format!("There is no conversation for context {context}."))
            })
    }

    /// `syncIdentity`: the identity's memberships match `contexts` now, as `createChatToken`
    /// makes them for a token with those contexts.
    pub async fn sync_identity(
        &self,
        authorization: Option<&str>,
        identity: &str,
        contexts: Vec<String>,
    ) -> Result<SyncResult> {
        let (configured, caller) = self
            .authorize(authorization, Scope::Admin, "syncIdentity")
            .await?;
        check_identity(identity)?;
        let contexts = check_contexts(contexts)?;
        let provisioner = &Self::twilio(&configured)?.provisioner;
        // Asked of Twilio, whatever this process remembers.
        provisioner.forget(identity);
        let changes = match provisioner.ensure(identity, &contexts).await? {
            crate::twilio::provisioning::Provisioned::Checked(changes) => changes,
            // Another request provisioned the same set while this one waited for it.
            crate::twilio::provisioning::Provisioned::Remembered => Default::default(),
        };
        self.end_access(identity, &changes.left).await;
        tracing::info!(identity, client = %caller.client, joined = changes.joined.len(), left = changes.left.len(), "identity synced");
        Ok(SyncResult {
            joined: changes.joined,
            left: changes.left,
        })
    }

    /// `revokeIdentity`: every context token for the identity issued before now is refused,
    /// the identity leaves every conversation of this deployment, and its subscriptions to
    /// them end. The revocation is recorded first, so old tokens stop at once.
    pub async fn revoke_identity(
        &self,
        authorization: Option<&str>,
        identity: &str,
    ) -> Result<RevokeResult> {
        let (configured, caller) = self
            .authorize(authorization, Scope::Admin, "revokeIdentity")
            .await?;
        check_identity(identity)?;
        let revocations = self.revocations.as_ref().ok_or_else(|| {
            ChatError::internal("Revoking needs the store, which this server does not have.")
        })?;
        let revoked_before = revocations.revoke(identity, now_unix()).await?;
        crate::metrics::count(crate::metrics::Counter::Revocations);
        let left = match &configured.twilio {
            Some(twilio) => twilio.provisioner.leave_all(identity).await?,
            None => Vec::new(),
        };
        let subscriptions_removed = self.end_access(identity, &left).await;
        tracing::info!(identity, client = %caller.client, left = left.len(), subscriptions_removed, revoked_before, "identity revoked");
        Ok(RevokeResult {
            left,
            subscriptions_removed,
            revoked_before,
        })
    }

    async fn end_access(&self, identity: &str, left: &[String]) -> usize {
        crate::tokens::end_access(self.access_ended.as_ref(), identity, left).await
    }
}
