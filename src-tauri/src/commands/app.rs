//! App-wide commands: version and demo users, settings, links, readiness.

use crate::demo::DemoUser;
use serde::Serialize;
use tauri::State;
use tracing::instrument;

use crate::error::IpcError;
use crate::settings::{Settings, SettingsStore};
use crate::state::Paths;

#[derive(Debug, Serialize, specta::Type)]
#[serde(rename_all = "camelCase")]
pub struct AppInfo {
    pub version: String,
    pub default_client_id: String,
    pub demo_users: Vec<DemoUser>,
    pub log_dir: String,
    /// The proxy settings read from the environment (credentials hidden), shown under Advanced.
    pub network: entra_setup_core::http::Network,
}

/// Version, demo users and where the logs are.
#[tauri::command]
#[specta::specta]
pub fn app_info(paths: State<'_, Paths>) -> AppInfo {
    AppInfo {
        version: env!("CARGO_PKG_VERSION").into(),
        default_client_id: entra_setup_core::auth::DEFAULT_CLIENT_ID.into(),
        demo_users: crate::demo::users(),
        log_dir: paths.logs.display().to_string(),
        network: entra_setup_core::http::Network::from_env().shown(),
    }
}

#[tauri::command]
#[specta::specta]
pub fn settings_get(settings: State<'_, SettingsStore>) -> Settings {
    settings.settings()
}

/// Validates and saves settings. Errors: `Invalid` naming the field to fix.
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err)]
pub fn settings_set(
    settings: State<'_, SettingsStore>,
    value: Settings,
) -> Result<Settings, IpcError> {
    settings.set_settings(value)
}

/// Opens a Microsoft or provider page in the system browser: a built-in provider's pages, or
/// those of `provider_id`, the provider on screen (a custom profile's pages count only then).
/// Errors: `Invalid` for any other URL.
#[tauri::command]
#[specta::specta]
#[instrument(err)]
pub async fn open_link(url: String, provider_id: Option<String>) -> Result<(), IpcError> {
    let shown = provider_id
        .and_then(|id| entra_setup_core::provider::find(&id))
        .map(|p| p.page_hosts())
        .unwrap_or_default();
    let url = entra_setup_core::links::check_external_link(&url, &shown).map_err(|message| {
        IpcError::Invalid {
            field: "url".into(),
            message: message.to_string(),
        }
    })?;
    let opener = entra_setup_core::auth::SystemBrowser;
    entra_setup_core::auth::BrowserOpener::open(&opener, url.to_string())
        .await
        .map_err(IpcError::from)
}

/// The UI has painted its first screen. With `ENTRA_SETUP_BENCH` set, prints a marker the
/// start-up benchmark waits for.
#[tauri::command]
#[specta::specta]
pub fn ui_ready() {
    tracing::info!("first paint");
    if std::env::var_os("ENTRA_SETUP_BENCH").is_some() {
        use std::io::Write;
        let mut out = std::io::stdout();
        let _ = writeln!(out, "ENTRA_SETUP_READY");
        let _ = out.flush();
    }
}

/// The start-of-session update check: off when settings say so; otherwise asks the release
/// server, and downloads and verifies a newer version (nothing is installed).
#[tauri::command]
#[specta::specta]
#[instrument(skip_all)]
pub async fn check_for_update(
    settings: State<'_, SettingsStore>,
    updates: State<'_, crate::updates::Updates>,
) -> Result<crate::updates::UpdateStatus, IpcError> {
    if !settings.settings().check_updates {
        return Ok(crate::updates::UpdateStatus::Off);
    }
    Ok(updates.check().await)
}

/// "Restart to update": installs the verified download (its signature checked again) and
/// restarts. Errors: `Internal` when nothing verified is waiting or the install failed.
#[tauri::command]
#[specta::specta]
#[instrument(skip_all, err)]
pub fn restart_to_update(updates: State<'_, crate::updates::Updates>) -> Result<(), IpcError> {
    updates.install().map_err(|e| IpcError::Internal {
        message: e.to_string(),
    })
}
