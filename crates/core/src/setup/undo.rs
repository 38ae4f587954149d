//! Undo: removes exactly what the journal says the wizard created, newest first, and restores
//! grants it only extended. Objects it did not create are never touched.

use std::sync::Arc;

use chrono::Utc;
use serde_json::json;

use super::journal::{Created, Entry, Event, Journal, ObjectKind};
use crate::auth::StepScopes;
use crate::graph::{gone_ok, GraphClient, GraphError};

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

/// Reads every application Undo is about to delete or remove a secret from, before it changes
/// anything: each must show as the wizard's (its tag and a uniqueName of its own), or — an
/// apply cut short between instantiate and naming — carry the temporary name of a plan in this
/// journal. A journal someone edited, or one copied from another setup, so cannot make Undo
/// delete another app. An app Graph cannot show yet (just made, still replicating) or any more
/// (already deleted) is fine: neither is someone else's.
async fn ensure_wizards_apps(
    graph: &GraphClient,
    journal: &Journal,
    created: &[Created],
) -> Result<(), GraphError> {
    let mut ids: Vec<&str> = created
        .iter()
        .filter_map(|c| match c.kind {
            ObjectKind::Application | ObjectKind::TemplateApplication => Some(c.id.as_str()),
            ObjectKind::Password => c.app_object_id.as_deref(),
            _ => None,
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let plans: Vec<String> = journal
        .entries()
        .unwrap_or_default()
        .into_iter()
        .map(|e| e.plan_id)
        .collect();
    for id in ids {
        let app: serde_json::Value = match graph
            .get(format!(
                "/applications/{id}?$select=id,appId,displayName,uniqueName,tags"
            ))
            .scopes(StepScopes::RegisterApp)
            .send_json()
            .await
        {
            Ok(v) => v,
            Err(e) if e.status() == Some(404) => continue,
            Err(e) => return Err(e),
        };
        let name = app["displayName"].as_str().unwrap_or_default().to_string();
        let half_made = name
            .rsplit_once("(setting up ")
            .and_then(|(_, rest)| rest.strip_suffix(')'))
            .is_some_and(|prefix| prefix.len() == 8 && plans.iter().any(|p| p.starts_with(prefix)));
        if super::found::WizardApp::from_json(app).is_none() && !half_made {
            return Err(GraphError::Refused(format!(
                "Undo stopped before changing anything: the journal {} names the app \"{name}\" ({id}), but that app does not carry Entra Setup's tag, so no setup of the wizard made it. The journal may have been edited or copied from another setup. Nothing was deleted; remove what you need in the Entra admin center, or restore the journal from a backup.",
                journal.path().display()
            )));
        }
    }
    Ok(())
}

/// What Undo would remove, newest first.
pub fn pending(journal: &Journal) -> Vec<Created> {
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
    let created = journal.created();
    ensure_wizards_apps(graph, journal, &created).await?;
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
