//! Steps 5 and 6: the sync mode (who is provisioned, with a preview) and SCIM (verify the
//! provider's endpoint as Entra would; the token stays in Rust), plus the live job on Done.

use std::collections::BTreeMap;
use std::sync::Arc;

use entra_setup_core::auth::{Method, SignInEvent, StepScopes};
use entra_setup_core::people::{self, Principal, SyncPreview};
use entra_setup_core::provisioning::{self, JobStatus, Logs, OnDemandResult};
use entra_setup_core::scim::{self, ScimAuth, ScimReport, ScimTarget, VerifyOptions};
use entra_setup_core::session;
use entra_setup_core::setup::journal::Journal;
use entra_setup_core::setup::run::{scim_token_key, ScimToken};
use entra_setup_core::setup::{state, Assignee, PrincipalKind};
use entra_setup_core::tenant::{Advice, LicenceTier};
use entra_setup_core::SecretString;
use serde::{Deserialize, Serialize};
use tauri::ipc::Channel;
use tauri::State;
use tokio_util::sync::CancellationToken;
use tracing::instrument;

use super::choose::intent;
use crate::error::IpcError;
use crate::state::{sign_in_context, Core, Demo, Paths, SessionState, SetupState};

/// What a provider's profile says about SCIM.
#[derive(Debug, Serialize, specta::Type)]
#[serde(rename_all = "camelCase")]
pub struct ScimInfo {
    pub app_name: String,
    pub needs_premium: bool,
    pub endpoint_help: String,
    pub token_help: String,
    pub endpoint_example: String,
    pub token_lifetime_days: Option<u32>,
    pub match_sso_groups: bool,
    pub advice: Vec<Advice>,
}

/// What the last run saved, for a re-run.
#[derive(Debug, Serialize, specta::Type)]
#[serde(rename_all = "camelCase")]
pub struct ScimSaved {
    pub tenant_url: String,
    pub sync_all: bool,
    pub token_expires: Option<String>,
    pub saved_at: String,
}

/// The Sync mode and SCIM steps' starting point.
#[derive(Debug, Serialize, specta::Type)]
#[serde(rename_all = "camelCase")]
pub struct ScimContext {
    pub info: ScimInfo,
    /// Group assignment is possible (Entra ID P1 or P2).
    pub groups_allowed: bool,
    pub licence_note: String,
    /// The provisioning app already exists (a re-run).
    pub app_exists: bool,
    /// Who is assigned now.
    pub assigned: Vec<Assignee>,
    pub saved: Option<ScimSaved>,
    pub status: Option<JobStatus>,
    pub token: TokenState,
    pub demo: bool,
}

/// Whether the wizard holds a SCIM token (never the token itself).
#[derive(Debug, Clone, Serialize, specta::Type)]
#[serde(rename_all = "camelCase")]
pub struct TokenState {
    pub set: bool,
    /// In the OS keychain.
    pub remembered: bool,
    /// Characters, so the admin can tell a truncated paste.
    pub length: u32,
}

fn advice_of(w: &entra_setup_core::provider::WarningSpec) -> Advice {
    Advice {
        id: w.id.clone(),
        severity: w.severity,
        title: w.title.clone(),
        detail: w.detail.clone(),
        link: None,
    }
}

async fn token_state(setup: &SetupState) -> TokenState {
    let t = setup.scim_token.lock().await;
    TokenState {
        set: t.is_some(),
        remembered: t.as_ref().is_some_and(|t| t.remembered),
        length: t
            .as_ref()
            .map(|t| {
                u32::try_from(
                    entra_setup_core::ExposeSecret::expose_secret(&t.value)
                        .chars()
                        .count(),
                )
                .unwrap_or(0)
            })
            .unwrap_or(0),
    }
}

/// Reads what exists for this provider's provisioning, asking for the provisioning permissions
/// first if needed (progress through `events`).
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err, fields(provider = %provider_id))]
#[allow(clippy::too_many_arguments)]
pub async fn scim_context(
    provider_id: String,
    inputs: BTreeMap<String, String>,
    events: Channel<SignInEvent>,
    core: State<'_, Core>,
    demo: State<'_, Demo>,
    sessions: State<'_, SessionState>,
    setup: State<'_, SetupState>,
    paths: State<'_, Paths>,
) -> Result<ScimContext, IpcError> {
    let intent = intent(&provider_id, &inputs, None)?;
    let spec = intent
        .provider
        .scim
        .clone()
        .ok_or_else(|| IpcError::Blocked {
            message: format!(
                "{} takes no SCIM provisioning from Entra.",
                intent.provider.name
            ),
        })?;
    let active = sessions.active().await?;
    let ctx = sign_in_context(&core, &demo, active.demo);
    let sink: Arc<dyn Fn(SignInEvent) + Send + Sync> = Arc::new(move |e| {
        let _ = events.send(e);
    });
    session::ensure_scopes(
        &ctx,
        &active.session,
        StepScopes::setup(true),
        Method::Browser,
        sink,
        &CancellationToken::new(),
    )
    .await?;
    let s = &active.session;
    let journal = Journal::open(
        &paths.journals(active.demo),
        &s.account.tenant_id,
        &intent.unique_name(),
    );
    let hints = journal.hints();
    let existing = state::read_scim(
        &s.graph,
        &intent.scim_unique_name(),
        &hints.unfinished_instantiations,
    )
    .await?;
    let status = match existing
        .as_ref()
        .and_then(|e| e.job.as_ref().map(|j| (e.sp_id.clone(), j.id.clone())))
    {
        Some((sp, job)) => provisioning::job_status(&s.graph, &sp, &job).await.ok(),
        None => None,
    };
    // A token the admin kept in the keychain on an earlier run.
    if setup.scim_token.lock().await.is_none() {
        let key = scim_token_key(&s.account.tenant_id, &intent.scim_unique_name());
        if let Ok(Some(t)) = entra_setup_core::keychain::get(&core.keychain, &key).await {
            *setup.scim_token.lock().await = Some(ScimToken::kept(t));
        }
    }
    let groups_allowed = matches!(s.summary.licence, LicenceTier::P1 | LicenceTier::P2);
    let licence_note = match (groups_allowed, spec.needs_premium) {
        (true, _) => format!("Your tenant has Entra ID {:?}: you can assign groups.", s.summary.licence),
        (false, true) => format!("{} documents that its SCIM needs Entra ID P1 or P2, which this tenant does not have. Users can still be assigned one by one, but group provisioning and group-based assignment are not available.", intent.provider.name),
        (false, false) => "This tenant has no Entra ID P1 or P2: assigning groups to apps is not available, so assign users one by one (or sync all users).".into(),
    };
    let saved = hints.scim.map(|r| ScimSaved {
        tenant_url: r.tenant_url,
        sync_all: r.sync_all,
        token_expires: r.token_expires.map(|d| d.to_string()),
        saved_at: r.saved_at.to_rfc3339(),
    });
    Ok(ScimContext {
        info: ScimInfo {
            app_name: intent.scim_display_name(),
            needs_premium: spec.needs_premium,
            endpoint_help: spec.endpoint_help.clone(),
            token_help: spec.token_help.clone(),
            endpoint_example: spec.endpoint_example.clone(),
            token_lifetime_days: spec.token_lifetime_days,
            match_sso_groups: spec.match_sso_groups,
            advice: spec.advice.iter().map(advice_of).collect(),
        },
        groups_allowed,
        licence_note,
        app_exists: existing.is_some(),
        assigned: existing
            .map(|e| {
                e.assignments
                    .into_iter()
                    .map(|a| Assignee {
                        kind: if a.principal_type.as_deref() == Some("Group") {
                            PrincipalKind::Group
                        } else {
                            PrincipalKind::User
                        },
                        display_name: a
                            .principal_display_name
                            .unwrap_or_else(|| a.principal_id.clone()),
                        id: a.principal_id,
                    })
                    .collect()
            })
            .unwrap_or_default(),
        saved,
        status,
        token: token_state(&setup).await,
        demo: active.demo,
    })
}

/// Finds users (and groups when `groups`) whose name starts with `query`.
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err)]
pub async fn search_people(
    query: String,
    groups: bool,
    sessions: State<'_, SessionState>,
) -> Result<Vec<Principal>, IpcError> {
    let active = sessions.active().await?;
    Ok(people::search(&active.session.graph, &query, groups).await?)
}

/// Who would be provisioned with this mode and these assignments.
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err)]
pub async fn preview_sync(
    sync_all: bool,
    assigned: Vec<Assignee>,
    sessions: State<'_, SessionState>,
) -> Result<SyncPreview, IpcError> {
    let active = sessions.active().await?;
    Ok(people::preview(&active.session.graph, sync_all, &assigned).await?)
}

/// Takes the provider's SCIM token (Entra's Secret Token). It stays in this process; with
/// `remember` it also goes to the OS keychain for later runs. It is never sent back.
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err)]
pub async fn set_scim_token(
    token: String,
    remember: bool,
    provider_id: String,
    inputs: BTreeMap<String, String>,
    core: State<'_, Core>,
    sessions: State<'_, SessionState>,
    setup: State<'_, SetupState>,
) -> Result<TokenState, IpcError> {
    let value = token.trim().to_string();
    if value.is_empty() {
        return Err(IpcError::Invalid {
            field: "scim_token".into(),
            message: "Paste the token from the provider: the field is empty.".into(),
        });
    }
    if value.to_ascii_lowercase().starts_with("bearer ") {
        return Err(IpcError::Invalid {
            field: "scim_token".into(),
            message: "Paste only the token, without \"Bearer \": Entra adds that itself.".into(),
        });
    }
    if value.chars().any(char::is_whitespace) {
        return Err(IpcError::Invalid {
            field: "scim_token".into(),
            message: "The token contains spaces or line breaks: copy it again, as one piece."
                .into(),
        });
    }
    let secret = SecretString::from(value);
    if remember {
        let active = sessions.active().await?;
        let intent = intent(&provider_id, &inputs, None)?;
        let key = scim_token_key(
            &active.session.account.tenant_id,
            &intent.scim_unique_name(),
        );
        entra_setup_core::keychain::set(&core.keychain, &key, secret.clone()).await?;
    }
    *setup.scim_token.lock().await = Some(ScimToken::entered(secret, remember));
    Ok(token_state(&setup).await)
}

/// Forgets the token here and, if it was kept, in the OS keychain.
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err)]
pub async fn forget_scim_token(
    provider_id: String,
    inputs: BTreeMap<String, String>,
    core: State<'_, Core>,
    sessions: State<'_, SessionState>,
    setup: State<'_, SetupState>,
) -> Result<TokenState, IpcError> {
    *setup.scim_token.lock().await = None;
    let guard = sessions.inner.lock().await;
    if let Some(active) = guard.as_ref() {
        let intent = intent(&provider_id, &inputs, None)?;
        let key = scim_token_key(
            &active.session.account.tenant_id,
            &intent.scim_unique_name(),
        );
        entra_setup_core::keychain::delete(&core.keychain, &key).await?;
    }
    Ok(token_state(&setup).await)
}

/// Demo only: the simulated provider's SCIM endpoint, with its token set here.
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err)]
pub async fn use_demo_scim(
    demo: State<'_, Demo>,
    sessions: State<'_, SessionState>,
    setup: State<'_, SetupState>,
) -> Result<String, IpcError> {
    if !sessions.inner.lock().await.as_ref().is_some_and(|a| a.demo) {
        return Err(IpcError::Blocked {
            message: "The demo SCIM endpoint exists only in the demo tenant.".into(),
        });
    }
    let url = demo.fake_scim_url().await?;
    let token = SecretString::from(entra_setup_sim::scim_server::DEMO_SCIM_TOKEN.to_string());
    *setup.scim_token.lock().await = Some(ScimToken::entered(token, false));
    Ok(url)
}

/// Checks the endpoint as Entra's provisioning service will use it. Write tests create and
/// remove a clearly named test user and group, only when `write_tests`.
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err)]
pub async fn verify_scim(
    url: String,
    write_tests: bool,
    trusted_cert: Option<String>,
    setup: State<'_, SetupState>,
) -> Result<ScimReport, IpcError> {
    let token = setup
        .scim_token
        .lock()
        .await
        .as_ref()
        .map(|t| t.value.clone())
        .ok_or(IpcError::Invalid {
            field: "scim_token".into(),
            message: "Enter the provider's SCIM token first.".into(),
        })?;
    let trusted_cert = match trusted_cert.filter(|p| !p.trim().is_empty()) {
        Some(p) => Some(std::fs::read(p.trim()).map_err(|e| IpcError::Invalid {
            field: "scim_cert".into(),
            message: format!("Cannot read the certificate file {p}: {e}"),
        })?),
        None => None,
    };
    let target = ScimTarget {
        url: url.trim().to_string(),
        auth: ScimAuth::Bearer(token),
        trusted_cert,
    };
    Ok(scim::verify(
        &target,
        &VerifyOptions {
            write_tests,
            timeout: None,
        },
    )
    .await)
}

async fn job_of(setup: &SetupState) -> Result<(String, String), IpcError> {
    let run = setup.run.lock().await;
    run.as_ref()
        .and_then(|a| a.scim.as_ref())
        .and_then(|s| s.job_id.clone().map(|j| (s.sp_id.clone(), j)))
        .ok_or(IpcError::Blocked {
            message: "Provisioning is not set up in this session.".into(),
        })
}

/// The provisioning job's status now.
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err)]
pub async fn scim_status(
    sessions: State<'_, SessionState>,
    setup: State<'_, SetupState>,
) -> Result<JobStatus, IpcError> {
    let (sp, job) = job_of(&setup).await?;
    let active = sessions.active().await?;
    Ok(provisioning::job_status(&active.session.graph, &sp, &job).await?)
}

/// Provisions one user now.
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err)]
pub async fn scim_on_demand(
    user_id: String,
    sessions: State<'_, SessionState>,
    setup: State<'_, SetupState>,
) -> Result<OnDemandResult, IpcError> {
    let (sp, job) = job_of(&setup).await?;
    let active = sessions.active().await?;
    Ok(provisioning::provision_on_demand(&active.session.graph, &sp, &job, &user_id).await?)
}

/// The newest provisioning log entries, or why they cannot be read.
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err)]
pub async fn scim_logs(
    sessions: State<'_, SessionState>,
    setup: State<'_, SetupState>,
) -> Result<Logs, IpcError> {
    let (sp, _) = job_of(&setup).await?;
    let active = sessions.active().await?;
    Ok(provisioning::logs(&active.session.graph, &sp, 25).await?)
}

/// Parses an optional YYYY-MM-DD date from the UI.
pub fn parse_date(field: &str, raw: Option<&str>) -> Result<Option<chrono::NaiveDate>, IpcError> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| IpcError::Invalid {
                field: field.into(),
                message: format!("'{s}' is not a date: use YYYY-MM-DD, e.g. 2027-11-22."),
            }),
    }
}

#[derive(Debug, Deserialize, specta::Type)]
#[serde(rename_all = "camelCase")]
pub struct ScimChoice {
    pub tenant_url: String,
    pub sync_all: bool,
    pub assign: Vec<Assignee>,
    pub token_expires: Option<String>,
    pub start: bool,
}
