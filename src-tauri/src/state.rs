//! Small managed state types: no god object, no globals.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use entra_setup_core::auth::{FollowRedirects, SystemBrowser};
use entra_setup_core::keychain::{MemoryStore, OsKeychain, SecretStore};
use entra_setup_core::session::{Context, Session};
use entra_setup_sim::{Approval, DemoUser, SimConfig, SimHandle};
use tokio_util::sync::CancellationToken;

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

/// The built-in demo tenant: the simulator, started on first use, in this process.
#[derive(Default)]
pub struct Demo {
    sim: tokio::sync::Mutex<Option<SimHandle>>,
    store: Arc<MemoryStore>,
}

impl Demo {
    /// Starts the simulator if needed, set to sign in as `upn`; returns its base URL and the user.
    pub async fn prepare(&self, upn: &str) -> Result<(String, DemoUser), IpcError> {
        let user = entra_setup_sim::demo_users()
            .into_iter()
            .find(|u| u.upn == upn)
            .ok_or_else(|| IpcError::Invalid {
                field: "upn".into(),
                message: format!("'{upn}' is not one of the demo users."),
            })?;
        let mut sim = self.sim.lock().await;
        if sim.is_none() {
            let config = SimConfig {
                device_interval_secs: 2,
                // The demo provider's SCIM server runs in this app, on this computer.
                local_scim_reachable: true,
                // ENTRA_SETUP_DEMO_PORT pins the port (the end-to-end test turns faults on there).
                port: std::env::var("ENTRA_SETUP_DEMO_PORT")
                    .ok()
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(0),
                ..Default::default()
            };
            let started = entra_setup_sim::start(config)
                .await
                .map_err(|e| IpcError::Internal {
                    message: format!("the demo tenant could not start: {e}"),
                })?;
            *sim = Some(started);
        }
        let handle = sim.as_ref().ok_or(IpcError::Internal {
            message: "the demo tenant stopped".into(),
        })?;
        handle.set_consent_approver(None);
        handle.set_approval(Approval::Auto {
            upn: upn.to_string(),
            device_polls: 3,
        });
        Ok((handle.base_url().to_string(), user))
    }

    /// Demo sign-in: the same flow, with the wizard following the simulator's redirect itself
    /// and tokens kept in memory (never in the OS keychain).
    pub fn context(&self, http: &reqwest::Client) -> Context {
        let mut ctx = Context::new(
            http.clone(),
            self.store.clone(),
            Arc::new(FollowRedirects::new(http.clone())),
        );
        ctx.redirect_host = "127.0.0.1".into();
        ctx
    }
}

impl Demo {
    /// The demo provider's SCIM endpoint.
    pub async fn fake_scim_url(&self) -> Result<String, IpcError> {
        let sim = self.sim.lock().await;
        sim.as_ref()
            .map(SimHandle::fake_scim_url)
            .ok_or(IpcError::Internal {
                message: "the demo tenant is not running".into(),
            })
    }

    /// The demo's stand-in for Cloudflare's API.
    pub async fn fake_cloudflare_api(&self) -> Result<String, IpcError> {
        let sim = self.sim.lock().await;
        sim.as_ref()
            .map(SimHandle::fake_cloudflare_api)
            .ok_or(IpcError::Internal {
                message: "the demo tenant is not running".into(),
            })
    }

    /// A simulated Global Administrator opens an admin-consent link.
    pub async fn colleague_consents(&self, url: &str) -> Result<String, IpcError> {
        let sim = self.sim.lock().await;
        let sim = sim.as_ref().ok_or(IpcError::Internal {
            message: "the demo tenant is not running".into(),
        })?;
        sim.consent_as_colleague(url)
            .await
            .map_err(|message| IpcError::Internal { message })
    }
}

/// The provider's SCIM token, held here and never sent to the webview.
pub struct ScimToken {
    pub value: entra_setup_core::SecretString,
    /// Also in the OS keychain.
    pub remembered: bool,
    /// Entered in this session (not yet saved in Entra).
    pub fresh: bool,
}

/// What the last apply produced: ids, and the new secret until it is handed over.
pub struct Applied {
    pub scim: Option<entra_setup_core::setup::apply::ScimApplied>,
    pub app_id: String,
    pub app_object_id: String,
    pub sp_id: Option<String>,
    pub secret: Option<entra_setup_core::setup::apply::NewSecret>,
    pub consent_url: Option<String>,
    pub handed_over: bool,
    /// The new secret went to the provider (copied, saved or pushed; the keychain alone is not).
    pub delivered: bool,
    /// The new secret signed in to Entra in a live test.
    pub secret_tested: bool,
    /// The new secret was kept in the OS keychain in this session.
    pub kept: bool,
    /// Old secrets retired after this run's rotation.
    pub retired: Vec<entra_setup_core::setup::secrets::SecretStatus>,
    pub prepared: entra_setup_core::setup::flow::Prepared,
}

/// The setup in progress: the reviewed plan, then the applied result.
#[derive(Default)]
pub struct SetupState {
    pub prepared: tokio::sync::Mutex<Option<entra_setup_core::setup::flow::Prepared>>,
    pub applied: tokio::sync::Mutex<Option<Applied>>,
    pub scim_token: tokio::sync::Mutex<Option<ScimToken>>,
}

impl SetupState {
    /// Secrets this process still holds (so a re-plan does not treat them as lost).
    pub async fn held_secret_ids(&self) -> Vec<String> {
        self.applied
            .lock()
            .await
            .as_ref()
            .and_then(|a| a.secret.as_ref().map(|s| s.key_id.clone()))
            .into_iter()
            .collect()
    }
}
