//! Small managed state types: no god object, no globals.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use entra_setup_core::auth::{Method, SignInEvent, StepScopes, SystemBrowser};
use entra_setup_core::keychain::{OsKeychain, SecretStore};
use entra_setup_core::session::{self, Context, Session};
use entra_setup_core::setup::apply::ApplyOptions;
use entra_setup_core::setup::flow::Prepared;
use entra_setup_core::setup::run::Run;
use entra_setup_core::setup::sync::ScimToken;
use tokio::sync::{MappedMutexGuard, MutexGuard};
use tokio_util::sync::CancellationToken;

use crate::demo::Demo;
use crate::error::IpcError;

/// Where the app keeps its files.
pub struct Paths {
    pub logs: PathBuf,
    /// Journals live here (shared with the CLI).
    pub data: PathBuf,
}

impl Paths {
    /// Where journals go: the demo tenant starts empty on every launch, so its journals live in
    /// a `demo` folder emptied at start-up, apart from real tenants' journals.
    pub fn journals(&self, demo: bool) -> PathBuf {
        if demo {
            self.data.join("demo")
        } else {
            self.data.clone()
        }
    }
}

/// The HTTP client and the OS keychain, shared by every command.
pub struct Core {
    pub http: reqwest::Client,
    pub keychain: Arc<dyn SecretStore>,
}

impl Core {
    pub fn new() -> Self {
        Self {
            http: entra_setup_core::http::client(),
            keychain: Arc::new(OsKeychain::new()),
        }
    }

    /// `ENTRA_SETUP_PUSH_API`: the provider API's base URL instead of its profile's, as the
    /// CLI's `--push-api` (a provider's regional or test endpoint). Checked as the CLI checks it.
    pub fn push_api(&self) -> Result<Option<String>, IpcError> {
        match std::env::var("ENTRA_SETUP_PUSH_API") {
            Ok(v) if !v.trim().is_empty() => {
                entra_setup_core::endpoint::parse(
                    &v,
                    entra_setup_core::endpoint::Http::Loopback,
                    false,
                )
                .map_err(|why| IpcError::Invalid {
                    field: "ENTRA_SETUP_PUSH_API".into(),
                    message: format!("ENTRA_SETUP_PUSH_API: {why}."),
                })?;
                Ok(Some(v))
            }
            _ => Ok(None),
        }
    }

    /// Real sign-in: the system browser and the OS keychain.
    pub fn context(&self) -> Context {
        Context::new(
            self.http.clone(),
            self.keychain.clone(),
            Arc::new(SystemBrowser),
        )
    }
}

impl Default for Core {
    fn default() -> Self {
        Self::new()
    }
}

/// The signed-in admin, if any.
#[derive(Default)]
pub struct SessionState {
    pub inner: tokio::sync::Mutex<Option<ActiveSession>>,
    /// The sign-in or consent in the browser in progress, so Cancel or Sign out can end it.
    pub control: SignInControl,
}

pub struct ActiveSession {
    pub session: Session,
    pub demo: bool,
}

/// The sign-in in progress, so it can be cancelled.
#[derive(Default)]
pub struct SignInControl {
    current: Mutex<Option<CancellationToken>>,
}

impl SignInControl {
    /// Starts a new sign-in, cancelling any earlier one still running.
    pub fn start(&self) -> CancellationToken {
        let token = CancellationToken::new();
        let mut cur = self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(old) = cur.replace(token.clone()) {
            old.cancel();
        }
        token
    }

    pub fn cancel(&self) {
        if let Some(t) = self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            t.cancel();
        }
    }
}

/// The setup in progress: the reviewed plan, then the run that applied it.
#[derive(Default)]
pub struct SetupState {
    pub prepared: tokio::sync::Mutex<Option<Prepared>>,
    pub run: tokio::sync::Mutex<Option<Run>>,
    /// The provider's SCIM token, held here and never sent to the webview.
    pub scim_token: tokio::sync::Mutex<Option<ScimToken>>,
    /// A certificate the admin picked in the file dialog to trust for the SCIM check.
    pub scim_cert: tokio::sync::Mutex<Option<Vec<u8>>>,
}

impl SetupState {
    /// Secrets this process still holds (so a re-plan does not treat them as lost).
    pub async fn held_secret_ids(&self) -> Vec<String> {
        self.run
            .lock()
            .await
            .as_ref()
            .and_then(|r| r.secret.as_ref().map(|s| s.key_id.clone()))
            .into_iter()
            .collect()
    }

    /// The reviewed plan, taken for applying.
    pub async fn take_prepared(&self) -> Result<Prepared, IpcError> {
        self.prepared.lock().await.take().ok_or(IpcError::Blocked {
            message: "Review the plan first.".into(),
        })
    }

    /// Forgets the setup in progress: its plan, the run (with a new secret not handed over)
    /// and the SCIM token (at sign-out: they belong to the tenant signed out of).
    pub async fn clear(&self) {
        *self.prepared.lock().await = None;
        *self.run.lock().await = None;
        *self.scim_token.lock().await = None;
        *self.scim_cert.lock().await = None;
    }

    /// Apply settings with the SCIM token this process holds, if any.
    pub async fn apply_options(&self) -> ApplyOptions {
        ApplyOptions {
            scim_token: self
                .scim_token
                .lock()
                .await
                .as_ref()
                .map(|t| t.value.clone()),
            ..Default::default()
        }
    }

    /// The applied run, for the steps after Apply.
    pub async fn run(&self) -> Result<MappedMutexGuard<'_, Run>, IpcError> {
        MutexGuard::try_map(self.run.lock().await, Option::as_mut).map_err(|_| IpcError::Blocked {
            message: "Apply the plan first.".into(),
        })
    }
}

impl SessionState {
    /// The signed-in admin's session, for the steps that need one.
    pub async fn active(&self) -> Result<MappedMutexGuard<'_, ActiveSession>, IpcError> {
        MutexGuard::try_map(self.inner.lock().await, Option::as_mut)
            .map_err(|_| IpcError::NotSignedIn)
    }
}

/// Streams a core function's progress events to the webview.
pub fn sink<T: tauri::ipc::IpcResponse + Send + Sync + 'static>(
    events: tauri::ipc::Channel<T>,
) -> Arc<dyn Fn(T) + Send + Sync> {
    Arc::new(move |e| {
        let _ = events.send(e);
    })
}

/// Asks the admin to consent to what a step needs if the session lacks it (in the browser,
/// progress through `events`). The session is not kept locked meanwhile, and Cancel (or a new
/// sign-in) ends the wait, as for a first sign-in.
pub async fn ensure_scopes(
    core: &Core,
    demo: &Demo,
    sessions: &SessionState,
    steps: &[StepScopes],
    events: tauri::ipc::Channel<SignInEvent>,
) -> Result<(), IpcError> {
    let (handle, is_demo) = {
        let active = sessions.active().await?;
        (active.session.consent_handle(), active.demo)
    };
    let ctx = sign_in_context(core, demo, is_demo);
    let cancel = sessions.control.start();
    session::ensure_consent(&ctx, &handle, steps, Method::Browser, sink(events), &cancel).await?;
    Ok(())
}

/// The sign-in context for the signed-in kind of tenant: the demo's or the real one.
pub fn sign_in_context(core: &Core, demo: &Demo, is_demo: bool) -> Context {
    if is_demo {
        demo.context(&core.http)
    } else {
        core.context()
    }
}

#[cfg(all(test, feature = "demo"))]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::time::Duration;

    use entra_setup_core::cloud::CloudChoice;
    use entra_setup_core::keychain::MemoryStore;
    use entra_setup_core::session::SignInRequest;

    use super::*;

    /// The shell's own session lock: while a consent waits in the browser, the session is
    /// free (Sign out, and every other step, can take it), and Cancel ends the wait at once.
    #[tokio::test]
    async fn a_consent_in_the_browser_holds_no_session_lock() {
        let core = Core {
            http: entra_setup_core::http::client(),
            keychain: Arc::new(MemoryStore::default()),
        };
        let demo = Demo::default();
        let (base, user) = demo.prepare("adele@contoso.com").await.unwrap();
        let request = SignInRequest {
            cloud: CloudChoice::Custom {
                authority: base.clone(),
                graph: base,
            },
            tenant: user.tenant_domain,
            method: Method::Browser,
            client_id: None,
        };
        let signed = session::sign_in(
            &demo.context(&core.http),
            &request,
            Arc::new(|_| {}),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
        let sessions = SessionState::default();
        *sessions.inner.lock().await = Some(ActiveSession {
            session: signed.session,
            demo: true,
        });
        demo.hold_decisions().await.unwrap();
        let channel = tauri::ipc::Channel::new(|_| Ok(()));
        let waiting = ensure_scopes(&core, &demo, &sessions, StepScopes::setup(true), channel);
        tokio::pin!(waiting);
        assert!(
            tokio::time::timeout(Duration::from_millis(500), &mut waiting)
                .await
                .is_err(),
            "the consent waits for the browser"
        );
        let taken = tokio::time::timeout(Duration::from_secs(1), sessions.inner.lock())
            .await
            .expect("the session is not locked while the consent waits")
            .take();
        assert!(taken.is_some());
        sessions.control.cancel();
        let ended = tokio::time::timeout(Duration::from_secs(2), waiting)
            .await
            .expect("Cancel ends the wait at once");
        assert!(matches!(ended, Err(IpcError::Cancelled)), "{ended:?}");
    }
}
