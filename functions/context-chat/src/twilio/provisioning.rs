//! Access follows the token: before a chat token is handed out, its identity is a Twilio
//! user, each of its contexts has a conversation, the user is a participant of each, and the
//! user has left every conversation of this product whose context the token no longer
//! carries (`adr/007-conversations-provisioning.md`).
//!
//! Every step is idempotent, so racing requests and retries after a failure converge:
//! Twilio's "already exists" answers end as success after a re-fetch.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::{BoxFuture, FutureExt, Shared};
use futures_util::stream::{self, StreamExt};
use quick_cache::Weighter;
use quick_cache::sync::Cache;
use serde_json::{Map, Value};

use super::conversations::{Conversation, ConversationsApi, UserConversation};
use super::rest::TwilioError;
use crate::error::{ChatError, Result};
use crate::metrics::{self, Counter};
use crate::names::Role;

/// The `managedBy` attribute of the conversations this product made or adopted; only those
/// are ever left on a user's behalf. Its `stack` attribute names the deployment.
pub const MANAGED_BY: &str = "context-chat";

/// Which conversations that carry a context's unique name but not this deployment's mark
/// are taken over (`/STACK/chat/adoptConversations`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Adoption {
    /// None: each is refused.
    Never,
    /// Those with empty attributes: what the old integration made. The default.
    #[default]
    Unmarked,
    /// Any whose attributes are a JSON object without another deployment's mark.
    Any,
}

/// Whose conversations these are: this deployment's stack (none in local mode), and what
/// may be adopted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ownership {
    pub stack: Option<String>,
    pub adoption: Adoption,
    /// Whether a token naming an archived context gets a new room (`platform/reopenArchived`);
    /// otherwise it is refused with `Conflict`.
    pub reopen_archived: bool,
}

/// What this deployment may do with a conversation found under a context's name.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Claim {
    Owned,
    /// Ours, or ours to take: its attributes gain the mark (keeping the others).
    Mark(String),
    /// Another product's or deployment's.
    Refused,
}

/// Twilio's "already exists" codes, and the one for a create racing another.
const USER_EXISTS: u32 = 50201;
const CONVERSATION_EXISTS: u32 = 50353;
const CONFLICTING_MODIFICATION: u32 = 50391;
const PARTICIPANT_EXISTS: u32 = 50433;

#[derive(Debug, Clone, Copy)]
pub struct ProvisioningOptions {
    /// How long a process trusts that an (identity, contexts) it provisioned is still right.
    pub remember_for: Duration,
    /// Twilio calls one request makes at once.
    pub concurrency: usize,
    /// All of one provisioning, retries included; well inside AppSync's 30 s.
    pub budget: Duration,
}

impl Default for ProvisioningOptions {
    fn default() -> Self {
        Self {
            remember_for: Duration::from_secs(300),
            concurrency: 8,
            budget: Duration::from_secs(12),
        }
    }
}

/// What one provisioning changed: for the log, and `left` for what ends with access.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub user_created: bool,
    pub conversations_created: usize,
    pub conversations_adopted: usize,
    /// The contexts whose conversations the identity was added to.
    pub joined: Vec<String>,
    /// The contexts whose conversations the identity was removed from.
    pub left: Vec<String>,
    /// The contexts whose role the identity was given or changed to (other than a plain join
    /// as member), with that role.
    pub roles: Vec<(String, Role)>,
}

/// The roles (other than member) this product gave an identity, by context: read before a
/// provisioning, written after one that changed them, where every process reads them (a
/// participant's role is not in the user's conversation list, so this is what makes a
/// returning user's unchanged roles cost no Twilio request).
pub trait RoleBook: Send + Sync {
    fn given<'a>(&'a self, identity: &'a str) -> BoxFuture<'a, Result<Vec<(String, Role)>>>;
    fn write<'a>(
        &'a self,
        identity: &'a str,
        roles: &'a [(String, Role)],
    ) -> BoxFuture<'a, Result<()>>;

    /// Whether the context's room was archived: asked only before a conversation would be
    /// made for it, where the book is (the store's record of `archiveContext`).
    fn archived<'a>(&'a self, context: &'a str) -> BoxFuture<'a, Result<bool>> {
        let _ = context;
        Box::pin(async { Ok(false) })
    }
}

/// What an archive read of a room before closing it.
#[derive(Debug, Clone)]
pub struct RoomRecord {
    pub conversation: Conversation,
    pub messages: Vec<super::conversations::Message>,
    pub participants: Vec<super::conversations::Participant>,
}

/// What roles a provisioning is asked to give, borrowed: a returning user's request copies
/// nothing.
#[derive(Clone, Copy, Default)]
pub struct RolesAsked<'a> {
    /// A token's roles (other than member), sorted by context; `None`: as the book says.
    pub wanted: Option<&'a [(String, Role)]>,
    pub book: Option<&'a Arc<dyn RoleBook>>,
}

/// What roles a provisioning gives.
#[derive(Clone, Default)]
pub struct Roles {
    /// A token's roles (other than member), sorted by context; `None`: each context's role
    /// as the book says (a sync, a sweep), member where it says nothing.
    pub wanted: Option<Vec<(String, Role)>>,
    pub book: Option<Arc<dyn RoleBook>>,
}

/// The conversation roles' SIDs at Twilio (`chatctl configure-twilio` makes them).
#[derive(Debug, Clone)]
struct RoleSids {
    member: String,
    reader: String,
    moderator: String,
}

impl RoleSids {
    fn of(&self, role: Role) -> &str {
        match role {
            Role::Member => &self.member,
            Role::Reader => &self.reader,
            Role::Moderator => &self.moderator,
        }
    }
}

fn role_in(roles: &[(String, Role)], context: &str) -> Role {
    roles
        .iter()
        .find(|(c, _)| c == context)
        .map_or(Role::Member, |(_, r)| *r)
}

/// A room's unread count for one identity, as Twilio keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unread {
    pub context: String,
    /// `None` until the identity first reads in the room (Twilio counts from a read horizon).
    pub unread: Option<u64>,
    pub last_read_index: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provisioned {
    /// This process provisioned the same identity and contexts a short while ago.
    Remembered,
    /// Twilio was asked, and now matches the token.
    Checked(Changes),
}

/// What the first round found.
struct Look<'c> {
    contexts: &'c [String],
    /// Each context's conversation, in `contexts`' order.
    lookups: Vec<Option<Conversation>>,
    user_exists: bool,
    /// The wanted contexts the user is a participant of already.
    joined: HashSet<String>,
    /// This deployment's conversations the token no longer names.
    to_leave: Vec<UserConversation>,
    /// The roles the book says the identity has (none without a book).
    given: Vec<(String, Role)>,
}

/// What entering one conversation did.
struct Entry {
    created: bool,
    adopted: bool,
    joined: bool,
}

/// What a process remembers of one identity: the contexts it last provisioned, until when.
struct Remembered {
    contexts: Vec<String>,
    /// The token's roles it gave; `None` when it followed the book (a sync).
    roles: Option<Vec<(String, Role)>>,
    until: Instant,
    /// When (unix seconds) the provisioning started that this remembers.
    started_at: u64,
}

/// Bounds the memory to bytes, whatever the identities and contexts look like.
#[derive(Clone)]
struct RememberedWeight;

impl Weighter<String, Arc<Remembered>> for RememberedWeight {
    fn weight(&self, key: &String, val: &Arc<Remembered>) -> u64 {
        let contexts: usize = val.contexts.iter().map(|c| c.len() + 24).sum();
        (key.len() + contexts + 96) as u64
    }
}

const REMEMBERED_BYTES: u64 = 4 * 1024 * 1024;

/// Asked once before a provisioning adds the identity to any conversation, after Twilio was
/// looked at: what may join is read where every process writes it, not remembered
/// (`revocations::AccessGate`, adr/012). A returning user whose memberships are right
/// joins nothing and is never asked about.
pub trait JoinGate: Send + Sync {
    fn before_join(&self) -> BoxFuture<'_, Result<()>>;
    /// Requests whose gates have different keys never share one provisioning.
    fn key(&self) -> String;
}

type InFlight = Shared<BoxFuture<'static, Result<Changes>>>;

pub struct Provisioner {
    api: Arc<ConversationsApi>,
    options: ProvisioningOptions,
    ownership: Ownership,
    /// By identity: the last contexts provisioned for it. Only the latest set counts, so
    /// a token with other contexts is never answered from memory of an older one.
    remembered: Cache<String, Arc<Remembered>, RememberedWeight>,
    /// One provisioning per (identity, contexts) at a time; others wait for its outcome.
    in_flight: Mutex<HashMap<String, InFlight>>,
    /// Looked up the first time a role is given or changed.
    role_sids: tokio::sync::OnceCell<RoleSids>,
}

impl Provisioner {
    pub fn new(
        api: Arc<ConversationsApi>,
        options: ProvisioningOptions,
        ownership: Ownership,
    ) -> Self {
        Self {
            api,
            options,
            ownership,
            remembered: Cache::with_weighter(4096, REMEMBERED_BYTES, RememberedWeight),
            in_flight: Mutex::new(HashMap::new()),
            role_sids: tokio::sync::OnceCell::new(),
        }
    }

    /// Makes Twilio match the token, unless this process did so for the same identity and
    /// contexts within `remember_for`. `contexts` are checked and free of repeats.
    pub async fn ensure(
        self: &Arc<Self>,
        identity: &str,
        contexts: &[String],
    ) -> Result<Provisioned> {
        self.ensure_since(identity, contexts, None, None, RolesAsked::default())
            .await
    }

    /// As [`Provisioner::ensure`], but what this process remembers from before `not_before`
    /// (unix seconds; a revocation another process made) is not trusted, nor what it learned
    /// in that same second, which may have been before it; and `gate` is asked before the
    /// identity is added to any conversation.
    pub async fn ensure_since(
        self: &Arc<Self>,
        identity: &str,
        contexts: &[String],
        not_before: Option<u64>,
        gate: Option<Arc<dyn JoinGate>>,
        asked: RolesAsked<'_>,
    ) -> Result<Provisioned> {
        let mut sorted: Vec<&str> = contexts.iter().map(String::as_str).collect();
        sorted.sort_unstable();
        if let Some(known) = self.remembered.get(identity)
            && known.until > Instant::now()
            && not_before.is_none_or(|t| known.started_at > t)
            && known
                .contexts
                .iter()
                .map(String::as_str)
                .eq(sorted.iter().copied())
            && asked.wanted.is_some()
            && known.roles.as_deref() == asked.wanted
        {
            return Ok(Provisioned::Remembered);
        }
        let roles = Roles {
            wanted: asked.wanted.map(<[_]>::to_vec),
            book: asked.book.cloned(),
        };

        // The gate's key first: an identity holds no newline.
        let gate_key = gate.as_ref().map(|g| g.key()).unwrap_or_default();
        let roles_key = match &roles.wanted {
            None => "book".to_owned(),
            Some(wanted) => wanted
                .iter()
                .map(|(c, r)| format!("{c}={}", r.as_str()))
                .collect::<Vec<_>>()
                .join("\n"),
        };
        let key = format!("{gate_key}\n{roles_key}\n{}", flight_key(identity, &sorted));
        let flight = {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            in_flight
                .entry(key.clone())
                .or_insert_with(|| {
                    let this = self.clone();
                    let identity = identity.to_owned();
                    let contexts = contexts.to_vec();
                    let key = key.clone();
                    async move {
                        let started_at = crate::clock::now_unix();
                        let outcome = this
                            .provision(&identity, &contexts, gate.as_deref(), &roles)
                            .await;
                        if outcome.is_ok() {
                            let mut sorted = contexts;
                            sorted.sort_unstable();
                            this.remembered.insert(
                                identity,
                                Arc::new(Remembered {
                                    contexts: sorted,
                                    roles: roles.wanted.clone(),
                                    until: Instant::now() + this.options.remember_for,
                                    started_at,
                                }),
                            );
                        }
                        this.in_flight
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(&key);
                        outcome
                    }
                    .boxed()
                    .shared()
                })
                .clone()
        };
        flight.await.map(Provisioned::Checked)
    }

    /// Forgets what this process remembers of an identity, so that its next provisioning
    /// asks Twilio (a revocation, a platform's sync).
    pub fn forget(&self, identity: &str) {
        self.remembered.remove(identity);
    }

    /// The contexts of this deployment's conversations the identity is a participant of,
    /// sorted; none when Twilio has no such user.
    pub async fn contexts_of(&self, identity: &str) -> Result<Vec<String>> {
        let deadline = Instant::now() + self.options.budget;
        let owned = self.owned_memberships(identity, deadline).await?;
        Ok(context_names(&owned))
    }

    /// The identity's conversations that this deployment owns (none for an unknown user).
    async fn owned_memberships(
        &self,
        identity: &str,
        deadline: Instant,
    ) -> Result<Vec<UserConversation>> {
        let memberships = self
            .api
            .user_conversations(identity, deadline)
            .await
            .map_err(|e| step_failed(&format!("listing the conversations of {identity}"), e))?
            .unwrap_or_default();
        Ok(memberships
            .into_iter()
            .filter(|m| self.owns(m.attributes.as_deref()))
            .collect())
    }

    /// Each of this deployment's conversations the identity is in: its context, unread count
    /// and read horizon, from the user's conversation list (one request a page of 50).
    pub async fn unread_of(&self, identity: &str) -> Result<Vec<Unread>> {
        let deadline = Instant::now() + self.options.budget;
        let mut unread: Vec<Unread> = self
            .owned_memberships(identity, deadline)
            .await?
            .into_iter()
            .filter_map(|m| {
                Some(Unread {
                    context: m.unique_name?,
                    unread: m.unread_messages_count,
                    last_read_index: m.last_read_message_index,
                })
            })
            .collect();
        unread.sort_unstable_by(|a, b| a.context.cmp(&b.context));
        Ok(unread)
    }

    /// This deployment's conversation of `context`, if it has one.
    async fn owned_conversation(
        &self,
        context: &str,
        deadline: Instant,
    ) -> Result<Option<Conversation>> {
        let found = self.api.fetch_conversation(context, deadline).await;
        let found = found.map_err(|e| {
            step_failed(
                &format!("looking up the conversation of context {context}"),
                e,
            )
        })?;
        Ok(found.filter(|c| self.owns(c.attributes.as_deref())))
    }

    /// Gives the conversation of `context` the title `title`; `None` when this deployment has
    /// no conversation for it (two requests: the conversation, checked as ours, then the change).
    pub async fn rename(&self, context: &str, title: &str) -> Result<Option<String>> {
        let deadline = Instant::now() + self.options.budget;
        let step = |what: &str| format!("{what} the conversation of context {context}");
        let Some(conversation) = self.owned_conversation(context, deadline).await? else {
            return Ok(None);
        };
        let renamed = self
            .api
            .rename_conversation(&conversation.sid, title, deadline)
            .await
            .map_err(|e| step_failed(&step("renaming"), e))?;
        Ok(Some(
            renamed.friendly_name.unwrap_or_else(|| title.to_owned()),
        ))
    }

    /// The identities in the conversation of `context`, sorted; `None` when this deployment
    /// has no conversation for it.
    pub async fn members_of(&self, context: &str) -> Result<Option<Vec<String>>> {
        let deadline = Instant::now() + self.options.budget;
        let step = |what: &str| format!("{what} the conversation of context {context}");
        let Some(conversation) = self.owned_conversation(context, deadline).await? else {
            return Ok(None);
        };
        let Some(participants) = self
            .api
            .participants(&conversation.sid, deadline)
            .await
            .map_err(|e| step_failed(&step("listing the participants of"), e))?
        else {
            return Ok(None);
        };
        let mut members: Vec<String> = participants
            .into_iter()
            .filter_map(|p| p.identity)
            .collect();
        members.sort_unstable();
        Ok(Some(members))
    }

    /// What archiving the room of `context` keeps: the conversation, every message, every
    /// participant; `None` when this deployment has no conversation for it.
    pub async fn room_record(&self, context: &str) -> Result<Option<RoomRecord>> {
        let deadline = Instant::now() + self.options.budget * 4;
        let step = |what: &str| format!("{what} the conversation of context {context}");
        let Some(conversation) = self.owned_conversation(context, deadline).await? else {
            return Ok(None);
        };
        let (messages, participants) = tokio::join!(
            self.api.messages(&conversation.sid, deadline),
            self.api.participants(&conversation.sid, deadline)
        );
        let messages = messages.map_err(|e| step_failed(&step("reading the messages of"), e))?;
        let participants =
            participants.map_err(|e| step_failed(&step("listing the participants of"), e))?;
        Ok(Some(RoomRecord {
            conversation,
            messages: messages.unwrap_or_default(),
            participants: participants.unwrap_or_default(),
        }))
    }

    /// Takes every participant out of the archived room and closes its conversation for good
    /// under `archived_name` (state `closed`), so that it counts against no user's limit and
    /// the context's name is free.
    pub async fn close_room(&self, record: &RoomRecord, archived_name: &str) -> Result<()> {
        let deadline = Instant::now() + self.options.budget * 4;
        let sid = &record.conversation.sid;
        let step = |what: &str| format!("{what} the archived conversation {sid}");
        self.each(&record.participants, |p| async move {
            if let Some(identity) = &p.identity {
                self.forget(identity);
            }
            self.api
                .remove_participant(sid, &p.sid, deadline)
                .await
                .map_err(|e| step_failed(&step("removing a participant from"), e))
        })
        .await?;
        self.api
            .close_conversation(sid, archived_name, deadline)
            .await
            .map_err(|e| step_failed(&step("closing"), e))?;
        for p in &record.participants {
            if let Some(identity) = &p.identity {
                self.forget(identity);
            }
        }
        Ok(())
    }

    /// Deletes the messages `identity` wrote in the conversation of each of `contexts`
    /// (erasure): how many.
    pub async fn delete_messages_of(&self, identity: &str, contexts: &[String]) -> Result<usize> {
        let deadline = Instant::now() + self.options.budget * 4;
        let mut deleted = 0;
        for context in contexts {
            let step = |what: &str| format!("{what} the conversation of context {context}");
            let Some(conversation) = self.owned_conversation(context, deadline).await? else {
                continue;
            };
            let messages = self
                .api
                .messages(&conversation.sid, deadline)
                .await
                .map_err(|e| step_failed(&step("reading the messages of"), e))?
                .unwrap_or_default();
            let theirs: Vec<&super::conversations::Message> = messages
                .iter()
                .filter(|m| m.author.as_deref() == Some(identity))
                .collect();
            let sid = conversation.sid.as_str();
            self.each(&theirs, |m| async move {
                self.api
                    .delete_message(sid, &m.sid, deadline)
                    .await
                    .map_err(|e| step_failed(&step("deleting a message in"), e))
            })
            .await?;
            deleted += theirs.len();
        }
        Ok(deleted)
    }

    /// Takes the identity out of every conversation of this deployment (a revocation);
    /// answers their contexts. Creates nothing, not even the user.
    pub async fn leave_all(&self, identity: &str) -> Result<Vec<String>> {
        self.forget(identity);
        let deadline = Instant::now() + self.options.budget;
        let to_leave = self.owned_memberships(identity, deadline).await?;
        self.each(&to_leave, |m| self.leave(identity, m, deadline))
            .await?;
        let left = context_names(&to_leave);
        metrics::add(Counter::ParticipantsLeft, left.len() as u64);
        // A request that provisioned meanwhile must not be remembered as current.
        self.forget(identity);
        Ok(left)
    }

    /// Two rounds of calls, each round's calls running side by side (`adr/007`): look (the
    /// user's conversations, each context's conversation); then create each missing
    /// conversation with the user in it, join the others (Twilio makes a new user on its
    /// first participation), mark what is adopted and leave what the token dropped. Races
    /// (another request creating the same conversation) take more rounds, and converge.
    async fn provision(
        &self,
        identity: &str,
        contexts: &[String],
        gate: Option<&dyn JoinGate>,
        roles: &Roles,
    ) -> Result<Changes> {
        let deadline = Instant::now() + self.options.budget;
        let look = self.look(identity, contexts, roles, deadline).await?;
        if let Some(gate) = gate
            && contexts.iter().any(|c| !look.joined.contains(c))
        {
            gate.before_join().await?;
        }
        let wanted = roles.wanted.clone().unwrap_or_else(|| {
            // Following the book: the roles it gives the contexts still named.
            look.given
                .iter()
                .filter(|(c, _)| contexts.contains(c))
                .cloned()
                .collect()
        });
        let given = look.given.clone();
        let changes = self.act(identity, look, &wanted, deadline).await?;
        // The book says what Twilio has now: the roles of the contexts named, none of those left.
        let mut book: Vec<(String, Role)> = wanted;
        book.sort();
        if let Some(writer) = &roles.book
            && book != given
        {
            writer.write(identity, &book).await?;
        }
        metrics::add(
            Counter::ConversationsCreated,
            changes.conversations_created as u64,
        );
        metrics::add(Counter::ParticipantsJoined, changes.joined.len() as u64);
        metrics::add(Counter::ParticipantsLeft, changes.left.len() as u64);
        Ok(changes)
    }

    /// The first round: what Twilio has now, checked (nothing is changed for a token that
    /// names another product's conversation).
    async fn look<'c>(
        &self,
        identity: &str,
        contexts: &'c [String],
        roles: &Roles,
        deadline: Instant,
    ) -> Result<Look<'c>> {
        let api = &self.api;
        let given = async {
            match &roles.book {
                Some(book) => book.given(identity).await,
                None => Ok(Vec::new()),
            }
        };
        let memberships = async {
            api.user_conversations(identity, deadline)
                .await
                .map_err(|e| step_failed(&format!("listing the conversations of {identity}"), e))
        };
        let lookups = self.each(contexts, |context| async move {
            api.fetch_conversation(context, deadline)
                .await
                .map_err(|e| {
                    step_failed(
                        &format!("looking up the conversation of context {context}"),
                        e,
                    )
                })
        });
        let (memberships, lookups, given) = tokio::join!(memberships, lookups, given);
        let memberships = memberships?;
        let lookups = lookups?;
        let given = given?;
        self.refuse_archived(contexts, &lookups, roles).await?;
        for (context, found) in contexts.iter().zip(&lookups) {
            if let Some(c) = found {
                self.claim(context, c)?;
            }
        }
        let wanted: HashSet<&str> = contexts.iter().map(String::as_str).collect();
        let user_exists = memberships.is_some();
        let memberships = memberships.unwrap_or_default();
        let joined: HashSet<String> = memberships
            .iter()
            .filter_map(|m| m.unique_name.clone())
            .filter(|name| wanted.contains(name.as_str()))
            .collect();
        let to_leave: Vec<UserConversation> = memberships
            .into_iter()
            .filter(|m| self.owns(m.attributes.as_deref()))
            .filter(|m| !m.unique_name.as_deref().is_some_and(|n| wanted.contains(n)))
            .collect();
        Ok(Look {
            contexts,
            lookups,
            user_exists,
            joined,
            to_leave,
            given,
        })
    }

    /// A context with no conversation whose room was archived gets none made, unless the
    /// deployment reopens archived rooms: one store read per missing conversation, none for
    /// a returning user.
    async fn refuse_archived(
        &self,
        contexts: &[String],
        lookups: &[Option<Conversation>],
        roles: &Roles,
    ) -> Result<()> {
        let Some(book) = roles
            .book
            .as_ref()
            .filter(|_| !self.ownership.reopen_archived)
        else {
            return Ok(());
        };
        let missing: Vec<&String> = contexts
            .iter()
            .zip(lookups)
            .filter(|(_, found)| found.is_none())
            .map(|(c, _)| c)
            .collect();
        for context in missing {
            if book.archived(context).await? {
                return Err(ChatError::new(
                    crate::error::ErrorKind::Conflict,
                    format!("The room of context {context} was archived; it is not opened again."),
                ));
            }
        }
        Ok(())
    }

    /// The second round: every change at once.
    async fn act(
        &self,
        identity: &str,
        look: Look<'_>,
        wanted: &[(String, Role)],
        deadline: Instant,
    ) -> Result<Changes> {
        let mut changes = Changes::default();
        // Role SIDs only when a role other than member is given, or a role changes.
        let changed_roles: Vec<(&str, &str, Role)> = look
            .contexts
            .iter()
            .zip(&look.lookups)
            .filter(|(context, _)| look.joined.contains(context.as_str()))
            .filter_map(|(context, found)| {
                let (now, was) = (role_in(wanted, context), role_in(&look.given, context));
                (now != was).then(|| {
                    (
                        context.as_str(),
                        found.as_ref().map(|c| c.sid.as_str()),
                        now,
                    )
                })
            })
            .filter_map(|(context, sid, role)| Some((context, sid?, role)))
            .collect();
        let needs_sids = !changed_roles.is_empty()
            || look
                .contexts
                .iter()
                .any(|c| !look.joined.contains(c) && role_in(wanted, c) != Role::Member);
        let sids = match needs_sids {
            true => Some(self.role_sids(deadline).await?),
            false => None,
        };
        let sid_for = |context: &str| -> Option<&str> {
            match role_in(wanted, context) {
                Role::Member => None,
                role => sids.map(|s| s.of(role)),
            }
        };
        // A new user with no context has no participation to be made by.
        let user = async {
            if look.user_exists || !look.contexts.is_empty() {
                Ok(false)
            } else {
                self.ensure_user(identity, deadline).await
            }
        };
        let work: Vec<(&str, Option<&Conversation>)> = look
            .contexts
            .iter()
            .zip(&look.lookups)
            .filter(|(context, _)| !look.joined.contains(context.as_str()))
            .map(|(context, found)| (context.as_str(), found.as_ref()))
            .collect();
        let entered = self.each(&work, |(context, found)| {
            let role = sid_for(context);
            async move {
                match found {
                    Some(c) => self.enter(identity, context, c, role, deadline).await,
                    None => self.create_with(identity, context, role, deadline).await,
                }
            }
        });
        let reassigned = self.each(&changed_roles, |(context, sid, role)| async move {
            let role_sid = sids.map(|s| s.of(*role)).unwrap_or_default();
            self.api
                .set_participant_role(sid, identity, role_sid, deadline)
                .await
                .map_err(|e| {
                    step_failed(
                        &format!("giving {identity} the role {} in the conversation of context {context}", role.as_str()),
                        e,
                    )
                })
        });
        // Conversations the user is in already may still need this deployment's mark.
        let to_mark: Vec<(&str, &str, String)> = look
            .contexts
            .iter()
            .zip(&look.lookups)
            .filter(|(context, _)| look.joined.contains(context.as_str()))
            .filter_map(|(context, found)| {
                let c = found.as_ref()?;
                match self.claim(context, c) {
                    Ok(Claim::Mark(attributes)) => {
                        Some((context.as_str(), c.sid.as_str(), attributes))
                    }
                    _ => None,
                }
            })
            .collect();
        let marked = self.each(&to_mark, |(context, sid, attributes)| {
            self.mark(context, sid, attributes, deadline)
        });
        let left = self.each(&look.to_leave, |m| self.leave(identity, m, deadline));
        let (user, entered, marked, left, reassigned) =
            tokio::join!(user, entered, marked, left, reassigned);
        left?;
        reassigned?;
        let entered = entered?;
        changes.roles = changed_roles
            .iter()
            .map(|(context, _, role)| ((*context).to_owned(), *role))
            .collect();
        changes.user_created = user? || (!look.user_exists && !work.is_empty());
        changes.left = look
            .to_leave
            .iter()
            .filter_map(|m| m.unique_name.clone())
            .collect();
        for ((context, _), entry) in work.iter().zip(&entered) {
            changes.conversations_created += usize::from(entry.created);
            changes.conversations_adopted += usize::from(entry.adopted);
            if entry.joined {
                changes.joined.push((*context).to_owned());
                let role = role_in(wanted, context);
                if role != Role::Member {
                    changes.roles.push(((*context).to_owned(), role));
                }
            }
        }
        changes.conversations_adopted += marked?.into_iter().filter(|m| *m).count();
        Ok(changes)
    }

    /// A missing conversation, made with the user in it in one request; when another request
    /// made it meanwhile, the one it made, entered.
    async fn create_with(
        &self,
        identity: &str,
        context: &str,
        role: Option<&str>,
        deadline: Instant,
    ) -> Result<Entry> {
        let attributes = managed_attributes(context, None, self.ownership.stack.as_deref());
        match self
            .api
            .create_conversation_with_participant(
                context,
                context,
                &attributes,
                identity,
                role,
                deadline,
            )
            .await
        {
            Ok(_) => Ok(Entry {
                created: true,
                adopted: false,
                joined: true,
            }),
            Err(e) if e.has_code(&[CONVERSATION_EXISTS, CONFLICTING_MODIFICATION]) => {
                let (conversation, _) = self.ensure_conversation(context, deadline).await?;
                self.claim(context, &conversation)?;
                self.enter(identity, context, &conversation, role, deadline)
                    .await
            }
            Err(e) => Err(step_failed(
                &format!("creating the conversation of context {context} with {identity} in it"),
                e,
            )),
        }
    }

    /// Joins an existing conversation, marking it when it is adopted.
    async fn enter(
        &self,
        identity: &str,
        context: &str,
        conversation: &Conversation,
        role: Option<&str>,
        deadline: Instant,
    ) -> Result<Entry> {
        let mark = async {
            match self.claim(context, conversation)? {
                Claim::Mark(attributes) => {
                    self.mark(context, &conversation.sid, &attributes, deadline)
                        .await
                }
                _ => Ok(false),
            }
        };
        let join = self.join(identity, context, &conversation.sid, role, deadline);
        let (adopted, joined) = tokio::join!(mark, join);
        Ok(Entry {
            created: false,
            adopted: adopted?,
            joined: joined?,
        })
    }

    /// Runs `step` for every item, at most `concurrency` at once, and answers every result
    /// in order or the first failure once all have ended (so that none is cut off midway).
    async fn each<'a, T, R, F, Fut>(&self, items: &'a [T], step: F) -> Result<Vec<R>>
    where
        F: Fn(&'a T) -> Fut,
        Fut: Future<Output = Result<R>>,
    {
        // Made first, so that the stream holds plain futures rather than a closure over
        // borrowed items (which the compiler cannot prove Send for every lifetime).
        let steps: Vec<Fut> = items.iter().map(step).collect();
        let results: Vec<Result<R>> = stream::iter(steps)
            .buffered(self.options.concurrency.max(1))
            .collect()
            .await;
        let failures = results.iter().filter(|r| r.is_err()).count();
        let mut values = Vec::with_capacity(results.len());
        for result in results {
            match result {
                Ok(v) => values.push(v),
                Err(mut e) if failures > 1 => {
                    e.message
                        .push_str(&format!(" ({} other steps failed too.)", failures - 1));
                    return Err(e);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(values)
    }

    /// Creates something, or finds the one a racing request made. A create answered
    /// "already exists" (`exists` says which answers mean that) ends with `find`; when the
    /// winner is not visible yet (its create still under way), it waits and tries again.
    /// With `look_after_any_error`, other failures also `find` before failing, for Twilio's
    /// re-add glitch. Answers the thing and whether this call made it.
    async fn create_or_find<T, C, CF, F, FF>(
        &self,
        step: &str,
        deadline: Instant,
        exists: impl Fn(&TwilioError) -> bool,
        look_after_any_error: bool,
        create: C,
        find: F,
    ) -> Result<(T, bool)>
    where
        C: Fn() -> CF,
        CF: Future<Output = std::result::Result<T, TwilioError>>,
        F: Fn() -> FF,
        FF: Future<Output = std::result::Result<Option<T>, TwilioError>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let error = match create().await {
                Ok(made) => return Ok((made, true)),
                Err(e) => e,
            };
            let already = exists(&error);
            if !already && !look_after_any_error {
                return Err(step_failed(step, error));
            }
            match find().await {
                Ok(Some(found)) => return Ok((found, !already)),
                Ok(None) if already => {}
                Ok(None) => return Err(step_failed(step, error)),
                // The create's own failure says more, unless it was only "already exists".
                Err(fetch) => return Err(step_failed(step, if already { fetch } else { error })),
            }
            if !self.pause(attempt, deadline).await {
                return Err(step_failed(step, error));
            }
        }
    }

    /// Waits before trying a step again; false when the budget has no room for it.
    async fn pause(&self, attempt: u32, deadline: Instant) -> bool {
        let delay = self.api.backoff(attempt);
        if Instant::now() + delay >= deadline {
            return false;
        }
        tokio::time::sleep(delay).await;
        true
    }

    /// Whether the user had to be created.
    async fn ensure_user(&self, identity: &str, deadline: Instant) -> Result<bool> {
        self.create_or_find(
            &format!("creating the Twilio user {identity}"),
            deadline,
            |e| e.has_code(&[USER_EXISTS]) || e.status == Some(409),
            false,
            || self.api.create_user(identity, deadline),
            || self.api.fetch_user(identity, deadline),
        )
        .await
        .map(|(_, created)| created)
    }

    /// The context's conversation, and whether it had to be created. 50391 means a create
    /// of the same unique name is still under way.
    async fn ensure_conversation(
        &self,
        context: &str,
        deadline: Instant,
    ) -> Result<(Conversation, bool)> {
        let attributes = managed_attributes(context, None, self.ownership.stack.as_deref());
        self.create_or_find(
            &format!("creating the conversation of context {context}"),
            deadline,
            |e| e.has_code(&[CONVERSATION_EXISTS, CONFLICTING_MODIFICATION]),
            false,
            || {
                self.api
                    .create_conversation(context, context, &attributes, deadline)
            },
            || self.api.fetch_conversation(context, deadline),
        )
        .await
    }

    /// Whether the user was added now (false: it already was a participant).
    async fn join(
        &self,
        identity: &str,
        context: &str,
        conversation_sid: &str,
        role: Option<&str>,
        deadline: Instant,
    ) -> Result<bool> {
        let step = format!("adding {identity} to the conversation of context {context}");
        let (_, joined) = self
            .create_or_find(
                &step,
                deadline,
                |e| e.has_code(&[PARTICIPANT_EXISTS]),
                true,
                || {
                    self.api
                        .add_participant(conversation_sid, identity, role, deadline)
                },
                || {
                    self.api
                        .fetch_participant(conversation_sid, identity, deadline)
                },
            )
            .await?;
        // Added by a racing request, in whatever role it gave: this one's, made sure.
        if !joined && let Some(role) = role {
            self.api
                .set_participant_role(conversation_sid, identity, role, deadline)
                .await
                .map_err(|e| step_failed(&step, e))?;
        }
        Ok(joined)
    }

    /// The conversation roles' SIDs, looked up once per process.
    async fn role_sids(&self, deadline: Instant) -> Result<&RoleSids> {
        use super::service_setup::{MODERATOR_ROLE, PARTICIPANT_ROLE, READER_ROLE};
        self.role_sids
            .get_or_try_init(|| async {
                let roles = self
                    .api
                    .roles(deadline)
                    .await
                    .map_err(|e| step_failed("listing the service's roles", e))?;
                let sid = |name: &str| {
                    roles
                        .iter()
                        .find(|r| r.friendly_name == name && r.kind == "conversation")
                        .map(|r| r.sid.clone())
                };
                match (sid(PARTICIPANT_ROLE), sid(READER_ROLE), sid(MODERATOR_ROLE)) {
                    (Some(member), Some(reader), Some(moderator)) => Ok(RoleSids {
                        member,
                        reader,
                        moderator,
                    }),
                    _ => Err(ChatError::internal(
                        "The conversation roles for readers and moderators are missing at Twilio: run chatctl configure-twilio.",
                    )),
                }
            })
            .await
    }

    async fn leave(
        &self,
        identity: &str,
        membership: &UserConversation,
        deadline: Instant,
    ) -> Result<()> {
        let name = membership
            .unique_name
            .as_deref()
            .unwrap_or(&membership.conversation_sid);
        let step = || format!("removing {identity} from the conversation of context {name}");
        let participant_sid = match &membership.participant_sid {
            Some(sid) => sid.clone(),
            None => match self
                .api
                .fetch_participant(&membership.conversation_sid, identity, deadline)
                .await
            {
                Ok(Some(p)) => p.sid,
                Ok(None) => return Ok(()),
                Err(e) => return Err(step_failed(&step(), e)),
            },
        };
        self.api
            .remove_participant(&membership.conversation_sid, &participant_sid, deadline)
            .await
            .map_err(|e| step_failed(&step(), e))
    }

    /// Whether a conversation is this deployment's: marked by the product, and by this
    /// stack or (marked before stacks were) by none. Only those are ever left.
    fn owns(&self, attributes: Option<&str>) -> bool {
        let Some(Value::Object(a)) = attributes.and_then(|a| serde_json::from_str(a).ok()) else {
            return false;
        };
        a.get("managedBy").and_then(Value::as_str) == Some(MANAGED_BY)
            && match a.get("stack") {
                None => true,
                Some(stack) => stack.as_str() == self.ownership.stack.as_deref(),
            }
    }

    /// What may be done with `conversation`, found under `context`'s name: refused with a
    /// `Conflict` naming the context when it is not ours to take.
    fn claim(&self, context: &str, conversation: &Conversation) -> Result<Claim> {
        let claim = claim(&self.ownership, context, conversation.attributes.as_deref());
        if claim == Claim::Refused {
            tracing::warn!(context, conversation = %conversation.sid, "conversation not ours; not adopted");
            return Err(ChatError::conflict(format!(
                "The conversation of context {context} belongs to another product or deployment \
                 on this Twilio service, so it is not taken over. An operator can allow taking \
                 it over (adoptConversations) or use another context name."
            )));
        }
        Ok(claim)
    }

    /// Puts this deployment's mark on a conversation.
    async fn mark(
        &self,
        context: &str,
        sid: &str,
        attributes: &str,
        deadline: Instant,
    ) -> Result<bool> {
        self.api
            .update_conversation_attributes(sid, attributes, deadline)
            .await
            .map(|_| true)
            .map_err(|e| {
                step_failed(
                    &format!("marking the conversation of context {context} as managed"),
                    e,
                )
            })
    }
}

/// Ours as it is; ours or ours to take (with the attributes to mark it with); or refused.
fn claim(ownership: &Ownership, context: &str, attributes: Option<&str>) -> Claim {
    let text = attributes
        .map(str::trim)
        .filter(|a| !a.is_empty() && *a != "null" && *a != "{}");
    let Some(text) = text else {
        return match ownership.adoption {
            Adoption::Never => Claim::Refused,
            _ => Claim::Mark(managed_attributes(
                context,
                None,
                ownership.stack.as_deref(),
            )),
        };
    };
    let Ok(Value::Object(others)) = serde_json::from_str::<Value>(text) else {
        return Claim::Refused;
    };
    let ours = others.get("managedBy").and_then(Value::as_str) == Some(MANAGED_BY);
    let stack = others.get("stack").map(|s| s.as_str());
    match (ours, stack) {
        (true, Some(stack)) if stack == ownership.stack.as_deref() => Claim::Owned,
        // Another deployment's.
        (true, Some(_)) => Claim::Refused,
        // Marked before stacks were: ours, and now with the stack.
        (true, None) if ownership.stack.is_none() => Claim::Owned,
        (true, None) => Claim::Mark(managed_attributes(
            context,
            Some(others),
            ownership.stack.as_deref(),
        )),
        (false, _) if ownership.adoption == Adoption::Any => Claim::Mark(managed_attributes(
            context,
            Some(others),
            ownership.stack.as_deref(),
        )),
        (false, _) => Claim::Refused,
    }
}

fn flight_key(identity: &str, sorted_contexts: &[&str]) -> String {
    let mut key = String::with_capacity(
        identity.len() + sorted_contexts.iter().map(|c| c.len() + 1).sum::<usize>(),
    );
    key.push_str(identity);
    for context in sorted_contexts {
        key.push('\n');
        key.push_str(context);
    }
    key
}

/// The attributes of a conversation this product manages, for deployment `stack`.
pub fn managed_attributes(
    context: &str,
    others: Option<Map<String, Value>>,
    stack: Option<&str>,
) -> String {
    let mut attributes = others.unwrap_or_default();
    attributes.insert("managedBy".into(), Value::from(MANAGED_BY));
    attributes.insert("context".into(), Value::from(context));
    if let Some(stack) = stack {
        attributes.insert("stack".into(), Value::from(stack));
    }
    Value::Object(attributes).to_string()
}

fn step_failed(step: &str, error: TwilioError) -> ChatError {
    tracing::error!(step, error = %error, "Twilio provisioning step failed");
    ChatError::internal(format!(
        "Setting up chat failed while {step} ({error}). Nothing was left half-done that trying \
         again will not finish; try again shortly."
    ))
}

/// The contexts of these conversations (their unique names), sorted.
fn context_names(conversations: &[UserConversation]) -> Vec<String> {
    let mut names: Vec<String> = conversations
        .iter()
        .filter_map(|m| m.unique_name.clone())
        .collect();
    names.sort_unstable();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours(adoption: Adoption) -> Ownership {
        Ownership {
            stack: Some("chat-prod".into()),
            adoption,
            reopen_archived: false,
        }
    }

    fn marked(claim: Claim) -> Value {
        match claim {
            Claim::Mark(attributes) => serde_json::from_str(&attributes).unwrap(),
            other => panic!("not marked: {other:?}"),
        }
    }

    #[test]
    fn only_what_the_old_integration_made_is_adopted_by_default() {
        let default = ours(Adoption::default());
        for empty in [None, Some(""), Some("{}"), Some("null")] {
            let value = marked(claim(&default, "general", empty));
            assert_eq!(value["managedBy"], MANAGED_BY);
            assert_eq!(value["context"], "general");
            assert_eq!(value["stack"], "chat-prod");
            assert_eq!(
                claim(&ours(Adoption::Never), "general", empty),
                Claim::Refused
            );
        }
        // Another product's room.
        for foreign in [
            r#"{"topic":"aid"}"#,
            r#"{"managedBy":"someone-else"}"#,
            "not json",
            "[1]",
        ] {
            assert_eq!(
                claim(&default, "general", Some(foreign)),
                Claim::Refused,
                "{foreign}"
            );
        }
        // Taken over only when the operator says so, keeping its attributes.
        let value = marked(claim(
            &ours(Adoption::Any),
            "general",
            Some(r#"{"topic":"aid"}"#),
        ));
        assert_eq!(value["topic"], "aid");
        assert_eq!(value["stack"], "chat-prod");
        assert_eq!(
            claim(&ours(Adoption::Any), "general", Some("[1]")),
            Claim::Refused
        );
    }

    #[test]
    fn conversations_carry_the_stack_and_another_deployments_are_refused() {
        let mine = managed_attributes("general", None, Some("chat-prod"));
        let theirs = managed_attributes("general", None, Some("chat-staging"));
        let before_stacks = managed_attributes("general", None, None);
        for adoption in [Adoption::Never, Adoption::Unmarked, Adoption::Any] {
            assert_eq!(claim(&ours(adoption), "general", Some(&mine)), Claim::Owned);
            assert_eq!(
                claim(&ours(adoption), "general", Some(&theirs)),
                Claim::Refused
            );
            // Marked before stacks were: ours, and it gains the stack.
            assert_eq!(
                marked(claim(&ours(adoption), "general", Some(&before_stacks)))["stack"],
                "chat-prod"
            );
        }
        let local = Ownership::default();
        assert_eq!(claim(&local, "general", Some(&before_stacks)), Claim::Owned);
        assert_eq!(claim(&local, "general", Some(&mine)), Claim::Refused);
    }

    #[test]
    fn flight_keys_are_exact_because_names_hold_no_newline() {
        assert_eq!(flight_key("alex", &["a", "b"]), "alex\na\nb");
        assert!(crate::names::check_identity("a\nb").is_err());
        assert!(crate::names::check_context("b\nc").is_err());
    }
}
