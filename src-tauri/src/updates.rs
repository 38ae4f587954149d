//! Updates: a check at start (unless turned off in settings) against the release's `latest.json`;
//! a newer version is downloaded and its signature checked against the release key built into
//! the app (tauri-plugin-updater, minisign) before the admin is offered "Restart to update".
//! Nothing is installed until that click; a download whose signature does not match is thrown
//! away and the admin told so.

use std::sync::Mutex;

use serde::Serialize;
use tauri::{AppHandle, Manager, Runtime};
use tauri_plugin_updater::UpdaterExt;

/// How long the check and the download may take before they are given up (the next start tries
/// again).
const CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The largest update accepted: the installers are under 10 MB (docs/PERFORMANCE.md); a
/// download announced or found larger is discarded.
pub const MAX_UPDATE_BYTES: u64 = 64 * 1024 * 1024;

/// Release notes as the banner shows them: text from the update server, so control and
/// bidirectional characters are replaced and the length is capped.
fn notes_shown(notes: Option<&str>) -> Option<String> {
    notes
        .map(|n| {
            let p = entra_setup_core::redact::printable(n);
            match p.char_indices().nth(2000) {
                Some((cut, _)) => format!("{}…", &p[..cut]),
                None => p,
            }
        })
        .filter(|n| !n.trim().is_empty())
}

/// What the updater knows, for the banner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, specta::Type)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum UpdateStatus {
    /// Checking at start is turned off in settings.
    Off,
    /// No newer version (or no check made yet).
    UpToDate,
    /// A newer version is downloaded and its signature verified: restart to install it.
    #[serde(rename_all = "camelCase")]
    Ready {
        version: String,
        current_version: String,
        notes: Option<String>,
    },
    /// A newer version was announced but its download does not carry the release key's
    /// signature: it was discarded.
    #[serde(rename_all = "camelCase")]
    Refused { version: String, message: String },
    /// The update server could not be asked (offline, blocked by a proxy): nothing to show but
    /// a note in the log and under Advanced.
    #[serde(rename_all = "camelCase")]
    Unreachable { message: String },
}

/// The verified download waiting for the admin's click.
struct Pending {
    update: tauri_plugin_updater::Update,
    bytes: Vec<u8>,
}

/// The updater's state, managed by the app.
pub struct Updates {
    /// The plugin's updater, with the endpoints and release key of the app's configuration.
    updater: Result<tauri_plugin_updater::Updater, String>,
    /// For the restart after installing.
    env: tauri::Env,
    pending: Mutex<Option<Pending>>,
}

/// An update could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("no verified update is waiting; check for updates again")]
    NothingPending,
    #[error("the update could not be installed: {0}")]
    Install(String),
}

impl Updates {
    /// The updater as the app's configuration (`plugins.updater`) sets it up.
    pub fn new<R: Runtime>(app: &AppHandle<R>) -> Updates {
        Updates {
            updater: app
                .updater_builder()
                .timeout(CHECK_TIMEOUT)
                // Only ever forward: an older release, however well signed, is never offered
                // (it could bring back a fixed flaw).
                .version_comparator(|current, remote| remote.version > current)
                .build()
                .map_err(|e| e.to_string()),
            env: app.env(),
            pending: Mutex::new(None),
        }
    }

    /// Asks the configured endpoints for a newer version; downloads and verifies it. The
    /// verified bytes are kept for [`Updates::install`]; nothing is installed here.
    pub async fn check(&self) -> UpdateStatus {
        // Whatever this check finds replaces what an earlier one left waiting.
        if let Ok(mut p) = self.pending.lock() {
            *p = None;
        }
        let updater = match &self.updater {
            Ok(u) => u,
            Err(e) => {
                return UpdateStatus::Unreachable {
                    message: format!("the updater is not set up: {e}"),
                }
            }
        };
        let update = match updater.check().await {
            Ok(Some(u)) => u,
            Ok(None) => return UpdateStatus::UpToDate,
            Err(e) => {
                tracing::info!(error = %e, "update check failed");
                return UpdateStatus::Unreachable {
                    message: entra_setup_core::redact::echo(&e.to_string(), 300),
                };
            }
        };
        let version = update.version.clone();
        let announced = std::sync::atomic::AtomicU64::new(0);
        let downloaded = update
            .download(
                |_, total| {
                    if let Some(t) = total {
                        announced.store(t, std::sync::atomic::Ordering::Relaxed);
                    }
                },
                || {},
            )
            .await;
        let too_large = |n: u64| n > MAX_UPDATE_BYTES;
        let size = match &downloaded {
            Ok(b) => b.len() as u64,
            Err(_) => announced.load(std::sync::atomic::Ordering::Relaxed),
        };
        if too_large(size) || too_large(announced.load(std::sync::atomic::Ordering::Relaxed)) {
            tracing::warn!(%version, size, "update refused: too large");
            return UpdateStatus::Refused {
                message: format!(
                    "The download of version {version} is larger than {} MB, far more than an Entra Setup installer: it was discarded and nothing was installed.",
                    MAX_UPDATE_BYTES / (1024 * 1024)
                ),
                version,
            };
        }
        match downloaded {
            Ok(bytes) => {
                tracing::info!(%version, bytes = bytes.len(), "update downloaded; signature verified");
                let status = UpdateStatus::Ready {
                    version,
                    current_version: update.current_version.clone(),
                    notes: notes_shown(update.body.as_deref()),
                };
                if let Ok(mut p) = self.pending.lock() {
                    *p = Some(Pending { update, bytes });
                }
                status
            }
            Err(
                e @ (tauri_plugin_updater::Error::Minisign(_)
                | tauri_plugin_updater::Error::Base64(_)
                | tauri_plugin_updater::Error::SignatureUtf8(_)
                | tauri_plugin_updater::Error::SignedVersionMismatch { .. }),
            ) => {
                tracing::warn!(%version, error = %e, "update refused: bad signature");
                UpdateStatus::Refused {
                    message: format!(
                        "The download of version {version} does not carry Entra Setup's release signature, so it was discarded and nothing was installed. Someone may have altered it on the way; the release page has the genuine installer. ({})",
                        entra_setup_core::redact::echo(&e.to_string(), 200)
                    ),
                    version,
                }
            }
            Err(e) => UpdateStatus::Unreachable {
                message: format!(
                    "version {version} could not be downloaded: {}",
                    entra_setup_core::redact::echo(&e.to_string(), 300)
                ),
            },
        }
    }

    /// Installs the verified update (the plugin checks the signature once more) and restarts.
    /// On Windows the installer takes over and the app exits.
    pub fn install(&self) -> Result<(), InstallError> {
        let pending = self
            .pending
            .lock()
            .ok()
            .and_then(|mut p| p.take())
            .ok_or(InstallError::NothingPending)?;
        pending
            .update
            .install(&pending.bytes)
            .map_err(|e| InstallError::Install(e.to_string()))?;
        tracing::info!(version = %pending.update.version, "update installed; restarting");
        tauri::process::restart(&self.env)
    }
}
