//! Step 7, Apply: the plan applied with progress streamed, the live tests, a colleague's
//! consent checked again, and undo.

use std::sync::Arc;

use entra_setup_core::setup::apply::{ApplyEvent, ApplyOptions};
use entra_setup_core::setup::custody::Adoption;
use entra_setup_core::setup::run::Run;
use entra_setup_core::setup::sync::ScimToken;
use entra_setup_core::setup::undo::{self, Undone};
use entra_setup_core::setup::view::DoneView;
use tauri::ipc::Channel;
use tauri::State;
use tokio_util::sync::CancellationToken;
use tracing::instrument;

use crate::demo::Demo;
use crate::error::IpcError;
use crate::state::{sink, SessionState, SetupState};

/// Applies the plan from `prepare_setup`, streaming progress, then runs the live tests.
/// `adopt`: the admin adopts the apps Register app listed as held by someone else too,
/// keeping what they ticked.
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err)]
pub async fn apply_setup(
    adopt: Option<Adoption>,
    events: Channel<ApplyEvent>,
    sessions: State<'_, SessionState>,
    setup: State<'_, SetupState>,
) -> Result<DoneView, IpcError> {
    let active = sessions.active().await?;
    let prepared = setup.take_prepared().await?;
    let options = ApplyOptions {
        adopt,
        ..setup.apply_options().await
    };
    let cancel = CancellationToken::new();
    let (run, failure) =
        Run::apply(&active.session, prepared, &options, sink(events), &cancel).await;
    if failure.is_none() && run.saved_scim_token() {
        ScimToken::after_saved(&mut *setup.scim_token.lock().await);
    }
    // Kept even when the apply stopped: a secret it made must still be handed over.
    *setup.run.lock().await = Some(run);
    if let Some(e) = failure {
        return Err(IpcError::apply(&e));
    }
    let mut run = setup.run().await?;
    Ok(run.tested_view(&active.session, active.demo).await)
}

/// Checks consent again and re-runs the live tests.
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err)]
pub async fn recheck_setup(
    sessions: State<'_, SessionState>,
    setup: State<'_, SetupState>,
) -> Result<DoneView, IpcError> {
    let active = sessions.active().await?;
    let mut run = setup.run().await?;
    run.recheck_consent(&active.session).await?;
    Ok(run.tested_view(&active.session, active.demo).await)
}

/// Demo only: a simulated Global Administrator opens the consent link.
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err)]
pub async fn demo_colleague_consents(
    demo: State<'_, Demo>,
    sessions: State<'_, SessionState>,
    setup: State<'_, SetupState>,
) -> Result<DoneView, IpcError> {
    let url = setup
        .run()
        .await?
        .consent_url
        .clone()
        .ok_or(IpcError::Blocked {
            message: "No consent is pending.".into(),
        })?;
    demo.colleague_consents(&url).await?;
    recheck_setup(sessions, setup).await
}

/// Removes everything the journal says the wizard created for the last setup.
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err)]
pub async fn undo_setup(
    sessions: State<'_, SessionState>,
    setup: State<'_, SetupState>,
) -> Result<Vec<Undone>, IpcError> {
    let active = sessions.active().await?;
    let from_run = setup
        .run
        .lock()
        .await
        .as_ref()
        .map(|r| r.prepared.journal.clone());
    let from_plan = setup
        .prepared
        .lock()
        .await
        .as_ref()
        .map(|p| p.journal.clone());
    let journal = from_run.or(from_plan).ok_or(IpcError::Blocked {
        message: "Nothing to undo in this session.".into(),
    })?;
    journal.check().map_err(|e| IpcError::Blocked {
        message: e.to_string(),
    })?;
    let done = undo::undo(&active.session.graph, &journal, Arc::new(|_| {})).await?;
    *setup.run.lock().await = None;
    Ok(done)
}
