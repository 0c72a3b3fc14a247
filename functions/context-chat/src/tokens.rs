//! The token service: `verifyToken`, `createChatToken` (and `issueChatToken`),
//! `createVirgilToken`, and the one gate every operation that takes a context token passes
//! through. The REST token routes call the same minting after telling a bad bearer apart.

use std::sync::Arc;

use futures_util::future::BoxFuture;

use crate::access_log::{AccessLog, Cause, Changed};
use crate::clock::{now_millis, now_unix};
use crate::context_token::VerifiedToken;
use crate::error::{ChatError, Result};
use crate::ledger::Minter;
use crate::ledger::{self, Issuance, Kind, Ledger};
use crate::metrics::{self, Counter, ErrorCounter};
use crate::names::{Role, required};
use crate::revocations::Revocations;
use crate::settings_holder::{Configured, SettingsHolder};
use crate::twilio::access_token::Grant;
use crate::twilio::provisioning::{JoinGate, Provisioned, RoleBook, RolesAsked};

/// The answer to `verifyToken`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub identity: String,
    pub contexts: Vec<String>,
    /// Each context's role, in `contexts`' order.
    pub roles: Vec<(String, Role)>,
}

/// The answer to `issueChatToken`: the token, the transaction id it is on record by, and
/// when it expires (unix seconds), so that a client can refresh before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatTokenReceipt {
    pub token: String,
    /// Its record's id; empty where no ledger keeps records (then there is none).
    pub xid: String,
    pub expires_at: u64,
}

/// Longest `deviceId` accepted; it becomes part of the token's endpoint id.
const MAX_DEVICE_ID_CHARS: usize = 128;

/// A context token checked with the settings it was checked against.
pub struct Authenticated {
    configured: Arc<Configured>,
    verified: Arc<VerifiedToken>,
}

impl Authenticated {
    pub fn identity(&self) -> &str {
        &self.verified.identity
    }
}

/// What a chat token is asked for with, checked before anything else is done.
#[derive(Debug, Clone)]
pub struct ChatTokenRequest {
    /// Makes the grant's endpoint id; without one, the token has none.
    device_id: Option<String>,
    /// The caller's; else one is made where a ledger records it.
    xid: Option<String>,
    needs_ledger: bool,
}

impl ChatTokenRequest {
    /// `xid` empty or absent: a new one, where a ledger records it.
    pub fn new(device_id: Option<&str>, xid: Option<&str>) -> Result<Self> {
        if let Some(device_id) = device_id
            && (device_id.is_empty()
                || device_id.chars().count() > MAX_DEVICE_ID_CHARS
                || device_id
                    .chars()
                    .any(|c| c.is_control() || c.is_whitespace()))
        {
            return Err(ChatError::bad_request(format!(
                "deviceId must be 1 to {MAX_DEVICE_ID_CHARS} characters, without spaces or control characters."
            )));
        }
        let xid = match xid.map(str::trim).filter(|x| !x.is_empty()) {
            Some(xid) => {
                ledger::check_xid(xid)?;
                Some(xid.to_owned())
            }
            None => None,
        };
        Ok(Self {
            device_id: device_id.map(str::to_owned),
            xid,
            needs_ledger: false,
        })
    }
}

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
    /// Where there is a store: every membership change, with the token that caused it.
    access_log: Option<Arc<AccessLog>>,
    /// Where there is a store: the roles tokens gave (adr/004).
    role_book: Option<Arc<dyn RoleBook>>,
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
            access_log: None,
            role_book: None,
        }
    }

    /// The roles tokens give are kept in `book`.
    pub fn with_role_book(mut self, book: Option<Arc<dyn RoleBook>>) -> Self {
        self.role_book = book;
        self
    }

    /// Membership changes go to `log`.
    pub fn with_access_log(mut self, log: Option<Arc<AccessLog>>) -> Self {
        self.access_log = log;
        self
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
            metrics::error(ErrorCounter::TokensRefused, err.kind);
            tracing::info!(error_type = %err.kind, reason = %err.message, "context token refused");
        })
    }

    /// `verifyToken`: who the token names and which contexts it carries.
    pub async fn verify_token(&self, token: &str) -> Result<TokenInfo> {
        let verified = self.verified(token).await?;
        Ok(TokenInfo {
            identity: verified.identity.clone(),
            contexts: verified.contexts.clone(),
            roles: verified
                .contexts
                .iter()
                .map(|c| (c.clone(), verified.role_in(c)))
                .collect(),
        })
    }

    /// A context token checked with the current settings: what the token doors mint from
    /// once they have told a bad token (HTTP 401) from other refusals.
    pub async fn authenticate(&self, token: &str) -> Result<Authenticated> {
        let token = required(token, "token")?;
        let configured = self.settings.current().await?;
        let verified = self.verified_with(&configured, token).await?;
        Ok(Authenticated {
            configured,
            verified,
        })
    }

    /// `createChatToken`: a Twilio access token for the token's identity, handed out once
    /// the identity's Conversations memberships match the token's contexts. Recorded in the
    /// ledger (where there is one) under a new transaction id.
    pub async fn create_chat_token(&self, device_id: &str, token: &str) -> Result<String> {
        let request = ChatTokenRequest::new(Some(required(device_id, "deviceId")?), None)?;
        let auth = self.authenticate(token).await?;
        self.chat_token_for(&auth, &request)
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
        let mut request = ChatTokenRequest::new(Some(required(device_id, "deviceId")?), xid)?;
        request.needs_ledger = true;
        let auth = self.authenticate(token).await?;
        self.chat_token_for(&auth, &request).await
    }

    /// A Twilio access token for an authenticated identity: minted first (no round trip),
    /// so that the limit and the record are one store call that comes before any Twilio
    /// work; handed out only once provisioning is done.
    pub async fn chat_token_for(
        &self,
        auth: &Authenticated,
        request: &ChatTokenRequest,
    ) -> Result<ChatTokenReceipt> {
        if request.needs_ledger && self.ledger.is_none() {
            return Err(crate::feature::not_configured("The token ledger"));
        }
        let (configured, verified) = (&auth.configured, &auth.verified);
        let endpoint_id = request
            .device_id
            .as_ref()
            .map(|device_id| format!("dachat:{}:{device_id}", verified.identity));
        let minter = configured.minter()?;
        let issued_at = now_unix();
        let access_token = minter.mint(
            Grant {
                identity: &verified.identity,
                endpoint_id: endpoint_id.as_deref(),
            },
            issued_at,
        );
        let expires_at = issued_at + minter.ttl_secs();
        // The record (and a new xid) only where a ledger keeps it: the token path without
        // one pays for neither (a SHA-256 of the token, a random id).
        let (xid, recorded) = match &self.ledger {
            Some(_) => {
                let xid = match &request.xid {
                    Some(xid) => xid.clone(),
                    None => ledger::new_xid()?,
                };
                let issuance = Issuance::of(
                    Kind::TwilioChat,
                    xid.clone(),
                    &verified.identity,
                    &verified.contexts,
                    request.device_id.as_deref(),
                    &access_token,
                    issued_at,
                    expires_at,
                );
                (xid, self.record(configured, &issuance).await?)
            }
            None => (request.xid.clone().unwrap_or_default(), None),
        };
        let provisioned = match self.provision(configured, verified, &xid).await {
            Ok(provisioned) => provisioned,
            Err(err) => {
                if let (Some(ledger), Some(recorded)) = (&self.ledger, recorded) {
                    ledger.take_back(recorded).await;
                }
                return Err(err);
            }
        };
        metrics::count(Counter::ChatTokensIssued);
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

    /// `createVirgilToken`: a Virgil E3Kit JWT for the token's identity, recorded and
    /// limited as chat tokens are.
    pub async fn create_virgil_token(&self, token: &str) -> Result<String> {
        let auth = self.authenticate(token).await?;
        self.virgil_token_for(&auth).await
    }

    pub async fn virgil_token_for(&self, auth: &Authenticated) -> Result<String> {
        let (configured, verified) = (&auth.configured, &auth.verified);
        let signer = configured.virgil()?;
        let issued_at = now_unix();
        let virgil_token = signer.mint(&verified.identity, issued_at)?;
        let xid = ledger::new_xid()?;
        let issuance = Issuance::of(
            Kind::Virgil,
            xid.clone(),
            &verified.identity,
            &verified.contexts,
            None,
            &virgil_token,
            issued_at,
            issued_at + signer.ttl_secs(),
        );
        self.record(configured, &issuance).await?;
        metrics::count(Counter::VirgilTokensIssued);
        tracing::info!(identity = %verified.identity, xid = %xid, "virgil token issued");
        Ok(virgil_token)
    }

    /// On record and counted against the identity's limit, where there is a ledger.
    async fn record(
        &self,
        configured: &Configured,
        issuance: &Issuance,
    ) -> Result<Option<ledger::Recorded>> {
        let Some(ledger) = &self.ledger else {
            return Ok(None);
        };
        ledger
            .record(
                issuance,
                Minter::Identity(issuance.identity.clone()),
                configured.settings.ledger,
                now_millis(),
            )
            .await
            .map(Some)
    }

    /// Makes the identity's memberships match the token's contexts; says how.
    async fn provision(
        &self,
        configured: &Configured,
        verified: &VerifiedToken,
        xid: &str,
    ) -> Result<&'static str> {
        let Some(twilio) = configured.twilio_if_on() else {
            return Ok("off");
        };
        let provisioner = &twilio.provisioner;
        let roles = || RolesAsked {
            wanted: Some(&verified.roles),
            book: self.role_book.as_ref(),
        };
        let Some(revocations) = &self.revocations else {
            let provisioned = provisioner.ensure_since(
                &verified.identity,
                &verified.contexts,
                None,
                None,
                roles(),
            );
            return self
                .provisioned(configured, verified, provisioned.await?, xid)
                .await;
        };
        // Planned from what this process remembers of the platform's word; the gate reads
        // it again before any join, and a plan a sync elsewhere made stale is made again.
        let mut again = false;
        loop {
            let (contexts, not_before, gate) = revocations.admission(verified).await?;
            let outcome = provisioner
                .ensure_since(
                    &verified.identity,
                    &contexts,
                    not_before,
                    Some(gate.clone() as Arc<dyn JoinGate>),
                    roles(),
                )
                .await;
            match outcome {
                Err(_) if gate.stale() && !again => again = true,
                outcome => {
                    return self.provisioned(configured, verified, outcome?, xid).await;
                }
            }
        }
    }

    async fn provisioned(
        &self,
        configured: &Configured,
        verified: &VerifiedToken,
        provisioned: Provisioned,
        xid: &str,
    ) -> Result<&'static str> {
        match provisioned {
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
                if let Some(log) = &self.access_log {
                    // The token that caused it: the chat token's record, the context token's
                    // issuer and key (made only when something changed).
                    let cause = &Cause::Token {
                        xid: (!xid.is_empty()).then(|| xid.to_owned()),
                        issuer: verified.issuer.clone(),
                        key_id: verified.key_id.clone(),
                    };
                    let retention = configured.settings.ledger.retention_days;
                    log.changed(
                        &verified.identity,
                        Changed {
                            joined: &changes.joined,
                            left: &changes.left,
                            roles: &changes.roles,
                        },
                        cause,
                        retention,
                    )
                    .await;
                }
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
