//! Undo: removes exactly what the journal says the wizard created, newest first, and restores
//! grants it only extended. Objects it did not create are never touched.

use std::sync::Arc;

use chrono::Utc;
use serde_json::json;

use super::journal::{Created, Entry, Event, Journal, ObjectKind};
use super::state::absent;
use crate::auth::StepScopes;
use crate::graph::{gone_ok, GraphClient, GraphError};
use crate::values::is_guid;

/// One thing Undo did, for the admin.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct Undone {
    pub what: String,
    pub id: String,
}

/// Journals that Undo removed (or restored) an object.
fn record_undone(journal: &Journal, plan_id: &str, kind: ObjectKind, id: &str) {
    let entry = Entry {
        at: Utc::now(),
        plan_id: plan_id.to_string(),
        seq: None,
        event: Event::Undone {
            kind,
            id: id.to_string(),
        },
        app: None,
        app_object_id: None,
        app_id: None,
        request_id: None,
    };
    if let Err(e) = journal.append(&entry) {
        tracing::warn!(error = %e, "could not journal an undo step");
    }
}

/// The objects one setup owns in the tenant, read fresh: what every journal line Undo acts on
/// must point at. The setup is the journal's own: its file is named after the setup's
/// `uniqueName`, and its plans name the provider.
#[derive(Debug, Default)]
pub(crate) struct SetupObjects {
    /// Object ids of the setup's apps (registration, enterprise app made from a template).
    pub apps: Vec<String>,
    /// Their appIds.
    pub app_ids: Vec<String>,
    /// Their service principals, and the vendor's apps' in this tenant.
    pub sps: Vec<String>,
    /// Service principals of the vendor's own apps (their "assignment required" may change).
    pub vendor_sps: Vec<String>,
}

impl SetupObjects {
    /// Reads the apps the journal's setup has: by its `uniqueName` and the provisioning app's,
    /// each only with the wizard's tag (and the provider's, when the journal names it); apps an
    /// interrupted instantiate left under a temporary name of a plan in this journal; the
    /// vendor's apps the provider's profile names.
    pub(crate) async fn read(graph: &GraphClient, journal: &Journal) -> Result<Self, GraphError> {
        let s = StepScopes::RegisterApp;
        let unique = journal.unique_name();
        let provider_id = journal
            .provider_id()
            .map_err(|e| GraphError::Refused(e.to_string()))?;
        let mut out = Self::default();
        let mut names = vec![unique.clone()];
        let mut scim = format!("{unique}-scim");
        scim.truncate(120);
        names.push(scim);
        for name in &names {
            let Some(app) = absent(
                graph
                    .get(format!(
                        "{}?$select=id,appId,displayName,uniqueName,tags,notes,web,createdDateTime",
                        super::state::unique_name_path(name)
                    ))
                    .scopes(s)
                    .send_json::<serde_json::Value>()
                    .await,
            )?
            else {
                continue;
            };
            let Some(w) = super::found::WizardApp::from_json(app) else {
                continue;
            };
            if provider_id.as_deref().is_some_and(|p| p != w.provider_id) {
                continue;
            }
            out.apps.push(w.object_id.clone());
            out.app_ids.push(w.app_id.clone());
        }
        // An apply cut short between instantiate and naming: the app carries a temporary name
        // that starts with a plan id of this journal.
        let plans: Vec<String> = journal
            .entries()
            .map_err(|e| GraphError::Refused(e.to_string()))?
            .into_iter()
            .map(|e| e.plan_id)
            .collect();
        for c in journal
            .created()
            .map_err(|e| GraphError::Refused(e.to_string()))?
        {
            if c.kind != ObjectKind::TemplateApplication
                || out.apps.contains(&c.id)
                || !is_guid(&c.id)
            {
                continue;
            }
            let Some(app) = absent(
                graph
                    .get(format!(
                        "/applications/{}?$select=id,appId,displayName",
                        c.id
                    ))
                    .scopes(s)
                    .send_json::<serde_json::Value>()
                    .await,
            )?
            else {
                continue;
            };
            let name = app["displayName"].as_str().unwrap_or_default();
            let half_made = name
                .rsplit_once("(setting up ")
                .and_then(|(_, rest)| rest.strip_suffix(')'))
                .is_some_and(|prefix| {
                    prefix.len() == 8 && plans.iter().any(|p| p.starts_with(prefix))
                });
            if half_made {
                out.apps.push(c.id.clone());
                out.app_ids
                    .push(app["appId"].as_str().unwrap_or_default().to_string());
            }
        }
        for app_id in out.app_ids.clone() {
            match graph
                .get(format!(
                    "/servicePrincipals(appId='{app_id}')?$select=id,appId"
                ))
                .scopes(s)
                .send_json::<serde_json::Value>()
                .await
            {
                Ok(sp) => out
                    .sps
                    .push(sp["id"].as_str().unwrap_or_default().to_string()),
                Err(e) if e.status() == Some(404) => {}
                Err(e) => return Err(e),
            }
        }
        if let Some(p) = provider_id.as_deref().and_then(crate::provider::find) {
            let tenant = journal
                .path()
                .parent()
                .and_then(|d| d.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            for spec in p.vendor_apps() {
                if let Some(v) = super::state::read_vendor(graph, &tenant, spec).await? {
                    out.vendor_sps.push(v.sp_id.clone());
                    out.sps.push(v.sp_id);
                }
            }
        }
        Ok(out)
    }

    fn has_app(&self, id: &str) -> bool {
        self.apps.iter().any(|a| a.eq_ignore_ascii_case(id))
    }

    fn has_sp(&self, id: &str) -> bool {
        self.sps.iter().any(|a| a.eq_ignore_ascii_case(id))
    }
}

/// A grant's or an assignment's id: URL-safe base64 text.
fn is_graph_key(s: &str) -> bool {
    (8..=100).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
}

/// Checks, before Undo changes anything, that every journal record it acts on points at an
/// object of this very setup (read fresh from the tenant), and that a grant is only ever
/// narrowed back to what it was. Whoever can edit the data folder could otherwise make Undo
/// delete another service principal or assignment, turn off "assignment required" on any app,
/// or widen a consent grant to journal-supplied text. An object already gone is fine.
async fn ensure_setups_objects(
    graph: &GraphClient,
    journal: &Journal,
    created: &[Created],
) -> Result<(), GraphError> {
    let refuse = |c: &Created, why: String| {
        GraphError::Refused(format!(
            "Undo stopped before changing anything: record {} of the journal {} ({:?} {}) {why}. The journal may have been edited or copied from another setup. Nothing was changed; remove what you need in the Entra admin center, or restore the journal from a backup.",
            c.record,
            journal.path().display(),
            c.kind,
            crate::redact::echo(&c.id, 80)
        ))
    };
    // Shapes first: no request is made for a line that is not even an id.
    for c in created {
        let ok = match c.kind {
            ObjectKind::Application
            | ObjectKind::TemplateApplication
            | ObjectKind::ServicePrincipal
            | ObjectKind::Password
            | ObjectKind::AssignmentRequirement
            | ObjectKind::RemovedOwner => is_guid(&c.id),
            ObjectKind::Grant | ObjectKind::Assignment => is_graph_key(&c.id),
            ObjectKind::SyncJob => {
                !c.id.is_empty()
                    && c.id.len() < 200
                    && c.id
                        .chars()
                        .all(|x| x.is_ascii_alphanumeric() || matches!(x, '.' | '-' | '_'))
            }
            ObjectKind::SigningCertificate => {
                c.id.len() == 40 && c.id.chars().all(|x| x.is_ascii_hexdigit())
            }
            ObjectKind::RemovedRedirectUri => {
                url::Url::parse(&c.id).is_ok()
                    && matches!(c.previous.as_deref(), Some("web" | "spa" | "publicClient"))
            }
        };
        let related_ok = c.previous.as_deref().is_none_or(|p| match c.kind {
            ObjectKind::Assignment
            | ObjectKind::SyncJob
            | ObjectKind::SigningCertificate
            | ObjectKind::TemplateApplication => is_guid(p),
            _ => true,
        }) && c.app_object_id.as_deref().is_none_or(is_guid);
        if !ok || !related_ok {
            return Err(refuse(c, "is not an id of the kind it names".into()));
        }
    }
    if created.is_empty() {
        return Ok(());
    }
    let setup = SetupObjects::read(graph, journal).await?;
    let c_scopes = StepScopes::Consent;
    // An object already gone (or never replicated) has nothing left to protect: `None`.
    let read = |path: String, scopes: StepScopes| async move {
        absent(
            graph
                .get(path)
                .scopes(scopes)
                .send_json::<serde_json::Value>()
                .await,
        )
    };
    let r = StepScopes::RegisterApp;
    for c in created {
        match c.kind {
            ObjectKind::Application | ObjectKind::TemplateApplication => {
                if !setup.has_app(&c.id)
                    && read(format!("/applications/{}?$select=id", c.id), r)
                        .await?
                        .is_some()
                {
                    return Err(refuse(c, format!("names an app that is not this setup's (it does not carry Entra Setup's tag and the uniqueName {})", journal.unique_name())));
                }
            }
            ObjectKind::Password | ObjectKind::RemovedRedirectUri => {
                let app = c.app_object_id.clone().unwrap_or_default();
                if !app.is_empty()
                    && !setup.has_app(&app)
                    && read(format!("/applications/{app}?$select=id"), r)
                        .await?
                        .is_some()
                {
                    return Err(refuse(
                        c,
                        format!("is on the app {app}, which is not this setup's"),
                    ));
                }
            }
            ObjectKind::ServicePrincipal => {
                let path = format!("/servicePrincipals/{}?$select=id,appId", c.id);
                if let Some(sp) = read(path, r).await? {
                    let app_id = sp["appId"].as_str().unwrap_or_default();
                    if !setup.app_ids.iter().any(|a| a.eq_ignore_ascii_case(app_id)) {
                        return Err(refuse(c, format!("names the service principal of the app {app_id}, not of this setup's app")));
                    }
                }
            }
            ObjectKind::Grant => {
                match read(format!("/oauth2PermissionGrants/{}", c.id), c_scopes).await? {
                    None => continue,
                    Some(g) => {
                        let client = g["clientId"].as_str().unwrap_or_default();
                        if !setup.has_sp(client) {
                            return Err(refuse(c, "names a consent grant of another app".into()));
                        }
                        if let Some(previous) = &c.previous {
                            let now: Vec<&str> = g["scope"]
                                .as_str()
                                .unwrap_or_default()
                                .split_whitespace()
                                .collect();
                            if let Some(extra) =
                                previous.split_whitespace().find(|p| !now.contains(p))
                            {
                                return Err(refuse(c, format!("would widen the consent grant (to add '{}'): Undo only ever narrows a grant back", crate::redact::echo(extra, 60))));
                            }
                        }
                    }
                }
            }
            ObjectKind::Assignment => {
                let resource = c.previous.clone().unwrap_or_default();
                let Some(list) = absent(
                    graph
                        .get(format!("/servicePrincipals/{resource}/appRoleAssignedTo"))
                        .scopes(c_scopes)
                        .list::<serde_json::Value>()
                        .await,
                )?
                else {
                    continue;
                };
                let Some(a) = list.iter().find(|a| a["id"] == c.id.as_str()) else {
                    continue;
                };
                let principal = a["principalId"].as_str().unwrap_or_default();
                let resource_id = a["resourceId"].as_str().unwrap_or(&resource);
                if !setup.has_sp(principal) && !setup.has_sp(resource_id) {
                    return Err(refuse(c, "names an assignment that neither is held by nor gives access to this setup's apps".into()));
                }
            }
            ObjectKind::SyncJob | ObjectKind::SigningCertificate => {
                let sp = c.previous.clone().unwrap_or_default();
                if !setup.has_sp(&sp) {
                    return Err(refuse(
                        c,
                        format!("is on the service principal {sp}, which is not this setup's"),
                    ));
                }
            }
            ObjectKind::AssignmentRequirement => {
                if !setup
                    .vendor_sps
                    .iter()
                    .any(|v| v.eq_ignore_ascii_case(&c.id))
                {
                    return Err(refuse(
                        c,
                        "names an app that is not one of this provider's vendor apps".into(),
                    ));
                }
            }
            ObjectKind::RemovedOwner => {
                let owns = c.previous.clone().unwrap_or_default();
                let ok = match owns.split_once('/') {
                    Some(("applications", id)) => setup.has_app(id),
                    Some(("servicePrincipals", id)) => setup.has_sp(id),
                    _ => false,
                };
                if !ok {
                    return Err(refuse(
                        c,
                        format!(
                            "would add an owner to {}, which is not this setup's",
                            crate::redact::echo(&owns, 80)
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// What Undo would remove, newest first; a damaged journal is an error, never "nothing".
pub fn pending(journal: &Journal) -> Result<Vec<Created>, super::journal::JournalError> {
    journal.created()
}

/// Undoes everything the journal records as created by the wizard.
pub async fn undo(
    graph: &GraphClient,
    journal: &Journal,
    on_done: Arc<dyn Fn(&Undone) + Send + Sync>,
) -> Result<Vec<Undone>, GraphError> {
    let _lock = journal
        .lock_tenant()
        .map_err(|e| GraphError::Refused(e.to_string()))?;
    let created = journal
        .created()
        .map_err(|e| GraphError::Refused(e.to_string()))?;
    ensure_setups_objects(graph, journal, &created).await?;
    let plan_id = format!("undo-{}", uuid::Uuid::new_v4());
    let s = StepScopes::RegisterApp;
    let c = StepScopes::Consent;
    let record = |kind: ObjectKind, id: &str| record_undone(journal, &plan_id, kind, id);
    let mut out = vec![];
    // The provisioning app goes first: deleting it removes its job, secrets and assignments.
    let mut created = created;
    if let Some(app) = created
        .iter()
        .find(|c| c.kind == ObjectKind::TemplateApplication)
        .cloned()
    {
        gone_ok(
            graph
                .delete(format!("/applications/{}", app.id))
                .scopes(s)
                .send()
                .await,
        )?;
        let sp = app.previous.clone().unwrap_or_default();
        // Deleting the app took its job and its assignments with it.
        let went_with_it = |c: &Created| {
            c.kind == ObjectKind::TemplateApplication
                || (matches!(
                    c.kind,
                    ObjectKind::Assignment | ObjectKind::SyncJob | ObjectKind::SigningCertificate
                ) && c.previous.as_deref() == Some(sp.as_str()))
        };
        let saml = created.iter().any(|c| {
            c.kind == ObjectKind::SigningCertificate && c.previous.as_deref() == Some(sp.as_str())
        });
        let job = created
            .iter()
            .any(|c| c.kind == ObjectKind::SyncJob && c.previous.as_deref() == Some(sp.as_str()));
        for c in created.iter().filter(|c| went_with_it(c)) {
            record(c.kind, &c.id);
        }
        created.retain(|c| !went_with_it(c));
        let what = match (saml, job) {
            (true, true) => "Deleted the enterprise app with its single sign-on, signing certificate, provisioning job, saved credentials and assignments",
            (true, false) => "Deleted the enterprise app with its single sign-on, signing certificate and assignments",
            _ => "Deleted the provisioning app, its job, saved credentials and assignments",
        };
        let u = Undone {
            what: what.into(),
            id: app.id.clone(),
        };
        on_done(&u);
        out.push(u);
    }
    // Deleting an application the wizard created removes its service principal, grants,
    // assignments and secrets with it.
    if let Some(app) = created.iter().find(|c| c.kind == ObjectKind::Application) {
        gone_ok(
            graph
                .delete(format!("/applications/{}", app.id))
                .scopes(s)
                .send()
                .await,
        )?;
        for c in created.iter().filter(|c| {
            c.kind == ObjectKind::Application || c.app_object_id.as_deref() == Some(app.id.as_str())
        }) {
            record(c.kind, &c.id);
        }
        let u = Undone {
            what: "Deleted the app registration and its enterprise app, grants and secrets".into(),
            id: app.id.clone(),
        };
        on_done(&u);
        out.push(u);
        return Ok(out);
    }
    for item in &created {
        let u = match item.kind {
            ObjectKind::Assignment => {
                let resource = item.previous.clone().unwrap_or_default();
                gone_ok(
                    graph
                        .delete(format!(
                            "/servicePrincipals/{resource}/appRoleAssignedTo/{}",
                            item.id
                        ))
                        .scopes(c)
                        .send()
                        .await,
                )?;
                Undone {
                    what: "Removed an application permission".into(),
                    id: item.id.clone(),
                }
            }
            ObjectKind::Grant => match &item.previous {
                Some(previous) => {
                    gone_ok(
                        graph
                            .patch(format!("/oauth2PermissionGrants/{}", item.id))
                            .json(json!({"scope": previous}))
                            .scopes(c)
                            .send()
                            .await,
                    )?;
                    Undone {
                        what: format!("Restored the delegated consent to: {previous}"),
                        id: item.id.clone(),
                    }
                }
                None => {
                    gone_ok(
                        graph
                            .delete(format!("/oauth2PermissionGrants/{}", item.id))
                            .scopes(c)
                            .send()
                            .await,
                    )?;
                    Undone {
                        what: "Removed the delegated consent".into(),
                        id: item.id.clone(),
                    }
                }
            },
            ObjectKind::ServicePrincipal => {
                gone_ok(
                    graph
                        .delete(format!("/servicePrincipals/{}", item.id))
                        .scopes(s)
                        .send()
                        .await,
                )?;
                Undone {
                    what: "Deleted the enterprise app (service principal)".into(),
                    id: item.id.clone(),
                }
            }
            ObjectKind::Password => {
                let app = item.app_object_id.clone().unwrap_or_default();
                gone_ok(
                    graph
                        .post(format!("/applications/{app}/removePassword"))
                        .json(json!({"keyId": item.id}))
                        .scopes(s)
                        .send()
                        .await,
                )?;
                Undone {
                    what: "Removed a client secret".into(),
                    id: item.id.clone(),
                }
            }
            ObjectKind::SyncJob => {
                let sp = item.previous.clone().unwrap_or_default();
                gone_ok(
                    graph
                        .delete(format!(
                            "/servicePrincipals/{sp}/synchronization/jobs/{}",
                            item.id
                        ))
                        .scopes(StepScopes::Scim)
                        .send()
                        .await,
                )?;
                Undone {
                    what: "Deleted the provisioning job".into(),
                    id: item.id.clone(),
                }
            }
            // A certificate added to an app this journal did not make is a rotation's: it goes
            // while it is not the one Entra signs with (the earlier one still is); once made
            // active it stays, or sign-in would stop.
            ObjectKind::SigningCertificate => {
                let sp = item.previous.clone().unwrap_or_default();
                let removed =
                    super::apply::remove_signing_certificate(graph, &sp, &item.id).await?;
                if !removed {
                    continue;
                }
                Undone {
                    what: format!("Removed the new signing certificate {}", item.id),
                    id: item.id.clone(),
                }
            }
            // A vendor's app stays; only the setting the wizard changed on it goes back.
            ObjectKind::AssignmentRequirement => {
                let was = item.previous.as_deref() == Some("true");
                gone_ok(
                    graph
                        .patch(format!("/servicePrincipals/{}", item.id))
                        .json(json!({"appRoleAssignmentRequired": was}))
                        .scopes(s)
                        .send()
                        .await,
                )?;
                Undone {
                    what: format!(
                        "Set \"Assignment required\" back to {}",
                        if was { "Yes" } else { "No" }
                    ),
                    id: item.id.clone(),
                }
            }
            // Adoption took an owner off an app someone else made: it goes back.
            ObjectKind::RemovedOwner => {
                let owns = item.previous.clone().unwrap_or_default();
                let added = graph
                    .post(format!("/{owns}/owners/$ref"))
                    .json(json!({"@odata.id": format!("{}/directoryObjects/{}", graph.base(), item.id)}))
                    .scopes(s)
                    .send()
                    .await;
                match added {
                    Ok(_) => {}
                    // Already an owner again, or the app is gone.
                    Err(e) if matches!(e.status(), Some(400 | 404)) => {}
                    Err(e) => return Err(e),
                }
                Undone {
                    what: format!("Made {} an owner again", item.id),
                    id: item.id.clone(),
                }
            }
            ObjectKind::RemovedRedirectUri => {
                let app = item.app_object_id.clone().unwrap_or_default();
                let platform = item.previous.clone().unwrap_or_else(|| "web".into());
                let current: serde_json::Value = match graph
                    .get(format!("/applications/{app}?$select={platform}"))
                    .scopes(s)
                    .send_json()
                    .await
                {
                    Ok(v) => v,
                    Err(e) if e.status() == Some(404) => continue,
                    Err(e) => return Err(e),
                };
                let mut uris: Vec<serde_json::Value> = current[&platform]["redirectUris"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                if !uris.iter().any(|u| u == item.id.as_str()) {
                    uris.push(json!(item.id));
                    graph
                        .patch(format!("/applications/{app}"))
                        .json(json!({ platform.as_str(): {"redirectUris": uris} }))
                        .scopes(s)
                        .send()
                        .await?;
                }
                Undone {
                    what: format!(
                        "Put the redirect URI {} back",
                        crate::redact::echo(&item.id, 200)
                    ),
                    id: item.id.clone(),
                }
            }
            ObjectKind::Application | ObjectKind::TemplateApplication => continue,
        };
        record(item.kind, &item.id);
        on_done(&u);
        out.push(u);
    }
    Ok(out)
}

/// The apps of a setup as the tenant shows them, for an Undo without a journal on this
/// computer: the app with the setup's `uniqueName` and its provisioning app, each only if it
/// carries the wizard's tag for this provider.
pub async fn tenant_pending(
    graph: &GraphClient,
    intent: &super::Intent,
) -> Result<Vec<super::found::WizardApp>, GraphError> {
    let mut names = vec![];
    if intent.provider.has_sign_in() {
        names.push(intent.unique_name());
    }
    if intent.provider.scim.is_some() {
        names.push(intent.template_unique_name());
    }
    let mut out = vec![];
    for name in names {
        let found: Option<serde_json::Value> = match graph
            .get(format!(
                "{}?$select=id,appId,displayName,uniqueName,tags,notes,web,createdDateTime",
                super::state::unique_name_path(&name)
            ))
            .scopes(StepScopes::RegisterApp)
            .send_json()
            .await
        {
            Ok(v) => Some(v),
            Err(e) if e.status() == Some(404) => None,
            Err(e) => return Err(e),
        };
        if let Some(app) = found.and_then(super::found::WizardApp::from_json) {
            if app.provider_id == intent.provider.id() && app.unique_name == name {
                out.push(app);
            }
        }
    }
    Ok(out)
}

/// Deletes the apps [`tenant_pending`] found (deleting an app takes its service principal,
/// grants, secrets, assignments and provisioning job with it) and records it in the journal.
pub async fn undo_from_tenant(
    graph: &GraphClient,
    journal: &Journal,
    apps: &[super::found::WizardApp],
    on_done: Arc<dyn Fn(&Undone) + Send + Sync>,
) -> Result<Vec<Undone>, GraphError> {
    let _lock = journal
        .lock_tenant()
        .map_err(|e| GraphError::Refused(e.to_string()))?;
    let plan_id = format!("undo-{}", uuid::Uuid::new_v4());
    let mut out = vec![];
    // The provisioning app first, as in a journal's Undo.
    let mut ordered: Vec<&super::found::WizardApp> = apps.iter().collect();
    ordered.sort_by_key(|a| !a.provisioning);
    for app in ordered {
        gone_ok(
            graph
                .delete(format!("/applications/{}", app.object_id))
                .scopes(StepScopes::RegisterApp)
                .send()
                .await,
        )?;
        let kind = if app.provisioning {
            ObjectKind::TemplateApplication
        } else {
            ObjectKind::Application
        };
        record_undone(journal, &plan_id, kind, &app.object_id);
        let u = Undone {
            what: if app.provisioning {
                format!("Deleted the provisioning app \"{}\", its job, saved credentials and assignments", app.display_name)
            } else {
                format!("Deleted the app registration \"{}\" and its enterprise app, grants and secrets", app.display_name)
            },
            id: app.object_id.clone(),
        };
        on_done(&u);
        out.push(u);
    }
    Ok(out)
}
