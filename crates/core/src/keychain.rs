//! Secrets at rest: the OS keychain (macOS Keychain, Windows Credential Manager, the Secret
//! Service on Linux) through `keyring`. Nothing secret is ever written anywhere else.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use secrecy::{ExposeSecret, SecretString};

/// The keychain service name every entry is stored under.
pub const SERVICE: &str = "entra-setup";

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum KeychainError {
    #[error("The OS keychain is not available ({0}). On Linux, the Secret Service (e.g. GNOME Keyring or KWallet) must be running and unlocked.")]
    Unavailable(String),
    #[error("The OS keychain refused the request: {0}")]
    Failed(String),
}

impl From<keyring::Error> for KeychainError {
    fn from(e: keyring::Error) -> Self {
        match e {
            keyring::Error::NoStorageAccess(inner) => Self::Unavailable(inner.to_string()),
            keyring::Error::PlatformFailure(inner) => Self::Unavailable(inner.to_string()),
            other => Self::Failed(other.to_string()),
        }
    }
}

/// A place to keep secrets by key. Implementations block; call them off the async executor
/// (see [`get`], [`set`], [`delete`]).
pub trait SecretStore: Send + Sync {
    fn get(&self, key: &str) -> Result<Option<SecretString>, KeychainError>;
    fn set(&self, key: &str, secret: &SecretString) -> Result<(), KeychainError>;
    fn delete(&self, key: &str) -> Result<(), KeychainError>;
    /// A short description for messages ("OS keychain", "memory").
    fn describe(&self) -> &'static str;
}

/// The real OS keychain.
#[derive(Debug, Clone)]
pub struct OsKeychain {
    service: String,
}

impl OsKeychain {
    pub fn new() -> Self {
        Self {
            service: SERVICE.to_string(),
        }
    }

    /// A keychain namespace of its own (tests use one so they never touch real entries).
    pub fn with_service(service: &str) -> Self {
        Self {
            service: service.to_string(),
        }
    }
}

impl Default for OsKeychain {
    fn default() -> Self {
        Self::new()
    }
}

impl SecretStore for OsKeychain {
    fn get(&self, key: &str) -> Result<Option<SecretString>, KeychainError> {
        let entry = keyring::Entry::new(&self.service, key)?;
        match entry.get_password() {
            Ok(p) => Ok(Some(SecretString::from(p))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn set(&self, key: &str, secret: &SecretString) -> Result<(), KeychainError> {
        let entry = keyring::Entry::new(&self.service, key)?;
        entry.set_password(secret.expose_secret())?;
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), KeychainError> {
        let entry = keyring::Entry::new(&self.service, key)?;
        match entry.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn describe(&self) -> &'static str {
        "OS keychain"
    }
}

/// Keeps secrets in memory for the life of the process (demo mode, unit tests).
#[derive(Default)]
pub struct MemoryStore {
    entries: Mutex<HashMap<String, SecretString>>,
}

impl SecretStore for MemoryStore {
    fn get(&self, key: &str) -> Result<Option<SecretString>, KeychainError> {
        let map = self
            .entries
            .lock()
            .map_err(|_| KeychainError::Failed("poisoned".into()))?;
        Ok(map.get(key).cloned())
    }
    fn set(&self, key: &str, secret: &SecretString) -> Result<(), KeychainError> {
        let mut map = self
            .entries
            .lock()
            .map_err(|_| KeychainError::Failed("poisoned".into()))?;
        map.insert(key.to_string(), secret.clone());
        Ok(())
    }
    fn delete(&self, key: &str) -> Result<(), KeychainError> {
        let mut map = self
            .entries
            .lock()
            .map_err(|_| KeychainError::Failed("poisoned".into()))?;
        map.remove(key);
        Ok(())
    }
    fn describe(&self) -> &'static str {
        "memory"
    }
}

/// A store that always fails, as a locked or missing keychain does.
pub struct UnavailableStore(pub String);

impl SecretStore for UnavailableStore {
    fn get(&self, _: &str) -> Result<Option<SecretString>, KeychainError> {
        Err(KeychainError::Unavailable(self.0.clone()))
    }
    fn set(&self, _: &str, _: &SecretString) -> Result<(), KeychainError> {
        Err(KeychainError::Unavailable(self.0.clone()))
    }
    fn delete(&self, _: &str) -> Result<(), KeychainError> {
        Err(KeychainError::Unavailable(self.0.clone()))
    }
    fn describe(&self) -> &'static str {
        "unavailable"
    }
}

fn joined<T>(
    r: Result<Result<T, KeychainError>, tokio::task::JoinError>,
) -> Result<T, KeychainError> {
    r.unwrap_or_else(|e| Err(KeychainError::Failed(format!("keychain task failed: {e}"))))
}

/// Reads a secret without blocking the async executor.
pub async fn get(
    store: &Arc<dyn SecretStore>,
    key: &str,
) -> Result<Option<SecretString>, KeychainError> {
    let (store, key) = (store.clone(), key.to_string());
    joined(tokio::task::spawn_blocking(move || store.get(&key)).await)
}

/// Writes a secret without blocking the async executor.
pub async fn set(
    store: &Arc<dyn SecretStore>,
    key: &str,
    secret: SecretString,
) -> Result<(), KeychainError> {
    let (store, key) = (store.clone(), key.to_string());
    joined(tokio::task::spawn_blocking(move || store.set(&key, &secret)).await)
}

/// Deletes a secret (a missing one is fine) without blocking the async executor.
pub async fn delete(store: &Arc<dyn SecretStore>, key: &str) -> Result<(), KeychainError> {
    let (store, key) = (store.clone(), key.to_string());
    joined(tokio::task::spawn_blocking(move || store.delete(&key)).await)
}

/// The keychain key of an admin's refresh token: cloud + tenant + user.
pub fn refresh_token_key(cloud_key: &str, tenant_id: &str, user_oid: &str) -> String {
    format!("refresh-token:{cloud_key}:{tenant_id}:{user_oid}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_store_round_trips_and_deletes() {
        let store: Arc<dyn SecretStore> = Arc::new(MemoryStore::default());
        set(&store, "k", SecretString::from("s3cret"))
            .await
            .unwrap();
        assert_eq!(
            get(&store, "k").await.unwrap().unwrap().expose_secret(),
            "s3cret"
        );
        delete(&store, "k").await.unwrap();
        assert!(get(&store, "k").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn unavailable_store_explains_itself() {
        let store: Arc<dyn SecretStore> = Arc::new(UnavailableStore("no D-Bus session".into()));
        let err = set(&store, "k", SecretString::from("x")).await.unwrap_err();
        assert!(
            err.to_string().contains("not available (no D-Bus session)"),
            "{err}"
        );
    }
}
