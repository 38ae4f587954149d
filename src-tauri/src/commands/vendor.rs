//! Permissions & consent for services that own their Entra apps (Twingate, Firezone): what to
//! give the vendor's console, and whether the vendor's apps are in the tenant with their
//! consent. The wizard never creates or changes them.

use std::collections::BTreeMap;

use entra_setup_core::auth::{SignInEvent, StepScopes};
use entra_setup_core::setup::vendor::{self, VendorView};
use tauri::ipc::Channel;
use tauri::State;
use tracing::instrument;

use super::choose::intent;
use crate::demo::Demo;
use crate::error::IpcError;
use crate::state::{ensure_scopes, Core, SessionState};

/// The vendor's apps in this tenant, checked (asks for the read permissions first if needed).
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err, fields(provider = %provider_id))]
pub async fn vendor_status(
    provider_id: String,
    inputs: BTreeMap<String, String>,
    events: Channel<SignInEvent>,
    core: State<'_, Core>,
    demo: State<'_, Demo>,
    sessions: State<'_, SessionState>,
) -> Result<VendorView, IpcError> {
    let mut intent = intent(&provider_id, &inputs, None)?;
    let steps = StepScopes::setup(true);
    ensure_scopes(&core, &demo, &sessions, steps, events).await?;
    let active = sessions.active().await?;
    intent
        .tenant_id
        .clone_from(&active.session.account.tenant_id);
    let roles = entra_setup_core::setup::plan::RoleFacts::from_summary(&active.session.summary);
    Ok(vendor::view(
        &active.session.graph,
        &intent,
        active.demo,
        roles.can_grant_app_roles,
    )
    .await?)
}

/// Demo only: the signed-in user goes through the vendor's stand-in console and consents, as
/// they would in the vendor's real console.
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err, fields(provider = %provider_id))]
pub async fn demo_connect_vendor(
    provider_id: String,
    inputs: BTreeMap<String, String>,
    events: Channel<SignInEvent>,
    core: State<'_, Core>,
    demo: State<'_, Demo>,
    sessions: State<'_, SessionState>,
) -> Result<VendorView, IpcError> {
    {
        let active = sessions.active().await?;
        if !active.demo {
            return Err(IpcError::Blocked {
                message: "Connect the service in its own console: the wizard cannot consent for a vendor's app.".into(),
            });
        }
        demo.vendor_consents(
            &provider_id,
            &active.session.account.tenant_id,
            &active.session.account.user_principal_name,
        )
        .await?;
    }
    vendor_status(provider_id, inputs, events, core, demo, sessions).await
}
