//! Step 2, Choose service: the providers, their inputs checked as the admin types, and the
//! setups done before in the signed-in tenant with their health.

use std::collections::BTreeMap;

use entra_setup_core::auth::{SignInEvent, StepScopes};
use entra_setup_core::provider;
use entra_setup_core::saml::{self, SpMetadata};
use entra_setup_core::setup::journal::{self, PreviousSetup};
use entra_setup_core::setup::status::{self, SetupStatus};
use entra_setup_core::setup::view::{IntentView, ProviderInfo};
use entra_setup_core::setup::{found, secrets, Intent};
use serde::Serialize;
use tauri::ipc::Channel;
use tauri::State;
use tracing::instrument;

use crate::demo::Demo;
use crate::desktop::Desktop;
use crate::error::IpcError;
use crate::state::{ensure_scopes, Core, Paths, SessionState};

pub(crate) fn known() -> Result<Vec<provider::Provider>, IpcError> {
    provider::all().map_err(|e| IpcError::Blocked {
        message: e.to_string(),
    })
}

/// The providers the wizard knows (built in, and the admin's own profiles).
#[tauri::command]
#[specta::specta]
pub fn providers() -> Result<Vec<ProviderInfo>, IpcError> {
    Ok(known()?.iter().map(ProviderInfo::from).collect())
}

/// The provider and the admin's inputs, checked. Errors: `inputs`, one message per field.
pub fn intent(
    provider_id: &str,
    inputs: &BTreeMap<String, String>,
    secret_days: Option<u32>,
) -> Result<Intent, IpcError> {
    let p = provider::find(provider_id).ok_or_else(|| IpcError::Invalid {
        field: "provider".into(),
        message: format!(
            "There is no provider '{}'.",
            entra_setup_core::redact::echo(provider_id, 80)
        ),
    })?;
    Intent::new(p, inputs, secret_days).map_err(|errors| IpcError::Inputs { errors })
}

/// Checks the provider inputs. Errors: `inputs`, one message per field.
#[tauri::command]
#[specta::specta]
pub fn check_inputs(
    provider_id: String,
    inputs: BTreeMap<String, String>,
    secret_days: Option<u32>,
) -> Result<IntentView, IpcError> {
    intent(&provider_id, &inputs, secret_days).map(|i| IntentView::from(&i))
}

/// A setup done before in the signed-in tenant, offered for a re-run.
#[derive(Debug, Serialize, specta::Type)]
#[serde(rename_all = "camelCase")]
pub struct PreviousSetupView {
    #[serde(flatten)]
    pub setup: PreviousSetup,
    pub provider_name: String,
}

/// The setups the wizard applied in the signed-in tenant before (from its journals, and the
/// tenant's own record when the app-reading permission is already consented), the latest
/// first; providers this version no longer knows are left out.
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err)]
pub async fn previous_setups(
    sessions: State<'_, SessionState>,
    paths: State<'_, Paths>,
) -> Result<Vec<PreviousSetupView>, IpcError> {
    let active = sessions.active().await?;
    let known = known()?;
    let dir = paths.journals(active.demo);
    let tenant = &active.session.account.tenant_id;
    // Asking for the permission here would interrupt the step with a consent prompt.
    let setups = found::known(&active.session.graph, &dir, tenant)
        .await
        .unwrap_or_else(|e| {
            tracing::info!(error = %e, "earlier setups from the journals only");
            journal::previous_setups(&dir, tenant)
        });
    Ok(setups
        .into_iter()
        .filter_map(|setup| {
            let p = known.iter().find(|p| p.id() == setup.provider_id)?;
            Some(PreviousSetupView {
                provider_name: p.name.clone(),
                setup,
            })
        })
        .collect())
}

/// Checks every earlier setup in the signed-in tenant (read-only): secret expiry, drift,
/// provisioning, and what needs attention. Asks for the provisioning permissions first (a
/// setup found only in the tenant may provision; progress through `events`).
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err)]
pub async fn check_previous_setups(
    events: Channel<SignInEvent>,
    core: State<'_, Core>,
    demo: State<'_, Demo>,
    sessions: State<'_, SessionState>,
    paths: State<'_, Paths>,
) -> Result<Vec<SetupStatus>, IpcError> {
    let steps = StepScopes::setup(true);
    ensure_scopes(&core, &demo, &sessions, steps, events).await?;
    let active = sessions.active().await?;
    let dir = paths.journals(active.demo);
    let s = &active.session;
    let mut out = vec![];
    for p in &found::known(&s.graph, &dir, &s.account.tenant_id).await? {
        out.push(Box::pin(status::check(s, &dir, p, secrets::EXPIRES_SOON_DAYS)).await);
    }
    Ok(out)
}

/// Reads the service's own SAML metadata — from `url`, or from a file the admin picks when
/// `url` is empty — and returns what it fills (Entity ID, Reply URLs, logout URL). `None` if the
/// admin cancelled the file dialog.
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err)]
pub async fn import_sp_metadata(
    url: Option<String>,
    core: State<'_, Core>,
    desktop: State<'_, Desktop>,
) -> Result<Option<SpMetadata>, IpcError> {
    // A file comes only through the dialog: the page can name a URL, never a path.
    let from = match url.filter(|u| !u.trim().is_empty()) {
        Some(u) => saml::MetadataSource::url_only(&u).map_err(IpcError::sp_metadata)?,
        None => match desktop.open_file().await {
            Some(path) => saml::MetadataSource::File(path),
            None => return Ok(None),
        },
    };
    saml::import_sp_metadata(&core.http, &from)
        .await
        .map(Some)
        .map_err(IpcError::sp_metadata)
}
