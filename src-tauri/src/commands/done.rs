//! Step 8, Done: the new secret handed over (clipboard, file, the provider's API, the
//! keychain) from Rust, never through the webview; old secrets retired after a rotation.

use std::collections::BTreeMap;

use entra_setup_core::auth::{BrowserOpener, FollowRedirects, SystemBrowser};
use entra_setup_core::outputs;
use entra_setup_core::push::PushResult;
use entra_setup_core::setup::run::{HandOver, SamlFile};
use entra_setup_core::setup::test_sign_in::SignInReport;
use entra_setup_core::setup::view::DoneView;
use tauri::State;
use tracing::instrument;

use crate::demo::Demo;
use crate::desktop::Desktop;
use crate::error::IpcError;
use crate::state::{Core, Paths, SessionState, SetupState};

/// Copies the secret (or an output with it) to the clipboard from Rust, concealed from
/// clipboard history and managers; cleared after a minute, or at exit, if it is still there.
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err)]
pub async fn copy_secret(
    output_id: Option<String>,
    desktop: State<'_, Desktop>,
    sessions: State<'_, SessionState>,
    setup: State<'_, SetupState>,
) -> Result<(), IpcError> {
    let active = sessions.active().await?;
    let mut run = setup.run().await?;
    let (text, _) = run.payload(&active.session, output_id.as_deref())?;
    desktop
        .clipboard
        .copy(&text)
        .map_err(|e| IpcError::Internal {
            message: format!("could not use the clipboard: {e}"),
        })?;
    run.handed_over(HandOver::Copied);
    let clipboard = desktop.clipboard.clone();
    tauri::async_runtime::spawn(async move {
        tokio::time::sleep(crate::clipboard::CLEAR_AFTER).await;
        clipboard.clear_if_still(&text);
    });
    Ok(())
}

/// Saves an output (with the secret, if it holds one) or the expiry reminder (`reminder`) to a
/// file the admin picks. Returns the path, or nothing if the admin cancelled.
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err)]
pub async fn save_output(
    output_id: String,
    desktop: State<'_, Desktop>,
    sessions: State<'_, SessionState>,
    setup: State<'_, SetupState>,
) -> Result<Option<String>, IpcError> {
    let (text, name) = {
        let active = sessions.active().await?;
        setup
            .run()
            .await?
            .payload(&active.session, Some(&output_id))?
    };
    let saved = save_with_dialog(&desktop, &name, |path| {
        outputs::write_private_file(path, &text)
    })
    .await?;
    if saved.is_some() && output_id != "reminder" {
        setup.run().await?.handed_over(HandOver::Saved);
    }
    Ok(saved)
}

/// Keeps the new secret in the OS keychain (opt-in), for later rotation.
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err)]
pub async fn keep_secret(
    core: State<'_, Core>,
    setup: State<'_, SetupState>,
) -> Result<(), IpcError> {
    Ok(setup.run().await?.keep(&core.keychain).await?)
}

/// Pushes the settings to the provider's API as its profile describes. `inputs` holds the
/// push inputs and the API token, used once and never stored. The demo pushes to its stand-in.
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err)]
pub async fn push_to_provider(
    inputs: BTreeMap<String, String>,
    core: State<'_, Core>,
    demo: State<'_, Demo>,
    sessions: State<'_, SessionState>,
    setup: State<'_, SetupState>,
) -> Result<PushResult, IpcError> {
    let active = sessions.active().await?;
    let mut run = setup.run().await?;
    let base = match active.demo {
        true => Some(demo.provider_api(&run.prepared.intent.provider).await?),
        false => core.push_api()?,
    };
    Ok(run
        .push(&active.session, &core.http, &inputs, base.as_deref())
        .await?)
}

/// After a rotation: removes the wizard's old client secrets, keeping the new one. Allowed only
/// once the new secret went to the provider and signed in to Entra; then re-runs the live tests.
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err)]
pub async fn retire_old_secrets(
    core: State<'_, Core>,
    sessions: State<'_, SessionState>,
    setup: State<'_, SetupState>,
    paths: State<'_, Paths>,
) -> Result<DoneView, IpcError> {
    let active = sessions.active().await?;
    let mut run = setup.run().await?;
    run.retire(
        &active.session,
        &paths.journals(active.demo),
        &core.keychain,
    )
    .await?;
    Ok(run.tested_view(&active.session, active.demo).await)
}

/// Certificate rotation, once the service has the new certificate: Entra signs with it from
/// now on. Re-runs the live tests.
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err)]
pub async fn activate_certificate(
    sessions: State<'_, SessionState>,
    setup: State<'_, SetupState>,
) -> Result<DoneView, IpcError> {
    let active = sessions.active().await?;
    let mut run = setup.run().await?;
    run.activate_certificate(&active.session).await?;
    Ok(run.tested_view(&active.session, active.demo).await)
}

/// Certificate rotation, after the service signs in with the new certificate: removes the old
/// ones. Re-runs the live tests.
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err)]
pub async fn retire_old_certificates(
    sessions: State<'_, SessionState>,
    setup: State<'_, SetupState>,
) -> Result<DoneView, IpcError> {
    let active = sessions.active().await?;
    let mut run = setup.run().await?;
    run.retire_certificates(&active.session).await?;
    Ok(run.tested_view(&active.session, active.demo).await)
}

/// Saves a file of the SAML hand-over (the federation metadata, or the signing certificate as
/// PEM or CER) where the admin picks. Returns the path, or nothing if the admin cancelled.
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err)]
pub async fn save_saml_file(
    which: SamlFile,
    desktop: State<'_, Desktop>,
    sessions: State<'_, SessionState>,
    setup: State<'_, SetupState>,
) -> Result<Option<String>, IpcError> {
    let (bytes, name) = {
        let active = sessions.active().await?;
        setup.run().await?.saml_file(&active.session, which).await?
    };
    save_with_dialog(&desktop, name, |path| std::fs::write(path, &bytes)).await
}

/// The lockout guard: the admin confirms an administrator of the service still signs in with a
/// password, so a broken single sign-on cannot lock everyone out.
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err)]
pub async fn confirm_password_admin(setup: State<'_, SetupState>) -> Result<(), IpcError> {
    setup.run().await?.password_admin_confirmed = true;
    tracing::info!("the admin confirmed a password administrator of the service");
    Ok(())
}

/// Asks where to save `name` (the dialog waits for the admin; nothing stays locked meanwhile),
/// then writes it. The path, or nothing if the admin cancelled.
async fn save_with_dialog(
    desktop: &Desktop,
    name: &str,
    write: impl FnOnce(&std::path::Path) -> std::io::Result<()>,
) -> Result<Option<String>, IpcError> {
    let Some(path) = desktop.save_as(name).await else {
        return Ok(None);
    };
    write(&path).map_err(|e| IpcError::Internal {
        message: format!("could not write {}: {e}", path.display()),
    })?;
    Ok(Some(path.display().to_string()))
}

/// Signs a person in to the app this setup made, the way the service will (SAML or OpenID
/// Connect), and returns what the service receives: the claim inspector. The browser opens on
/// this computer (the demo follows the simulator itself); `sign_in_cancel` stops the wait.
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err)]
pub async fn test_sign_in(
    core: State<'_, Core>,
    sessions: State<'_, SessionState>,
    setup: State<'_, SetupState>,
) -> Result<SignInReport, IpcError> {
    let cancel = sessions.control.start();
    let active = sessions.active().await?;
    let run = setup.run().await?;
    let opener: Box<dyn BrowserOpener> = match active.demo {
        true => Box::new(FollowRedirects::new(core.http.clone())),
        false => Box::new(SystemBrowser),
    };
    Ok(run
        .test_sign_in(&active.session, &core.http, opener.as_ref(), &cancel)
        .await?)
}
