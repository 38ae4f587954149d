//! The vendor's own apps (Twingate's sign-in app, Firezone's two apps) and gallery templates.
//!
//! A vendor's multi-tenant app lives in the vendor's tenant; it appears here as a service
//! principal when an administrator consents from the vendor's console (reference §7c, §8c). The
//! wizard never creates, changes the permissions of, or deletes one: it finds it (by appId, or
//! by exact display name among apps another tenant owns), compares the consent it holds with
//! what the profile says the vendor needs, and says in plain words what is missing.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::state::TenantState;
use super::Intent;
use crate::auth::StepScopes;
use crate::graph::{GraphClient, GraphError};
use crate::provider::{self, AppSource, PermissionKind};

/// Where a vendor app's consent stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub enum ConsentStatus {
    /// No such app in this tenant: nobody consented here (or consent went to another tenant,
    /// or the app was deleted).
    Missing,
    /// The app is here but disabled: nobody signs in to it and it gets no tokens.
    Disabled,
    /// The app is here but lacks permissions the vendor needs (consent incomplete or revoked).
    Incomplete,
    /// The app is here, enabled, with every permission the vendor needs.
    Complete,
}

/// One vendor app's consent, checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct VendorConsent {
    /// The profile's id for the app.
    pub app: String,
    /// The app's name (the vendor's).
    pub name: String,
    pub status: ConsentStatus,
    /// Permissions the vendor needs that the consent does not hold ("User.Read.All
    /// (application)").
    pub missing: Vec<String>,
    /// Permissions it holds of those the vendor needs.
    pub granted: Vec<String>,
    /// What to do, in plain words (empty when complete).
    pub message: String,
    /// Its service principal's object id, when present.
    pub sp_id: Option<String>,
    /// Microsoft Graph permissions it holds in this tenant beyond what the profile says the
    /// vendor needs ("Directory.ReadWrite.All (application)"): worth a look before trusting it.
    pub extra: Vec<String>,
    /// The tenant that owns the app (the vendor's), as Entra records it.
    pub owner_tenant: Option<String>,
    /// The app's verified publisher, if Microsoft verified one.
    pub verified_publisher: Option<String>,
}

fn label(name: &str, kind: PermissionKind) -> String {
    match kind {
        PermissionKind::Delegated => format!("{name} (delegated)"),
        PermissionKind::Application => format!("{name} (application)"),
    }
}

/// Checks every vendor app of the setup against what the profile says the vendor needs. Pure.
pub fn consent(intent: &Intent, state: &TenantState) -> Vec<VendorConsent> {
    let provider = &intent.provider;
    let reconsent = provider
        .vendor
        .as_ref()
        .map(|v| v.reconsent.clone())
        .unwrap_or_default();
    provider
        .vendor_apps()
        .map(|spec| {
            let name = spec.vendor_name();
            let needed: Vec<&provider::PermissionSpec> = provider
                .permissions
                .iter()
                .filter(|p| p.app == spec.id)
                .collect();
            let Some(found) = state.vendor(&spec.id) else {
                return VendorConsent {
                    app: spec.id.clone(),
                    name: name.clone(),
                    status: ConsentStatus::Missing,
                    missing: needed.iter().map(|p| label(&p.name, p.kind)).collect(),
                    granted: vec![],
                    message: format!(
                        "\"{name}\" is not in this tenant yet: {} has not been connected here. If you already did it in {}'s console, the consent went to another tenant (the browser was signed in to Microsoft with an account of another organisation): sign in with an account of this tenant and connect again. A new app can take a minute to show.",
                        provider.name, provider.name
                    ),
                    sp_id: None,
                    extra: vec![],
                    owner_tenant: None,
                    verified_publisher: None,
                };
            };
            let graph_id = &state.graph_sp.id;
            let scopes: Vec<String> = found
                .grants
                .iter()
                .filter(|g| &g.resource_id == graph_id)
                .flat_map(|g| {
                    g.scope
                        .clone()
                        .unwrap_or_default()
                        .split_whitespace()
                        .map(str::to_ascii_lowercase)
                        .collect::<Vec<_>>()
                })
                .collect();
            let (mut missing, mut granted) = (vec![], vec![]);
            for p in &needed {
                let held = match p.kind {
                    PermissionKind::Delegated => scopes.contains(&p.name.to_ascii_lowercase()),
                    PermissionKind::Application => state
                        .graph_sp
                        .permission_id(&p.name, p.kind)
                        .is_some_and(|id| {
                            found.roles.iter().any(|r| {
                                &r.resource_id == graph_id && r.app_role_id.eq_ignore_ascii_case(id)
                            })
                        }),
                };
                if held {
                    granted.push(label(&p.name, p.kind));
                } else {
                    missing.push(label(&p.name, p.kind));
                }
            }
            // What it holds beyond the profile's list: granted by someone, or asked for by a
            // newer version of the vendor's app.
            let declared = |name: &str, kind: PermissionKind| {
                needed
                    .iter()
                    .any(|p| p.kind == kind && p.name.eq_ignore_ascii_case(name))
            };
            let basic = ["openid", "profile", "email", "offline_access"];
            let mut extra: Vec<String> = scopes
                .iter()
                .filter(|s| !basic.contains(&s.as_str()) && !declared(s, PermissionKind::Delegated))
                .map(|s| label(s, PermissionKind::Delegated))
                .collect();
            extra.extend(
                found
                    .roles
                    .iter()
                    .filter(|r| &r.resource_id == graph_id)
                    .filter_map(|r| state.graph_sp.permission_name(&r.app_role_id, PermissionKind::Application))
                    .filter(|n| !declared(n, PermissionKind::Application))
                    .map(|n| label(n, PermissionKind::Application)),
            );
            let (status, message) = if !found.enabled {
                (
                    ConsentStatus::Disabled,
                    format!("\"{name}\" is disabled in this tenant: nobody can sign in to {} and it gets no tokens. In the Entra admin center: Enterprise applications → {name} → Properties → Enabled for users to sign in → Yes.", provider.name),
                )
            } else if !missing.is_empty() {
                (
                    ConsentStatus::Incomplete,
                    format!(
                        "\"{name}\" is here, but its consent lacks {}: the consent was not finished or has been revoked, and {} answers \"Unauthorized\" until it is complete. {reconsent}",
                        missing.join(", "),
                        provider.name
                    ),
                )
            } else {
                (ConsentStatus::Complete, String::new())
            };
            VendorConsent {
                app: spec.id.clone(),
                name: found.display_name.clone(),
                status,
                missing,
                granted,
                message,
                sp_id: Some(found.sp_id.clone()),
                extra,
                owner_tenant: found.owner_tenant.clone(),
                verified_publisher: found.verified_publisher.clone(),
            }
        })
        .collect()
}

/// Every vendor app is present, enabled and fully consented.
pub fn complete(consents: &[VendorConsent]) -> bool {
    consents.iter().all(|c| c.status == ConsentStatus::Complete)
}

/// The vendor's console page where the connection starts, rendered with the inputs; `None`
/// when an optional input it uses was left empty.
pub fn console_url(intent: &Intent) -> Option<String> {
    let v = intent.provider.vendor.as_ref()?;
    let mut values = intent.inputs.clone();
    values.insert("tenant_id".into(), intent.tenant_id.clone());
    let empty = provider::placeholders(&v.console_url)
        .iter()
        .any(|p| values.get(p).is_none_or(String::is_empty));
    if empty {
        return None;
    }
    provider::render(&v.console_url, &values, str::to_string).ok()
}

/// What the admin copies into the vendor's console: (what, value).
pub fn hand_over(intent: &Intent) -> Vec<(String, String)> {
    intent
        .provider
        .vendor
        .iter()
        .flat_map(|v| v.hand_over.iter())
        .filter_map(|h| match h.as_str() {
            "tenant_id" => Some(("Tenant ID".to_string(), intent.tenant_id.clone())),
            _ => None,
        })
        .collect()
}

/// A gallery template the tenant's gallery does not list.
#[derive(Debug, thiserror::Error)]
pub enum GalleryError {
    #[error("Entra's app gallery in this tenant has no application template named \"{0}\", so its enterprise app cannot be created. Check the name in Enterprise applications → New application, or the cloud: gallery apps differ between Microsoft's clouds.")]
    NotInGallery(String),
    #[error(transparent)]
    Graph(#[from] GraphError),
}

/// Finds each gallery app's template by display name (`applicationTemplates?$filter=displayName
/// eq '…'`, reference §8c), unless the profile pins its id.
pub async fn gallery_templates(
    graph: &GraphClient,
    intent: &Intent,
) -> Result<BTreeMap<String, String>, GalleryError> {
    let mut out = BTreeMap::new();
    for spec in &intent.provider.apps {
        let AppSource::Gallery {
            template,
            template_id: None,
        } = &spec.source
        else {
            continue;
        };
        let found: Vec<serde_json::Value> = graph
            .get(format!(
                "/applicationTemplates?$filter=displayName eq '{}'",
                template.replace('\'', "''")
            ))
            .scopes(StepScopes::RegisterApp)
            .list()
            .await?;
        let id = found
            .iter()
            .find(|t| {
                t["displayName"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(template))
            })
            .and_then(|t| t["id"].as_str())
            .ok_or_else(|| GalleryError::NotInGallery(template.clone()))?;
        out.insert(spec.id.clone(), id.to_string());
    }
    Ok(out)
}

/// Reads the vendor apps of the setup and checks their consent.
pub async fn check(graph: &GraphClient, intent: &Intent) -> Result<Vec<VendorConsent>, GraphError> {
    let graph_sp = graph
        .get(format!(
            "/servicePrincipals(appId='{}')?$select=id,appId,appRoles,oauth2PermissionScopes",
            crate::graph::permissions::GRAPH_APP_ID
        ))
        .scopes(StepScopes::RegisterApp)
        .send_json()
        .await?;
    let mut state = TenantState::empty(graph_sp);
    for spec in intent.provider.vendor_apps() {
        if let Some(v) = super::state::read_vendor(graph, &intent.tenant_id, spec).await? {
            state
                .apps
                .insert(spec.id.clone(), super::state::FoundApp::Vendor(v));
        }
    }
    Ok(consent(intent, &state))
}

/// Checks the consent until every vendor app is complete or `wait` has passed, reporting each
/// check; returns the last one.
pub async fn wait_for_consent(
    graph: &GraphClient,
    intent: &Intent,
    wait: Duration,
    poll: Duration,
    on_check: &(dyn Fn(&[VendorConsent]) + Send + Sync),
) -> Result<Vec<VendorConsent>, GraphError> {
    let until = tokio::time::Instant::now() + wait;
    loop {
        let now = check(graph, intent).await?;
        on_check(&now);
        if complete(&now) || tokio::time::Instant::now() + poll > until {
            return Ok(now);
        }
        tokio::time::sleep(poll).await;
    }
}

/// The live checks of a setup with vendor apps (Done, `apply`): each app's consent, and for a
/// vendor that syncs the directory itself, the chosen groups still on the right app.
pub async fn live_checks(graph: &GraphClient, intent: &Intent) -> Vec<crate::checks::CheckResult> {
    use crate::checks::{CheckResult, Status};
    let consents = match check(graph, intent).await {
        Ok(c) => c,
        Err(e) => {
            return vec![CheckResult {
                id: "vendor_consent".into(),
                title: format!("{}'s apps in this tenant", intent.provider.name),
                status: Status::Fail,
                detail: format!("Could not read them: {e}"),
                cause: None,
                fix: None,
                evidence: e.api().and_then(|a| a.request_id.clone()),
            }]
        }
    };
    let mut out: Vec<CheckResult> = consents
        .iter()
        .map(|c| CheckResult {
            id: format!("vendor_consent_{}", c.app),
            title: format!("\"{}\": consent", c.name),
            status: if c.status == ConsentStatus::Complete {
                Status::Pass
            } else {
                Status::Fail
            },
            detail: if c.status == ConsentStatus::Complete {
                format!(
                    "Present, enabled, and consented to {}.",
                    if c.granted.is_empty() {
                        "what it needs".to_string()
                    } else {
                        c.granted.join(", ")
                    }
                )
            } else {
                c.message.clone()
            },
            cause: None,
            fix: None,
            evidence: c.sp_id.as_ref().map(|id| format!("service principal {id}")),
        })
        .collect();
    if let (Some(spec), Some(choice)) = (&intent.provider.directory_sync, &intent.directory_sync) {
        if !choice.sync_all {
            let target = consents.iter().find(|c| c.app == spec.assign_to);
            let read = || async {
                match target.and_then(|c| c.sp_id.as_ref()) {
                    Some(sp) => graph
                        .get(format!("/servicePrincipals/{sp}/appRoleAssignedTo"))
                        .scopes(StepScopes::Consent)
                        .list::<super::state::PrincipalAssignment>()
                        .await
                        .unwrap_or_default(),
                    None => vec![],
                }
            };
            let missing_in = |found: &[super::state::PrincipalAssignment]| -> Vec<String> {
                choice
                    .assign
                    .iter()
                    .filter(|a| {
                        !found
                            .iter()
                            .any(|f| f.principal_id.eq_ignore_ascii_case(&a.id))
                    })
                    .map(|a| a.display_name.clone())
                    .collect()
            };
            // Assignments made moments ago may not be in the list yet (replication): look again
            // for as long as Graph's documented delays last before calling them missing.
            let mut missing = missing_in(&read().await);
            let mut patience = graph.replication_patience();
            while !missing.is_empty() && target.is_some() && patience.again().await {
                missing = missing_in(&read().await);
            }
            let name = target.map_or_else(|| spec.assign_to.clone(), |c| c.name.clone());
            out.push(CheckResult {
                id: "vendor_assignments".into(),
                title: format!("Groups on \"{name}\""),
                status: if missing.is_empty() {
                    Status::Pass
                } else {
                    Status::Fail
                },
                detail: if missing.is_empty() {
                    format!(
                        "{} assigned, as chosen: {} syncs them with \"{}\".",
                        choice
                            .assign
                            .iter()
                            .map(|a| a.display_name.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        intent.provider.name,
                        spec.assigned_label
                    )
                } else {
                    format!(
                        "Not assigned: {}. Apply again to assign them.",
                        missing.join(", ")
                    )
                },
                cause: None,
                fix: None,
                evidence: None,
            });
        }
    }
    out
}

/// What a re-check of an earlier setup with vendor apps finds that needs the admin: consent
/// gone or incomplete, an app disabled, and assignments or "assignment required" the wizard
/// set that are no longer there.
pub async fn attention(
    graph: &GraphClient,
    intent: &Intent,
    journal: &super::journal::Journal,
) -> Result<Vec<String>, GraphError> {
    use super::journal::ObjectKind;
    let mut out: Vec<String> = check(graph, intent)
        .await?
        .into_iter()
        .filter(|c| c.status != ConsentStatus::Complete)
        .map(|c| c.message)
        .collect();
    let created = journal
        .created()
        .map_err(|e| GraphError::Refused(e.to_string()))?;
    for spec in intent.provider.vendor_apps() {
        let Some(v) = super::state::read_vendor(graph, &intent.tenant_id, spec).await? else {
            continue;
        };
        let gone = created
            .iter()
            .filter(|c| {
                c.kind == ObjectKind::Assignment && c.previous.as_deref() == Some(v.sp_id.as_str())
            })
            .filter(|c| !v.assignments.iter().any(|a| a.id == c.id))
            .count();
        if gone > 0 {
            out.push(format!("{gone} assignment(s) the wizard made on \"{}\" are gone: apply again to restore the groups you chose.", v.display_name));
        }
        let required = created
            .iter()
            .any(|c| c.kind == ObjectKind::AssignmentRequirement && c.id == v.sp_id);
        if required && !v.assignment_required {
            out.push(format!("\"Assignment required\" was turned off on \"{}\": every user of the tenant can sign in to {} again. Apply again to turn it back on.", v.display_name, intent.provider.name));
        }
    }
    Ok(out)
}

/// A value the vendor's console asks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct HandOverValue {
    pub label: String,
    pub value: String,
}

/// Permissions & consent for a service that owns its apps, as the desktop shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct VendorView {
    pub provider_name: String,
    pub consents: Vec<VendorConsent>,
    pub hand_over: Vec<HandOverValue>,
    /// The vendor's console page, when the inputs say which.
    pub console_url: Option<String>,
    pub console_steps: String,
    pub complete: bool,
    /// The demo tenant: its stand-in console connects the vendor.
    pub demo: bool,
    /// Said when the vendor asks for application permissions and the signed-in admin cannot
    /// grant them (only a Global Administrator or Privileged Role Administrator can).
    pub role_note: Option<String>,
}

/// Whether the vendor's consent needs a Global Administrator or Privileged Role Administrator
/// (it includes application permissions), and the admin is neither: what to tell them.
pub fn role_note(intent: &Intent, can_grant_app_roles: bool) -> Option<String> {
    let p = &intent.provider;
    let needs = p.permissions.iter().any(|x| {
        x.kind == PermissionKind::Application
            && p.app(&x.app).is_some_and(|a| !a.source.wizard_made())
    });
    (needs && !can_grant_app_roles).then(|| {
        format!(
            "{name}'s consent includes application permissions of Microsoft Graph, which only a Global Administrator or Privileged Role Administrator can grant, and your account holds neither role (active). Ask one of them to do the connection in {name}'s console, or activate your role in Privileged Identity Management first; the wizard sees their consent here too.",
            name = p.name
        )
    })
}

/// Checks the vendor's apps and says what to do.
pub async fn view(
    graph: &GraphClient,
    intent: &Intent,
    demo: bool,
    can_grant_app_roles: bool,
) -> Result<VendorView, GraphError> {
    let consents = check(graph, intent).await?;
    Ok(VendorView {
        provider_name: intent.provider.name.clone(),
        complete: complete(&consents),
        consents,
        hand_over: hand_over(intent)
            .into_iter()
            .map(|(label, value)| HandOverValue { label, value })
            .collect(),
        console_url: console_url(intent),
        console_steps: intent
            .provider
            .vendor
            .as_ref()
            .map(|v| v.console_steps.clone())
            .unwrap_or_default(),
        demo,
        role_note: role_note(intent, can_grant_app_roles),
    })
}

/// What Done advises for a setup with vendor apps: the profile's warnings (plans, limits), and
/// for a vendor's own directory sync which mode to pick in its console, where, and when it runs.
pub fn done_advice(intent: &Intent) -> Vec<crate::tenant::Advice> {
    use crate::tenant::{Advice, Severity};
    let p = &intent.provider;
    let mut out = vec![];
    if let (Some(spec), Some(choice)) = (&p.directory_sync, &intent.directory_sync) {
        let mode = if choice.sync_all {
            &spec.all_label
        } else {
            &spec.assigned_label
        };
        out.push(Advice {
            id: "vendor_sync_mode".into(),
            severity: Severity::Info,
            title: format!("In {}: choose \"{mode}\"", p.name),
            detail: format!(
                "{}: pick \"{mode}\", the mode this setup prepared. {}",
                spec.where_to_choose, spec.schedule
            ),
            link: None,
        });
    }
    out.extend(p.warnings.iter().map(Advice::from));
    out
}
