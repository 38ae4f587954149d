//! Step 1: sign in, resume, sign out.

use entra_setup_core::auth::{Method, SignInEvent};
use entra_setup_core::cloud::CloudChoice;
use entra_setup_core::session::{self, SignInRequest, SignedIn};
use entra_setup_core::tenant::{Advice, TenantSummary};
use serde::Serialize;
use tauri::ipc::Channel;
use tauri::State;
use tracing::instrument;

use crate::demo::Demo;
use crate::error::IpcError;
use crate::settings::SettingsStore;
use crate::state::{sink, ActiveSession, Core, SessionState, SetupState};

/// What the tenant summary screen shows after a sign-in.
#[derive(Debug, Serialize, specta::Type)]
#[serde(rename_all = "camelCase")]
pub struct SignInResult {
    pub summary: TenantSummary,
    pub notices: Vec<Advice>,
    pub demo: bool,
}

/// How the launch-time resume went.
#[derive(Debug, Serialize, specta::Type)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum ResumeOutcome {
    /// Nothing was saved: show the welcome screen.
    Nothing,
    Resumed {
        result: Box<SignInResult>,
    },
    /// A saved sign-in exists but no longer works.
    Failed {
        user_principal_name: String,
        message: String,
    },
}

async fn keep(sessions: &SessionState, signed: SignedIn, demo: bool) -> SignInResult {
    let mut summary = signed.session.summary.clone();
    if demo {
        summary.cloud_name = "Simulated".into();
    }
    let result = SignInResult {
        summary,
        notices: signed.notices,
        demo,
    };
    *sessions.inner.lock().await = Some(ActiveSession {
        session: signed.session,
        demo,
    });
    result
}

/// Signs in to a tenant (system browser or device code). Progress streams through `events`.
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err, fields(method = ?request.method))]
pub async fn sign_in(
    request: SignInRequest,
    events: Channel<SignInEvent>,
    core: State<'_, Core>,
    sessions: State<'_, SessionState>,
    settings: State<'_, SettingsStore>,
) -> Result<SignInResult, IpcError> {
    let cancel = sessions.control.start();
    let signed = session::sign_in(&core.context(), &request, sink(events), &cancel).await?;
    settings.set_last_account(Some(signed.session.account.clone()))?;
    Ok(keep(&sessions, signed, false).await)
}

/// Signs in to the built-in demo tenant as one of its users, through the same sign-in code.
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err, fields(upn = %upn))]
pub async fn sign_in_demo(
    upn: String,
    method: Method,
    events: Channel<SignInEvent>,
    core: State<'_, Core>,
    demo: State<'_, Demo>,
    sessions: State<'_, SessionState>,
) -> Result<SignInResult, IpcError> {
    let cancel = sessions.control.start();
    let (base, user) = demo.prepare(&upn).await?;
    let request = SignInRequest {
        cloud: CloudChoice::Custom {
            authority: base.clone(),
            graph: base,
        },
        tenant: user.tenant_domain,
        method,
        client_id: None,
    };
    let signed =
        session::sign_in(&demo.context(&core.http), &request, sink(events), &cancel).await?;
    Ok(keep(&sessions, signed, true).await)
}

/// Cancels the sign-in in progress, if any.
#[tauri::command]
#[specta::specta]
pub fn sign_in_cancel(sessions: State<'_, SessionState>) {
    sessions.control.cancel();
}

/// Resumes the last session from the OS keychain without a prompt.
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err)]
pub async fn resume_session(
    core: State<'_, Core>,
    sessions: State<'_, SessionState>,
    settings: State<'_, SettingsStore>,
) -> Result<ResumeOutcome, IpcError> {
    let Some(record) = settings.last_account() else {
        return Ok(ResumeOutcome::Nothing);
    };
    match session::resume(&core.context(), &record).await {
        Ok(session) => {
            let signed = SignedIn {
                session,
                notices: vec![],
            };
            Ok(ResumeOutcome::Resumed {
                result: Box::new(keep(&sessions, signed, false).await),
            })
        }
        Err(e) => Ok(ResumeOutcome::Failed {
            user_principal_name: record.user_principal_name,
            message: IpcError::from(e).to_string(),
        }),
    }
}

/// Signs out: forgets tokens in memory and deletes the saved sign-in from the keychain.
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err)]
pub async fn sign_out(
    core: State<'_, Core>,
    sessions: State<'_, SessionState>,
    setup: State<'_, SetupState>,
    settings: State<'_, SettingsStore>,
) -> Result<(), IpcError> {
    // A consent in the browser for this session ends with it.
    sessions.control.cancel();
    // The plan, a new secret and a SCIM token belong to the tenant signed out of.
    setup.clear().await;
    match sessions.inner.lock().await.take() {
        Some(active) if active.demo => active.session.tokens().clear().await,
        active => {
            if let Some(record) = settings.last_account() {
                session::sign_out(
                    &core.context(),
                    &record,
                    active.as_ref().map(|a| &a.session),
                )
                .await?;
                settings.set_last_account(None)?;
            }
        }
    }
    Ok(())
}
