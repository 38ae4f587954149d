//! Steps 3 and 4, Register app and Review: the plan for the admin's choices, with the
//! permissions it grants and the secrets already on the app.

use std::collections::BTreeMap;

use entra_setup_core::auth::{SignInEvent, StepScopes};
use entra_setup_core::setup::flow::{self, SetupError};
use entra_setup_core::setup::journal::Journal;
use entra_setup_core::setup::sync::ScimToken;
use entra_setup_core::setup::view::PlanView;
use entra_setup_core::setup::{Intent, ScimIntent};
use serde::Deserialize;
use tauri::ipc::Channel;
use tauri::State;
use tracing::instrument;

use super::choose::intent;
use super::scim::{parse_date, ScimChoice};
use crate::demo::Demo;
use crate::error::IpcError;
use crate::state::{ensure_scopes, ActiveSession, Core, Paths, SessionState, SetupState};

/// The admin's choices about the client secret.
#[derive(Debug, Deserialize, specta::Type)]
#[serde(rename_all = "camelCase")]
pub struct SecretChoice {
    /// Lifetime in days (default: the provider's; capped by tenant policy).
    pub days: Option<u32>,
    /// Add a new secret now even if the current one is still good (rotation).
    pub rotate: bool,
}

/// Adds the provisioning choices. A new token is saved when the admin entered one now, or
/// when the settings changed and a kept one is held (Entra saves them together).
async fn with_scim(
    intent: Intent,
    choice: &ScimChoice,
    active: &ActiveSession,
    journals: &std::path::Path,
    setup: &SetupState,
) -> Result<Intent, IpcError> {
    let expires = parse_date("scim_token_expires", choice.token_expires.as_deref())?;
    let tenant = &active.session.account.tenant_id;
    // A damaged journal is reported here too, never read as "nothing saved yet".
    let record = Journal::open(journals, tenant, &intent.unique_name())
        .scim_record()
        .map_err(|e| IpcError::Blocked {
            message: e.to_string(),
        })?;
    let changed = record.as_ref().is_none_or(|r| {
        r.tenant_url != choice.tenant_url.trim()
            || r.sync_all != choice.sync_all
            || r.token_expires != expires
    });
    let held = setup.scim_token.lock().await;
    if let Some(t) = held.as_ref() {
        t.check_url(&choice.tenant_url)
            .map_err(|message| IpcError::Invalid {
                field: "scim_token".into(),
                message,
            })?;
    }
    let new_token = ScimToken::is_new(held.as_ref(), changed);
    drop(held);
    let si = ScimIntent::new(
        &choice.tenant_url,
        new_token,
        expires,
        choice.sync_all,
        choice.assign.clone(),
        choice.start,
    )
    .map_err(|errors| IpcError::Inputs { errors })?;
    intent
        .with_scim(si)
        .map_err(|errors| IpcError::Inputs { errors })
}

/// Reads the tenant and computes the plan, asking the admin to consent to the setup
/// permissions first if needed (progress through `events`).
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err, fields(provider = %provider_id))]
#[allow(clippy::too_many_arguments)]
pub async fn prepare_setup(
    provider_id: String,
    inputs: BTreeMap<String, String>,
    secret: SecretChoice,
    scim: Option<ScimChoice>,
    events: Channel<SignInEvent>,
    core: State<'_, Core>,
    demo: State<'_, Demo>,
    sessions: State<'_, SessionState>,
    setup: State<'_, SetupState>,
    paths: State<'_, Paths>,
) -> Result<PlanView, IpcError> {
    let mut intent = intent(&provider_id, &inputs, secret.days)?.with_rotation(secret.rotate);
    let steps = StepScopes::setup(scim.is_some());
    ensure_scopes(&core, &demo, &sessions, steps, events).await?;
    let active = sessions.active().await?;
    let journals = paths.journals(active.demo);
    if let Some(choice) = &scim {
        intent = if intent.provider.directory_sync.is_some() {
            // The vendor reads the directory itself: only its mode and groups.
            let d = entra_setup_core::setup::DirectorySyncIntent::new(
                choice.sync_all,
                choice.assign.clone(),
            )
            .map_err(|errors| IpcError::Inputs { errors })?;
            intent
                .with_directory_sync(d)
                .map_err(|errors| IpcError::Inputs { errors })?
        } else {
            with_scim(intent, choice, &active, &journals, &setup).await?
        };
    }
    let held = setup.held_secret_ids().await;
    let prepared = flow::prepare(&active.session, &journals, intent, &held)
        .await
        .map_err(|e| match e {
            SetupError::Graph(g) => g.into(),
            SetupError::Plan(p) => IpcError::Blocked {
                message: p.to_string(),
            },
            SetupError::Inputs(errors) => IpcError::Inputs { errors },
            SetupError::Journal(j) => IpcError::Blocked {
                message: j.to_string(),
            },
        })?;
    let view = PlanView::from(&prepared);
    *setup.prepared.lock().await = Some(prepared);
    Ok(view)
}
