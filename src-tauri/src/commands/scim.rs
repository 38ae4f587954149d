//! Steps 5 and 6: the sync mode (who is provisioned, with a preview) and SCIM (verify the
//! provider's endpoint as Entra would; the token stays in Rust), plus the live job on Done.

use std::collections::BTreeMap;

use entra_setup_core::auth::{SignInEvent, StepScopes};
use entra_setup_core::people::{self, Principal, SyncPreview};
use entra_setup_core::provisioning::{self, JobStatus, Logs, OnDemandResult};
use entra_setup_core::scim::{self, ScimAuth, ScimReport, ScimTarget, VerifyOptions};
use entra_setup_core::setup::sync::{self, scim_token_key, ScimContext, ScimToken, TokenState};
use entra_setup_core::setup::Assignee;
use entra_setup_core::SecretString;
use serde::Deserialize;
use tauri::ipc::Channel;
use tauri::State;
use tracing::instrument;

use super::choose::intent;
use crate::demo::Demo;
use crate::error::IpcError;
use crate::state::{ensure_scopes, Core, Paths, SessionState, SetupState};

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
    let steps = StepScopes::setup(true);
    ensure_scopes(&core, &demo, &sessions, steps, events).await?;
    let active = sessions.active().await?;
    let journals = paths.journals(active.demo);
    let mut held = setup.scim_token.lock().await;
    Ok(sync::context(
        &active.session,
        &journals,
        &intent,
        &mut held,
        &core.keychain,
        active.demo,
    )
    .await?)
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
    provider_id: String,
    sync_all: bool,
    assigned: Vec<Assignee>,
    sessions: State<'_, SessionState>,
) -> Result<SyncPreview, IpcError> {
    let active = sessions.active().await?;
    // Counted the way the service that syncs counts (its profile says how).
    let rules = super::choose::known()?
        .iter()
        .find(|p| p.id() == provider_id)
        .map(people::PreviewRules::of)
        .unwrap_or_default();
    Ok(people::preview(&active.session.graph, sync_all, &assigned, &rules).await?)
}

/// Takes the provider's SCIM token (Entra's Secret Token). It stays in this process; with
/// `remember` it also goes to the OS keychain for later runs. It is never sent back.
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err)]
#[allow(clippy::too_many_arguments)] // Tauri injects the state arguments
pub async fn set_scim_token(
    token: String,
    remember: bool,
    tenant_url: String,
    provider_id: String,
    inputs: BTreeMap<String, String>,
    core: State<'_, Core>,
    sessions: State<'_, SessionState>,
    setup: State<'_, SetupState>,
) -> Result<TokenState, IpcError> {
    let secret = ScimToken::parse(&token).map_err(|e| IpcError::Invalid {
        field: "scim_token".into(),
        message: e.to_string(),
    })?;
    if entra_setup_core::setup::sync::origin_of(&tenant_url).is_none() {
        return Err(IpcError::Invalid {
            field: "scim_url".into(),
            message:
                "Enter the Tenant URL first: the token is bound to it and never sent anywhere else."
                    .into(),
        });
    }
    if remember {
        let active = sessions.active().await?;
        let intent = intent(&provider_id, &inputs, None)?;
        let key = scim_token_key(
            &active.session.account.tenant_id,
            &intent.template_unique_name(),
        );
        ScimToken::keep(&core.keychain, &key, &secret, &tenant_url)
            .await
            .map_err(|e| IpcError::Invalid {
                field: "scim_token".into(),
                message: e.to_string(),
            })?;
    }
    *setup.scim_token.lock().await =
        Some(ScimToken::entered(secret, remember).for_url(&tenant_url));
    Ok(TokenState::of(setup.scim_token.lock().await.as_ref()))
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
            &intent.template_unique_name(),
        );
        entra_setup_core::keychain::delete(&core.keychain, &key).await?;
    }
    Ok(TokenState::of(setup.scim_token.lock().await.as_ref()))
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
    let (url, token) = demo.scim_endpoint().await?;
    let token = SecretString::from(token.to_string());
    *setup.scim_token.lock().await = Some(ScimToken::entered(token, false).for_url(&url));
    Ok(url)
}

/// Picks, in the system's file dialog, a certificate to trust for the endpoint's check (a
/// self-signed test server). Returns the file's name, or `None` if the admin cancelled. The
/// page never names a path: only the dialog does.
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err)]
pub async fn choose_scim_cert(
    desktop: State<'_, crate::desktop::Desktop>,
    setup: State<'_, SetupState>,
) -> Result<Option<String>, IpcError> {
    let Some(path) = desktop.open_file().await else {
        return Ok(None);
    };
    let bytes = scim::read_trusted_cert(&path).map_err(|e| IpcError::Invalid {
        field: "scim_cert".into(),
        message: e.to_string(),
    })?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    *setup.scim_cert.lock().await = Some(bytes);
    Ok(Some(name))
}

/// Stops trusting the certificate chosen with `choose_scim_cert`.
#[tauri::command]
#[specta::specta]
pub async fn forget_scim_cert(setup: State<'_, SetupState>) -> Result<(), IpcError> {
    *setup.scim_cert.lock().await = None;
    Ok(())
}

/// Checks the endpoint as Entra's provisioning service will use it: only the Tenant URL the
/// token was entered for, and on a real tenant only an address Entra can reach (a page cannot
/// use the check to read this computer's or its network's own services). Write tests create
/// and remove a clearly named test user and group, only when `write_tests`.
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err)]
pub async fn verify_scim(
    url: String,
    write_tests: bool,
    sessions: State<'_, SessionState>,
    setup: State<'_, SetupState>,
) -> Result<ScimReport, IpcError> {
    let active = sessions.active().await?;
    if !active.session.cloud.on_this_computer() && scim::is_private_address(&url) {
        return Err(IpcError::Invalid {
            field: "scim_url".into(),
            message: "Entra cannot reach an address on this computer or its private network (localhost, 127.0.0.1, 10.x, 192.168.x, .local), so it is not checked: enter the provider's public https SCIM URL.".into(),
        });
    }
    drop(active);
    let token = setup
        .scim_token
        .lock()
        .await
        .as_ref()
        .map(|t| {
            t.check_url(&url)
                .map(|()| t.value.clone())
                .map_err(|message| IpcError::Invalid {
                    field: "scim_token".into(),
                    message,
                })
        })
        .ok_or(IpcError::Invalid {
            field: "scim_token".into(),
            message: "Enter the provider's SCIM token first.".into(),
        })??;
    let trusted_cert = setup.scim_cert.lock().await.clone();
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
            ..Default::default()
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

/// Parses an optional expiry date from the UI: YYYY-MM-DD, after today, at most ten years
/// ahead (the CLI's check, [`entra_setup_core::values::future_date`]).
pub fn parse_date(field: &str, raw: Option<&str>) -> Result<Option<chrono::NaiveDate>, IpcError> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => entra_setup_core::values::future_date(s, chrono::Utc::now().date_naive())
            .map(Some)
            .map_err(|e| IpcError::Invalid {
                field: field.into(),
                message: format!("{e}."),
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

#[cfg(test)]
mod tests {
    /// The SCIM step's expiry date is checked as the CLI's --scim-token-expires is.
    #[test]
    fn token_expiry_dates_are_checked_as_on_the_command_line() {
        let today = chrono::Utc::now().date_naive();
        for raw in ["2027-1-31", "1999-01-01", "2207-01-31"] {
            let want = entra_setup_core::values::future_date(raw, today).unwrap_err();
            match super::parse_date("scim_token_expires", Some(raw)) {
                Err(super::IpcError::Invalid { field, message }) => {
                    assert_eq!(field, "scim_token_expires");
                    assert_eq!(message, format!("{want}."));
                }
                other => panic!("{raw}: {other:?}"),
            }
        }
        assert!(matches!(super::parse_date("x", Some(" ")), Ok(None)));
    }
}
