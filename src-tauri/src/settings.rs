//! The typed settings file (`settings.json` in the app's config directory). It holds choices and
//! the last account's non-secret facts; secrets live only in the OS keychain.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use entra_setup_core::auth::{Method, TenantRef};
use entra_setup_core::cloud::{Cloud, CloudChoice};
use entra_setup_core::session::AccountRecord;
use serde::{Deserialize, Serialize};

use crate::error::IpcError;

/// What the admin can change in settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
#[serde(default, rename_all = "camelCase")]
pub struct Settings {
    pub cloud: CloudChoice,
    /// Last tenant typed on the sign-in screen.
    pub tenant: String,
    pub method: Method,
    /// Overrides the public client used for sign-in.
    pub client_id: Option<String>,
    /// Ask the release server for a newer version when the app starts (on unless turned off).
    pub check_updates: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            cloud: CloudChoice::default(),
            tenant: String::new(),
            method: Method::default(),
            client_id: None,
            check_updates: true,
        }
    }
}

impl Settings {
    /// Checks every field and names the one to fix.
    pub fn validate(&self) -> Result<(), IpcError> {
        Cloud::from_choice(&self.cloud).map_err(|e| IpcError::Invalid {
            field: "cloud".into(),
            message: e.to_string(),
        })?;
        TenantRef::parse(&self.tenant).map_err(|e| IpcError::Invalid {
            field: "tenant".into(),
            message: e.to_string(),
        })?;
        if let Some(id) = self
            .client_id
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            if !entra_setup_core::auth::is_guid(id) {
                return Err(IpcError::Invalid {
                    field: "clientId".into(),
                    message: format!("'{id}' is not an Application (client) ID. It looks like 14d82eec-204b-4c2f-b7e8-296a70dab67e (8-4-4-4-12 hexadecimal digits). Leave it empty to use Microsoft Graph Command Line Tools."),
                });
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct File {
    settings: Settings,
    last_account: Option<AccountRecord>,
}

/// Settings, loaded once and written atomically on change.
pub struct SettingsStore {
    path: PathBuf,
    file: Mutex<File>,
}

impl SettingsStore {
    pub fn load(dir: &Path) -> Self {
        let path = dir.join("settings.json");
        let file = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| match serde_json::from_str::<File>(&t) {
                Ok(f) => Some(f),
                Err(e) => {
                    tracing::warn!(error = %e, path = %path.display(), "settings file unreadable; starting from defaults");
                    None
                }
            })
            .unwrap_or_default();
        Self {
            path,
            file: Mutex::new(file),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, File> {
        self.file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn settings(&self) -> Settings {
        self.lock().settings.clone()
    }

    pub fn last_account(&self) -> Option<AccountRecord> {
        self.lock().last_account.clone()
    }

    /// Validates, then saves. On error nothing changes, in memory or on disk.
    pub fn set_settings(&self, s: Settings) -> Result<Settings, IpcError> {
        s.validate()?;
        let mut f = self.lock();
        let mut next = f.clone();
        next.settings = s.clone();
        self.write(&next)?;
        *f = next;
        Ok(s)
    }

    pub fn set_last_account(&self, account: Option<AccountRecord>) -> Result<(), IpcError> {
        let mut f = self.lock();
        let mut next = f.clone();
        next.last_account = account;
        self.write(&next)?;
        *f = next;
        Ok(())
    }

    fn write(&self, f: &File) -> Result<(), IpcError> {
        let text = serde_json::to_string_pretty(f).map_err(|e| IpcError::Internal {
            message: e.to_string(),
        })?;
        let io = |e: std::io::Error| IpcError::Internal {
            message: format!("could not save settings to {}: {e}", self.path.display()),
        };
        entra_setup_core::files::write_atomic(&self.path, text.as_bytes(), true).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_client_id_names_the_field_and_changes_nothing() {
        let dir = std::env::temp_dir().join(format!("entra-setup-settings-{}", std::process::id()));
        let store = SettingsStore::load(&dir);
        let good = Settings {
            tenant: "contoso.com".into(),
            ..Default::default()
        };
        store.set_settings(good.clone()).unwrap();
        let bad = Settings {
            client_id: Some("14d82eec".into()),
            ..good.clone()
        };
        match store.set_settings(bad) {
            Err(IpcError::Invalid { field, message }) => {
                assert_eq!(field, "clientId");
                assert!(message.contains("8-4-4-4-12"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(SettingsStore::load(&dir).settings(), good);
        let _ = std::fs::remove_dir_all(dir);
    }
}
