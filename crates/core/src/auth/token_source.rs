//! Hands out access tokens per scope set for the signed-in admin. Access tokens stay in memory;
//! the refresh token is rotated on every use and written back to the keychain.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use oauth2::{RefreshToken, Scope, TokenResponse, TokenUrl};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

use super::flow::{base_client, map_token_error};
use super::{AuthError, OIDC_SCOPES};
use crate::cloud::Cloud;
use crate::keychain::{self, KeychainError, SecretStore};

struct Cached {
    token: SecretString,
    expires_at: DateTime<Utc>,
}

/// Where a rotated refresh token is persisted.
pub struct Persist {
    pub store: Arc<dyn SecretStore>,
    pub key: String,
}

/// The signed-in admin's tokens.
pub struct TokenSource {
    http: reqwest::Client,
    cloud: Cloud,
    client_id: String,
    token_endpoint: String,
    refresh: Mutex<Option<SecretString>>,
    cache: Mutex<HashMap<String, Cached>>,
    persist: Option<Persist>,
    last_persist_error: std::sync::Mutex<Option<KeychainError>>,
}

fn cache_key(scopes: &[String]) -> String {
    let mut s: Vec<&str> = scopes.iter().map(String::as_str).collect();
    s.sort_unstable();
    s.join(" ")
}

impl TokenSource {
    pub fn new(
        http: reqwest::Client,
        cloud: Cloud,
        client_id: String,
        token_endpoint: String,
        refresh: Option<SecretString>,
        persist: Option<Persist>,
    ) -> Self {
        Self {
            http,
            cloud,
            client_id,
            token_endpoint,
            refresh: Mutex::new(refresh),
            cache: Mutex::new(HashMap::new()),
            persist,
            last_persist_error: std::sync::Mutex::new(None),
        }
    }

    /// Seeds the cache with the access token a sign-in returned for `scopes`.
    pub async fn seed(&self, scopes: &[String], token: SecretString, expires_at: DateTime<Utc>) {
        self.cache
            .lock()
            .await
            .insert(cache_key(scopes), Cached { token, expires_at });
    }

    /// Fully qualifies short Graph scope names for this cloud.
    pub fn qualify(&self, short: &[&str]) -> Vec<String> {
        short.iter().map(|s| self.cloud.graph_scope(s)).collect()
    }

    /// An access token for these Graph scopes (short names), from cache while it has more than two
    /// minutes to live, else by refresh.
    pub async fn access_token(&self, short_scopes: &[&str]) -> Result<SecretString, AuthError> {
        let scopes = self.qualify(short_scopes);
        {
            let cache = self.cache.lock().await;
            if let Some(c) = cache.get(&cache_key(&scopes)) {
                if c.expires_at - Utc::now() > chrono::Duration::minutes(2) {
                    return Ok(c.token.clone());
                }
            }
        }
        self.refresh(&scopes).await
    }

    /// Drops the cached token for these scopes and refreshes (after a 401 from Graph).
    pub async fn force_refresh(&self, short_scopes: &[&str]) -> Result<SecretString, AuthError> {
        let scopes = self.qualify(short_scopes);
        self.cache.lock().await.remove(&cache_key(&scopes));
        self.refresh(&scopes).await
    }

    async fn refresh(&self, scopes: &[String]) -> Result<SecretString, AuthError> {
        let mut refresh = self.refresh.lock().await;
        let Some(rt) = refresh.as_ref() else {
            return Err(AuthError::SessionExpired {
                reason: "there is no refresh token for this session".into(),
            });
        };
        let token_url = TokenUrl::new(self.token_endpoint.clone())
            .map_err(|e| AuthError::Protocol(e.to_string()))?;
        let client = base_client(&self.client_id).set_token_uri(token_url);
        let mut all: Vec<String> = scopes.to_vec();
        all.push(OIDC_SCOPES[2].to_string());
        let resp = client
            .exchange_refresh_token(&RefreshToken::new(rt.expose_secret().to_string()))
            .add_scopes(all.into_iter().map(Scope::new))
            .request_async(&crate::http::oauth_client(&self.http))
            .await
            .map_err(map_token_error)?;
        let token = SecretString::from(resp.access_token().secret().clone());
        let expires_at = Utc::now() + super::token_lifetime(resp.expires_in());
        if let Some(new_rt) = resp.refresh_token() {
            let new_rt = SecretString::from(new_rt.secret().clone());
            if let Some(p) = &self.persist {
                let result = keychain::set(&p.store, &p.key, new_rt.clone()).await;
                if let Ok(mut slot) = self.last_persist_error.lock() {
                    *slot = result.err();
                }
            }
            *refresh = Some(new_rt);
        }
        drop(refresh);
        self.cache.lock().await.insert(
            cache_key(scopes),
            Cached {
                token: token.clone(),
                expires_at,
            },
        );
        Ok(token)
    }

    /// The last keychain error while saving a rotated refresh token, if any.
    pub fn persist_error(&self) -> Option<KeychainError> {
        self.last_persist_error.lock().ok().and_then(|g| g.clone())
    }

    /// Replaces the refresh token after a new interactive sign-in (e.g. to consent to more
    /// scopes), and saves it like a rotated one.
    pub async fn replace_refresh_token(&self, rt: SecretString) {
        if let Some(p) = &self.persist {
            let result = keychain::set(&p.store, &p.key, rt.clone()).await;
            if let Ok(mut slot) = self.last_persist_error.lock() {
                *slot = result.err();
            }
        }
        *self.refresh.lock().await = Some(rt);
        self.cache.lock().await.clear();
    }

    /// Forgets every token held in memory.
    pub async fn clear(&self) {
        *self.refresh.lock().await = None;
        self.cache.lock().await.clear();
    }
}
