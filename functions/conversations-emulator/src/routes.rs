//! Which resource answers which request: the Conversations API paths below
//! `/v1/Services/{IS…}` that the product uses, each handled in the file of its resource.

use axum::http::Method;
use axum::response::Response;

use crate::Emulator;
use crate::wire::{form, not_found};

impl Emulator {
    pub(crate) async fn route(
        &self,
        method: &Method,
        rest: &[&str],
        body: &[u8],
        query: &[(String, String)],
        webhook_enabled: bool,
        path: &str,
    ) -> Response {
        let form = form(body);
        let form = form.as_slice();
        match (method.as_str(), rest) {
            ("POST", ["Users"]) => self.create_user(form).await,
            ("GET", ["Users", user]) => self.fetch_user(user, path),
            ("GET", ["Users", user, "Conversations"]) => self.user_conversations(user, query, path),
            ("POST", ["Conversations"]) => self.create_conversation(form).await,
            ("POST", ["ConversationWithParticipants"]) => {
                self.create_conversation_with_participants(form).await
            }
            ("GET", ["Conversations", c]) => self.fetch_conversation(c, path),
            ("POST", ["Conversations", c]) => self.update_conversation(c, form, path),
            ("GET", ["Conversations", c, "Participants"]) => self.list_participants(c, path),
            ("POST", ["Conversations", c, "Participants"]) => {
                self.add_participant(c, form, path).await
            }
            ("GET", ["Conversations", c, "Participants", p]) => self.fetch_participant(c, p, path),
            ("POST", ["Conversations", c, "Participants", p]) => {
                self.update_participant(c, p, form, path)
            }
            ("DELETE", ["Conversations", c, "Participants", p]) => {
                self.remove_participant(c, p, path)
            }
            ("GET", ["Conversations", c, "Messages"]) => self.list_messages(c, query, path),
            ("POST", ["Conversations", c, "Messages"]) => {
                self.create_message(c, form, webhook_enabled, path).await
            }
            ("GET", ["Conversations", c, "Messages", m]) => self.fetch_message(c, m, path),
            ("DELETE", ["Conversations", c, "Messages", m]) => self.delete_message(c, m, path),
            ("GET", ["Roles"]) => self.list_roles(path),
            ("POST", ["Roles"]) => self.create_role(form),
            ("POST", ["Roles", role]) => self.update_role(role, form, path),
            ("GET", ["Configuration"]) => self.fetch_configuration(),
            ("POST", ["Configuration"]) => self.update_configuration(form),
            ("GET", ["Configuration", "Webhooks"]) => self.fetch_webhooks(),
            ("POST", ["Configuration", "Webhooks"]) => self.update_webhooks(form),
            _ => not_found(path),
        }
    }
}
