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

/// The real OS keychain. Values too long for one credential (Windows) are kept in parts.
pub struct OsKeychain(Parts<OsEntries>);

/// One keychain entry per key, through `keyring`.
struct OsEntries {
    service: String,
}

impl OsKeychain {
    pub fn new() -> Self {
        Self::with_service(SERVICE)
    }

    /// A keychain namespace of its own (tests use one so they never touch real entries).
    pub fn with_service(service: &str) -> Self {
        Self(Parts::new(OsEntries {
            service: service.to_string(),
        }))
    }
}

impl SecretStore for OsKeychain {
    fn get(&self, key: &str) -> Result<Option<SecretString>, KeychainError> {
        self.0.get(key)
    }
    fn set(&self, key: &str, secret: &SecretString) -> Result<(), KeychainError> {
        self.0.set(key, secret)
    }
    fn delete(&self, key: &str) -> Result<(), KeychainError> {
        self.0.delete(key)
    }
    fn describe(&self) -> &'static str {
        "OS keychain"
    }
}

/// Windows Credential Manager holds at most 2,560 bytes per credential, and `keyring` stores a
/// password there as UTF-16 (1,280 characters); Entra refresh tokens are often longer. A
/// longer value goes into numbered parts (`key#part1`, …) written first, and the key itself
/// holds only how many there are, written last: a reader never finds the count without its
/// parts. Shorter values are stored as they are, as before.
pub struct Parts<S> {
    inner: S,
    /// The most UTF-16 code units one entry holds.
    limit: usize,
}

const PARTS_HEADER: &str = "entra-setup-parts:";

/// 2,560 bytes of UTF-16 with room to spare.
pub const PART_UNITS: usize = 1_200;

impl<S: SecretStore> Parts<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            limit: PART_UNITS,
        }
    }

    fn part_key(key: &str, n: usize) -> String {
        format!("{key}#part{n}")
    }

    /// How many parts a stored value announces, if it is a parts header.
    fn announced(head: &SecretString) -> Option<usize> {
        head.expose_secret()
            .strip_prefix(PARTS_HEADER)
            .and_then(|n| n.parse().ok())
    }

    /// How many parts the entry under `key` has (0: stored whole, or absent).
    fn count(&self, key: &str) -> Result<usize, KeychainError> {
        Ok(self
            .inner
            .get(key)?
            .as_ref()
            .and_then(Self::announced)
            .unwrap_or(0))
    }

    fn delete_parts(&self, key: &str, from: usize, to: usize) -> Result<(), KeychainError> {
        for n in from..=to {
            self.inner.delete(&Self::part_key(key, n))?;
        }
        Ok(())
    }
}

impl<S: SecretStore> SecretStore for Parts<S> {
    fn get(&self, key: &str) -> Result<Option<SecretString>, KeychainError> {
        let Some(head) = self.inner.get(key)? else {
            return Ok(None);
        };
        let Some(count) = Self::announced(&head) else {
            return Ok(Some(head));
        };
        let mut whole = String::new();
        for n in 1..=count {
            match self.inner.get(&Self::part_key(key, n))? {
                Some(p) => whole.push_str(p.expose_secret()),
                None => {
                    return Err(KeychainError::Failed(format!(
                        "part {n} of {count} of a saved sign-in is missing from the keychain; sign in again"
                    )))
                }
            }
        }
        Ok(Some(SecretString::from(whole)))
    }

    fn set(&self, key: &str, secret: &SecretString) -> Result<(), KeychainError> {
        let value = secret.expose_secret();
        let before = self.count(key)?;
        if value.encode_utf16().count() <= self.limit && !value.starts_with(PARTS_HEADER) {
            self.inner.set(key, secret)?;
            return self.delete_parts(key, 1, before);
        }
        let mut parts: Vec<String> = vec![String::new()];
        let mut units = 0;
        for c in value.chars() {
            if units + c.len_utf16() > self.limit {
                parts.push(String::new());
                units = 0;
            }
            units += c.len_utf16();
            if let Some(last) = parts.last_mut() {
                last.push(c);
            }
        }
        for (i, p) in parts.iter().enumerate() {
            self.inner
                .set(&Self::part_key(key, i + 1), &SecretString::from(p.clone()))?;
        }
        self.inner.set(
            key,
            &SecretString::from(format!("{PARTS_HEADER}{}", parts.len())),
        )?;
        self.delete_parts(key, parts.len() + 1, before)
    }

    fn delete(&self, key: &str) -> Result<(), KeychainError> {
        let count = self.count(key)?;
        self.inner.delete(key)?;
        self.delete_parts(key, 1, count)
    }

    fn describe(&self) -> &'static str {
        self.inner.describe()
    }
}

impl Default for OsKeychain {
    fn default() -> Self {
        Self::new()
    }
}

impl SecretStore for OsEntries {
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

    /// A store that refuses what Windows Credential Manager refuses: more than 2,560 bytes of
    /// UTF-16 in one credential (as `keyring` reports it: TooLong).
    #[derive(Default)]
    struct CredentialManagerLimits(MemoryStore);

    impl SecretStore for CredentialManagerLimits {
        fn get(&self, key: &str) -> Result<Option<SecretString>, KeychainError> {
            self.0.get(key)
        }
        fn set(&self, key: &str, secret: &SecretString) -> Result<(), KeychainError> {
            if secret.expose_secret().encode_utf16().count() * 2 > 2560 {
                return Err(KeychainError::Failed(
                    "TooLong: password encoded as UTF-16 is longer than platform limit of 2560"
                        .into(),
                ));
            }
            self.0.set(key, secret)
        }
        fn delete(&self, key: &str) -> Result<(), KeychainError> {
            self.0.delete(key)
        }
        fn describe(&self) -> &'static str {
            "limited"
        }
    }

    /// Item 11 of the hardening issue: a refresh token longer than one Windows credential is
    /// kept (in parts) and read back whole; replacing it with a short one or deleting it leaves
    /// no part behind.
    #[test]
    fn a_long_refresh_token_fits_a_store_with_windows_limits() {
        let token = format!("0.AXoA{}", "Ab9-_é".repeat(1500));
        let raw = CredentialManagerLimits::default();
        assert!(
            raw.set("k", &SecretString::from(token.clone())).is_err(),
            "the limit is enforced"
        );
        let store = Parts::new(CredentialManagerLimits::default());
        store.set("k", &SecretString::from(token.clone())).unwrap();
        assert_eq!(store.get("k").unwrap().unwrap().expose_secret(), token);
        let parts = store.count("k").unwrap();
        assert!(parts >= 8, "{parts}");
        // A shorter one, still in parts, then one that fits whole: no stale part stays.
        let shorter = "x".repeat(3000);
        store
            .set("k", &SecretString::from(shorter.clone()))
            .unwrap();
        assert_eq!(store.get("k").unwrap().unwrap().expose_secret(), shorter);
        assert!(store
            .inner
            .get(&Parts::<MemoryStore>::part_key("k", 4))
            .unwrap()
            .is_none());
        store.set("k", &SecretString::from("short")).unwrap();
        assert_eq!(store.get("k").unwrap().unwrap().expose_secret(), "short");
        assert!(store
            .inner
            .get(&Parts::<MemoryStore>::part_key("k", 1))
            .unwrap()
            .is_none());
        store.set("k", &SecretString::from(token.clone())).unwrap();
        store.delete("k").unwrap();
        assert!(store.get("k").unwrap().is_none());
        for n in 1..=parts {
            assert!(store
                .inner
                .get(&Parts::<MemoryStore>::part_key("k", n))
                .unwrap()
                .is_none());
        }
        // A part lost outside the wizard: a clear message, not half a token.
        store.set("k", &SecretString::from(token)).unwrap();
        store
            .inner
            .delete(&Parts::<MemoryStore>::part_key("k", 2))
            .unwrap();
        let e = store.get("k").unwrap_err().to_string();
        assert!(
            e.contains("part 2 of") && e.contains("sign in again"),
            "{e}"
        );
    }

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
