//! The service's own resources: roles, its configuration (default roles, reachability) and
//! its webhook configuration, as `chatctl configure-twilio` reads and writes them.

use axum::response::Response;
use serde_json::{Value, json};

use crate::Emulator;
use crate::state::RoleRec;
use crate::wire::{field, fields, json_response, not_found, twilio_error};

impl Emulator {
    pub(crate) fn list_roles(&self, path: &str) -> Response {
        let state = self.state();
        let roles: Vec<Value> = state.roles.iter().map(|r| self.role_json(r)).collect();
        json_response(
            200,
            json!({"roles": roles, "meta": self.meta(path, "roles", None)}),
        )
    }

    pub(crate) fn create_role(&self, form: &[(String, String)]) -> Response {
        let (Some(name), Some(kind)) = (field(form, "FriendlyName"), field(form, "Type")) else {
            return twilio_error(400, 20001, "Missing required parameter");
        };
        let role = RoleRec {
            sid: self.sid("RL"),
            friendly_name: name.into(),
            kind: kind.into(),
            permissions: fields(form, "Permission")
                .into_iter()
                .map(str::to_owned)
                .collect(),
        };
        let body = self.role_json(&role);
        self.state().roles.push(role);
        json_response(201, body)
    }

    pub(crate) fn update_role(
        &self,
        role: &str,
        form: &[(String, String)],
        path: &str,
    ) -> Response {
        let mut state = self.state();
        let Some(r) = state.roles.iter_mut().find(|r| r.sid == role) else {
            return not_found(path);
        };
        r.permissions = fields(form, "Permission")
            .into_iter()
            .map(str::to_owned)
            .collect();
        let r = r.clone();
        json_response(200, self.role_json(&r))
    }

    pub(crate) fn fetch_configuration(&self) -> Response {
        let state = self.state();
        json_response(200, self.configuration_json(&state))
    }

    pub(crate) fn update_configuration(&self, form: &[(String, String)]) -> Response {
        let mut guard = self.state();
        let state = &mut *guard;
        for (name, slot) in [
            ("DefaultChatServiceRoleSid", &mut state.default_service_role),
            (
                "DefaultConversationRoleSid",
                &mut state.default_conversation_role,
            ),
            (
                "DefaultConversationCreatorRoleSid",
                &mut state.default_creator_role,
            ),
        ] {
            if let Some(value) = field(form, name) {
                *slot = Some(value.into());
            }
        }
        if let Some(value) = field(form, "ReachabilityEnabled") {
            state.reachability = value == "true";
        }
        json_response(200, self.configuration_json(state))
    }

    pub(crate) fn fetch_webhooks(&self) -> Response {
        let state = self.state();
        json_response(200, self.webhooks_json(&state))
    }

    pub(crate) fn update_webhooks(&self, form: &[(String, String)]) -> Response {
        let mut state = self.state();
        if let Some(url) = field(form, "PostWebhookUrl") {
            state.post_webhook_url = Some(url.into());
        }
        if let Some(m) = field(form, "Method") {
            state.webhook_method = m.to_uppercase();
        }
        let filters = fields(form, "Filters");
        if !filters.is_empty() {
            state.webhook_filters = filters.into_iter().map(str::to_owned).collect();
        }
        json_response(200, self.webhooks_json(&state))
    }
}
