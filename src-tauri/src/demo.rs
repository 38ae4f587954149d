//! The built-in demo tenant: the simulator, started on first use, in this process.
//!
//! A build without the `demo` feature (on by default) leaves the simulator out: no demo users
//! are offered and nothing here can start. docs/PERFORMANCE.md says what it costs in bytes.

use std::sync::Arc;

use entra_setup_core::auth::FollowRedirects;
use entra_setup_core::keychain::MemoryStore;
use entra_setup_core::provider::Provider;
use entra_setup_core::session::Context;

use crate::error::IpcError;
pub use tenant::DemoUser;
use tenant::SimHandle;

/// The users the demo offers to sign in as (none in a build without the demo tenant).
pub fn users() -> Vec<DemoUser> {
    tenant::users()
}

#[derive(Default)]
pub struct Demo {
    sim: tokio::sync::Mutex<Option<SimHandle>>,
    store: Arc<MemoryStore>,
}

impl Demo {
    /// Starts the simulator if needed, set to sign in as `upn`; returns its base URL and the user.
    pub async fn prepare(&self, upn: &str) -> Result<(String, DemoUser), IpcError> {
        let user = users()
            .into_iter()
            .find(|u| u.upn == upn)
            .ok_or_else(|| IpcError::Invalid {
                field: "upn".into(),
                message: format!("'{upn}' is not one of the demo users."),
            })?;
        let mut sim = self.sim.lock().await;
        if sim.is_none() {
            let started = tenant::start().await.map_err(|e| IpcError::Internal {
                message: format!("the demo tenant could not start: {e}"),
            })?;
            *sim = Some(started);
        }
        let handle = sim.as_ref().ok_or(IpcError::Internal {
            message: "the demo tenant stopped".into(),
        })?;
        tenant::sign_in_as(handle, upn);
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

    /// The next sign-in or consent waits on the page for a decision nobody makes (a test of
    /// what the shell does meanwhile).
    #[cfg(test)]
    pub async fn hold_decisions(&self) -> Result<(), IpcError> {
        self.running()
            .await?
            .set_approval(entra_setup_sim::Approval::Interactive);
        Ok(())
    }

    async fn running(&self) -> Result<tokio::sync::MappedMutexGuard<'_, SimHandle>, IpcError> {
        tokio::sync::MutexGuard::try_map(self.sim.lock().await, Option::as_mut).map_err(|_| {
            IpcError::Internal {
                message: "the demo tenant is not running".into(),
            }
        })
    }

    /// The demo provider's SCIM endpoint and the fixed, public token its server accepts.
    pub async fn scim_endpoint(&self) -> Result<(String, &'static str), IpcError> {
        Ok(tenant::scim_endpoint(&*self.running().await?))
    }

    /// The demo's stand-in for a provider's API: the demo never pushes to a real provider.
    pub async fn provider_api(&self, provider: &Provider) -> Result<String, IpcError> {
        self.running()
            .await?
            .fake_provider_api(provider.id())
            .ok_or_else(|| IpcError::Blocked {
                message: format!(
                    "The demo tenant has no stand-in for {}'s API, so nothing was pushed. Push from a setup in your own tenant, or copy the settings.",
                    provider.name
                ),
            })
    }

    /// A simulated Global Administrator opens an admin-consent link.
    pub async fn colleague_consents(&self, url: &str) -> Result<String, IpcError> {
        self.running()
            .await?
            .consent_as_colleague(url)
            .await
            .map_err(|message| IpcError::Internal { message })
    }

    /// The demo's stand-in for a vendor's console: `upn` connects the vendor's apps to the
    /// tenant (a refusal, such as a role that cannot consent, comes back in words).
    pub async fn vendor_consents(
        &self,
        vendor: &str,
        tenant: &str,
        upn: &str,
    ) -> Result<(), IpcError> {
        self.running()
            .await?
            .consent_to_vendor(vendor, tenant, upn)
            .await
            .map(|_| ())
            .map_err(|page| {
                let said = page
                    .split("<p id=result>")
                    .nth(1)
                    .and_then(|r| r.split("</p>").next())
                    .unwrap_or("the demo has no stand-in for this vendor's console")
                    .to_string();
                IpcError::Blocked {
                    message: format!("The vendor's console did not connect: {said}"),
                }
            })
    }
}

/// The simulator, in the default build.
#[cfg(feature = "demo")]
mod tenant {
    use entra_setup_sim::{Approval, SimConfig};
    pub use entra_setup_sim::{DemoUser, SimHandle};

    pub fn users() -> Vec<DemoUser> {
        entra_setup_sim::demo_users()
    }

    pub async fn start() -> Result<SimHandle, String> {
        let config = SimConfig {
            device_interval_secs: 2,
            // The demo provider's SCIM server runs in this app, on this computer.
            local_scim_reachable: true,
            // Checked against Graph's schema where the checkout's copy is at hand (a debug
            // build, as the end-to-end test runs); an installed app has no copy.
            check_schema: cfg!(debug_assertions),
            // ENTRA_SETUP_DEMO_PORT pins the port (the end-to-end test turns faults on there).
            port: std::env::var("ENTRA_SETUP_DEMO_PORT")
                .ok()
                .and_then(|p| p.parse().ok())
                .unwrap_or(0),
            ..Default::default()
        };
        entra_setup_sim::start(config)
            .await
            .map_err(|e| e.to_string())
    }

    pub fn scim_endpoint(handle: &SimHandle) -> (String, &'static str) {
        (
            handle.fake_scim_url(),
            entra_setup_sim::scim_server::DEMO_SCIM_TOKEN,
        )
    }

    /// The next sign-in is `upn`'s, approved at once; consent links wait for a colleague.
    pub fn sign_in_as(handle: &SimHandle, upn: &str) {
        handle.set_consent_approver(None);
        handle.set_approval(Approval::Auto {
            upn: upn.to_string(),
            device_polls: 3,
        });
    }
}

/// A build without the demo tenant: no users to offer, and a simulator that cannot exist
/// (`SimHandle` has no values, so every path that needs a running demo reports it is not).
#[cfg(not(feature = "demo"))]
mod tenant {
    /// Never made (there are no demo users); the webview's bindings come from the default build.
    #[derive(Clone, Debug, serde::Serialize, specta::Type)]
    pub struct DemoUser {
        pub upn: String,
        pub tenant_domain: String,
    }

    pub enum SimHandle {}

    pub fn users() -> Vec<DemoUser> {
        Vec::new()
    }

    pub async fn start() -> Result<SimHandle, String> {
        Err("this build of Entra Setup was made without the demo tenant".into())
    }

    pub fn sign_in_as(handle: &SimHandle, _upn: &str) {
        match *handle {}
    }

    pub fn scim_endpoint(handle: &SimHandle) -> (String, &'static str) {
        match *handle {}
    }

    impl SimHandle {
        pub fn base_url(&self) -> &str {
            match *self {}
        }
        pub fn fake_provider_api(&self, _provider: &str) -> Option<String> {
            match *self {}
        }
        pub async fn consent_as_colleague(&self, _url: &str) -> Result<String, String> {
            match *self {}
        }
        pub async fn consent_to_vendor(
            &self,
            _vendor: &str,
            _tenant: &str,
            _upn: &str,
        ) -> Result<String, String> {
            match *self {}
        }
    }
}
