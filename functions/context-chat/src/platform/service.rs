//! The platform API's operations: what a platform backend does to chat access now, rather
//! than when the user next asks for a chat token. Every call is authorized by the caller's
//! access token first; nothing is read or changed for a refused one.

use std::sync::Arc;
use std::time::Duration;

use super::token::{PlatformCaller, Scope};
use crate::access_log::{AccessLog, Cause, Changed, Span};
use crate::clock::now_unix;
use crate::error::{ChatError, Result};
use crate::events::{Emitter, Event};
use crate::ledger::{DEFAULT_LIST, Issuance, Ledger, MAX_LIST, check_xid};
use crate::names::{check_context, check_contexts, check_identity};
use crate::notifications::Queue;
use crate::personal_data;
use crate::revocations::Revocations;
use crate::settings_holder::{Configured, SettingsHolder};
use crate::store::Store;
use crate::tokens::AccessEnded;
use crate::twilio::provisioning::{Provisioner, RoleBook, RolesAsked, Unread};

/// Added to the window in which a request may still join after a statement (another
/// process's memory of the record, then a provisioning's budget) before the sweep runs.
pub const SWEEP_MARGIN: Duration = Duration::from_secs(3);

/// What `syncIdentity` changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncResult {
    pub joined: Vec<String>,
    pub left: Vec<String>,
    /// When (unix seconds) the memberships are made what this sync said once more, undoing
    /// a join that raced it; `None` when no sweep could be scheduled.
    pub sweep_at: Option<u64>,
}

/// What a sweep changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepResult {
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
    /// When (unix seconds) the identity leaves every conversation once more, undoing a join
    /// that raced the revocation; `None` when no sweep could be scheduled.
    pub sweep_at: Option<u64>,
}

/// Twilio keeps a friendly name of up to 256 characters.
pub const MAX_TITLE_CHARS: usize = 256;

/// A title: 1 to 256 characters, no control characters, trimmed.
pub fn check_title(title: &str) -> Result<&str> {
    let title = title.trim();
    if title.is_empty()
        || title.chars().count() > MAX_TITLE_CHARS
        || title.chars().any(char::is_control)
    {
        return Err(ChatError::bad_request(format!(
            "title must be 1 to {MAX_TITLE_CHARS} characters, without control characters."
        )));
    }
    Ok(title)
}

pub struct PlatformService {
    settings: Arc<SettingsHolder>,
    revocations: Option<Arc<Revocations>>,
    access_ended: Option<Arc<dyn AccessEnded>>,
    ledger: Option<Arc<Ledger>>,
    /// Where a sweep is queued for later (the notifier's delay queue; local mode's timer).
    sweeps: Option<Arc<dyn Queue>>,
    sweep_after: Duration,
    access_log: Option<Arc<AccessLog>>,
    /// A sync or a sweep gives each context the role the book says (adr/004).
    role_book: Option<Arc<dyn RoleBook>>,
    /// `identity.revoked` (memberships' events come with the access log).
    events: Option<Emitter>,
    /// Export and erasure read and change records of every feature; archives are noted here.
    store: Option<Arc<dyn Store>>,
}

/// The contexts whose rooms the identity is in at Twilio now; none without Twilio (local mode
/// on fake credentials).
async fn rooms_of(configured: &Configured, identity: &str) -> Result<Vec<String>> {
    match configured.twilio_if_on() {
        Some(twilio) => twilio.provisioner.contexts_of(identity).await,
        None => Ok(Vec::new()),
    }
}

/// What `eraseIdentity` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EraseResult {
    /// What the identity's audit records now name it by.
    pub pseudonym: String,
    pub left: Vec<String>,
    pub records_deleted: usize,
    pub records_pseudonymized: usize,
    pub messages_deleted: usize,
    /// Nothing was left to erase: this call changed nothing.
    pub already_erased: bool,
}

/// What `archiveContext` did, and the archive.
#[derive(Debug, Clone)]
pub struct ArchiveResult {
    pub context: String,
    pub archived_name: String,
    pub participants: Vec<String>,
    pub messages: usize,
    /// The room as JSON: its title, participants and every message.
    pub archive: serde_json::Value,
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
            sweeps: None,
            sweep_after: Duration::ZERO,
            access_log: None,
            role_book: None,
            events: None,
            store: None,
        }
    }

    pub fn with_store(mut self, store: Option<Arc<dyn Store>>) -> Self {
        self.store = store;
        self
    }

    fn store(&self) -> Result<&dyn Store> {
        self.store
            .as_deref()
            .ok_or_else(|| crate::feature::not_configured("The store"))
    }

    /// `exportIdentity`: everything stored about the identity, as one JSON document.
    pub async fn export_identity(
        &self,
        authorization: Option<&str>,
        identity: &str,
    ) -> Result<serde_json::Value> {
        let (configured, caller) = self
            .authorize(authorization, Scope::Read, "exportIdentity")
            .await?;
        check_identity(identity)?;
        let memberships = rooms_of(&configured, identity).await?;
        let found = personal_data::find(self.store()?, identity, memberships).await?;
        tracing::info!(identity, client = %caller.client, records = found.records.len(), "identity exported");
        serde_json::to_value(&found)
            .map_err(|_| ChatError::internal("The export could not be written."))
    }

    /// `eraseIdentity`: revokes the identity, takes it out of every room, deletes what the
    /// product keeps for it and hashes it out of the audit records; with `delete_messages`,
    /// deletes the messages it wrote in those rooms too. Nothing left to erase: no change.
    pub async fn erase_identity(
        &self,
        authorization: Option<&str>,
        identity: &str,
        delete_messages: bool,
    ) -> Result<EraseResult> {
        let (configured, caller) = self
            .authorize(authorization, Scope::Admin, "eraseIdentity")
            .await?;
        check_identity(identity)?;
        let pseudonyms = personal_data::Pseudonyms::new(configured.link_secret()?);
        let twilio = configured.twilio_if_on();
        let memberships = rooms_of(&configured, identity).await?;
        let store = self.store()?;
        let found = personal_data::find(store, identity, memberships.clone()).await?;
        let rooms: Vec<String> = found
            .records
            .iter()
            .filter(|r| r.kind == "accessLog")
            .filter_map(|r| r.fields.get("context").and_then(|c| c.as_str()))
            .map(str::to_owned)
            .chain(memberships.iter().cloned())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let nothing_left =
            memberships.is_empty() && found.records.iter().all(|r| r.kind == "revocation");
        if nothing_left {
            tracing::info!(client = %caller.client, "erasure asked again: nothing left to erase");
            return Ok(EraseResult {
                pseudonym: pseudonyms.of(identity),
                left: Vec::new(),
                records_deleted: 0,
                records_pseudonymized: 0,
                messages_deleted: 0,
                already_erased: true,
            });
        }
        // Revoked first, so that no older token brings the identity back meanwhile.
        self.revocations("Erasing")?
            .revoke(identity, now_unix())
            .await?;
        let left = match twilio {
            Some(twilio) => twilio.provisioner.leave_all(identity).await?,
            None => Vec::new(),
        };
        let cause = Cause::Revoke {
            client: caller.client.clone(),
        };
        self.log_change(&configured, identity, &[], &left, cause)
            .await;
        if let Some(events) = &self.events {
            events
                .emit(vec![Event::revoked(identity, &caller.client, &left)])
                .await;
        }
        self.end_access(identity, &left).await;
        let messages_deleted = match (twilio, delete_messages) {
            (Some(twilio), true) => {
                twilio
                    .provisioner
                    .delete_messages_of(identity, &rooms)
                    .await?
            }
            _ => 0,
        };
        // Found again: the revocation and the leaving wrote records of their own; what the
        // first look found stays on the list (leaving ended the subscriptions through which
        // the addresses were found).
        let mut found_again = personal_data::find(store, identity, Vec::new()).await?;
        found_again.merge(found);
        let found = found_again;
        let erased = personal_data::erase(store, &found, &pseudonyms).await?;
        let _ = self.schedule_sweep(identity).await;
        // The log names the pseudonym only from here on.
        tracing::info!(pseudonym = %erased.pseudonym, client = %caller.client, left = left.len(), deleted = erased.deleted, pseudonymized = erased.pseudonymized, messages_deleted, "identity erased");
        Ok(EraseResult {
            pseudonym: erased.pseudonym,
            left,
            records_deleted: erased.deleted,
            records_pseudonymized: erased.pseudonymized,
            messages_deleted,
            already_erased: false,
        })
    }

    /// `archiveContext`: the room's messages and participants as one document, then the
    /// room closed at Twilio (participants removed, state `closed`) and noted as archived.
    pub async fn archive_context(
        &self,
        authorization: Option<&str>,
        context: &str,
    ) -> Result<ArchiveResult> {
        let (configured, caller) = self
            .authorize(authorization, Scope::Admin, "archiveContext")
            .await?;
        check_context(context)?;
        let provisioner = &configured.twilio()?.provisioner;
        let store = self.store()?;
        let Some(record) = provisioner.room_record(context).await? else {
            return Err(ChatError::not_found(format!(
                "There is no open room for context {context}."
            )));
        };
        let archived_at = now_unix();
        let archived_name = format!("{context}.archived.{}", crate::clock::now_millis());
        let participants: Vec<String> = record
            .participants
            .iter()
            .filter_map(|p| p.identity.clone())
            .collect();
        let archive = serde_json::json!({
            "context": context,
            "title": record.conversation.friendly_name,
            "conversationSid": record.conversation.sid,
            "archivedAt": archived_at,
            "archivedBy": caller.client,
            "participants": record.participants.iter().map(|p| serde_json::json!({
                "identity": p.identity, "lastReadMessageIndex": p.last_read_message_index,
            })).collect::<Vec<_>>(),
            "messages": record.messages,
        });
        // Noted first: from now on a token naming the context makes no new room (unless
        // the deployment reopens archived rooms), even while the closing is under way.
        let note = crate::role_book::Archived {
            context: context.to_owned(),
            conversation_sid: record.conversation.sid.clone(),
            archived_name: archived_name.clone(),
            archived_at,
            client: caller.client.clone(),
            messages: record.messages.len(),
        };
        crate::store::write_over(store, &crate::role_book::archived_key(context), &note).await?;
        provisioner.close_room(&record, &archived_name).await?;
        let left = [context.to_owned()];
        for identity in &participants {
            let cause = Cause::Archive {
                client: caller.client.clone(),
            };
            self.log_change(&configured, identity, &[], &left, cause)
                .await;
            self.end_access(identity, &left).await;
        }
        tracing::info!(context, client = %caller.client, messages = record.messages.len(), participants = participants.len(), "room archived and closed");
        Ok(ArchiveResult {
            context: context.to_owned(),
            archived_name,
            participants,
            messages: record.messages.len(),
            archive,
        })
    }

    pub fn with_events(mut self, events: Emitter) -> Self {
        self.events = Some(events);
        self
    }

    /// The roles tokens gave, kept in `book`.
    pub fn with_role_book(mut self, book: Option<Arc<dyn RoleBook>>) -> Self {
        self.role_book = book;
        self
    }

    /// Makes the memberships `contexts`, each in the role the book says.
    async fn provision(
        &self,
        provisioner: &Arc<Provisioner>,
        identity: &str,
        contexts: &[String],
    ) -> Result<crate::twilio::provisioning::Provisioned> {
        let roles = RolesAsked {
            wanted: None,
            book: self.role_book.as_ref(),
        };
        provisioner
            .ensure_since(identity, contexts, None, None, roles)
            .await
    }

    /// Membership changes go to `log`, which `contextAccess` reads.
    pub fn with_access_log(mut self, log: Option<Arc<AccessLog>>) -> Self {
        self.access_log = log;
        self
    }

    /// Appends a change to the access log, where there is one.
    async fn log_change(
        &self,
        configured: &Configured,
        identity: &str,
        joined: &[String],
        left: &[String],
        cause: Cause,
    ) {
        if let Some(log) = &self.access_log {
            let retention = configured.settings.ledger.retention_days;
            let changes = Changed {
                joined,
                left,
                roles: &[],
            };
            log.changed(identity, changes, &cause, retention).await;
        }
    }
    /// `contextAccess`: who could read the context's room at some time from `from` to `to`
    /// (unix seconds), and on whose authority.
    pub async fn context_access(
        &self,
        authorization: Option<&str>,
        context: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<Span>> {
        self.authorize(authorization, Scope::Read, "contextAccess")
            .await?;
        check_context(context)?;
        let (Ok(from), Ok(to)) = (u64::try_from(from), u64::try_from(to)) else {
            return Err(ChatError::bad_request(
                "from and to are unix seconds, not negative.",
            ));
        };
        let log = self
            .access_log
            .as_deref()
            .ok_or_else(|| crate::feature::not_configured("The access log"))?;
        log.spans(context, from, to).await
    }

    /// Statements are swept again `after` this long, through `queue`.
    pub fn with_sweeps(mut self, queue: Option<Arc<dyn Queue>>, after: Duration) -> Self {
        self.sweeps = queue;
        self.sweep_after = after;
        self
    }

    fn revocations(&self, what: &str) -> Result<&Revocations> {
        self.revocations.as_deref().ok_or_else(|| {
            tracing::error!(
                what,
                "the platform API needs the store, which this process has not"
            );
            crate::feature::not_configured("The store")
        })
    }

    /// Queues the second sweep; answers when it runs. A failure leaves the statement in
    /// force (tokens are refused or follow it) and is said in the answer, the log and a
    /// metric.
    async fn schedule_sweep(&self, identity: &str) -> Option<u64> {
        let Some(queue) = &self.sweeps else {
            tracing::error!(
                identity,
                "no queue to sweep through: a join that raced this statement stays"
            );
            crate::metrics::count(crate::metrics::Counter::SweepsUnscheduled);
            return None;
        };
        match queue.schedule_sweep(identity, self.sweep_after).await {
            Ok(()) => Some(now_unix() + self.sweep_after.as_secs_f64().ceil() as u64),
            Err(err) => {
                tracing::error!(identity, error_type = %err.kind, reason = %err.message, "the sweep could not be scheduled");
                crate::metrics::count(crate::metrics::Counter::SweepsUnscheduled);
                None
            }
        }
    }

    /// The second sweep: the identity's memberships become what the newest word in its
    /// record says (no contexts after a revocation, the synced ones, or those of a token
    /// issued after the statement that joined since), read from the store.
    pub async fn sweep(&self, identity: &str) -> Result<SweepResult> {
        let Some(access) = self.revocations("A sweep")?.fresh(identity).await? else {
            return Ok(SweepResult::default());
        };
        let configured = self.settings.current().await?;
        let provisioner = &configured.twilio()?.provisioner;
        let word = access.word();
        let result = if word.contexts.is_empty() {
            SweepResult {
                joined: Vec::new(),
                left: provisioner.leave_all(identity).await?,
            }
        } else {
            provisioner.forget(identity);
            match self
                .provision(provisioner, identity, &word.contexts)
                .await?
            {
                crate::twilio::provisioning::Provisioned::Checked(changes) => SweepResult {
                    joined: changes.joined,
                    left: changes.left,
                },
                crate::twilio::provisioning::Provisioned::Remembered => SweepResult::default(),
            }
        };
        self.log_change(
            &configured,
            identity,
            &result.joined,
            &result.left,
            Cause::Sweep,
        )
        .await;
        let subscriptions_removed = self.end_access(identity, &result.left).await;
        crate::metrics::count(crate::metrics::Counter::Sweeps);
        tracing::info!(
            identity,
            joined = result.joined.len(),
            left = result.left.len(),
            subscriptions_removed,
            "identity swept"
        );
        Ok(result)
    }

    fn ledger(&self) -> Result<&Ledger> {
        self.ledger
            .as_deref()
            .ok_or_else(|| crate::feature::not_configured("The token ledger"))
    }

    /// `tokenIssuance`: the ledger's record of `xid` (of `identity`, when given), while it
    /// is kept.
    pub async fn token_issuance(
        &self,
        authorization: Option<&str>,
        xid: &str,
        identity: Option<&str>,
    ) -> Result<Option<Issuance>> {
        self.authorize(authorization, Scope::Read, "tokenIssuance")
            .await?;
        check_xid(xid)?;
        if let Some(identity) = identity {
            check_identity(identity)?;
        }
        self.ledger()?.get(xid, identity).await
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

    /// The provisioner, for a caller allowed to read.
    async fn reader(
        &self,
        authorization: Option<&str>,
        operation: &str,
    ) -> Result<Arc<Provisioner>> {
        let (configured, _) = self
            .authorize(authorization, Scope::Read, operation)
            .await?;
        Ok(configured.twilio()?.provisioner.clone())
    }

    /// `identityContexts`: the contexts whose conversations the identity is in.
    pub async fn identity_contexts(
        &self,
        authorization: Option<&str>,
        identity: &str,
    ) -> Result<Vec<String>> {
        let provisioner = self.reader(authorization, "identityContexts").await?;
        check_identity(identity)?;
        provisioner.contexts_of(identity).await
    }

    /// `contextMembers`: the identities in the context's conversation.
    pub async fn context_members(
        &self,
        authorization: Option<&str>,
        context: &str,
    ) -> Result<Vec<String>> {
        let provisioner = self.reader(authorization, "contextMembers").await?;
        check_context(context)?;
        let members = provisioner.members_of(context).await?;
        members.ok_or_else(|| {
            ChatError::not_found(format!("There is no conversation for context {context}."))
        })
    }

    /// `unreadCounts`: for each room the identity is in, its unread count and read horizon,
    /// from one Twilio request (the user's conversation list).
    pub async fn unread_counts(
        &self,
        authorization: Option<&str>,
        identity: &str,
    ) -> Result<Vec<Unread>> {
        let provisioner = self.reader(authorization, "unreadCounts").await?;
        check_identity(identity)?;
        provisioner.unread_of(identity).await
    }

    /// `updateContext`: the title the context's room shows (Twilio's friendly name).
    pub async fn update_context(
        &self,
        authorization: Option<&str>,
        context: &str,
        title: &str,
    ) -> Result<String> {
        let (configured, caller) = self
            .authorize(authorization, Scope::Admin, "updateContext")
            .await?;
        check_context(context)?;
        let title = check_title(title)?;
        let renamed = configured
            .twilio()?
            .provisioner
            .rename(context, title)
            .await?;
        let renamed = renamed.ok_or_else(|| {
            ChatError::not_found(format!("There is no conversation for context {context}."))
        })?;
        tracing::info!(context, client = %caller.client, "context renamed");
        Ok(renamed)
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
        let provisioner = &configured.twilio()?.provisioner;
        // Recorded first: from now on, older tokens follow it in every process.
        if let Some(revocations) = &self.revocations {
            revocations.sync(identity, &contexts, now_unix()).await?;
        }
        // Asked of Twilio, whatever this process remembers.
        provisioner.forget(identity);
        let changes = match self.provision(provisioner, identity, &contexts).await? {
            crate::twilio::provisioning::Provisioned::Checked(changes) => changes,
            // Another request provisioned the same set while this one waited for it.
            crate::twilio::provisioning::Provisioned::Remembered => Default::default(),
        };
        let cause = Cause::Sync {
            client: caller.client.clone(),
        };
        self.log_change(&configured, identity, &changes.joined, &changes.left, cause)
            .await;
        self.end_access(identity, &changes.left).await;
        let sweep_at = match self.revocations {
            Some(_) => self.schedule_sweep(identity).await,
            None => None,
        };
        tracing::info!(identity, client = %caller.client, joined = changes.joined.len(), left = changes.left.len(), sweep_at, "identity synced");
        Ok(SyncResult {
            joined: changes.joined,
            left: changes.left,
            sweep_at,
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
        let revoked_before = self
            .revocations("Revoking")?
            .revoke(identity, now_unix())
            .await?;
        crate::metrics::count(crate::metrics::Counter::Revocations);
        let left = match configured.twilio_if_on() {
            Some(twilio) => twilio.provisioner.leave_all(identity).await?,
            None => Vec::new(),
        };
        let cause = Cause::Revoke {
            client: caller.client.clone(),
        };
        self.log_change(&configured, identity, &[], &left, cause)
            .await;
        if let Some(events) = &self.events {
            events
                .emit(vec![Event::revoked(identity, &caller.client, &left)])
                .await;
        }
        let subscriptions_removed = self.end_access(identity, &left).await;
        let sweep_at = self.schedule_sweep(identity).await;
        tracing::info!(identity, client = %caller.client, left = left.len(), subscriptions_removed, revoked_before, sweep_at, "identity revoked");
        Ok(RevokeResult {
            left,
            subscriptions_removed,
            revoked_before,
            sweep_at,
        })
    }

    async fn end_access(&self, identity: &str, left: &[String]) -> usize {
        crate::tokens::end_access(self.access_ended.as_ref(), identity, left).await
    }
}
