//! The plan: every change the wizard would make, computed by a pure function from the intent and
//! the tenant's current state. An empty plan means the tenant already matches.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::state::{unique_name_path, TenantState};
use super::{Intent, ResolvedPermission};
use crate::cloud::Cloud;
use crate::provider::PermissionKind;

/// Display names of secrets the wizard adds start with this.
pub const SECRET_PREFIX: &str = "entra-setup";

/// Within this many days of its end a secret counts as expiring soon (the planner replaces
/// secrets this close to their end on its own).
pub const EXPIRES_SOON_DAYS: i64 = 30;

/// The wizard made the secret with this display name.
pub(crate) fn is_wizards(name: Option<&str>) -> bool {
    name.is_some_and(|n| n.starts_with(SECRET_PREFIX))
}

pub use super::journal::JournalHints;
pub use crate::preflight::{RoleFacts, SecretPolicy};

/// One change, with everything needed to make it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Change {
    /// Create or update the app registration, found by its uniqueName (never duplicated).
    UpsertApplication {
        body: Value,
        creates: bool,
        differences: Vec<String>,
    },
    /// Create the service principal (the "enterprise app") for the app.
    CreateServicePrincipal,
    /// Remove a client secret the wizard added: one whose value an interrupted run lost, or an
    /// old one retired after a rotation (see [`super::secrets`]).
    RemovePassword {
        key_id: String,
        display_name: String,
    },
    /// Add a client secret.
    AddPassword {
        display_name: String,
        end: DateTime<Utc>,
        lifetime_days: u32,
    },
    /// Grant delegated Microsoft Graph permissions for the whole organisation.
    GrantDelegated {
        scope: String,
        existing_id: Option<String>,
    },
    /// Grant one Microsoft Graph application permission.
    GrantAppRole { name: String, app_role_id: String },
    /// Permissions the admin cannot grant: a colleague must consent through a link.
    RequestAdminConsent {
        roles: Vec<String>,
        scopes: Vec<String>,
    },
    /// Create an enterprise app from an application template (the non-gallery one, or a
    /// gallery app's), under a temporary name an interrupted run can find it by.
    InstantiateApp {
        template_id: String,
        display_name: String,
        temp_name: String,
    },
    /// Give an app made from a template its final name, uniqueName and tags.
    TagApp { display_name: String },
    /// Let only assigned users and groups sign in to an app the wizard did not make (a vendor's
    /// app): `appRoleAssignmentRequired` on its service principal. Undo restores `was`.
    RequireAssignment { required: bool, was: bool },
    /// Create the provisioning job from a synchronization template (`scim` for non-gallery
    /// apps, the gallery app's own otherwise).
    /// `template` empty: the one template the gallery app offers.
    CreateSyncJob { template: String },
    /// Assign a user or group to the app (its `User` role, see `state::assignment_role`).
    AssignToApp {
        principal_id: String,
        principal_kind: super::PrincipalKind,
        display_name: String,
    },
    /// Remove an assignment the admin no longer wants.
    UnassignFromApp {
        assignment_id: String,
        display_name: String,
    },
    /// Entra's Test Connection with the new tenant URL and token.
    ValidateScimCredentials { tenant_url: String },
    /// Save the tenant URL, token and scope (the whole set: PUT replaces it).
    SaveScimSecrets {
        tenant_url: String,
        sync_all: bool,
        #[cfg_attr(feature = "specta", specta(type = Option<String>))]
        token_expires: Option<chrono::NaiveDate>,
    },
    /// Start provisioning, or restart it (after narrowing the scope, or to leave quarantine).
    StartSyncJob { restart: bool },
    /// Turn on SAML single sign-on on the enterprise app's service principal: mode, sign-on URL,
    /// relay state, who gets certificate mails, whether assignment is required. Comes before
    /// the Entity ID (identifier-URI restrictions exempt SAML apps only once the mode is set).
    ConfigureSaml {
        body: Value,
        differences: Vec<String>,
    },
    /// Write the Entity ID (`identifierUris`) and Reply URLs (`web.redirectUris`) on the app.
    SetSamlUris {
        body: Value,
        differences: Vec<String>,
    },
    /// Add a token-signing certificate.
    AddSigningCertificate {
        display_name: String,
        end: DateTime<Utc>,
        lifetime_days: u32,
    },
    /// Make a certificate the one Entra signs with: the one the plan adds (`None`), or one on
    /// the app already (an earlier run added it, then stopped).
    PreferSigningCertificate { thumbprint: Option<String> },
    /// Remove a signing certificate that no longer signs (after a rotation): its Sign and
    /// Verify keys and its password credential.
    RemoveSigningCertificate {
        thumbprint: String,
        display_name: String,
    },
}

fn scim_job_template() -> String {
    "scim".to_string()
}

/// The part of the applier that makes a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Area {
    /// App registrations, service principals, apps made from templates.
    Apps,
    /// Client secrets.
    Credentials,
    /// Grants, application permissions, admin consent, assignments.
    Access,
    /// Provisioning jobs and their settings.
    Provisioning,
}

impl Change {
    pub fn area(&self) -> Area {
        match self {
            Self::UpsertApplication { .. }
            | Self::CreateServicePrincipal
            | Self::InstantiateApp { .. }
            | Self::TagApp { .. }
            | Self::ConfigureSaml { .. }
            | Self::SetSamlUris { .. }
            | Self::RequireAssignment { .. } => Area::Apps,
            Self::RemovePassword { .. }
            | Self::AddPassword { .. }
            | Self::AddSigningCertificate { .. }
            | Self::PreferSigningCertificate { .. }
            | Self::RemoveSigningCertificate { .. } => Area::Credentials,
            Self::GrantDelegated { .. }
            | Self::GrantAppRole { .. }
            | Self::RequestAdminConsent { .. }
            | Self::AssignToApp { .. }
            | Self::UnassignFromApp { .. } => Area::Access,
            Self::CreateSyncJob { .. }
            | Self::ValidateScimCredentials { .. }
            | Self::SaveScimSecrets { .. }
            | Self::StartSyncJob { .. } => Area::Provisioning,
        }
    }
}

impl Change {
    /// The change's name in journals. Journals written before a setup managed several apps
    /// named some differently: [`Change::kind_is`] matches both.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::UpsertApplication { .. } => "upsertApplication",
            Self::CreateServicePrincipal => "createServicePrincipal",
            Self::RemovePassword { .. } => "removePassword",
            Self::AddPassword { .. } => "addPassword",
            Self::GrantDelegated { .. } => "grantDelegated",
            Self::GrantAppRole { .. } => "grantAppRole",
            Self::RequestAdminConsent { .. } => "requestAdminConsent",
            Self::InstantiateApp { .. } => "instantiateApp",
            Self::TagApp { .. } => "tagApp",
            Self::RequireAssignment { .. } => "requireAssignment",
            Self::CreateSyncJob { .. } => "createSyncJob",
            Self::AssignToApp { .. } => "assignToApp",
            Self::UnassignFromApp { .. } => "unassignFromApp",
            Self::ValidateScimCredentials { .. } => "validateScimCredentials",
            Self::SaveScimSecrets { .. } => "saveScimSecrets",
            Self::StartSyncJob { .. } => "startSyncJob",
            Self::ConfigureSaml { .. } => "configureSaml",
            Self::SetSamlUris { .. } => "setSamlUris",
            Self::AddSigningCertificate { .. } => "addSigningCertificate",
            Self::PreferSigningCertificate { .. } => "preferSigningCertificate",
            Self::RemoveSigningCertificate { .. } => "removeSigningCertificate",
        }
    }
}

/// Whether a journaled change `kind` is `wanted` (a [`Change::kind`]), under today's name or
/// the one journals used before a setup managed several apps.
pub fn kind_is(kind: &str, wanted: &str) -> bool {
    let old = match wanted {
        "instantiateApp" => "instantiateScimApp",
        "tagApp" => "tagScimApp",
        "assignToApp" => "assignToScimApp",
        "unassignFromApp" => "unassignFromScimApp",
        other => other,
    };
    kind == wanted || kind == old
}

/// A change as the review screen shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct PlannedChange {
    #[cfg_attr(feature = "specta", specta(type = u32))]
    pub seq: usize,
    /// The app it acts on, as the provider's profile names it (`sign_in`, `provisioning`, …).
    pub app: String,
    pub change: Change,
    /// One line: what it does.
    pub title: String,
    /// Why the provider or the tenant needs it.
    pub reason: String,
    /// The Graph request it makes.
    pub request: String,
    /// Changes that must finish first.
    #[cfg_attr(feature = "specta", specta(type = Vec<u32>))]
    pub after: Vec<usize>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub id: String,
    pub provider_id: String,
    pub unique_name: String,
    pub display_name: String,
    pub tenant_id: String,
    /// The provisioning app's uniqueName, when the plan provisions.
    pub scim_unique_name: Option<String>,
    /// The profile's id of the setup's app registration (the OIDC sign-in app), if it has one.
    pub registration: Option<String>,
    /// The profile's id of the app that provisions, when the plan provisions.
    pub provisioning: Option<String>,
    /// What the admin typed (the provider's non-secret inputs), so a re-run can offer this
    /// setup again without asking.
    pub inputs: std::collections::BTreeMap<String, String>,
    pub changes: Vec<PlannedChange>,
    /// Facts the admin should know about this plan (e.g. a lifetime capped by policy).
    pub notes: Vec<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    pub fn registration_app(&self) -> Option<&str> {
        self.registration.as_deref()
    }

    pub fn provisioning_app(&self) -> Option<&str> {
        self.provisioning.as_deref()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("Your account cannot create or change app registrations: it needs Cloud Application Administrator, Application Administrator or Global Administrator (active, not only eligible in PIM).")]
    MissingRole,
    #[error("The tenant's app-management policy blocks new client secrets (passwordAddition), and {provider} needs one. Ask an administrator to exempt this app from the policy in the Entra admin center, then run the wizard again.")]
    SecretsBlocked { provider: String },
    #[error(transparent)]
    Permissions(#[from] super::UnknownPermission),
    #[error("{0} Its profile is valid; setting it up arrives with a later version.")]
    Unsupported(String),
    /// The cloud lacks an API the setup needs.
    #[error("{0}")]
    NotInThisCloud(String),
    #[error("Enter the SCIM Secret Token again: Entra never gives a saved token back, and {why}.")]
    ScimTokenNeeded { why: String },
    #[error("Entra cannot reach {url}: its provisioning service runs in Microsoft's cloud and connects to the tenant URL over the internet, so an address on this computer or its private network (localhost, 127.0.0.1, 10.x, 192.168.x, .local) never answers it. Enter the provider's public https SCIM URL.")]
    ScimUrlNotReachable { url: String },
    #[error("The Entity ID {entity_id} is already used by the app \"{holder}\" in this tenant, and Entra allows each Entity ID on one app only. Append a unique suffix, e.g. {suggestion}, and enter the same Entity ID in the service's SSO settings.")]
    EntityIdTaken {
        entity_id: String,
        holder: String,
        suggestion: String,
    },
    #[error("\"{app}\" is not in this tenant yet, so nothing can be assigned to it: {provider} creates it when an administrator connects {provider} to this tenant. {steps} Then run this again (the CLI can wait with --wait-for-consent SECONDS).")]
    VendorAppMissing {
        app: String,
        provider: String,
        steps: String,
    },
    #[error("Assigning groups to an app needs Microsoft Entra ID P1 or P2, and this tenant has neither. Assign users individually ({groups} cannot be assigned), or choose \"All users and groups\".")]
    GroupsNeedPremium { groups: String },
}

fn as_set(v: &Value) -> Vec<Value> {
    v.as_array().cloned().unwrap_or_default()
}

fn union(existing: &Value, wanted: &Value) -> (Value, bool) {
    let mut out = as_set(existing);
    let mut changed = false;
    for w in as_set(wanted) {
        if !out.contains(&w) {
            out.push(w);
            changed = true;
        }
    }
    (Value::Array(out), changed)
}

/// Merges optional claims per token type by claim name.
fn merge_claims(existing: &Value, wanted: &Value) -> (Value, bool) {
    let mut out = if existing.is_object() {
        existing.clone()
    } else {
        json!({})
    };
    let mut changed = false;
    for token in ["idToken", "accessToken", "saml2Token"] {
        let have = as_set(&existing[token]);
        let mut merged = have.clone();
        for w in as_set(&wanted[token]) {
            if !have.iter().any(|h| h["name"] == w["name"]) {
                merged.push(w);
                changed = true;
            }
        }
        out[token] = Value::Array(merged);
    }
    (out, changed)
}

/// Merges requiredResourceAccess: Microsoft Graph entries by (id, type); other resources kept.
fn merge_access(existing: &Value, wanted: &Value) -> (Value, bool) {
    let mut out = as_set(existing);
    let mut changed = false;
    for w in as_set(wanted) {
        match out
            .iter_mut()
            .find(|e| e["resourceAppId"] == w["resourceAppId"])
        {
            Some(e) => {
                let (merged, c) = union(&e["resourceAccess"], &w["resourceAccess"]);
                e["resourceAccess"] = merged;
                changed |= c;
            }
            None => {
                out.push(w);
                changed = true;
            }
        }
    }
    (Value::Array(out), changed)
}

/// The PATCH body that brings `existing` to what `desired` asks for without removing anything
/// the admin added by hand, and the names of the fields that change.
fn upsert_body(existing: &Value, desired: &Value) -> (Value, Vec<String>) {
    let mut body = Map::new();
    let mut diffs = vec![];
    body.insert("displayName".into(), desired["displayName"].clone());
    if existing["displayName"] != desired["displayName"] {
        diffs.push("displayName".to_string());
    }
    for key in ["signInAudience", "groupMembershipClaims"] {
        if !desired[key].is_null() && existing[key] != desired[key] {
            body.insert(key.into(), desired[key].clone());
            diffs.push(key.to_string());
        }
    }
    let (tags, c) = union(&existing["tags"], &desired["tags"]);
    if c {
        body.insert("tags".into(), tags);
        diffs.push("tags".into());
    }
    if existing["notes"].is_null() {
        body.insert("notes".into(), desired["notes"].clone());
        diffs.push("notes".into());
    }
    let (uris, c) = union(
        &existing["web"]["redirectUris"],
        &desired["web"]["redirectUris"],
    );
    if c {
        let mut web = if existing["web"].is_object() {
            existing["web"].clone()
        } else {
            json!({})
        };
        web["redirectUris"] = uris;
        if web["implicitGrantSettings"].is_null() {
            web["implicitGrantSettings"] = desired["web"]["implicitGrantSettings"].clone();
        }
        if let Some(o) = web.as_object_mut() {
            o.retain(|k, _| {
                [
                    "redirectUris",
                    "implicitGrantSettings",
                    "homePageUrl",
                    "logoutUrl",
                    "redirectUriSettings",
                ]
                .contains(&k.as_str())
            });
            o.remove("redirectUriSettings");
        }
        body.insert("web".into(), web);
        diffs.push("web.redirectUris".into());
    }
    let (access, c) = merge_access(
        &existing["requiredResourceAccess"],
        &desired["requiredResourceAccess"],
    );
    if c {
        body.insert("requiredResourceAccess".into(), access);
        diffs.push("requiredResourceAccess".into());
    }
    if !desired["optionalClaims"].is_null() {
        let (claims, c) = merge_claims(&existing["optionalClaims"], &desired["optionalClaims"]);
        if c {
            body.insert("optionalClaims".into(), claims);
            diffs.push("optionalClaims".into());
        }
    }
    (Value::Object(body), diffs)
}

/// Everything the planner looks at.
pub struct PlanInput<'a> {
    pub intent: &'a Intent,
    pub state: &'a TenantState,
    pub tenant_id: &'a str,
    pub roles: RoleFacts,
    pub policy: &'a SecretPolicy,
    pub hints: &'a JournalHints,
    pub now: DateTime<Utc>,
    /// The tenant has Entra ID P1 or P2 (group assignment is allowed).
    pub premium: bool,
}

/// Computes the plan. Pure: the same inputs always give the same changes.
pub fn plan(input: &PlanInput<'_>) -> Result<Plan, PlanError> {
    let intent = input.intent;
    let state = input.state;
    if let Some(why) = intent.provider.unsupported() {
        return Err(PlanError::Unsupported(why));
    }
    if !input.roles.can_manage_apps {
        return Err(PlanError::MissingRole);
    }
    let perms = if intent.provider.has_sign_in() {
        intent
            .resolve_permissions(&state.graph_sp)
            .map_err(PlanError::Permissions)?
    } else {
        vec![]
    };
    let desired = intent.desired_app(&perms);
    let unique = intent.unique_name();
    let app_path = unique_name_path(&unique);
    let mut changes: Vec<PlannedChange> = vec![];
    let mut notes = vec![];
    // The app the changes pushed next act on: the registration, then the provisioning app.
    let registration = intent
        .provider
        .oidc()
        .and_then(|o| intent.provider.app(&o.app))
        .map(|a| a.id.clone());
    let template = intent.template_app().map(|a| a.id.clone());
    if let Some(saml) = &intent.saml {
        if let Some(holder) = state.entity_id_holders.first() {
            return Err(PlanError::EntityIdTaken {
                entity_id: saml.entity_id.clone(),
                holder: holder.clone(),
                suggestion: entity_id_suggestion(&saml.entity_id, &intent.unique_name()),
            });
        }
        for (url, why) in &state.reply_url_unchecked {
            notes.push(format!(
                "Entra Setup could not check whether another app already answers at the Reply URL {url}: {why} Look for it under Enterprise applications in the Entra admin center if sign-ins reach the wrong app."
            ));
        }
        for (url, app) in &state.reply_url_holders {
            notes.push(format!(
                "The Reply URL {url} is also a reply URL of the app \"{app}\". Entra allows it, but two apps answering for one service usually means an older setup is still there: check that app, and remove it if nothing uses it."
            ));
        }
    }
    let provisioning = intent
        .scim
        .as_ref()
        .and_then(|_| intent.provider.scim_app())
        .map(|a| a.id.clone());
    let on_app = std::cell::RefCell::new(registration.clone().unwrap_or_default());
    let mut push =
        |change: Change, title: String, reason: String, request: String, after: Vec<usize>| {
            let seq = changes.len();
            changes.push(PlannedChange {
                seq,
                app: on_app.borrow().clone(),
                change,
                title,
                reason,
                request,
                after,
            });
            seq
        };

    let plan_id = uuid::Uuid::new_v4().to_string();
    if intent.provider.has_sign_in() {
        // 1. The application, by uniqueName.
        let app_step = match state.app() {
            None => Some(push(
                Change::UpsertApplication {
                    body: desired.clone(),
                    creates: true,
                    differences: vec![],
                },
                format!("Create the app registration \"{}\"", intent.display_name()),
                format!(
                    "{} signs users in through this app. Redirect URI: {}.",
                    intent.provider.name,
                    intent.redirect_uris().join(", ")
                ),
                format!("PATCH {app_path} (Prefer: create-if-missing)"),
                vec![],
            )),
            Some(app) => {
                let (body, diffs) = upsert_body(&app.value, &desired);
                if diffs.is_empty() {
                    None
                } else {
                    Some(push(
                        Change::UpsertApplication {
                            body,
                            creates: false,
                            differences: diffs.clone(),
                        },
                        format!("Update the app registration \"{}\"", intent.display_name()),
                        format!(
                            "It differs from what {} needs: {}.",
                            intent.provider.name,
                            diffs.join(", ")
                        ),
                        format!("PATCH {app_path}"),
                        vec![],
                    ))
                }
            }
        };
        let after_app: Vec<usize> = app_step.into_iter().collect();

        // 2. The service principal.
        let sp_step = if state.sp_id().is_none() {
            Some(push(
                Change::CreateServicePrincipal,
                "Create the enterprise app (service principal)".into(),
                "Consent and sign-in in this tenant attach to the service principal.".into(),
                "POST /servicePrincipals".into(),
                after_app.clone(),
            ))
        } else {
            None
        };
        let after_sp: Vec<usize> = after_app.iter().copied().chain(sp_step).collect();

        // 3. Secrets: remove ones whose value an interrupted run lost; add one unless a good one exists.
        let wizard_secrets: Vec<_> = state
            .app()
            .into_iter()
            .flat_map(|a| a.passwords.iter())
            .filter(|p| is_wizards(p.display_name.as_deref()))
            .collect();
        let mut lost = vec![];
        for p in &wizard_secrets {
            let name = p.display_name.clone().unwrap_or_default();
            // A late copy: an addPassword whose answer was lost made it, the retry made the one
            // the journal recorded under the same name, and this one showed up afterwards.
            let late_copy = input
                .hints
                .made_secrets
                .iter()
                .any(|(n, k)| *n == name && *k != p.key_id)
                && !input.hints.made_secrets.iter().any(|(_, k)| *k == p.key_id);
            if input.hints.unfinished_secret_names.contains(&name)
                || input.hints.unhanded_secret_ids.contains(&p.key_id)
                || late_copy
            {
                lost.push(p.key_id.clone());
                push(
                Change::RemovePassword { key_id: p.key_id.clone(), display_name: name.clone() },
                format!("Remove the secret \"{name}\" from an interrupted run"),
                "Its value was lost before anyone received it, so nobody can use it; a new secret replaces it.".into(),
                format!("POST {app_path}/removePassword"),
                after_app.clone(),
            );
            }
        }
        // A secret expiring soon is replaced (and the old one kept until retired).
        let good_until = input.now + Duration::days(EXPIRES_SOON_DAYS);
        let has_good = wizard_secrets
            .iter()
            .any(|p| !lost.contains(&p.key_id) && p.end_date_time.is_some_and(|e| e > good_until));
        if !has_good || intent.rotate_secret {
            if input.policy.blocked {
                return Err(PlanError::SecretsBlocked {
                    provider: intent.provider.name.clone(),
                });
            }
            let mut days = intent.secret_lifetime_days;
            if let Some(max) = input.policy.max_lifetime_days {
                if days > max {
                    notes.push(format!("The client secret lasts {max} days instead of {days}: your tenant's app-management policy allows at most {max}."));
                    days = max;
                }
            }
            let end = input.now + Duration::days(i64::from(days));
            let display_name = format!("{SECRET_PREFIX} {}", input.now.format("%Y-%m-%dT%H:%MZ"));
            // Secrets that keep working while the new one is handed over: a rotation.
            let current = wizard_secrets
                .iter()
                .filter(|p| {
                    !lost.contains(&p.key_id) && p.end_date_time.is_some_and(|e| e > input.now)
                })
                .count();
            let (title, reason) = if current > 0 {
                notes.push(format!("Rotation without downtime: the current secret{} stay{} valid, so sign-in through {} keeps working while you hand over the new one. Once {} uses the new secret, retire the old one on the Done step (or with entra-setup retire-secrets).", if current == 1 { "" } else { "s" }, if current == 1 { "s" } else { "" }, intent.provider.name, intent.provider.name));
                (
                    format!("Add a new client secret valid for {days} days (until {}), next to the current one", end.format("%Y-%m-%d")),
                    format!("Rotation: {} switches to it when you hand it over; the current secret keeps sign-in working until then.", intent.provider.name),
                )
            } else {
                (
                    format!(
                        "Add a client secret valid for {days} days (until {})",
                        end.format("%Y-%m-%d")
                    ),
                    format!(
                        "{} authenticates to Entra with it. Sign-in stops working when it expires.",
                        intent.provider.name
                    ),
                )
            };
            push(
                Change::AddPassword {
                    display_name: display_name.clone(),
                    end,
                    lifetime_days: days,
                },
                title,
                reason,
                format!("POST {app_path}/addPassword"),
                after_app.clone(),
            );
        }

        // 4. Permissions.
        let delegated: Vec<&ResolvedPermission> = perms
            .iter()
            .filter(|p| p.kind == PermissionKind::Delegated)
            .collect();
        let application: Vec<&ResolvedPermission> = perms
            .iter()
            .filter(|p| p.kind == PermissionKind::Application)
            .collect();
        let mut consent_roles = vec![];
        let mut consent_scopes = vec![];
        let granted = state.granted_scopes();
        let missing_scopes: Vec<&str> = delegated
            .iter()
            .map(|p| p.name.as_str())
            .filter(|n| !granted.iter().any(|g| g == n))
            .collect();
        if !missing_scopes.is_empty() {
            if input.roles.can_grant_delegated {
                let mut all = granted.clone();
                all.extend(missing_scopes.iter().map(|s| (*s).to_string()));
                let scope = all.join(" ");
                let existing_id = state.grant().map(|g| g.id.clone());
                let request = match &existing_id {
                    Some(id) => format!("PATCH /oauth2PermissionGrants/{id}"),
                    None => "POST /oauth2PermissionGrants".to_string(),
                };
                push(
                Change::GrantDelegated { scope, existing_id },
                format!("Grant admin consent for {}", missing_scopes.join(", ")),
                format!("{} asks for these delegated Microsoft Graph permissions; consent for the whole organisation means users are not prompted.", intent.provider.name),
                request,
                after_sp.clone(),
            );
            } else {
                consent_scopes.extend(missing_scopes.iter().map(|s| (*s).to_string()));
            }
        }
        for p in application {
            if state
                .assignments()
                .iter()
                .any(|a| a.app_role_id.eq_ignore_ascii_case(&p.id))
            {
                continue;
            }
            if input.roles.can_grant_app_roles {
                push(
                    Change::GrantAppRole {
                        name: p.name.clone(),
                        app_role_id: p.id.clone(),
                    },
                    format!("Grant the application permission {}", p.name),
                    intent
                        .provider
                        .permissions
                        .iter()
                        .find(|x| x.name == p.name)
                        .map(|x| x.why.clone())
                        .unwrap_or_default(),
                    format!(
                        "POST /servicePrincipals/{}/appRoleAssignedTo",
                        state.graph_sp.id
                    ),
                    after_sp.clone(),
                );
            } else {
                consent_roles.push(p.name.clone());
            }
        }
        if !consent_roles.is_empty() || !consent_scopes.is_empty() {
            let all: Vec<String> = consent_roles
                .iter()
                .chain(consent_scopes.iter())
                .cloned()
                .collect();
            // Microsoft: "Granting tenant-wide admin consent may revoke permissions that have
            // already been granted tenant-wide for that application" (grant-admin-consent).
            let wanted = |n: &str, kind| perms.iter().any(|p| p.name == n && p.kind == kind);
            let revoked: Vec<String> = granted
                .iter()
                .filter(|g| !wanted(g, PermissionKind::Delegated))
                .cloned()
                .chain(state.assignments().iter().filter_map(|a| {
                    state
                        .graph_sp
                        .permission_name(&a.app_role_id, PermissionKind::Application)
                        .filter(|n| !wanted(n, PermissionKind::Application))
                        .map(|n| format!("{n} (application)"))
                }))
                .collect();
            if !revoked.is_empty() {
                notes.push(format!(
                    "The consent link grants exactly what {} needs: consenting through it revokes what the app holds for the whole organisation beyond that ({}). Grant those again afterwards if something else relies on them.",
                    intent.provider.name,
                    revoked.join(", ")
                ));
            }
            push(
            Change::RequestAdminConsent { roles: consent_roles, scopes: consent_scopes },
            format!("Ask a Privileged Role Administrator or Global Administrator to consent to {}", all.join(", ")),
            "Your roles cannot grant these permissions. The wizard gives you an admin-consent link to send to a colleague and checks when it has been used.".into(),
            "GET /adminconsent (in a colleague's browser), then checked with GET /servicePrincipals/{id}/appRoleAssignments".into(),
            after_sp.clone(),
        );
        }
    }
    plan_vendor(input, &on_app, &mut push, &mut notes)?;
    if let Some(app) = &template {
        on_app.replace(app.clone());
        let after_inst = plan_template_app(input, &plan_id, &mut push);
        if let Some(saml) = &intent.saml {
            plan_saml(input, saml, &after_inst, &mut push)?;
        }
        if let (Some(si), Some(_)) = (&intent.scim, &provisioning) {
            plan_scim(input, si, &after_inst, &mut push)?;
        }
    }
    Ok(Plan {
        id: plan_id,
        provider_id: intent.provider.id().to_string(),
        unique_name: unique,
        display_name: intent.display_name(),
        tenant_id: input.tenant_id.to_string(),
        scim_unique_name: template.as_ref().map(|_| intent.template_unique_name()),
        registration,
        provisioning,
        inputs: intent.entered_inputs(),
        changes,
        notes,
    })
}

type Push<'a> = dyn FnMut(Change, String, String, String, Vec<usize>) -> usize + 'a;

/// The vendor's own apps: consent is checked (never granted: the vendor's console asks for it),
/// and for a vendor that syncs the directory itself, "assignment required" and the chosen
/// groups go on the app its profile names.
fn plan_vendor(
    input: &PlanInput<'_>,
    on_app: &std::cell::RefCell<String>,
    push: &mut Push<'_>,
    notes: &mut Vec<String>,
) -> Result<(), PlanError> {
    let intent = input.intent;
    let provider = &intent.provider;
    if provider.vendor_apps().next().is_none() {
        return Ok(());
    }
    let consents = super::vendor::consent(intent, input.state);
    for c in consents
        .iter()
        .filter(|c| c.status != super::vendor::ConsentStatus::Complete)
    {
        notes.push(c.message.clone());
    }
    notes.extend(super::vendor::role_note(
        intent,
        input.roles.can_grant_app_roles,
    ));
    let (Some(spec), Some(choice)) = (&provider.directory_sync, &intent.directory_sync) else {
        return Ok(());
    };
    let target_name = provider.app(&spec.assign_to).map_or_else(
        || spec.assign_to.clone(),
        crate::provider::AppSpec::vendor_name,
    );
    notes.push(spec.assign_to_note.clone());
    for wrong in &spec.warn_if_assigned_to {
        if let Some(v) = input.state.vendor(wrong) {
            let groups: Vec<String> = v
                .assignments
                .iter()
                .filter(|a| a.principal_type.as_deref() == Some("Group"))
                .map(|a| {
                    a.principal_display_name
                        .clone()
                        .unwrap_or_else(|| a.principal_id.clone())
                })
                .collect();
            if !groups.is_empty() {
                notes.push(format!(
                    "Groups are assigned to \"{}\" ({}), not to \"{target_name}\": with \"{}\", {} syncs the groups of \"{target_name}\" only. Assign them here (this plan does) and remove them from \"{}\" in the Entra admin center.",
                    v.display_name,
                    groups.join(", "),
                    spec.assigned_label,
                    provider.name,
                    v.display_name
                ));
            }
        }
    }
    if choice.sync_all {
        if input
            .state
            .vendor(&spec.assign_to)
            .is_some_and(|v| v.assignment_required)
        {
            notes.push(format!("\"{target_name}\" requires assignment: with \"{}\" {} syncs every group, but only assigned users and groups can sign in. Turn \"Assignment required\" off in the Entra admin center if everyone should sign in.", spec.all_label, provider.name));
        }
        return Ok(());
    }
    let Some(target) = input.state.vendor(&spec.assign_to) else {
        return Err(PlanError::VendorAppMissing {
            app: target_name,
            provider: provider.name.clone(),
            steps: provider
                .vendor
                .as_ref()
                .map(|v| v.console_steps.clone())
                .unwrap_or_default(),
        });
    };
    on_app.replace(spec.assign_to.clone());
    let sp_path = format!("/servicePrincipals/{}", target.sp_id);
    if !target.assignment_required {
        push(
            Change::RequireAssignment {
                required: true,
                was: false,
            },
            format!("Require assignment on \"{target_name}\""),
            format!("Only assigned users and groups sign in to {}, and with \"{}\" its sync reads the groups assigned here.", provider.name, spec.assigned_label),
            format!("PATCH {sp_path} (appRoleAssignmentRequired)"),
            vec![],
        );
    }
    let have: Vec<&super::state::PrincipalAssignment> = target.assignments.iter().collect();
    plan_assignments_on(
        input,
        &choice.assign,
        &have,
        &format!("sync to {} and may sign in", provider.name),
        &sp_path,
        &[],
        push,
    )?;
    Ok(())
}

/// An Entity ID suffix that is the same on every run of one setup (the seed's remedy for an
/// Entity ID another app holds).
fn entity_id_suggestion(entity_id: &str, unique_name: &str) -> String {
    use sha2::Digest;
    let h = sha2::Sha256::digest(unique_name.as_bytes());
    format!(
        "{}/{:02x}{:02x}{:02x}",
        entity_id.trim_end_matches('/'),
        h[0],
        h[1],
        h[2]
    )
}

/// The enterprise app made from a template (for SAML, SCIM or both): instantiated under a
/// temporary name, then named and tagged. Returns the changes later ones on it wait for.
fn plan_template_app(input: &PlanInput<'_>, plan_id: &str, push: &mut Push<'_>) -> Vec<usize> {
    let intent = input.intent;
    let st = input.state.provisioning();
    let display = intent.template_display_name();
    let source = intent.template_app().map(|a| &a.source);
    let template_id = intent
        .template_app()
        .and_then(|a| intent.template_id(a))
        .unwrap_or(crate::provider::NON_GALLERY_TEMPLATE)
        .to_string();
    let kind = match source {
        Some(crate::provider::AppSource::Gallery { template, .. }) => {
            format!("the gallery app \"{template}\"")
        }
        _ => "non-gallery enterprise app".to_string(),
    };
    let provider = &intent.provider.name;
    let (what, why) = if intent.saml.is_some() {
        (
            "enterprise app",
            format!(
                "{provider} signs users in with SAML through its own enterprise app{}.",
                if intent.scim.is_some() {
                    ", and Entra provisions through the same app"
                } else {
                    ""
                }
            ),
        )
    } else {
        (
            "provisioning app",
            format!("Entra provisions to {provider} through its own enterprise app; OIDC app registrations cannot provision."),
        )
    };
    let inst = if st.is_none() {
        let temp_name = format!("{display} (setting up {})", &plan_id[..8]);
        Some(push(
            Change::InstantiateApp {
                template_id: template_id.clone(),
                display_name: display.clone(),
                temp_name,
            },
            format!("Create the {what} \"{display}\" ({kind})"),
            why,
            format!("POST /applicationTemplates/{template_id}/instantiate"),
            vec![],
        ))
    } else {
        None
    };
    let after_inst: Vec<usize> = inst.into_iter().collect();
    if st.is_none_or(|s| !s.tagged) {
        push(
            Change::TagApp { display_name: display.clone() },
            format!("Name and tag the {what} \"{display}\""),
            "The uniqueName and tags let every later run find this app again instead of creating another.".into(),
            "PATCH /applications/{id}".into(),
            after_inst.clone(),
        );
    }
    after_inst
}

/// SAML single sign-on on the template app (reference §8b): the service principal in SAML mode
/// first, then the Entity ID and Reply URLs, a signing certificate, and who may sign in (unless
/// SCIM on the same app decides that).
fn plan_saml(
    input: &PlanInput<'_>,
    saml: &super::SamlIntent,
    after_inst: &[usize],
    push: &mut Push<'_>,
) -> Result<(), PlanError> {
    let intent = input.intent;
    let provider = &intent.provider.name;
    let st = input.state.provisioning();
    let have = st.map(|s| s.saml.clone()).unwrap_or_default();
    let sp_path = st.map_or_else(
        || "/servicePrincipals/{new}".to_string(),
        |s| format!("/servicePrincipals/{}", s.sp_id),
    );
    // Who may sign in: SCIM on the same app decides (its scope is who is provisioned).
    let scim_here = intent.scim.is_some();
    // `None` (no choice made in this run) keeps what an existing app has; a new app lets
    // everyone in.
    let required = match (&intent.scim, &saml.assign) {
        (Some(si), _) => Some(!si.sync_all),
        (None, Some(_)) => Some(true),
        (None, None) if st.is_none() => Some(false),
        (None, None) => None,
    };
    let mut body = serde_json::Map::new();
    let mut diffs = vec![];
    if have.mode.as_deref() != Some("saml") {
        body.insert("preferredSingleSignOnMode".into(), json!("saml"));
        diffs.push("preferredSingleSignOnMode".to_string());
    }
    if have.login_url != saml.sign_on_url && saml.sign_on_url.is_some() {
        body.insert("loginUrl".into(), json!(saml.sign_on_url));
        diffs.push("loginUrl".into());
    }
    if have.relay_state != saml.relay_state && saml.relay_state.is_some() {
        body.insert(
            "samlSingleSignOnSettings".into(),
            json!({"relayState": saml.relay_state}),
        );
        diffs.push("samlSingleSignOnSettings.relayState".into());
    }
    let missing_mail: Vec<&String> = saml
        .notify
        .iter()
        .filter(|m| {
            !have
                .notification_emails
                .iter()
                .any(|h| h.eq_ignore_ascii_case(m))
        })
        .collect();
    if !missing_mail.is_empty() {
        let mut all = have.notification_emails.clone();
        all.extend(missing_mail.into_iter().cloned());
        body.insert("notificationEmailAddresses".into(), json!(all));
        diffs.push("notificationEmailAddresses".into());
    }
    if let Some(required) = required.filter(|r| st.is_none() || have.assignment_required != *r) {
        body.insert("appRoleAssignmentRequired".into(), json!(required));
        diffs.push("appRoleAssignmentRequired".into());
    }
    let required = required.unwrap_or(have.assignment_required);
    let mut after_mode: Vec<usize> = after_inst.to_vec();
    if !diffs.is_empty() {
        let step = push(
            Change::ConfigureSaml { body: Value::Object(body), differences: diffs.clone() },
            "Turn on SAML single sign-on".into(),
            format!(
                "{provider} signs users in with SAML. {} Set before the Entity ID: tenants that restrict identifier URIs exempt SAML apps only.",
                if required { "Only the users and groups assigned to the app may sign in." } else { "Every user of the tenant may sign in." }
            ),
            format!("PATCH {sp_path}"),
            after_inst.to_vec(),
        );
        after_mode.push(step);
    }
    let uris_ok = have.identifier_uris.iter().any(|u| u == &saml.entity_id);
    let replies_ok = saml.reply_urls.iter().all(|u| have.reply_urls.contains(u));
    let logout_ok = saml.logout_url.is_none() || have.logout_url == saml.logout_url;
    let groups_ok = saml.groups_claim.is_none() || have.groups_claim == saml.groups_claim;
    let uris_step = if uris_ok && replies_ok && logout_ok && groups_ok {
        None
    } else {
        // The Entity ID replaces other identifiers (a SAML app has one); Reply URLs are added to
        // the ones there, the service's default first.
        let mut replies = saml.reply_urls.clone();
        replies.extend(
            have.reply_urls
                .iter()
                .filter(|u| !saml.reply_urls.contains(u))
                .cloned(),
        );
        let mut web = json!({"redirectUris": replies});
        if let Some(l) = &saml.logout_url {
            web["logoutUrl"] = json!(l);
        }
        let mut differences = vec![];
        if !uris_ok {
            differences.push("identifierUris".to_string());
        }
        if !replies_ok {
            differences.push("web.redirectUris".into());
        }
        if !logout_ok {
            differences.push("web.logoutUrl".into());
        }
        let mut body = json!({"identifierUris": [saml.entity_id], "web": web});
        if let Some(g) = &saml.groups_claim {
            body["groupMembershipClaims"] = json!(g);
            if !groups_ok {
                differences.push("groupMembershipClaims".into());
            }
        }
        Some(push(
            Change::SetSamlUris { body, differences },
            format!("Set the Entity ID {} and Reply URL {}", saml.entity_id, saml.reply_urls.join(", ")),
            format!("{provider} identifies itself with this Entity ID and receives sign-ins at the Reply URL."),
            "PATCH /applications/{id}".into(),
            after_mode.clone(),
        ))
    };
    let soon = input.now + Duration::days(60);
    let lasting = |c: &super::state::SigningCert| c.end.is_some_and(|e| e > soon);
    let preferred = have.preferred();
    // No certificate signs yet, or the active one has lapsed: sign-in is down, so the new one is
    // made active at once. Otherwise a rotation adds the new one next to the active one, and it
    // becomes active only when the admin confirms the service has it (no downtime).
    let signing = preferred.filter(|c| c.end.is_none_or(|e| e > input.now));
    let rotate = signing.is_some_and(|c| intent.rotate_secret || !lasting(c));
    let before_cert: Vec<usize> = after_mode.iter().copied().chain(uris_step).collect();
    if let (true, Some(active)) = (rotate, signing) {
        let waiting = have.certificates.iter().any(|c| {
            !c.thumbprint.eq_ignore_ascii_case(&active.thumbprint)
                && lasting(c)
                && c.end > active.end
        });
        if !waiting {
            let days = saml.certificate_lifetime_days.min(1095);
            let end = input.now + Duration::days(i64::from(days));
            push(
                Change::AddSigningCertificate {
                    display_name: certificate_name(intent),
                    end,
                    lifetime_days: days,
                },
                format!("Add a new SAML signing certificate valid for {days} days (until {}), next to the active one", end.format("%Y-%m-%d")),
                format!(
                    "Rotation without downtime: Entra keeps signing with the certificate {} (expires {}) until you confirm {provider} has the new one; services that read the metadata URL pick it up by themselves.",
                    active.thumbprint,
                    active.end.map_or_else(|| "never".into(), |e| e.format("%Y-%m-%d").to_string())
                ),
                format!("POST {sp_path}/addTokenSigningCertificate"),
                before_cert.clone(),
            );
        }
    }
    if signing.is_none() {
        // One an earlier run added but did not get to prefer is used, not a second one made.
        let unused = have
            .certificates
            .iter()
            .filter(|c| lasting(c) && c.display_name.starts_with("CN="))
            .max_by_key(|c| c.end);
        let (add, thumbprint) = match unused {
            Some(c) => (None, Some(c.thumbprint.clone())),
            None => {
                let days = saml.certificate_lifetime_days.min(1095);
                let end = input.now + Duration::days(i64::from(days));
                let step = push(
                    Change::AddSigningCertificate {
                        display_name: certificate_name(intent),
                        end,
                        lifetime_days: days,
                    },
                    format!("Add a SAML signing certificate valid for {days} days (until {})", end.format("%Y-%m-%d")),
                    format!("Entra signs every SAML response to {provider} with it; the federation metadata carries it, and Entra mails the addresses above before it expires."),
                    format!("POST {sp_path}/addTokenSigningCertificate"),
                    before_cert.clone(),
                );
                (Some(step), None)
            }
        };
        push(
            Change::PreferSigningCertificate { thumbprint: thumbprint.clone() },
            match &thumbprint {
                Some(t) => format!("Sign with the certificate {t} already on the app"),
                None => "Sign with the new certificate".into(),
            },
            "Entra signs with the preferred certificate only; services reading the metadata URL pick it up by themselves.".into(),
            format!("PATCH {sp_path} (preferredTokenSigningKeyThumbprint)"),
            add.map_or_else(|| before_cert.clone(), |a| vec![a]),
        );
    }
    if !scim_here {
        if let Some(assign) = &saml.assign {
            plan_assignments(input, assign, "may sign in", &sp_path, after_inst, push)?;
        }
    }
    Ok(())
}

/// A signing certificate's subject: `CN=` and the app's name (characters that would start
/// another attribute blanked).
fn certificate_name(intent: &Intent) -> String {
    let cn: String = intent
        .template_display_name()
        .chars()
        .map(|c| if matches!(c, ',' | '=' | '+') { ' ' } else { c })
        .collect();
    format!("CN={cn}")
}

/// Assigns who the admin chose to the template app and removes who they deselected.
fn plan_assignments(
    input: &PlanInput<'_>,
    assign: &[super::Assignee],
    effect: &str,
    sp_path: &str,
    after_inst: &[usize],
    push: &mut Push<'_>,
) -> Result<Vec<usize>, PlanError> {
    let have: Vec<&super::state::PrincipalAssignment> = input
        .state
        .provisioning()
        .map(|s| s.assignments.iter().collect())
        .unwrap_or_default();
    plan_assignments_on(input, assign, &have, effect, sp_path, after_inst, push)
}

/// Assigns who the admin chose to an app that has `have` assigned, and removes who they
/// deselected.
fn plan_assignments_on(
    input: &PlanInput<'_>,
    assign: &[super::Assignee],
    have: &[&super::state::PrincipalAssignment],
    effect: &str,
    sp_path: &str,
    after_inst: &[usize],
    push: &mut Push<'_>,
) -> Result<Vec<usize>, PlanError> {
    use super::PrincipalKind;
    let groups: Vec<&str> = assign
        .iter()
        .filter(|a| a.kind == PrincipalKind::Group)
        .map(|a| a.display_name.as_str())
        .collect();
    if !input.premium && !groups.is_empty() {
        return Err(PlanError::GroupsNeedPremium {
            groups: groups.join(", "),
        });
    }
    let provider = &input.intent.provider.name;
    let mut steps = vec![];
    for a in assign {
        if have
            .iter()
            .any(|h| h.principal_id.eq_ignore_ascii_case(&a.id))
        {
            continue;
        }
        let nested = match &input.intent.provider.directory_sync {
            Some(d) if d.members == crate::provider::MemberCount::Transitive => {
                "members of its nested groups too"
            }
            _ => "members of nested groups do not",
        };
        let (kind, why) = if a.kind == PrincipalKind::Group {
            ("group", format!("Its direct members {effect} ({nested})."))
        } else {
            ("user", format!("This user {effect}."))
        };
        steps.push(push(
            Change::AssignToApp {
                principal_id: a.id.clone(),
                principal_kind: a.kind,
                display_name: a.display_name.clone(),
            },
            format!("Assign the {kind} {} to the app", a.display_name),
            why,
            format!("POST {sp_path}/appRoleAssignedTo"),
            after_inst.to_vec(),
        ));
    }
    for h in have {
        if assign
            .iter()
            .any(|a| a.id.eq_ignore_ascii_case(&h.principal_id))
        {
            continue;
        }
        let name = h
            .principal_display_name
            .clone()
            .unwrap_or_else(|| h.principal_id.clone());
        steps.push(push(
            Change::UnassignFromApp { assignment_id: h.id.clone(), display_name: name.clone() },
            format!("Remove {name} from the app"),
            format!("You deselected it: it no longer {effect}, and {provider} hears of it at the next cycle."),
            format!("DELETE {sp_path}/appRoleAssignedTo/{}", h.id),
            vec![],
        ));
    }
    Ok(steps)
}

/// The SCIM part of the plan: the provisioning job, assignments, credentials, start.
fn plan_scim(
    input: &PlanInput<'_>,
    si: &super::ScimIntent,
    after_inst: &[usize],
    push: &mut Push<'_>,
) -> Result<(), PlanError> {
    let intent = input.intent;
    let st = input.state.provisioning();
    let sp_path = st.map_or_else(
        || "/servicePrincipals/{new}".to_string(),
        |s| format!("/servicePrincipals/{}", s.sp_id),
    );
    let job_template = intent
        .provider
        .scim
        .as_ref()
        .map_or_else(|| Some(scim_job_template()), |x| x.job_template.clone());
    let after_inst: Vec<usize> = after_inst.to_vec();
    let job = if st.and_then(|s| s.job.as_ref()).is_none() {
        Some(push(
            Change::CreateSyncJob {
                template: job_template.clone().unwrap_or_default(),
            },
            match &job_template {
                Some(t) => format!("Create the provisioning job (\"{t}\" template)"),
                None => "Create the provisioning job (the gallery app's own template)".into(),
            },
            "The job is what calls the SCIM endpoint every 40 minutes.".into(),
            format!("POST {sp_path}/synchronization/jobs"),
            after_inst.clone(),
        ))
    } else {
        None
    };
    let mut before_start: Vec<usize> = after_inst.iter().copied().chain(job).collect();
    if !si.sync_all {
        before_start.extend(plan_assignments(
            input,
            &si.assign,
            "is provisioned",
            &sp_path,
            &after_inst,
            push,
        )?);
    }
    let last = input.hints.scim.as_ref();
    let settings_changed =
        last.is_none_or(|r| r.tenant_url != si.tenant_url || r.sync_all != si.sync_all);
    let narrowed = last.is_some_and(|r| r.sync_all && !si.sync_all);
    if si.new_token {
        let v = push(
            Change::ValidateScimCredentials { tenant_url: si.tenant_url.clone() },
            "Test the connection to the SCIM endpoint (Entra calls it)".into(),
            "Entra's own Test Connection: it queries the endpoint for a user that does not exist and expects an empty list.".into(),
            format!("POST {sp_path}/synchronization/jobs/{{job}}/validateCredentials"),
            job.into_iter().chain(after_inst.iter().copied()).collect(),
        );
        before_start.push(push(
            Change::SaveScimSecrets {
                tenant_url: si.tenant_url.clone(),
                sync_all: si.sync_all,
                token_expires: si.token_expires,
            },
            format!(
                "Save the tenant URL, token and scope ({})",
                if si.sync_all {
                    "all users and groups"
                } else {
                    "assigned users and groups only"
                }
            ),
            "Entra keeps the token and never shows it again.".into(),
            format!("PUT {sp_path}/synchronization/secrets"),
            vec![v],
        ));
    } else if settings_changed {
        let why = if last.is_none() {
            "this is the first time provisioning is configured".to_string()
        } else {
            "the tenant URL or scope changed, and Entra saves them together with the token"
                .to_string()
        };
        return Err(PlanError::ScimTokenNeeded { why });
    }
    let job_state = st.and_then(|s| s.job.as_ref());
    let idle = job_state.is_none_or(|j| {
        j.schedule != "Active"
            || matches!(
                j.status.as_str(),
                "NotConfigured" | "NotRun" | "Paused" | "Quarantine"
            )
    });
    if si.start && (idle || narrowed) {
        let restart = narrowed || job_state.is_some_and(|j| j.status == "Quarantine");
        push(
            Change::StartSyncJob { restart },
            if restart {
                "Restart provisioning".into()
            } else {
                "Start provisioning".into()
            },
            if narrowed {
                "Switching from all users to assigned ones only takes effect after a restart (a documented Entra issue).".into()
            } else {
                "The first cycle starts now; later ones run about every 40 minutes.".into()
            },
            format!(
                "POST {sp_path}/synchronization/jobs/{{job}}/{}",
                if restart { "restart" } else { "start" }
            ),
            before_start,
        );
    }
    Ok(())
}

/// The admin-consent URL a colleague opens (v2 endpoint, `.default` scope, the app's redirect URI).
pub fn admin_consent_url(
    cloud: &Cloud,
    tenant_id: &str,
    app_id: &str,
    redirect_uri: &str,
) -> String {
    let mut u = url::Url::parse(&format!(
        "{}/{tenant_id}/v2.0/adminconsent",
        cloud.authority.as_str().trim_end_matches('/')
    ))
    .unwrap_or_else(|_| cloud.authority.clone());
    u.query_pairs_mut()
        .append_pair("client_id", app_id)
        .append_pair("scope", &cloud.graph_scope(".default"))
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("state", &uuid::Uuid::new_v4().simple().to_string());
    u.to_string()
}
