//! The Conversation Service as this product needs it (`chatctl configure-twilio`): four
//! roles (a user's, a participant's, a reader's and a moderator's), the default roles, reachability (so that the notifier knows who is online), and
//! the post-event webhook with `onMessageAdded`. Applying it twice changes nothing the
//! second time; a dry run reads and reports without writing.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Instant;

use super::conversations::{ConversationsApi, Role};
use super::rest::{Form, TwilioError};
use crate::error::{ChatError, Result};

/// The service role every user gets. Users may not create or join conversations on their
/// own: access follows the context token.
pub const USER_ROLE: &str = "context-chat user";
pub const USER_PERMISSIONS: &[&str] = &["editOwnUserInfo"];

/// The conversation role every participant gets: talk, manage their own messages and
/// notification level; no adding, removing or leaving (memberships follow the token).
pub const PARTICIPANT_ROLE: &str = "context-chat participant";
pub const PARTICIPANT_PERMISSIONS: &[&str] = &[
    "sendMessage",
    "sendMediaMessage",
    "editOwnMessage",
    "editOwnMessageAttributes",
    "deleteOwnMessage",
    "editOwnParticipantAttributes",
    "editNotificationLevel",
];

/// A reader's conversation role (a token's `roles` claim, adr/004): reads and keeps its
/// notification level; posts nothing.
pub const READER_ROLE: &str = "context-chat reader";
pub const READER_PERMISSIONS: &[&str] = &["editNotificationLevel"];

/// A moderator's: a participant's, and may delete anyone's message and remove a participant.
pub const MODERATOR_ROLE: &str = "context-chat moderator";
pub const MODERATOR_PERMISSIONS: &[&str] = &[
    "sendMessage",
    "sendMediaMessage",
    "editOwnMessage",
    "editOwnMessageAttributes",
    "deleteOwnMessage",
    "editOwnParticipantAttributes",
    "editNotificationLevel",
    "deleteAnyMessage",
    "removeParticipant",
];

/// The post-event the notifier needs.
pub const WEBHOOK_FILTERS: &[&str] = &["onMessageAdded"];

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Already as it should be.
    Unchanged(String),
    /// Changed now.
    Changed(String),
    /// Would change; a dry run.
    WouldChange(String),
    /// Not looked at, and why.
    Skipped(String),
}

impl Step {
    pub fn is_change(&self) -> bool {
        matches!(self, Step::Changed(_) | Step::WouldChange(_))
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Unchanged(s) => write!(f, "ok       {s}"),
            Step::Changed(s) => write!(f, "changed  {s}"),
            Step::WouldChange(s) => write!(f, "would    {s}"),
            Step::Skipped(s) => write!(f, "skipped  {s}"),
        }
    }
}

pub struct Setup<'a> {
    pub api: &'a ConversationsApi,
    /// Where Twilio posts `onMessageAdded`; `None` leaves the webhook as it is.
    pub webhook_url: Option<&'a str>,
    pub dry_run: bool,
    pub deadline: Instant,
}

impl Setup<'_> {
    /// Brings the service to the product's configuration and reports each step.
    pub async fn apply(&self) -> Result<Vec<Step>> {
        let mut report = Vec::new();
        let roles = self
            .api
            .roles(self.deadline)
            .await
            .map_err(|e| failed("listing the service's roles", e))?;
        let user_role = self
            .role(&roles, USER_ROLE, "service", USER_PERMISSIONS, &mut report)
            .await?;
        let participant_role = self
            .role(
                &roles,
                PARTICIPANT_ROLE,
                "conversation",
                PARTICIPANT_PERMISSIONS,
                &mut report,
            )
            .await?;
        for (name, permissions) in [
            (READER_ROLE, READER_PERMISSIONS),
            (MODERATOR_ROLE, MODERATOR_PERMISSIONS),
        ] {
            self.role(&roles, name, "conversation", permissions, &mut report)
                .await?;
        }
        self.configuration(
            user_role.as_deref(),
            participant_role.as_deref(),
            &mut report,
        )
        .await?;
        self.webhooks(&mut report).await?;
        Ok(report)
    }

    /// The role's SID (`None` when a dry run would create it).
    async fn role(
        &self,
        roles: &[Role],
        name: &str,
        kind: &str,
        permissions: &[&str],
        report: &mut Vec<Step>,
    ) -> Result<Option<String>> {
        let wanted: BTreeSet<&str> = permissions.iter().copied().collect();
        let listed = permissions.join(", ");
        let existing = roles
            .iter()
            .find(|r| r.friendly_name == name && r.kind == kind);
        match existing {
            None if self.dry_run => {
                report.push(Step::WouldChange(format!(
                    "create the {kind} role \"{name}\" with {listed}"
                )));
                Ok(None)
            }
            None => {
                let role = self
                    .api
                    .create_role(name, kind, permissions, self.deadline)
                    .await
                    .map_err(|e| failed(&format!("creating the role \"{name}\""), e))?;
                report.push(Step::Changed(format!(
                    "created the {kind} role \"{name}\" ({}) with {listed}",
                    role.sid
                )));
                Ok(Some(role.sid))
            }
            Some(role)
                if role
                    .permissions
                    .iter()
                    .map(String::as_str)
                    .collect::<BTreeSet<_>>()
                    == wanted =>
            {
                report.push(Step::Unchanged(format!(
                    "the {kind} role \"{name}\" ({}) has {listed}",
                    role.sid
                )));
                Ok(Some(role.sid.clone()))
            }
            Some(role) => {
                let text = format!(
                    "the permissions of the role \"{name}\" ({}): {} → {listed}",
                    role.sid,
                    role.permissions.join(", ")
                );
                if self.dry_run {
                    report.push(Step::WouldChange(format!("set {text}")));
                } else {
                    self.api
                        .update_role(&role.sid, permissions, self.deadline)
                        .await
                        .map_err(|e| failed(&format!("updating the role \"{name}\""), e))?;
                    report.push(Step::Changed(format!("set {text}")));
                }
                Ok(Some(role.sid.clone()))
            }
        }
    }

    async fn configuration(
        &self,
        user_role: Option<&str>,
        participant_role: Option<&str>,
        report: &mut Vec<Step>,
    ) -> Result<()> {
        let current = self
            .api
            .configuration(self.deadline)
            .await
            .map_err(|e| failed("reading the service configuration", e))?;
        let right = user_role.is_some()
            && participant_role.is_some()
            && current.default_chat_service_role_sid.as_deref() == user_role
            && current.default_conversation_role_sid.as_deref() == participant_role
            && current.default_conversation_creator_role_sid.as_deref() == participant_role
            && current.reachability_enabled;
        let text = format!(
            "default roles \"{USER_ROLE}\" (service) and \"{PARTICIPANT_ROLE}\" (conversation, \
             creator), reachability on"
        );
        if right {
            report.push(Step::Unchanged(text));
            return Ok(());
        }
        let (Some(user_role), Some(participant_role), false) =
            (user_role, participant_role, self.dry_run)
        else {
            report.push(Step::WouldChange(format!("set {text}")));
            return Ok(());
        };
        let form = Form::new()
            .with("DefaultChatServiceRoleSid", user_role)
            .with("DefaultConversationRoleSid", participant_role)
            .with("DefaultConversationCreatorRoleSid", participant_role)
            .with("ReachabilityEnabled", "true");
        self.api
            .update_configuration(form, self.deadline)
            .await
            .map_err(|e| failed("updating the service configuration", e))?;
        report.push(Step::Changed(format!("set {text}")));
        Ok(())
    }

    async fn webhooks(&self, report: &mut Vec<Step>) -> Result<()> {
        let current = self
            .api
            .webhooks(self.deadline)
            .await
            .map_err(|e| failed("reading the service webhooks", e))?;
        let Some(url) = self.webhook_url else {
            report.push(Step::Skipped(format!(
                "the post-event webhook: no --webhook-url given (it is {})",
                current.post_webhook_url.as_deref().unwrap_or("not set")
            )));
            return Ok(());
        };
        // Filters someone else added stay; ours are added.
        let mut filters: Vec<&str> = current.filters.iter().map(String::as_str).collect();
        for filter in WEBHOOK_FILTERS {
            if !filters.contains(filter) {
                filters.push(filter);
            }
        }
        let right = current.post_webhook_url.as_deref() == Some(url)
            && current
                .method
                .as_deref()
                .is_some_and(|m| m.eq_ignore_ascii_case("POST"))
            && filters.len() == current.filters.len();
        let text = format!("post-event webhook POST {url} with {}", filters.join(", "));
        if right {
            report.push(Step::Unchanged(text));
        } else if self.dry_run {
            report.push(Step::WouldChange(format!("set the {text}")));
        } else {
            self.api
                .update_webhooks(url, &filters, self.deadline)
                .await
                .map_err(|e| failed("updating the service webhooks", e))?;
            report.push(Step::Changed(format!("set the {text}")));
        }
        Ok(())
    }
}

fn failed(step: &str, error: TwilioError) -> ChatError {
    ChatError::internal(format!("Configuring Twilio failed while {step}: {error}"))
}
