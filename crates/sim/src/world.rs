//! The simulator's mutable state: tenants, pending codes, issued refresh tokens, consents,
//! fault counters and the record of Graph exchanges.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::directory::Directory;
use crate::fixtures::{self, Tenant};
use crate::SimConfig;

/// One Graph request and its answer, as the simulator saw them.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Exchange {
    pub method: String,
    /// Path below the version root, with the query string (e.g. `/me?$select=id`).
    pub path: String,
    pub status: u16,
    pub client_request_id: Option<String>,
    pub request_id: String,
    pub request_body: Option<Value>,
    pub response_body: Option<Value>,
    /// When the request arrived, in milliseconds since the simulator started (its clock).
    #[serde(default)]
    pub at_ms: u64,
}

pub struct AuthCode {
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub scopes: BTreeSet<String>,
    pub tenant_id: String,
    pub user_id: String,
    pub nonce: Option<String>,
    pub expires: DateTime<Utc>,
}

#[derive(Clone)]
pub struct RefreshGrant {
    pub client_id: String,
    pub tenant_id: String,
    pub user_id: String,
}

pub enum DeviceState {
    Pending,
    Approved { tenant_id: String, user_id: String },
    Declined,
}

pub struct DeviceGrant {
    pub user_code: String,
    pub client_id: String,
    pub scopes: BTreeSet<String>,
    pub tenant_hint: Option<String>,
    pub expires: DateTime<Utc>,
    pub state: DeviceState,
    pub polls: u32,
    pub last_poll: Option<DateTime<Utc>>,
}

pub struct World {
    pub config: SimConfig,
    /// Where the simulator answers (vendor apps' redirect URIs point at its stand-in consoles).
    pub base_url: String,
    pub tenants: Vec<Tenant>,
    pub codes: HashMap<String, AuthCode>,
    pub refresh_tokens: HashMap<String, RefreshGrant>,
    pub device_codes: HashMap<String, DeviceGrant>,
    /// Delegated scopes consented per (tenant, client, user).
    pub consents: HashMap<(String, String, String), BTreeSet<String>>,
    pub exchanges: Vec<Exchange>,
    /// When the simulator started (for [`Exchange::at_ms`]).
    pub started: crate::directory::Instant,
    pub graph_requests: u64,
    /// Requests to the login endpoints (for `Faults::login_throttle_every`).
    pub login_requests: u64,
    pub not_found_served: HashMap<String, u32>,
    pub device_poll_times: Vec<DateTime<Utc>>,
    /// Each tenant's directory objects, by tenant id.
    pub directories: HashMap<String, Directory>,
    /// Identity providers pushed to the Cloudflare stand-in, each with the client secret it
    /// was given (kept apart, never returned).
    pub fake_cloudflare: Vec<(Value, String)>,
    /// Work the current Graph request leaves for after the lock is released.
    pub pending: Option<crate::provisioning::Pending>,
}

impl World {
    pub fn new(config: SimConfig, base_url: &str) -> Self {
        let tenants = fixtures::tenants();
        let directories = tenants
            .iter()
            .map(|t| {
                let mut d = Directory::new(&t.id, t.groups.clone(), t.policy.clone());
                d.add_bulk(t.bulk);
                (t.id.clone(), d)
            })
            .collect();
        Self {
            config,
            base_url: base_url.to_string(),
            directories,
            tenants,
            codes: HashMap::new(),
            refresh_tokens: HashMap::new(),
            device_codes: HashMap::new(),
            consents: HashMap::new(),
            exchanges: vec![],
            started: crate::directory::Instant::now(),
            graph_requests: 0,
            login_requests: 0,
            not_found_served: HashMap::new(),
            device_poll_times: vec![],
            fake_cloudflare: vec![],
            pending: None,
        }
    }

    /// The tenant a path segment names (GUID or verified domain); `None` for unknown tenants and
    /// for the multi-tenant aliases.
    pub fn tenant(&self, segment: &str) -> Option<&Tenant> {
        self.tenants.iter().find(|t| t.matches(segment))
    }

    /// An app registration of the tenant a path segment names, by appId: the apps the wizard
    /// creates sign users in too (the test sign-in).
    pub fn directory_app(
        &self,
        tenant_segment: &str,
        client_id: &str,
    ) -> Option<&serde_json::Value> {
        let t = self.tenant(tenant_segment)?;
        self.directories.get(&t.id)?.applications.iter().find(|a| {
            a["appId"]
                .as_str()
                .is_some_and(|id| id.eq_ignore_ascii_case(client_id))
        })
    }

    /// The directory of the tenant a path segment names.
    pub fn directory_of(&self, tenant_segment: &str) -> Option<&crate::directory::Directory> {
        self.directories.get(&self.tenant(tenant_segment)?.id)
    }

    pub fn tenant_by_id(&self, id: &str) -> Option<&Tenant> {
        self.tenants.iter().find(|t| t.id == id)
    }

    /// Finds the user by UPN within `tenant_segment` (or in any tenant for `organizations`).
    pub fn find_user(&self, tenant_segment: &str, upn: &str) -> Option<(&Tenant, &fixtures::User)> {
        let scoped: Vec<&Tenant> = match self.tenant(tenant_segment) {
            Some(t) => vec![t],
            None => self.tenants.iter().collect(),
        };
        scoped
            .into_iter()
            .find_map(|t| t.user_by_upn(upn).map(|u| (t, u)))
    }

    pub fn consent(
        &mut self,
        tenant_id: &str,
        client_id: &str,
        user_id: &str,
        scopes: &BTreeSet<String>,
    ) {
        let entry = self
            .consents
            .entry((
                tenant_id.to_string(),
                client_id.to_string(),
                user_id.to_string(),
            ))
            .or_default();
        entry.extend(scopes.iter().filter(|s| !is_oidc_scope(s)).cloned());
    }

    pub fn consented(&self, tenant_id: &str, client_id: &str, user_id: &str) -> BTreeSet<String> {
        self.consents
            .get(&(
                tenant_id.to_string(),
                client_id.to_string(),
                user_id.to_string(),
            ))
            .cloned()
            .unwrap_or_default()
    }

    pub fn decide_device(&mut self, user_code: &str, upn: Option<&str>) -> Result<(), String> {
        let now = Utc::now();
        let (device_code, hint) = self
            .device_codes
            .iter()
            .find(|(_, g)| g.user_code.eq_ignore_ascii_case(user_code))
            .map(|(k, g)| (k.clone(), g.tenant_hint.clone()))
            .ok_or_else(|| {
                format!(
                    "No pending sign-in uses the code {user_code}. Check the code and try again."
                )
            })?;
        let new_state = match upn {
            None => DeviceState::Declined,
            Some(upn) => {
                let (t, u) = self
                    .find_user(hint.as_deref().unwrap_or("organizations"), upn)
                    .ok_or_else(|| format!("{upn} is not a user of this tenant."))?;
                DeviceState::Approved {
                    tenant_id: t.id.clone(),
                    user_id: u.id.clone(),
                }
            }
        };
        let grant = self.device_codes.get_mut(&device_code).ok_or("gone")?;
        if grant.expires < now {
            return Err("This code has expired. Start the sign-in again on the device.".into());
        }
        grant.state = new_state;
        if let DeviceState::Approved { tenant_id, user_id } = &grant.state {
            let (tenant_id, user_id, client_id, scopes) = (
                tenant_id.clone(),
                user_id.clone(),
                grant.client_id.clone(),
                grant.scopes.clone(),
            );
            self.consent(&tenant_id, &client_id, &user_id, &scopes);
        }
        Ok(())
    }
}

pub fn is_oidc_scope(s: &str) -> bool {
    matches!(s, "openid" | "profile" | "offline_access" | "email")
}
