//! The applier: the only code that writes to the tenant. It runs a plan's changes in dependency
//! order (independent ones together), retries the replication delays Graph documents, journals
//! every step before and after, and never creates a second object on a retry: creates that
//! must not happen twice are sent at most once and, when their answer is lost, reconciled by
//! reading state; creates that conflict adopt the object that exists.

mod access;
mod apps;
mod credentials;
mod provisioning;

pub use access::{consent_present, wait_for_consent};
pub(crate) use credentials::remove_signing_certificate;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::journal::{Entry, Event, Journal, ObjectKind, ScimRecord};
use super::plan::{admin_consent_url, Area, Change, Plan, PlannedChange};
use crate::auth::StepScopes;
use crate::cloud::Cloud;
use crate::graph::{ApiError, GraphClient, GraphError};
use crate::setup::state::{unique_name_path, AssignmentState, FoundApp, GrantState, TenantState};

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
    /// The step waits for Entra: what for, and for how long at most ("Waiting for Entra to make
    /// a new object visible (replication) — up to 5 min").
    Waiting {
        seq: u32,
        message: String,
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
    /// Every app of the setup the apply worked on or found, by the profile's app id.
    pub apps: BTreeMap<String, AppIds>,
    /// The app registration's ids (the sign-in app).
    pub app_object_id: Option<String>,
    pub app_id: Option<String>,
    pub sp_id: Option<String>,
    pub scim: Option<ScimApplied>,
    pub secret: Option<NewSecret>,
    /// The SAML signing certificate this apply added.
    pub signing_cert: Option<crate::setup::state::SigningCert>,
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
    /// Another apply or Undo (the desktop app or the CLI) is writing to this tenant.
    #[error("{0}")]
    Busy(String),
    /// An app of the setup holds owners, credentials or redirect URIs the wizard did not put
    /// there, and the admin has not adopted it: nothing was written.
    #[error(transparent)]
    NotAdopted(#[from] super::custody::NotAdopted),
    /// Adopting an app failed part-way (what was removed is journaled).
    #[error("Adopting the app failed: {0}")]
    Adopt(Box<GraphError>),
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
    /// How long to look before giving up ([`crate::wait::INSTANTIATE`]).
    pub instantiate_wait: Duration,
    /// The admin adopts the setup's apps someone else holds too (see [`super::custody`]):
    /// without it, an apply onto such an app stops before any write.
    pub adopt: Option<super::custody::Adoption>,
}

impl Applied {
    /// Takes what the apply knows of each app; the registration's and the provisioning app's
    /// ids are also kept by name.
    fn learn(&mut self, plan: &Plan, refs: &Refs) {
        self.apps.clone_from(&refs.apps);
        if let Some(ids) = plan.registration_app().and_then(|a| refs.apps.get(a)) {
            self.app_object_id.clone_from(&ids.object_id);
            self.app_id.clone_from(&ids.app_id);
            self.sp_id.clone_from(&ids.sp_id);
        }
        self.scim = plan
            .provisioning_app()
            .and_then(|a| refs.apps.get(a))
            .and_then(|ids| match (&ids.object_id, &ids.app_id, &ids.sp_id) {
                (Some(o), Some(a), Some(sp)) => Some(ScimApplied {
                    app_object_id: o.clone(),
                    app_id: a.clone(),
                    sp_id: sp.clone(),
                    job_id: ids.job_id.clone(),
                }),
                _ => None,
            });
    }
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self {
            consent_wait: Duration::from_secs(0),
            consent_poll: Duration::from_secs(5),
            scim_token: None,
            instantiate_poll: crate::wait::pause_override().unwrap_or(Duration::from_secs(5)),
            instantiate_wait: crate::wait::INSTANTIATE,
            adopt: None,
        }
    }
}

/// The ids of one app of a setup, as far as the apply knows them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppIds {
    pub object_id: Option<String>,
    pub app_id: Option<String>,
    pub sp_id: Option<String>,
    /// The app role users and groups are assigned with.
    pub role_id: Option<String>,
    /// The provisioning job.
    pub job_id: Option<String>,
    /// The SAML signing certificate this apply added.
    pub signing_thumbprint: Option<String>,
}

impl AppIds {
    /// Takes every id `other` knows.
    fn merge(&mut self, other: &AppIds) {
        let take = |a: &mut Option<String>, b: &Option<String>| {
            if b.is_some() {
                a.clone_from(b);
            }
        };
        take(&mut self.object_id, &other.object_id);
        take(&mut self.app_id, &other.app_id);
        take(&mut self.sp_id, &other.sp_id);
        take(&mut self.role_id, &other.role_id);
        take(&mut self.job_id, &other.job_id);
        take(&mut self.signing_thumbprint, &other.signing_thumbprint);
    }
}

/// What the apply knows of every app of the setup, by the profile's app id.
#[derive(Clone, Debug, Default)]
struct Refs {
    apps: BTreeMap<String, AppIds>,
}

impl Refs {
    /// What the tenant already had, from the state read before planning.
    fn from_state(state: &TenantState) -> Self {
        let apps = state
            .apps
            .iter()
            .map(|(id, found)| {
                let ids = match found {
                    FoundApp::Registration(r) => AppIds {
                        object_id: Some(r.app.id.clone()),
                        app_id: Some(r.app.app_id.clone()),
                        sp_id: r.sp_id.clone(),
                        ..Default::default()
                    },
                    FoundApp::Template(t) => AppIds {
                        object_id: Some(t.app_object_id.clone()),
                        app_id: Some(t.app_id.clone()),
                        sp_id: Some(t.sp_id.clone()),
                        role_id: Some(t.user_role_id.clone()),
                        job_id: t.job.as_ref().map(|j| j.id.clone()),
                        signing_thumbprint: None,
                    },
                    FoundApp::Vendor(v) => AppIds {
                        app_id: Some(v.app_id.clone()),
                        sp_id: Some(v.sp_id.clone()),
                        role_id: Some(v.user_role_id.clone()),
                        ..Default::default()
                    },
                };
                (id.clone(), ids)
            })
            .collect();
        Self { apps }
    }

    fn of(&self, app: &str) -> AppIds {
        self.apps.get(app).cloned().unwrap_or_default()
    }
}

/// Graph's documented replication-delay answers right after an object is created (reference §12).
pub(crate) fn replication_delay(e: &ApiError) -> bool {
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
    /// Ids of the change's app it learned.
    ids: AppIds,
    secret: Option<NewSecret>,
    cert: Option<crate::setup::state::SigningCert>,
    consent_url: Option<String>,
    detail: String,
    created: Option<(ObjectKind, String)>,
    /// The id of an object this change removed (a retired secret).
    removed: Option<String>,
    previous: Option<String>,
}

impl Ctx<'_> {
    /// Journals an event; one about a change carries the ids of the app it acts on.
    fn journal(
        &self,
        pc: Option<&PlannedChange>,
        event: Event,
        refs: &Refs,
    ) -> Result<(), ApplyError> {
        let ids = pc.map(|c| refs.of(&c.app)).unwrap_or_default();
        self.journal
            .append(&Entry {
                at: Utc::now(),
                plan_id: self.plan.id.clone(),
                seq: pc.map(|c| c.seq),
                event,
                app: pc.map(|c| c.app.clone()).filter(|a| !a.is_empty()),
                app_object_id: ids.object_id,
                app_id: ids.app_id,
                request_id: None,
            })
            .map_err(|e| ApplyError::Journal(format!("{}: {e}", self.journal.path().display())))
    }

    fn emit(&self, e: ApplyEvent) {
        (self.on_event)(e);
    }

    /// Makes one change, on the app it names, with the code of its area.
    async fn run(&self, pc: &PlannedChange, refs: &Refs) -> Result<StepOut, GraphError> {
        let ids = refs.of(&pc.app);
        match pc.change.area() {
            Area::Apps => self.apps(pc, &ids).await,
            Area::Credentials => self.credentials(pc, &ids).await,
            Area::Access => self.access(pc, &ids).await,
            Area::Provisioning => self.provisioning(pc, &ids).await,
        }
    }

    /// A change handed to an area that does not make it: a bug, said as an error rather than
    /// a panic.
    fn misrouted(pc: &PlannedChange) -> GraphError {
        refusal(
            "InternalError",
            &format!(
                "The wizard routed \"{}\" to the wrong code: please report this.",
                pc.change.kind()
            ),
            pc.request.clone(),
        )
    }
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

/// Applies a plan computed against `state`.
#[allow(clippy::too_many_arguments)]
pub async fn apply(
    graph: &GraphClient,
    cloud: &Cloud,
    plan: &Plan,
    state: &TenantState,
    foreign: &[super::custody::ForeignApp],
    redirect_uri: &str,
    journal: &Journal,
    options: &ApplyOptions,
    on_event: Arc<dyn Fn(ApplyEvent) + Send + Sync>,
    cancel: &CancellationToken,
) -> Result<Applied, Box<ApplyFailed>> {
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
    let mut out = Applied {
        changes: plan.changes.len(),
        ..Default::default()
    };
    let _lock = match journal.lock_tenant() {
        Ok(l) => l,
        Err(e) => {
            return Err(Box::new(ApplyFailed {
                error: ApplyError::Busy(e.to_string()),
                partial: out,
            }))
        }
    };
    // An app someone else holds is written to only once the admin has adopted it.
    if !foreign.is_empty() {
        let fail = |error| {
            Err(Box::new(ApplyFailed {
                error,
                partial: Applied {
                    changes: plan.changes.len(),
                    ..Default::default()
                },
            }))
        };
        let Some(adoption) = &options.adopt else {
            return fail(ApplyError::NotAdopted(super::custody::NotAdopted(
                foreign.to_vec(),
            )));
        };
        match super::custody::adopt(graph, journal, &plan.id, foreign, adoption).await {
            Ok(removed) => {
                for r in removed {
                    tracing::info!(what = %r.what, "adoption");
                }
            }
            Err(e) => return fail(ApplyError::Adopt(Box::new(e))),
        }
    }
    match run_plan(&ctx, &mut out).await {
        Ok(()) => Ok(out),
        Err(error) => Err(Box::new(ApplyFailed {
            error,
            partial: out,
        })),
    }
}

/// Runs the plan's changes; `out` holds what was made even when it stops part-way.
async fn run_plan(ctx: &Ctx<'_>, out: &mut Applied) -> Result<(), ApplyError> {
    let (plan, state, cancel) = (ctx.plan, ctx.state, ctx.cancel);
    let mut refs = Refs::from_state(state);
    // What exists already is known even when there is nothing to change.
    out.learn(plan, &refs);
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
    // Each change starts as soon as the changes it waits for are done (not in waves: a slow
    // change holds back only what depends on it).
    let mut done: BTreeSet<usize> = BTreeSet::new();
    let mut started: BTreeSet<usize> = BTreeSet::new();
    let mut running = futures::stream::FuturesUnordered::new();
    let mut failure: Option<ApplyError> = None;
    loop {
        if failure.is_none() && !cancel.is_cancelled() {
            let ready: Vec<&PlannedChange> = plan
                .changes
                .iter()
                .filter(|c| !started.contains(&c.seq) && c.after.iter().all(|a| done.contains(a)))
                .collect();
            for pc in ready {
                let name = match &pc.change {
                    Change::AddPassword { display_name, .. } => Some(display_name.clone()),
                    Change::InstantiateApp { temp_name, .. } => Some(temp_name.clone()),
                    _ => None,
                };
                ctx.journal(
                    Some(pc),
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
                started.insert(pc.seq);
                let snapshot = refs.clone();
                let seq = u32::try_from(pc.seq).unwrap_or(0);
                let on_event = ctx.on_event.clone();
                let announcer: crate::wait::Announcer = Arc::new(move |what, budget| {
                    on_event(ApplyEvent::Waiting {
                        seq,
                        message: format!("{what} — {}", crate::wait::up_to(budget)),
                    });
                });
                running.push(async move {
                    let out = crate::wait::announcing(announcer, ctx.run(pc, &snapshot)).await;
                    (pc, out)
                });
            }
        }
        let next = tokio::select! {
            n = futures::StreamExt::next(&mut running) => n,
            () = cancel.cancelled() => return Err(ApplyError::Cancelled),
        };
        let Some((pc, result)) = next else {
            break;
        };
        match result {
            Ok(step) => {
                refs.apps
                    .entry(pc.app.clone())
                    .or_default()
                    .merge(&step.ids);
                let (created, id) = match step.created {
                    Some((k, id)) => (Some(k), Some(id)),
                    None => (None, step.removed),
                };
                ctx.journal(
                    Some(pc),
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
                        Some(pc),
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
                if step.cert.is_some() {
                    out.signing_cert = step.cert;
                }
                if step.consent_url.is_some() {
                    out.consent_url = step.consent_url;
                }
                done.insert(pc.seq);
            }
            Err(e) => {
                ctx.journal(
                    Some(pc),
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
                // What is running finishes and is journaled; nothing new starts.
                failure.get_or_insert(ApplyError::Step {
                    seq: pc.seq,
                    title: pc.title.clone(),
                    source: Box::new(e),
                });
            }
        }
        out.learn(plan, &refs);
    }
    if let Some(f) = failure {
        return Err(f);
    }
    if cancel.is_cancelled() {
        return Err(ApplyError::Cancelled);
    }
    ctx.journal(None, Event::Finished, &refs)?;
    ctx.emit(ApplyEvent::Finished {
        changes: u32::try_from(plan.changes.len()).unwrap_or(0),
    });
    Ok(())
}
