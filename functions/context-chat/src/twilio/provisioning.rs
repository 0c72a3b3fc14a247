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

/// The `managedBy` attribute of the conversations this product made or adopted; only those
/// are ever left on a user's behalf.
pub const MANAGED_BY: &str = "context-chat";

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
    pub joined: usize,
    /// The contexts whose conversations the identity was removed from.
    pub left: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provisioned {
    /// This process provisioned the same identity and contexts a short while ago.
    Remembered,
    /// Twilio was asked, and now matches the token.
    Checked(Changes),
}

/// What a process remembers of one identity: the contexts it last provisioned, until when.
struct Remembered {
    contexts: Vec<String>,
    until: Instant,
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

type InFlight = Shared<BoxFuture<'static, Result<Changes>>>;

pub struct Provisioner {
    api: Arc<ConversationsApi>,
    options: ProvisioningOptions,
    /// By identity: the last contexts provisioned for it. Only the latest set counts, so
    /// a token with other contexts is never answered from memory of an older one.
    remembered: Cache<String, Arc<Remembered>, RememberedWeight>,
    /// One provisioning per (identity, contexts) at a time; others wait for its outcome.
    in_flight: Mutex<HashMap<String, InFlight>>,
}

impl Provisioner {
    pub fn new(api: Arc<ConversationsApi>, options: ProvisioningOptions) -> Self {
        Self {
            api,
            options,
            remembered: Cache::with_weighter(4096, REMEMBERED_BYTES, RememberedWeight),
            in_flight: Mutex::new(HashMap::new()),
        }
    }

    /// Makes Twilio match the token, unless this process did so for the same identity and
    /// contexts within `remember_for`. `contexts` are checked and free of repeats.
    pub async fn ensure(
        self: &Arc<Self>,
        identity: &str,
        contexts: &[String],
    ) -> Result<Provisioned> {
        let mut sorted: Vec<&str> = contexts.iter().map(String::as_str).collect();
        sorted.sort_unstable();
        if let Some(known) = self.remembered.get(identity)
            && known.until > Instant::now()
            && known
                .contexts
                .iter()
                .map(String::as_str)
                .eq(sorted.iter().copied())
        {
            return Ok(Provisioned::Remembered);
        }

        let key = flight_key(identity, &sorted);
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
                        let outcome = this.provision(&identity, &contexts).await;
                        if outcome.is_ok() {
                            let mut sorted = contexts;
                            sorted.sort_unstable();
                            this.remembered.insert(
                                identity,
                                Arc::new(Remembered {
                                    contexts: sorted,
                                    until: Instant::now() + this.options.remember_for,
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

    /// Forgets what this process remembers of an identity (tests, operators).
    pub fn forget(&self, identity: &str) {
        self.remembered.remove(identity);
    }

    /// At most three rounds of calls, each round's calls running side by side:
    /// look (the user's conversations, each context's conversation); create what is
    /// missing and leave what the token dropped; join.
    async fn provision(&self, identity: &str, contexts: &[String]) -> Result<Changes> {
        let deadline = Instant::now() + self.options.budget;
        let api = &self.api;
        let mut changes = Changes::default();

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
        let (memberships, lookups) = tokio::join!(memberships, lookups);
        let memberships = memberships?;
        let lookups = lookups?;

        let wanted: HashSet<&str> = contexts.iter().map(String::as_str).collect();
        let user_exists = memberships.is_some();
        let memberships = memberships.unwrap_or_default();
        let joined: HashSet<&str> = memberships
            .iter()
            .filter_map(|m| m.unique_name.as_deref())
            .filter(|name| wanted.contains(name))
            .collect();
        let to_leave: Vec<&UserConversation> = memberships
            .iter()
            .filter(|m| is_managed(m.attributes.as_deref()))
            .filter(|m| !m.unique_name.as_deref().is_some_and(|n| wanted.contains(n)))
            .collect();

        let user = async {
            if user_exists {
                Ok(false)
            } else {
                self.ensure_user(identity, deadline).await
            }
        };
        let missing: Vec<&str> = contexts
            .iter()
            .zip(&lookups)
            .filter(|(_, found)| found.is_none())
            .map(|(c, _)| c.as_str())
            .collect();
        let created = self.each(&missing, |context| {
            self.ensure_conversation(context, deadline)
        });
        let left = self.each(&to_leave, |m| self.leave(identity, m, deadline));
        let (user, created, left) = tokio::join!(user, created, left);
        changes.user_created = user?;
        left?;
        changes.left = to_leave
            .iter()
            .filter_map(|m| m.unique_name.clone())
            .collect();
        let mut created = created?.into_iter();
        let conversations: Vec<(&str, Conversation)> = contexts
            .iter()
            .zip(lookups)
            .filter_map(|(context, found)| {
                let conversation = match found {
                    Some(c) => c,
                    None => {
                        let (c, was_created) = created.next()?;
                        changes.conversations_created += usize::from(was_created);
                        c
                    }
                };
                Some((context.as_str(), conversation))
            })
            .collect();

        let to_join: Vec<&(&str, Conversation)> = conversations
            .iter()
            .filter(|(context, _)| !joined.contains(context))
            .collect();
        let to_adopt: Vec<&(&str, Conversation)> = conversations
            .iter()
            .filter(|(_, c)| !is_managed(c.attributes.as_deref()))
            .collect();
        let joins = self.each(&to_join, |(context, c)| {
            self.join(identity, context, &c.sid, deadline)
        });
        let adoptions = self.each(&to_adopt, |(context, c)| self.adopt(context, c, deadline));
        let (joins, adoptions) = tokio::join!(joins, adoptions);
        changes.joined = joins?.into_iter().filter(|j| *j).count();
        changes.conversations_adopted = adoptions?.into_iter().filter(|a| *a).count();
        Ok(changes)
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
        let attributes = managed_attributes(context, None);
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
        deadline: Instant,
    ) -> Result<bool> {
        self.create_or_find(
            &format!("adding {identity} to the conversation of context {context}"),
            deadline,
            |e| e.has_code(&[PARTICIPANT_EXISTS]),
            true,
            || {
                self.api
                    .add_participant(conversation_sid, identity, deadline)
            },
            || {
                self.api
                    .fetch_participant(conversation_sid, identity, deadline)
            },
        )
        .await
        .map(|(_, joined)| joined)
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

    /// Marks a conversation that has the context's unique name but not the product's mark
    /// (one the old integration made, say) as managed, keeping its other attributes.
    /// Attributes that are not a JSON object are left alone.
    async fn adopt(
        &self,
        context: &str,
        conversation: &Conversation,
        deadline: Instant,
    ) -> Result<bool> {
        let Some(attributes) = adopted_attributes(context, conversation.attributes.as_deref())
        else {
            tracing::warn!(
                context,
                "conversation attributes are not a JSON object; not marked as managed"
            );
            return Ok(false);
        };
        self.api
            .update_conversation_attributes(&conversation.sid, &attributes, deadline)
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

/// The attributes of a conversation this product manages.
pub fn managed_attributes(context: &str, others: Option<Map<String, Value>>) -> String {
    let mut attributes = others.unwrap_or_default();
    attributes.insert("managedBy".into(), Value::from(MANAGED_BY));
    attributes.insert("context".into(), Value::from(context));
    Value::Object(attributes).to_string()
}

fn adopted_attributes(context: &str, current: Option<&str>) -> Option<String> {
    let current = current
        .map(str::trim)
        .filter(|a| !a.is_empty() && *a != "null");
    let others = match current {
        None => Map::new(),
        Some(text) => match serde_json::from_str::<Value>(text).ok()? {
            Value::Object(map) => map,
            _ => return None,
        },
    };
    Some(managed_attributes(context, Some(others)))
}

/// Whether a conversation's attributes carry this product's mark.
pub fn is_managed(attributes: Option<&str>) -> bool {
    attributes
        .and_then(|a| serde_json::from_str::<Value>(a).ok())
        .is_some_and(|a| a.get("managedBy").and_then(Value::as_str) == Some(MANAGED_BY))
}

fn step_failed(step: &str, error: TwilioError) -> ChatError {
    tracing::error!(step, error = %error, "Twilio provisioning step failed");
    ChatError::internal(format!(
        "Setting up chat failed while {step} ({error}). Nothing was left half-done that trying \
         again will not finish; try again shortly."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn managed_conversations_are_told_apart_by_their_attributes() {
        assert!(is_managed(Some(&managed_attributes("general", None))));
        for other in [
            None,
            Some(""),
            Some("{}"),
            Some("not json"),
            Some(r#"{"managedBy":"someone-else"}"#),
            Some("[1]"),
        ] {
            assert!(!is_managed(other), "{other:?}");
        }
    }

    #[test]
    fn adoption_keeps_other_attributes_and_leaves_non_objects_alone() {
        let adopted =
            adopted_attributes("general", Some(r#"{"topic":"aid","context":"old"}"#)).unwrap();
        let value: Value = serde_json::from_str(&adopted).unwrap();
        assert_eq!(value["topic"], "aid");
        assert_eq!(value["context"], "general");
        assert_eq!(value["managedBy"], MANAGED_BY);
        assert!(adopted_attributes("general", None).is_some());
        assert!(adopted_attributes("general", Some("null")).is_some());
        assert!(adopted_attributes("general", Some("[1,2]")).is_none());
        assert!(adopted_attributes("general", Some("text")).is_none());
    }

    #[test]
    fn flight_keys_are_exact_because_names_hold_no_newline() {
        assert_eq!(flight_key("alex", &["a", "b"]), "alex\na\nb");
        assert!(crate::names::check_identity("a\nb").is_err());
        assert!(crate::names::check_context("b\nc").is_err());
    }
}
