//! What the wizard's steps show, as data both shells use: the desktop sends these to its
//! webview, the CLI prints them or their JSON.

use chrono::Utc;
use serde::Serialize;

use super::flow::Prepared;
use super::plan::{Change, Plan};
use super::secrets::SecretStatus;
use super::Intent;
use crate::checks::CheckResult;
use crate::outputs::Rendered;
use crate::preflight::Preflight;
use crate::provider::{ChoiceOption, InputKind, InputSpec, PermissionKind, Protocol, Provider};
use crate::tenant::{Advice, Link};

/// An input as a form shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct InputInfo {
    pub id: String,
    pub label: String,
    pub help: String,
    pub example: String,
    pub kind: InputKind,
    pub optional: bool,
    pub secret: bool,
    /// What a `choice` input offers.
    pub options: Vec<ChoiceOption>,
    /// Taken when the input is left empty.
    pub default: Option<String>,
}

impl From<&InputSpec> for InputInfo {
    fn from(i: &InputSpec) -> Self {
        Self {
            id: i.id.clone(),
            label: i.label.clone(),
            help: i.help.clone(),
            example: i.example.clone(),
            kind: i.kind,
            optional: i.optional,
            secret: i.secret,
            options: i.options.clone(),
            default: i.default.clone(),
        }
    }
}

/// After a rotation: the old secrets the wizard made, which the admin retires once the
/// provider uses the new one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct RetireOffer {
    pub old: Vec<SecretStatus>,
    /// Retired in this session.
    pub retired: Vec<SecretStatus>,
    /// The new secret was handed to the provider and signed in to Entra.
    pub ready: bool,
    /// What to do before retiring is allowed, when not ready.
    pub waiting_for: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct SecretInfo {
    pub key_id: String,
    pub hint: String,
    pub expires: chrono::DateTime<Utc>,
    pub handed_over: bool,
}

/// A group of the tenant, for a groups claim that carries Object IDs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct GroupInfo {
    pub id: String,
    pub name: String,
}

/// The provisioning part of Done.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct ScimDone {
    pub app_name: String,
    pub app_id: String,
    pub service_principal_id: String,
    pub job_id: Option<String>,
    pub status: Option<crate::provisioning::JobStatus>,
    pub tenant_url: Option<String>,
    pub sync_all: Option<bool>,
    pub advice: Vec<Advice>,
    pub links: Vec<Link>,
}

/// The Done step.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct DoneView {
    pub provider_name: String,
    pub display_name: String,
    pub tenant_id: String,
    pub app_id: String,
    pub app_object_id: String,
    pub service_principal_id: Option<String>,
    pub secret: Option<SecretInfo>,
    pub consent_url: Option<String>,
    pub checks: Vec<CheckResult>,
    pub outputs: Vec<Rendered>,
    pub advice: Vec<Advice>,
    pub links: Vec<Link>,
    pub push_inputs: Vec<InputInfo>,
    pub groups: Vec<GroupInfo>,
    pub groups_claim_note: Option<String>,
    pub journal: String,
    pub demo: bool,
    /// The provider has a sign-in app (false for SCIM-only providers).
    pub sign_in: bool,
    pub scim: Option<ScimDone>,
    pub retire: Option<RetireOffer>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct PermissionInfo {
    pub name: String,
    pub kind: PermissionKind,
    pub why: String,
}

/// A provider as the Choose service step shows it.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct ProviderInfo {
    pub id: String,
    pub name: String,
    pub description: String,
    pub protocol: Protocol,
    pub docs_url: String,
    pub secret_lifetime_days: u32,
    pub inputs: Vec<InputInfo>,
    pub permissions: Vec<PermissionInfo>,
    pub push_inputs: Vec<InputInfo>,
    pub groups_claim_note: Option<String>,
    /// The provider registers a sign-in (OIDC) app.
    pub sign_in: bool,
    /// The provider takes SCIM provisioning from Entra.
    pub scim: bool,
}

impl From<&Provider> for ProviderInfo {
    fn from(p: &Provider) -> Self {
        Self {
            id: p.id().to_string(),
            name: p.name.clone(),
            description: p.description.clone(),
            protocol: p.protocol(),
            docs_url: p.docs_url.clone(),
            secret_lifetime_days: p.secret_lifetime_days(),
            inputs: p.inputs.iter().map(InputInfo::from).collect(),
            permissions: p
                .permissions
                .iter()
                .map(|x| PermissionInfo {
                    name: x.name.clone(),
                    kind: x.kind,
                    why: x.why.clone(),
                })
                .collect(),
            push_inputs: push_inputs(p),
            groups_claim_note: p.groups_claim_note().map(str::to_string),
            sign_in: p.has_sign_in(),
            scim: p.scim.is_some(),
        }
    }
}

/// The inputs a push asks for (the provider's API token among them).
pub fn push_inputs(p: &Provider) -> Vec<InputInfo> {
    p.push
        .iter()
        .flat_map(|x| x.inputs.iter())
        .map(InputInfo::from)
        .collect()
}

/// What the admin's inputs give: the app's names and redirect URIs.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct IntentView {
    pub provider_id: String,
    pub unique_name: String,
    pub display_name: String,
    pub redirect_uris: Vec<String>,
    pub secret_lifetime_days: u32,
}

impl From<&Intent> for IntentView {
    fn from(i: &Intent) -> Self {
        Self {
            provider_id: i.provider.id().to_string(),
            unique_name: i.unique_name(),
            display_name: i.display_name(),
            redirect_uris: i.redirect_uris(),
            secret_lifetime_days: i.secret_lifetime_days,
        }
    }
}

/// How one permission will be granted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub enum Grant {
    /// Already consented in this tenant.
    Granted,
    /// The admin's role lets the wizard grant it now.
    InFlow,
    /// A Privileged Role Administrator or Global Administrator must consent.
    Colleague,
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct PermissionStatus {
    pub name: String,
    pub kind: PermissionKind,
    pub why: String,
    pub grant: Grant,
}

/// The Register app, Permissions and Review steps.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct PlanView {
    pub intent: IntentView,
    pub plan: Plan,
    pub preflight: Preflight,
    pub permissions: Vec<PermissionStatus>,
    pub journal: String,
    pub interrupted: bool,
    /// The client secrets already on the app (a re-run), newest first.
    pub secrets: Vec<SecretStatus>,
    /// This plan rotates the client secret on request.
    pub rotate: bool,
}

impl From<&Prepared> for PlanView {
    fn from(p: &Prepared) -> Self {
        Self {
            intent: IntentView::from(&p.intent),
            plan: p.plan.clone(),
            preflight: p.preflight.clone(),
            permissions: permission_statuses(p),
            journal: p.journal.path().display().to_string(),
            interrupted: p.journal.interrupted(),
            secrets: super::secrets::statuses(&p.state, Utc::now()),
            rotate: p.intent.rotate_secret,
        }
    }
}

/// How each permission the provider needs will be granted: already, by this admin now, or by
/// a colleague through the admin-consent link.
fn permission_statuses(p: &Prepared) -> Vec<PermissionStatus> {
    let granted_scopes = p.state.granted_scopes();
    p.intent
        .provider
        .permissions
        .iter()
        .map(|perm| {
            let name = perm.name.clone();
            let already = match perm.kind {
                PermissionKind::Delegated => granted_scopes.contains(&name),
                PermissionKind::Application => p
                    .state
                    .graph_sp
                    .permission_id(&name, perm.kind)
                    .is_some_and(|id| {
                        p.state
                            .assignments()
                            .iter()
                            .any(|a| a.app_role_id.eq_ignore_ascii_case(id))
                    }),
            };
            let colleague = p.plan.changes.iter().any(|c| match &c.change {
                Change::RequestAdminConsent { roles, scopes } => {
                    roles.contains(&name) || scopes.contains(&name)
                }
                _ => false,
            });
            let grant = if already {
                Grant::Granted
            } else if colleague {
                Grant::Colleague
            } else {
                Grant::InFlow
            };
            PermissionStatus {
                name,
                kind: perm.kind,
                why: perm.why.clone(),
                grant,
            }
        })
        .collect()
}
