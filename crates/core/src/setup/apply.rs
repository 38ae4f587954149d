//! The applier: the only code that writes to the tenant. It runs a plan's changes in dependency
//! order (independent ones together), retries the replication delays Graph documents, journals
//! every step before and after, and never creates a second object on a retry: creates that
//! must not happen twice are sent at most once and, when their answer is lost, reconciled by
//! reading state; creates that conflict adopt the object that exists.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::journal::{Entry, Event, Journal, ObjectKind, ScimRecord};
use super::plan::{admin_consent_url, Change, Plan, PlannedChange};
use super::state::{unique_name_path, AssignmentState, GrantState, TenantState};
use crate::auth::StepScopes;
use crate::cloud::Cloud;
use crate::graph::{ApiError, GraphClient, GraphError};

/// Progress the UI and CLI show while applying.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum ApplyEvent {
    Started {
        seq: u32,
        title: String,
    },
    Done {
        seq: u32,
        detail: String,
    },
    Failed {
        seq: u32,
        message: String,
    },
    /// A colleague must open `url` to consent; the wizard is checking for it.
    WaitingForConsent {
        seq: u32,
        url: String,
    },
    Finished {
        changes: u32,
    },
}

/// A new client secret: its value only lives here until it is handed over.
pub struct NewSecret {
    pub key_id: String,
    pub display_name: String,
    pub hint: String,
    pub end: DateTime<Utc>,
    pub value: SecretString,
}

impl std::fmt::Debug for NewSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSecret")
            .field("key_id", &self.key_id)
            .field("hint", &self.hint)
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

/// The provisioning app and job an apply worked on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScimApplied {
    pub app_object_id: String,
    pub app_id: String,
    pub sp_id: String,
    pub job_id: Option<String>,
}

/// What an apply produced.
#[derive(Debug, Default)]
pub struct Applied {
    pub app_object_id: Option<String>,
    pub app_id: Option<String>,
    pub sp_id: Option<String>,
    pub scim: Option<ScimApplied>,
    pub secret: Option<NewSecret>,
    /// Set when a colleague's consent is still needed; the link to send them.
    pub consent_url: Option<String>,
    pub changes: usize,
}

/// An apply that stopped part-way: what failed, and what had been done (including a new secret,
/// which must still be handed over).
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct ApplyFailed {
    pub error: ApplyError,
    pub partial: Applied,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("Step {} ({title}) failed: {source}", seq + 1)]
    Step {
        seq: usize,
        title: String,
        source: Box<GraphError>,
    },
    #[error("Applying was cancelled after some changes; run the wizard again to resume where it stopped.")]
    Cancelled,
    #[error("The journal could not be written ({0}); nothing more was changed.")]
    Journal(String),
}

/// Settings of one apply.
pub struct ApplyOptions {
    /// How long to wait for a colleague's admin consent before returning with it pending.
    pub consent_wait: Duration,
    pub consent_poll: Duration,
    /// The provider's SCIM bearer token, for plans that save provisioning credentials.
    pub scim_token: Option<SecretString>,
    /// How often to look for an instantiated app Graph did not report (reference §8a).
    pub instantiate_poll: Duration,
    /// How many times to look before giving up.
    pub instantiate_polls: u32,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self {
            consent_wait: Duration::from_secs(0),
            consent_poll: Duration::from_secs(5),
            scim_token: None,
            instantiate_poll: crate::http::retry_base_override().unwrap_or(Duration::from_secs(5)),
            instantiate_polls: 24,
        }
    }
}

#[derive(Clone, Debug, Default)]
struct Refs {
    app_object_id: Option<String>,
    app_id: Option<String>,
    sp_id: Option<String>,
    scim_app_object_id: Option<String>,
    scim_app_id: Option<String>,
    scim_sp_id: Option<String>,
    scim_role_id: Option<String>,
    job_id: Option<String>,
}

impl Refs {
    /// Takes every id `other` knows.
    fn merge(&mut self, other: &Refs) {
        let take = |a: &mut Option<String>, b: &Option<String>| {
            if b.is_some() {
                a.clone_from(b);
            }
        };
        take(&mut self.app_object_id, &other.app_object_id);
        take(&mut self.app_id, &other.app_id);
        take(&mut self.sp_id, &other.sp_id);
        take(&mut self.scim_app_object_id, &other.scim_app_object_id);
        take(&mut self.scim_app_id, &other.scim_app_id);
        take(&mut self.scim_sp_id, &other.scim_sp_id);
        take(&mut self.scim_role_id, &other.scim_role_id);
        take(&mut self.job_id, &other.job_id);
    }
}

/// Graph's documented replication-delay answers right after an object is created (reference §12).
fn replication_delay(e: &ApiError) -> bool {
    let m = e.message.to_ascii_lowercase();
    e.status == 404
        || (e.status == 409 && e.method == "PATCH")
        || (e.status == 400 && (m.contains("does not reference a valid application object") || m.contains("not a valid reference update") || m.contains("does not exist or one of its queried reference-property objects are not present")))
        || (e.status == 403 && m.contains("backing application"))
}

struct Ctx<'a> {
    graph: &'a GraphClient,
    cloud: &'a Cloud,
    plan: &'a Plan,
    state: &'a TenantState,
    journal: &'a Journal,
    on_event: Arc<dyn Fn(ApplyEvent) + Send + Sync>,
    cancel: &'a CancellationToken,
    options: &'a ApplyOptions,
    redirect_uri: String,
}

/// What one change produced.
#[derive(Default)]
struct StepOut {
    refs: Refs,
    secret: Option<NewSecret>,
    consent_url: Option<String>,
    detail: String,
    created: Option<(ObjectKind, String)>,
    /// The id of an object this change removed (a retired secret).
    removed: Option<String>,
    previous: Option<String>,
}

impl Ctx<'_> {
    fn journal(&self, seq: Option<usize>, event: Event, refs: &Refs) -> Result<(), ApplyError> {
        self.journal
            .append(&Entry {
                at: Utc::now(),
                plan_id: self.plan.id.clone(),
                seq,
                event,
                app_object_id: refs.app_object_id.clone(),
                app_id: refs.app_id.clone(),
                request_id: None,
            })
            .map_err(|e| ApplyError::Journal(format!("{}: {e}", self.journal.path().display())))
    }

    fn emit(&self, e: ApplyEvent) {
        (self.on_event)(e);
    }

    async fn run(&self, pc: &PlannedChange, refs: &Refs) -> Result<StepOut, GraphError> {
        let g = self.graph;
        let s = StepScopes::RegisterApp;
        let app_path = refs
            .app_object_id
            .as_ref()
            .map(|id| format!("/applications/{id}"))
            .unwrap_or_else(|| unique_name_path(&self.plan.unique_name));
        match &pc.change {
            Change::UpsertApplication { body, creates, .. } => {
                let answer = g
                    .patch(unique_name_path(&self.plan.unique_name))
                    .header("Prefer", "create-if-missing")
                    .json(body.clone())
                    .scopes(s)
                    .retry_if(replication_delay)
                    .send()
                    .await?;
                let (app_object_id, app_id, created) = if answer.status == StatusCode::CREATED {
                    let b = answer.body.unwrap_or(Value::Null);
                    (
                        b["id"].as_str().map(str::to_string),
                        b["appId"].as_str().map(str::to_string),
                        true,
                    )
                } else if let Some(app) = &self.state.app {
                    (Some(app.id.clone()), Some(app.app_id.clone()), false)
                } else {
                    // Updated an app this run did not see (created by a concurrent run): read it.
                    let b: Value = g
                        .get(unique_name_path(&self.plan.unique_name))
                        .scopes(s)
                        .retry_if(replication_delay)
                        .send_json()
                        .await?;
                    (
                        b["id"].as_str().map(str::to_string),
                        b["appId"].as_str().map(str::to_string),
                        false,
                    )
                };
                let _ = creates;
                Ok(StepOut {
                    refs: Refs {
                        app_object_id: app_object_id.clone(),
                        app_id: app_id.clone(),
                        ..Default::default()
                    },
                    detail: format!(
                        "Application (client) ID {}",
                        app_id.clone().unwrap_or_default()
                    ),
                    created: created
                        .then(|| (ObjectKind::Application, app_object_id.unwrap_or_default())),
                    ..Default::default()
                })
            }
            Change::CreateServicePrincipal => {
                // The state read just before planning found none; if one appeared since (an
                // earlier attempt whose answer was lost, or a colleague), Graph answers 409 and
                // that one is used — not recorded as created, so Undo leaves it alone.
                let app_id = refs.app_id.clone().unwrap_or_default();
                let created = g
                    .post("/servicePrincipals")
                    .json(json!({"appId": app_id, "tags": ["WindowsAzureActiveDirectoryIntegratedApp", super::TAG]}))
                    .scopes(s)
                    .retry_if(replication_delay)
                    .send_json::<Value>()
                    .await;
                let (v, ours) = match created {
                    Ok(v) => (v, true),
                    Err(e) if e.status() == Some(409) => {
                        let v: Value = g
                            .get(format!("/servicePrincipals(appId='{app_id}')?$select=id"))
                            .scopes(s)
                            .retry_if(replication_delay)
                            .send_json()
                            .await?;
                        (v, false)
                    }
                    Err(e) => return Err(e),
                };
                let id = v["id"].as_str().unwrap_or_default().to_string();
                Ok(StepOut {
                    refs: Refs {
                        sp_id: Some(id.clone()),
                        ..Default::default()
                    },
                    detail: format!("Service principal {id}"),
                    created: ours.then_some((ObjectKind::ServicePrincipal, id)),
                    ..Default::default()
                })
            }
            Change::RemovePassword { key_id, .. } => {
                remove_password(g, &app_path, key_id).await?;
                Ok(StepOut {
                    detail: format!("Removed secret {key_id}"),
                    removed: Some(key_id.clone()),
                    ..Default::default()
                })
            }
            Change::AddPassword {
                display_name, end, ..
            } => {
                let v = self.add_password(&app_path, display_name, end).await?;
                let key_id = v["keyId"].as_str().unwrap_or_default().to_string();
                let secret = NewSecret {
                    key_id: key_id.clone(),
                    display_name: display_name.clone(),
                    hint: v["hint"].as_str().unwrap_or_default().to_string(),
                    end: v["endDateTime"]
                        .as_str()
                        .and_then(|e| e.parse().ok())
                        .unwrap_or(*end),
                    value: SecretString::from(
                        v["secretText"].as_str().unwrap_or_default().to_string(),
                    ),
                };
                Ok(StepOut {
                    detail: format!("Secret added, expires {}", secret.end.format("%Y-%m-%d")),
                    created: Some((ObjectKind::Password, key_id)),
                    secret: Some(secret),
                    ..Default::default()
                })
            }
            Change::GrantDelegated { scope, existing_id } => {
                let c = StepScopes::Consent;
                let sp = refs.sp_id.clone().unwrap_or_default();
                let graph_sp = self.state.graph_sp.id.clone();
                let patch = |id: String, previous: Option<String>| async move {
                    g.patch(format!("/oauth2PermissionGrants/{id}"))
                        .json(json!({"scope": scope}))
                        .scopes(c)
                        .retry_if(replication_delay)
                        .send()
                        .await?;
                    Ok::<StepOut, GraphError>(StepOut {
                        detail: format!("Consent now covers: {scope}"),
                        created: Some((ObjectKind::Grant, id)),
                        previous: Some(previous.unwrap_or_default()),
                        ..Default::default()
                    })
                };
                if let Some(id) = existing_id {
                    return patch(
                        id.clone(),
                        self.state.grant.as_ref().and_then(|x| x.scope.clone()),
                    )
                    .await;
                }
                let created = g
                    .post("/oauth2PermissionGrants")
                    .json(json!({"clientId": sp, "consentType": "AllPrincipals", "resourceId": graph_sp, "scope": scope}))
                    .scopes(c)
                    .retry_if(replication_delay)
                    .send_json::<Value>()
                    .await;
                match created {
                    Ok(v) => {
                        let id = v["id"].as_str().unwrap_or_default().to_string();
                        Ok(StepOut {
                            detail: format!("Consented for the organisation: {scope}"),
                            created: Some((ObjectKind::Grant, id)),
                            ..Default::default()
                        })
                    }
                    // The grant exists already: made since the plan was read, by an earlier
                    // attempt whose answer was lost, or moments ago and not yet visible to
                    // reads (a re-run inside the replication delay). Read it, waiting for it to
                    // show, and extend it if it lacks scopes.
                    Err(e) if e.status() == Some(409) => {
                        let filter = format!("/oauth2PermissionGrants?$filter=clientId eq '{sp}' and consentType eq 'AllPrincipals'");
                        let found = g
                            .poll(g.replication_tries(), || async {
                                Ok(g.get(filter.clone())
                                    .scopes(c)
                                    .list::<GrantState>()
                                    .await?
                                    .into_iter()
                                    .find(|x| x.resource_id == graph_sp))
                            })
                            .await?;
                        let existing = found.ok_or(e)?;
                        let have: BTreeSet<&str> = existing
                            .scope
                            .as_deref()
                            .unwrap_or_default()
                            .split_whitespace()
                            .collect();
                        if scope.split_whitespace().all(|w| have.contains(w)) {
                            return Ok(StepOut {
                                detail: format!("Consent already covers: {scope}"),
                                ..Default::default()
                            });
                        }
                        let mut all: Vec<String> = existing
                            .scope
                            .clone()
                            .unwrap_or_default()
                            .split_whitespace()
                            .map(str::to_string)
                            .collect();
                        for w in scope.split_whitespace() {
                            if !all.iter().any(|a| a == w) {
                                all.push(w.to_string());
                            }
                        }
                        let merged = all.join(" ");
                        g.patch(format!("/oauth2PermissionGrants/{}", existing.id))
                            .json(json!({"scope": merged}))
                            .scopes(c)
                            .retry_if(replication_delay)
                            .send()
                            .await?;
                        Ok(StepOut {
                            detail: format!("Consent now covers: {merged}"),
                            created: Some((ObjectKind::Grant, existing.id)),
                            previous: Some(existing.scope.unwrap_or_default()),
                            ..Default::default()
                        })
                    }
                    Err(e) => Err(e),
                }
            }
            Change::GrantAppRole { name, app_role_id } => {
                let sp = refs.sp_id.clone().unwrap_or_default();
                let graph_sp = self.state.graph_sp.id.clone();
                assign_app_role(
                    g,
                    &graph_sp,
                    &sp,
                    app_role_id,
                    (
                        format!("Granted {name}"),
                        format!("{name} was already granted"),
                    ),
                )
                .await
            }
            Change::InstantiateScimApp { temp_name, .. } => self.instantiate(temp_name).await,
            Change::TagScimApp { display_name } => {
                let id = refs.scim_app_object_id.clone().unwrap_or_default();
                let unique = self.plan.scim_unique_name.clone().unwrap_or_default();
                g.patch(format!("/applications/{id}"))
                    .json(json!({
                        "uniqueName": unique,
                        "displayName": display_name,
                        "tags": [super::TAG, format!("{}:{}", super::TAG, self.plan.provider_id), format!("{}:scim", super::TAG)],
                        "notes": format!("Managed by Entra Setup: SCIM provisioning for {} ({unique}). Re-run Entra Setup to change or remove it. {}", self.plan.display_name, super::found::notes_line(&self.plan.inputs)),
                    }))
                    .scopes(s)
                    .retry_if(replication_delay)
                    .send()
                    .await?;
                // The enterprise app list shows the service principal's name: rename it too.
                let sp = refs.scim_sp_id.clone().unwrap_or_default();
                g.patch(format!("/servicePrincipals/{sp}"))
                    .json(json!({"displayName": display_name}))
                    .scopes(s)
                    .retry_if(replication_delay)
                    .send()
                    .await?;
                // An app adopted from an interrupted run was made by the wizard: record it so Undo
                // removes it.
                let adopted = !self
                    .plan
                    .changes
                    .iter()
                    .any(|c| matches!(c.change, Change::InstantiateScimApp { .. }));
                Ok(StepOut {
                    detail: format!("Named \"{display_name}\" with uniqueName {unique}"),
                    created: adopted.then(|| (ObjectKind::ScimApplication, id.clone())),
                    previous: adopted.then(|| refs.scim_sp_id.clone().unwrap_or_default()),
                    ..Default::default()
                })
            }
            Change::CreateSyncJob => {
                let sp = refs.scim_sp_id.clone().unwrap_or_default();
                let sc = StepScopes::Scim;
                let templates: Vec<Value> = g
                    .get(format!("/servicePrincipals/{sp}/synchronization/templates"))
                    .scopes(sc)
                    .retry_if(sync_not_ready)
                    .list()
                    .await?;
                if !templates.iter().any(|t| t["id"] == "scim") {
                    return Err(refusal(
                        "NoScimTemplate",
                        "This enterprise app offers no SCIM provisioning template, so Entra cannot provision from it. The wizard only provisions from apps it created from the non-gallery template.",
                        format!("GET /servicePrincipals/{sp}/synchronization/templates"),
                    ));
                }
                let id = self.create_sync_job(&sp).await?;
                Ok(StepOut {
                    refs: Refs {
                        job_id: Some(id.clone()),
                        ..Default::default()
                    },
                    detail: format!("Job {id}"),
                    created: Some((ObjectKind::SyncJob, id)),
                    previous: Some(sp),
                    ..Default::default()
                })
            }
            Change::AssignToScimApp {
                principal_id,
                display_name,
                ..
            } => {
                let sp = refs.scim_sp_id.clone().unwrap_or_default();
                let role = refs
                    .scim_role_id
                    .clone()
                    .unwrap_or_else(|| super::state::DEFAULT_ACCESS_ROLE.into());
                assign_app_role(
                    g,
                    &sp,
                    principal_id,
                    &role,
                    (
                        format!("Assigned {display_name}"),
                        format!("{display_name} was already assigned"),
                    ),
                )
                .await
            }
            Change::UnassignFromScimApp {
                assignment_id,
                display_name,
            } => {
                let sp = refs.scim_sp_id.clone().unwrap_or_default();
                crate::graph::gone_ok(
                    g.delete(format!(
                        "/servicePrincipals/{sp}/appRoleAssignedTo/{assignment_id}"
                    ))
                    .scopes(StepScopes::Consent)
                    .send()
                    .await,
                )?;
                Ok(StepOut {
                    detail: format!("Removed {display_name}"),
                    removed: Some(assignment_id.clone()),
                    ..Default::default()
                })
            }
            Change::ValidateScimCredentials { tenant_url } => {
                let sp = refs.scim_sp_id.clone().unwrap_or_default();
                let job = refs.job_id.clone().unwrap_or_default();
                let token = self.token()?;
                g.post(format!(
                    "/servicePrincipals/{sp}/synchronization/jobs/{job}/validateCredentials"
                ))
                .json(json!({"useSavedCredentials": false, "credentials": [
                    {"key": "BaseAddress", "value": tenant_url},
                    {"key": "SecretToken", "value": token.expose_secret()},
                ]}))
                .scopes(StepScopes::Scim)
                .retry_if(sync_not_ready)
                .send()
                .await?;
                Ok(StepOut {
                    detail: "Entra reached the endpoint and the token was accepted".into(),
                    ..Default::default()
                })
            }
            Change::SaveScimSecrets {
                tenant_url,
                sync_all,
                ..
            } => {
                let sp = refs.scim_sp_id.clone().unwrap_or_default();
                let token = self.token()?;
                g.put(format!("/servicePrincipals/{sp}/synchronization/secrets"))
                    .json(json!({"value": [
                        {"key": "BaseAddress", "value": tenant_url},
                        {"key": "SecretToken", "value": token.expose_secret()},
                        {"key": "SyncNotificationSettings", "value": "{\"Enabled\":false,\"DeleteThresholdEnabled\":false}"},
                        {"key": "SyncAll", "value": if *sync_all { "true" } else { "false" }},
                    ]}))
                    .scopes(StepScopes::Scim)
                    .retry_if(sync_not_ready)
                    .send()
                    .await?;
                Ok(StepOut {
                    detail: "Tenant URL, token and scope saved".into(),
                    ..Default::default()
                })
            }
            Change::StartSyncJob { restart } => {
                let sp = refs.scim_sp_id.clone().unwrap_or_default();
                let job = refs.job_id.clone().unwrap_or_default();
                let path = format!("/servicePrincipals/{sp}/synchronization/jobs/{job}");
                let req = if *restart {
                    g.post(format!("{path}/restart")).json(
                        json!({"criteria": {"resetScope": "Watermark, Escrows, QuarantineState"}}),
                    )
                } else {
                    g.post(format!("{path}/start"))
                };
                req.scopes(StepScopes::Scim)
                    .retry_if(sync_not_ready)
                    .send()
                    .await?;
                Ok(StepOut {
                    detail: if *restart {
                        "Provisioning restarted".into()
                    } else {
                        "Provisioning started".into()
                    },
                    ..Default::default()
                })
            }
            Change::RequestAdminConsent { roles, scopes } => {
                let app_id = refs.app_id.clone().unwrap_or_default();
                let url = admin_consent_url(
                    self.cloud,
                    &self.plan.tenant_id,
                    &app_id,
                    &self.redirect_uri,
                );
                self.emit(ApplyEvent::WaitingForConsent {
                    seq: u32::try_from(pc.seq).unwrap_or(0),
                    url: url.clone(),
                });
                let sp = refs.sp_id.clone().unwrap_or_default();
                let done = wait_for_consent(
                    self.graph,
                    &self.state.graph_sp,
                    &sp,
                    roles,
                    scopes,
                    self.options,
                    self.cancel,
                )
                .await?;
                if done {
                    Ok(StepOut {
                        detail: "A colleague consented".into(),
                        ..Default::default()
                    })
                } else {
                    Ok(StepOut {
                        detail: "Waiting for a colleague's consent".into(),
                        consent_url: Some(url),
                        ..Default::default()
                    })
                }
            }
        }
    }
}

/// Removes a client secret from an app; one already gone is fine.
async fn remove_password(g: &GraphClient, app_path: &str, key_id: &str) -> Result<(), GraphError> {
    crate::graph::gone_ok(
        g.post(format!("{app_path}/removePassword"))
            .json(json!({"keyId": key_id}))
            .scopes(StepScopes::RegisterApp)
            .send()
            .await,
    )
}

/// Right after the provisioning app is created its synchronization endpoints answer 404 or 403
/// for a while (terraform retries 409 and 403 on job creation, reference §10.2).
fn sync_not_ready(e: &ApiError) -> bool {
    replication_delay(e)
        || (e.status == 403
            && e.path.contains("/synchronization/")
            && e.method != "GET"
            && e.code != "Authorization_RequestDenied")
        || (e.status == 409 && e.path.ends_with("/jobs"))
}

/// An error the applier raises itself (not from Graph), shaped like Graph's so it reads the same.
fn refusal(code: &str, message: &str, request: String) -> GraphError {
    let (method, path) = request
        .split_once(' ')
        .map_or((String::new(), request.clone()), |(m, p)| {
            (m.to_string(), p.to_string())
        });
    GraphError::Api(Box::new(ApiError {
        status: 400,
        code: code.into(),
        message: message.into(),
        method,
        path,
        request_id: None,
        client_request_id: String::new(),
        date: None,
    }))
}

impl Ctx<'_> {
    /// `addPassword`, at most once per secret: Graph returns the secret's value only in its
    /// answer, so when the answer is lost (a gateway timeout, a dropped connection) a secret may
    /// exist whose value nobody has. The app is read again (waiting out replication); such a
    /// secret is removed and a new one added, so exactly one usable secret results.
    async fn add_password(
        &self,
        app_path: &str,
        display_name: &str,
        end: &DateTime<Utc>,
    ) -> Result<Value, GraphError> {
        let g = self.graph;
        let s = StepScopes::RegisterApp;
        let body = json!({"passwordCredential": {"displayName": display_name, "endDateTime": end.format("%Y-%m-%dT%H:%M:%SZ").to_string()}});
        let mut removed: Vec<String> = vec![];
        let mut tries = 0;
        loop {
            tries += 1;
            let sent = g
                .post(format!("{app_path}/addPassword"))
                .json(body.clone())
                .scopes(s)
                .retry_if(replication_delay)
                .once()
                .send_json::<Value>()
                .await;
            let e = match sent {
                Ok(v) => return Ok(v),
                Err(e) if e.ambiguous() && tries < 3 => e,
                Err(e) => return Err(e),
            };
            tracing::warn!(error = %e, "addPassword's answer was lost; looking for the secret it may have made");
            let lost = g
                .poll(g.replication_tries(), || async {
                    let app: Value = g
                        .get(format!("{app_path}?$select=id,passwordCredentials"))
                        .scopes(s)
                        .retry_if(replication_delay)
                        .send_json()
                        .await?;
                    Ok(app["passwordCredentials"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|c| c["displayName"] == display_name)
                        .filter_map(|c| c["keyId"].as_str().map(str::to_string))
                        .find(|k| !removed.contains(k)))
                })
                .await?;
            if let Some(key_id) = lost {
                remove_password(g, app_path, &key_id).await?;
                removed.push(key_id);
            }
        }
    }

    /// Creates the provisioning job from the `scim` template, at most once: after an answer
    /// that leaves it unknown whether the job was made (or a conflict), the jobs are read
    /// (waiting out replication) and an existing `scim` job is used.
    async fn create_sync_job(&self, sp: &str) -> Result<String, GraphError> {
        let g = self.graph;
        let sc = StepScopes::Scim;
        let jobs_path = format!("/servicePrincipals/{sp}/synchronization/jobs");
        let mut tries = 0;
        loop {
            tries += 1;
            let made = g
                .post(jobs_path.clone())
                .json(json!({"templateId": "scim"}))
                .scopes(sc)
                .retry_if(sync_not_ready)
                .once()
                .send_json::<Value>()
                .await;
            let e = match made {
                Ok(job) => return Ok(job["id"].as_str().unwrap_or_default().to_string()),
                Err(e) if (e.ambiguous() || e.status() == Some(409)) && tries < 3 => e,
                Err(e) => return Err(e),
            };
            tracing::warn!(error = %e, "creating the provisioning job did not answer clearly; looking for it");
            let found = g
                .poll(g.replication_tries(), || async {
                    let jobs: Vec<Value> = g
                        .get(jobs_path.clone())
                        .scopes(sc)
                        .retry_if(sync_not_ready)
                        .list()
                        .await?;
                    Ok(jobs
                        .into_iter()
                        .find(|j| j["templateId"] == "scim")
                        .and_then(|j| j["id"].as_str().map(str::to_string)))
                })
                .await?;
            if let Some(id) = found {
                return Ok(id);
            }
        }
    }

    fn token(&self) -> Result<&SecretString, GraphError> {
        self.options.scim_token.as_ref().ok_or_else(|| {
            refusal(
                "ScimTokenMissing",
                "The SCIM Secret Token is needed to save provisioning credentials; enter it in the SCIM step.",
                "saveScimSecrets".into(),
            )
        })
    }

    /// Instantiates the non-gallery template; when Graph answers 404 although the app was made
    /// (reference §8a), finds it by its temporary name.
    async fn instantiate(&self, temp_name: &str) -> Result<StepOut, GraphError> {
        let g = self.graph;
        let s = StepScopes::RegisterApp;
        let path = format!(
            "/applicationTemplates/{}/instantiate",
            super::state::NON_GALLERY_TEMPLATE
        );
        let made = g
            .post(path)
            .json(json!({"displayName": temp_name}))
            .scopes(s)
            .once()
            .send_json::<Value>()
            .await;
        let (app, sp) = match made {
            Ok(v) => (v["application"].clone(), v["servicePrincipal"].clone()),
            Err(e) if e.status() == Some(404) || e.ambiguous() => {
                let filter = format!(
                    "/applications?$filter=applicationTemplateId eq '{}' and displayName eq '{}'",
                    super::state::NON_GALLERY_TEMPLATE,
                    temp_name.replace('\'', "''")
                );
                let mut found = None;
                for _ in 0..self.options.instantiate_polls.max(1) {
                    let apps: Vec<Value> = g.get(filter.clone()).scopes(s).list().await?;
                    if let Some(a) = apps.into_iter().next() {
                        found = Some(a);
                        break;
                    }
                    tokio::time::sleep(self.options.instantiate_poll).await;
                }
                let Some(app) = found else { return Err(e) };
                let app_id = app["appId"].as_str().unwrap_or_default().to_string();
                let sp: Value = g
                    .get(format!(
                        "/servicePrincipals(appId='{app_id}')?$select=id,appId,appRoles"
                    ))
                    .scopes(s)
                    .retry_if(replication_delay)
                    .send_json()
                    .await?;
                (app, sp)
            }
            Err(e) => return Err(e),
        };
        let str_of = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
        let role = Some(super::state::assignment_role(&sp["appRoles"]));
        let app_object_id = str_of(&app, "id");
        let sp_id = str_of(&sp, "id");
        Ok(StepOut {
            refs: Refs {
                scim_app_object_id: Some(app_object_id.clone()),
                scim_app_id: Some(str_of(&app, "appId")),
                scim_sp_id: Some(sp_id.clone()),
                scim_role_id: role,
                ..Default::default()
            },
            detail: format!(
                "Provisioning app {} (service principal {sp_id})",
                str_of(&app, "appId")
            ),
            created: Some((ObjectKind::ScimApplication, app_object_id)),
            previous: Some(sp_id),
            ..Default::default()
        })
    }
}

/// Checks whether admin consent covers the roles and scopes now, and keeps checking until
/// `options.consent_wait` has passed.
pub async fn wait_for_consent(
    graph: &GraphClient,
    graph_sp: &crate::graph::permissions::GraphServicePrincipal,
    sp_id: &str,
    roles: &[String],
    scopes: &[String],
    options: &ApplyOptions,
    cancel: &CancellationToken,
) -> Result<bool, GraphError> {
    let started = std::time::Instant::now();
    loop {
        if consent_present(graph, graph_sp, sp_id, roles, scopes).await? {
            return Ok(true);
        }
        if started.elapsed() >= options.consent_wait || cancel.is_cancelled() {
            return Ok(false);
        }
        tokio::select! {
            () = tokio::time::sleep(options.consent_poll) => {}
            () = cancel.cancelled() => return Ok(false),
        }
    }
}

/// Whether every role and scope has been granted to the service principal.
pub async fn consent_present(
    graph: &GraphClient,
    graph_sp: &crate::graph::permissions::GraphServicePrincipal,
    sp_id: &str,
    roles: &[String],
    scopes: &[String],
) -> Result<bool, GraphError> {
    use crate::provider::PermissionKind;
    let c = StepScopes::Consent;
    let assignments: Vec<AssignmentState> = graph
        .get(format!("/servicePrincipals/{sp_id}/appRoleAssignments"))
        .scopes(c)
        .retry_if(replication_delay)
        .list()
        .await?;
    let have_roles: BTreeSet<&str> = assignments
        .iter()
        .filter(|a| a.resource_id == graph_sp.id)
        .filter_map(|a| graph_sp.permission_name(&a.app_role_id, PermissionKind::Application))
        .collect();
    if !roles.iter().all(|r| have_roles.contains(r.as_str())) {
        return Ok(false);
    }
    if scopes.is_empty() {
        return Ok(true);
    }
    let grants: Vec<GrantState> = graph
        .get(format!("/oauth2PermissionGrants?$filter=clientId eq '{sp_id}' and consentType eq 'AllPrincipals'"))
        .scopes(c)
        .list()
        .await?;
    let granted: BTreeSet<String> = grants
        .iter()
        .filter(|g| g.resource_id == graph_sp.id)
        .flat_map(|g| {
            g.scope
                .clone()
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    Ok(scopes.iter().all(|s| granted.contains(s)))
}

/// Applies a plan computed against `state`.
#[allow(clippy::too_many_arguments)]
pub async fn apply(
    graph: &GraphClient,
    cloud: &Cloud,
    plan: &Plan,
    state: &TenantState,
    redirect_uri: &str,
    journal: &Journal,
    options: &ApplyOptions,
    on_event: Arc<dyn Fn(ApplyEvent) + Send + Sync>,
    cancel: &CancellationToken,
) -> Result<Applied, Box<ApplyFailed>> {
    let mut out = Applied {
        changes: plan.changes.len(),
        ..Default::default()
    };
    match run_plan(
        graph,
        cloud,
        plan,
        state,
        redirect_uri,
        journal,
        options,
        on_event,
        cancel,
        &mut out,
    )
    .await
    {
        Ok(()) => Ok(out),
        Err(error) => Err(Box::new(ApplyFailed {
            error,
            partial: out,
        })),
    }
}

/// Gives `principal` the app role `role` on the service principal `resource`
/// (`appRoleAssignedTo`). One that exists already (an earlier attempt, or a colleague) counts
/// as done; a new one is recorded with its resource, which Undo needs to delete it.
async fn assign_app_role(
    g: &GraphClient,
    resource: &str,
    principal: &str,
    role: &str,
    (done, already): (String, String),
) -> Result<StepOut, GraphError> {
    let created = g
        .post(format!("/servicePrincipals/{resource}/appRoleAssignedTo"))
        .json(json!({"principalId": principal, "resourceId": resource, "appRoleId": role}))
        .scopes(StepScopes::Consent)
        .retry_if(replication_delay)
        .send_json::<Value>()
        .await;
    match created {
        Ok(v) => Ok(StepOut {
            detail: done,
            created: Some((
                ObjectKind::Assignment,
                v["id"].as_str().unwrap_or_default().to_string(),
            )),
            previous: Some(resource.to_string()),
            ..Default::default()
        }),
        // It exists: the plan's read did not show it, so it was made since — most often by an
        // earlier attempt of this very call whose answer was lost. Read it (waiting for it to
        // replicate) and record it, so Undo and the next re-run know of it.
        Err(e)
            if e.api().is_some_and(|a| {
                a.status == 400 && a.message.to_ascii_lowercase().contains("already exists")
            }) =>
        {
            let path = format!("/servicePrincipals/{resource}/appRoleAssignedTo");
            let found = g
                .poll(g.replication_tries(), || async {
                    Ok(g.get(path.clone())
                        .scopes(StepScopes::Consent)
                        .retry_if(replication_delay)
                        .list::<Value>()
                        .await?
                        .into_iter()
                        .find(|a| a["principalId"] == principal && a["appRoleId"] == role)
                        .and_then(|a| a["id"].as_str().map(str::to_string)))
                })
                .await?;
            Ok(StepOut {
                detail: already,
                created: found.map(|id| (ObjectKind::Assignment, id)),
                previous: Some(resource.to_string()),
                ..Default::default()
            })
        }
        Err(e) => Err(e),
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_plan(
    graph: &GraphClient,
    cloud: &Cloud,
    plan: &Plan,
    state: &TenantState,
    redirect_uri: &str,
    journal: &Journal,
    options: &ApplyOptions,
    on_event: Arc<dyn Fn(ApplyEvent) + Send + Sync>,
    cancel: &CancellationToken,
    out: &mut Applied,
) -> Result<(), ApplyError> {
    let ctx = Ctx {
        graph,
        cloud,
        plan,
        state,
        journal,
        on_event,
        cancel,
        options,
        redirect_uri: redirect_uri.to_string(),
    };
    let scim = state.scim.as_ref();
    let mut refs = Refs {
        app_object_id: state.app.as_ref().map(|a| a.id.clone()),
        app_id: state.app.as_ref().map(|a| a.app_id.clone()),
        sp_id: state.sp_id.clone(),
        scim_app_object_id: scim.map(|s| s.app_object_id.clone()),
        scim_app_id: scim.map(|s| s.app_id.clone()),
        scim_sp_id: scim.map(|s| s.sp_id.clone()),
        scim_role_id: scim.map(|s| s.user_role_id.clone()),
        job_id: scim.and_then(|s| s.job.as_ref().map(|j| j.id.clone())),
    };
    ctx.journal(
        None,
        Event::Plan {
            changes: plan.changes.len(),
            provider_id: Some(plan.provider_id.clone()),
            display_name: Some(plan.display_name.clone()),
            inputs: plan.inputs.clone(),
        },
        &refs,
    )?;
    let mut done: BTreeSet<usize> = BTreeSet::new();
    while done.len() < plan.changes.len() {
        if cancel.is_cancelled() {
            return Err(ApplyError::Cancelled);
        }
        let wave: Vec<&PlannedChange> = plan
            .changes
            .iter()
            .filter(|c| !done.contains(&c.seq) && c.after.iter().all(|a| done.contains(a)))
            .collect();
        if wave.is_empty() {
            break;
        }
        for pc in &wave {
            let name = match &pc.change {
                Change::AddPassword { display_name, .. } => Some(display_name.clone()),
                Change::InstantiateScimApp { temp_name, .. } => Some(temp_name.clone()),
                _ => None,
            };
            ctx.journal(
                Some(pc.seq),
                Event::Started {
                    kind: pc.change.kind().into(),
                    name,
                },
                &refs,
            )?;
            ctx.emit(ApplyEvent::Started {
                seq: u32::try_from(pc.seq).unwrap_or(0),
                title: pc.title.clone(),
            });
        }
        let snapshot = refs.clone();
        let results = tokio::select! {
            r = futures::future::join_all(wave.iter().map(|pc| ctx.run(pc, &snapshot))) => r,
            () = cancel.cancelled() => return Err(ApplyError::Cancelled),
        };
        let mut failure = None;
        for (pc, result) in wave.iter().zip(results) {
            match result {
                Ok(step) => {
                    refs.merge(&step.refs);
                    let (created, id) = match step.created {
                        Some((k, id)) => (Some(k), Some(id)),
                        None => (None, step.removed),
                    };
                    ctx.journal(
                        Some(pc.seq),
                        Event::Done {
                            kind: pc.change.kind().into(),
                            created,
                            id,
                            previous: step.previous,
                        },
                        &refs,
                    )?;
                    if let Change::SaveScimSecrets {
                        tenant_url,
                        sync_all,
                        token_expires,
                    } = &pc.change
                    {
                        ctx.journal(
                            Some(pc.seq),
                            Event::ScimConfigured(ScimRecord {
                                tenant_url: tenant_url.clone(),
                                sync_all: *sync_all,
                                token_expires: *token_expires,
                                saved_at: Utc::now(),
                            }),
                            &refs,
                        )?;
                    }
                    ctx.emit(ApplyEvent::Done {
                        seq: u32::try_from(pc.seq).unwrap_or(0),
                        detail: step.detail,
                    });
                    if step.secret.is_some() {
                        out.secret = step.secret;
                    }
                    if step.consent_url.is_some() {
                        out.consent_url = step.consent_url;
                    }
                    done.insert(pc.seq);
                }
                Err(e) => {
                    ctx.journal(
                        Some(pc.seq),
                        Event::Failed {
                            kind: pc.change.kind().into(),
                            message: e.to_string(),
                        },
                        &refs,
                    )?;
                    ctx.emit(ApplyEvent::Failed {
                        seq: u32::try_from(pc.seq).unwrap_or(0),
                        message: e.to_string(),
                    });
                    failure.get_or_insert(ApplyError::Step {
                        seq: pc.seq,
                        title: pc.title.clone(),
                        source: Box::new(e),
                    });
                }
            }
        }
        out.app_object_id = refs.app_object_id.clone();
        out.app_id = refs.app_id.clone();
        out.sp_id = refs.sp_id.clone();
        out.scim = match (
            &refs.scim_app_object_id,
            &refs.scim_app_id,
            &refs.scim_sp_id,
        ) {
            (Some(o), Some(a), Some(sp)) => Some(ScimApplied {
                app_object_id: o.clone(),
                app_id: a.clone(),
                sp_id: sp.clone(),
                job_id: refs.job_id.clone(),
            }),
            _ => None,
        };
        if let Some(f) = failure {
            return Err(f);
        }
    }
    ctx.journal(None, Event::Finished, &refs)?;
    ctx.emit(ApplyEvent::Finished {
        changes: u32::try_from(plan.changes.len()).unwrap_or(0),
    });
    Ok(())
}
