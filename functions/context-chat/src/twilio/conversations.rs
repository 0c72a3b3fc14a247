//! The Conversations v1 resources Context Chat uses (`shared/twilio/twilio.md` section 2),
//! each call one request (pages followed where a list has them). A missing resource is
//! `Ok(None)`, not an error: callers decide what absence means.

use std::time::Instant;

use serde::Deserialize;
use url::Url;

use super::rest::{Form, RestClient, TwilioError};

#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub sid: String,
    pub identity: String,
    /// Known only on fetch, and only when the service has reachability on.
    #[serde(default)]
    pub is_online: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Conversation {
    pub sid: String,
    #[serde(default)]
    pub unique_name: Option<String>,
    /// Its title (`updateContext`); the context, as the product makes it.
    #[serde(default)]
    pub friendly_name: Option<String>,
    #[serde(default)]
    pub attributes: Option<String>,
}

/// A message, as an archive keeps it.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct Message {
    pub sid: String,
    pub index: u64,
    #[serde(default)]
    pub author: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub attributes: Option<String>,
    #[serde(default)]
    pub date_created: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Participant {
    pub sid: String,
    #[serde(default)]
    pub identity: Option<String>,
    /// The last message the participant's client reported read; `None` before any.
    #[serde(default)]
    pub last_read_message_index: Option<u64>,
}

/// A conversation a user is a participant of, as the user's conversation list shows it.
#[derive(Debug, Clone, Deserialize)]
pub struct UserConversation {
    pub conversation_sid: String,
    #[serde(default)]
    pub participant_sid: Option<String>,
    #[serde(default)]
    pub unique_name: Option<String>,
    /// The conversation's attributes.
    #[serde(default)]
    pub attributes: Option<String>,
    /// The messages after the participant's read horizon; `None` before the first read.
    #[serde(default)]
    pub unread_messages_count: Option<u64>,
    #[serde(default)]
    pub last_read_message_index: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Role {
    pub sid: String,
    pub friendly_name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub permissions: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ServiceConfiguration {
    #[serde(default)]
    pub default_chat_service_role_sid: Option<String>,
    #[serde(default)]
    pub default_conversation_role_sid: Option<String>,
    #[serde(default)]
    pub default_conversation_creator_role_sid: Option<String>,
    #[serde(default)]
    pub reachability_enabled: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct WebhookConfiguration {
    #[serde(default)]
    pub post_webhook_url: Option<String>,
    #[serde(default)]
    pub filters: Vec<String>,
    #[serde(default)]
    pub method: Option<String>,
}

#[derive(Deserialize)]
struct Page<T> {
    #[serde(
        rename = "conversations",
        alias = "roles",
        alias = "users",
        alias = "participants",
        alias = "messages"
    )]
    items: Vec<T>,
    #[serde(default)]
    meta: Option<PageMeta>,
}

#[derive(Deserialize)]
struct PageMeta {
    #[serde(default)]
    next_page_url: Option<String>,
}

/// Twilio's largest page for user conversations and roles.
const PAGE_SIZE: &str = "50";
/// A user is in at most 1000 conversations; this bounds a misbehaving pager.
const MAX_PAGES: usize = 40;
/// An archive reads up to 100,000 messages of a room.
const MAX_MESSAGE_PAGES: usize = 1000;

/// Absence as `None`; any 404 counts, whatever its code (20404, 50350, 50432, …).
fn found<T>(result: Result<T, TwilioError>) -> Result<Option<T>, TwilioError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// One Conversation Service.
pub struct ConversationsApi {
    rest: RestClient,
}

impl ConversationsApi {
    pub fn new(rest: RestClient) -> Self {
        Self { rest }
    }

    /// The client's backoff, for callers that wait before trying a step again.
    pub(crate) fn backoff(&self, attempt: u32) -> std::time::Duration {
        self.rest.backoff(attempt)
    }

    pub async fn fetch_user(
        &self,
        identity: &str,
        deadline: Instant,
    ) -> Result<Option<User>, TwilioError> {
        found(
            self.rest
                .get(self.rest.url(&["Users", identity]), deadline)
                .await,
        )
    }

    pub async fn create_user(
        &self,
        identity: &str,
        deadline: Instant,
    ) -> Result<User, TwilioError> {
        let form = Form::new().with("Identity", identity);
        self.rest
            .post(self.rest.url(&["Users"]), form, deadline)
            .await
    }

    /// Every conversation the user is in, or `None` when there is no such user.
    pub async fn user_conversations(
        &self,
        identity: &str,
        deadline: Instant,
    ) -> Result<Option<Vec<UserConversation>>, TwilioError> {
        let mut url = self.rest.url(&["Users", identity, "Conversations"]);
        url.query_pairs_mut().append_pair("PageSize", PAGE_SIZE);
        let Some(first) = found(self.rest.get::<Page<UserConversation>>(url, deadline).await)?
        else {
            return Ok(None);
        };
        self.rest_of_pages(first, deadline).await.map(Some)
    }

    pub async fn fetch_conversation(
        &self,
        unique_name: &str,
        deadline: Instant,
    ) -> Result<Option<Conversation>, TwilioError> {
        found(
            self.rest
                .get(self.rest.url(&["Conversations", unique_name]), deadline)
                .await,
        )
    }

    pub async fn create_conversation(
        &self,
        unique_name: &str,
        friendly_name: &str,
        attributes: &str,
        deadline: Instant,
    ) -> Result<Conversation, TwilioError> {
        let form = Form::new()
            .with("UniqueName", unique_name)
            .with("FriendlyName", friendly_name)
            .with("Attributes", attributes);
        self.rest
            .post(self.rest.url(&["Conversations"]), form, deadline)
            .await
    }

    /// A conversation made with one participant in the same request
    /// (`ConversationWithParticipants`): Twilio makes the user if it is new.
    pub async fn create_conversation_with_participant(
        &self,
        unique_name: &str,
        friendly_name: &str,
        attributes: &str,
        identity: &str,
        role_sid: Option<&str>,
        deadline: Instant,
    ) -> Result<Conversation, TwilioError> {
        let participant = match role_sid {
            Some(role) => serde_json::json!({ "identity": identity, "role_sid": role }),
            None => serde_json::json!({ "identity": identity }),
        }
        .to_string();
        let form = Form::new()
            .with("UniqueName", unique_name)
            .with("FriendlyName", friendly_name)
            .with("Attributes", attributes)
            .with("Participant", &participant);
        self.rest
            .post(
                self.rest.url(&["ConversationWithParticipants"]),
                form,
                deadline,
            )
            .await
    }

    pub async fn update_conversation_attributes(
        &self,
        conversation_sid: &str,
        attributes: &str,
        deadline: Instant,
    ) -> Result<Conversation, TwilioError> {
        let form = Form::new().with("Attributes", attributes);
        self.update_conversation(conversation_sid, form, deadline)
            .await
    }

    /// The conversation's title (`FriendlyName`).
    pub async fn rename_conversation(
        &self,
        conversation_sid: &str,
        title: &str,
        deadline: Instant,
    ) -> Result<Conversation, TwilioError> {
        let form = Form::new().with("FriendlyName", title);
        self.update_conversation(conversation_sid, form, deadline)
            .await
    }

    async fn update_conversation(
        &self,
        conversation_sid: &str,
        form: Form,
        deadline: Instant,
    ) -> Result<Conversation, TwilioError> {
        let url = self.rest.url(&["Conversations", conversation_sid]);
        self.rest.post(url, form, deadline).await
    }

    pub async fn fetch_participant(
        &self,
        conversation_sid: &str,
        identity: &str,
        deadline: Instant,
    ) -> Result<Option<Participant>, TwilioError> {
        let url = self
            .rest
            .url(&["Conversations", conversation_sid, "Participants", identity]);
        found(self.rest.get(url, deadline).await)
    }

    /// Every participant of a conversation, or `None` when there is no such conversation.
    pub async fn participants(
        &self,
        conversation: &str,
        deadline: Instant,
    ) -> Result<Option<Vec<Participant>>, TwilioError> {
        let mut url = self
            .rest
            .url(&["Conversations", conversation, "Participants"]);
        url.query_pairs_mut().append_pair("PageSize", PAGE_SIZE);
        let Some(first) = found(self.rest.get::<Page<Participant>>(url, deadline).await)? else {
            return Ok(None);
        };
        self.rest_of_pages(first, deadline).await.map(Some)
    }

    /// Every message of a conversation, oldest first (100 a page, up to 100,000), or `None`
    /// when there is no such conversation.
    pub async fn messages(
        &self,
        conversation: &str,
        deadline: Instant,
    ) -> Result<Option<Vec<Message>>, TwilioError> {
        let mut url = self.rest.url(&["Conversations", conversation, "Messages"]);
        url.query_pairs_mut()
            .append_pair("PageSize", "100")
            .append_pair("Order", "asc");
        let Some(first) = found(self.rest.get::<Page<Message>>(url, deadline).await)? else {
            return Ok(None);
        };
        self.pages_up_to(first, MAX_MESSAGE_PAGES, deadline)
            .await
            .map(Some)
    }

    /// Deleting a message that is already gone is success.
    pub async fn delete_message(
        &self,
        conversation_sid: &str,
        message_sid: &str,
        deadline: Instant,
    ) -> Result<(), TwilioError> {
        let url = self
            .rest
            .url(&["Conversations", conversation_sid, "Messages", message_sid]);
        found(self.rest.delete(url, deadline).await).map(drop)
    }

    /// Closes a conversation for good (`State=closed`) under a new unique name, so that its
    /// context's name is free for a new room; one request.
    pub async fn close_conversation(
        &self,
        conversation_sid: &str,
        archived_name: &str,
        deadline: Instant,
    ) -> Result<Conversation, TwilioError> {
        let form = Form::new()
            .with("UniqueName", archived_name)
            .with("State", "closed");
        self.update_conversation(conversation_sid, form, deadline)
            .await
    }

    /// With `role_sid`, in that conversation role; else the service's default one.
    pub async fn add_participant(
        &self,
        conversation_sid: &str,
        identity: &str,
        role_sid: Option<&str>,
        deadline: Instant,
    ) -> Result<Participant, TwilioError> {
        let url = self
            .rest
            .url(&["Conversations", conversation_sid, "Participants"]);
        let mut form = Form::new().with("Identity", identity);
        if let Some(role) = role_sid {
            form = form.with("RoleSid", role);
        }
        self.rest.post(url, form, deadline).await
    }

    /// A participant's conversation role, by identity.
    pub async fn set_participant_role(
        &self,
        conversation_sid: &str,
        identity: &str,
        role_sid: &str,
        deadline: Instant,
    ) -> Result<Participant, TwilioError> {
        let url = self
            .rest
            .url(&["Conversations", conversation_sid, "Participants", identity]);
        self.rest
            .post(url, Form::new().with("RoleSid", role_sid), deadline)
            .await
    }

    /// Removing a participant that is already gone is success.
    pub async fn remove_participant(
        &self,
        conversation_sid: &str,
        participant_sid: &str,
        deadline: Instant,
    ) -> Result<(), TwilioError> {
        let url = self.rest.url(&[
            "Conversations",
            conversation_sid,
            "Participants",
            participant_sid,
        ]);
        found(self.rest.delete(url, deadline).await).map(drop)
    }

    pub async fn roles(&self, deadline: Instant) -> Result<Vec<Role>, TwilioError> {
        let mut url = self.rest.url(&["Roles"]);
        url.query_pairs_mut().append_pair("PageSize", PAGE_SIZE);
        let first = self.rest.get::<Page<Role>>(url, deadline).await?;
        self.rest_of_pages(first, deadline).await
    }

    pub async fn create_role(
        &self,
        friendly_name: &str,
        kind: &str,
        permissions: &[&str],
        deadline: Instant,
    ) -> Result<Role, TwilioError> {
        let form = Form::new()
            .with("FriendlyName", friendly_name)
            .with("Type", kind)
            .with_all("Permission", permissions.iter().copied());
        self.rest
            .post(self.rest.url(&["Roles"]), form, deadline)
            .await
    }

    /// Replaces the role's whole permission set.
    pub async fn update_role(
        &self,
        role_sid: &str,
        permissions: &[&str],
        deadline: Instant,
    ) -> Result<Role, TwilioError> {
        let form = Form::new().with_all("Permission", permissions.iter().copied());
        self.rest
            .post(self.rest.url(&["Roles", role_sid]), form, deadline)
            .await
    }

    pub async fn configuration(
        &self,
        deadline: Instant,
    ) -> Result<ServiceConfiguration, TwilioError> {
        self.rest
            .get(self.rest.url(&["Configuration"]), deadline)
            .await
    }

    pub async fn update_configuration(
        &self,
        form: Form,
        deadline: Instant,
    ) -> Result<ServiceConfiguration, TwilioError> {
        self.rest
            .post(self.rest.url(&["Configuration"]), form, deadline)
            .await
    }

    pub async fn webhooks(&self, deadline: Instant) -> Result<WebhookConfiguration, TwilioError> {
        self.rest
            .get(self.rest.url(&["Configuration", "Webhooks"]), deadline)
            .await
    }

    pub async fn update_webhooks(
        &self,
        post_webhook_url: &str,
        filters: &[&str],
        deadline: Instant,
    ) -> Result<WebhookConfiguration, TwilioError> {
        let form = Form::new()
            .with("PostWebhookUrl", post_webhook_url)
            .with("Method", "POST")
            .with_all("Filters", filters.iter().copied());
        self.rest
            .post(
                self.rest.url(&["Configuration", "Webhooks"]),
                form,
                deadline,
            )
            .await
    }

    /// Follows `next_page_url` from a first page, but only to this service's own URLs.
    async fn rest_of_pages<T: serde::de::DeserializeOwned>(
        &self,
        first: Page<T>,
        deadline: Instant,
    ) -> Result<Vec<T>, TwilioError> {
        self.pages_up_to(first, MAX_PAGES, deadline).await
    }

    async fn pages_up_to<T: serde::de::DeserializeOwned>(
        &self,
        first: Page<T>,
        max_pages: usize,
        deadline: Instant,
    ) -> Result<Vec<T>, TwilioError> {
        let mut items = first.items;
        let mut next = first.meta.and_then(|m| m.next_page_url);
        let mut pages = 1;
        while let Some(link) = next.take() {
            let url = Url::parse(&link).ok().filter(|u| self.rest.is_own(u));
            let Some(url) = url else {
                tracing::warn!("Twilio's next page link points elsewhere; not followed");
                break;
            };
            if pages >= max_pages {
                tracing::warn!(pages, "stopped following Twilio's pages");
                break;
            }
            let page = self.rest.get::<Page<T>>(url, deadline).await?;
            pages += 1;
            items.extend(page.items);
            next = page.meta.and_then(|m| m.next_page_url);
        }
        Ok(items)
    }
}
