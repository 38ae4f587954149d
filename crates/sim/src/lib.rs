//! A simulated Microsoft Entra tenant for tests and the wizard's demo mode.
//!
//! One HTTP server plays three parts, each shaped after Microsoft's documented wire format:
//! - the login endpoints (`/{tenant}/v2.0/.well-known/openid-configuration`, JWKS, authorize with
//!   PKCE, token for auth code / refresh / device code, devicecode), issuing RS256 tokens with
//!   `tid`, `oid`, `scp` and `wids`;
//! - a Microsoft Graph v1.0 subset under `/v1.0`, with Graph's error shape and `request-id`,
//!   scope enforcement (403 `Authorization_RequestDenied`) and `$select`;
//! - fault knobs (latency, 429 + Retry-After, 503, replication-delay 404s) that tests and the
//!   `/_sim/faults` endpoint can turn on.
//!
//! Every Graph exchange is recorded so tests can check request and response bodies against
//! Microsoft's own CSDL schema.

mod directory;
mod fake_cloudflare;
mod fixtures;
mod graph;
mod graph_dir;
mod login;
mod provisioning;
pub mod saml;
mod schema_rules;
pub mod scim_server;
mod tokens;
pub mod vendors;
mod world;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

pub use fixtures::{
    DemoUser, FixtureTenant, ROLE_APP_ADMIN, ROLE_APP_DEVELOPER, ROLE_CLOUD_APP_ADMIN,
    ROLE_GLOBAL_ADMIN, ROLE_PRIVILEGED_ROLE_ADMIN,
};
pub use provisioning::{NON_GALLERY_TEMPLATE, USER_ROLE};
pub use world::Exchange;

/// The Microsoft Graph Command Line Tools client id, which the wizard signs in with by default.
pub const GRAPH_CLI_CLIENT_ID: &str = "14d82eec-204b-4c2f-b7e8-296a70dab67e";

/// Faults the simulator injects into Graph (and, for latency, login) responses.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct Faults {
    /// Added to every response.
    pub latency_ms: u64,
    /// Every Nth Graph request answers 429 Too Many Requests.
    pub throttle_every: u32,
    /// The Retry-After seconds sent with a 429 (and with 503s).
    pub retry_after_secs: u32,
    /// Every Nth Graph request answers 503 Service Unavailable.
    pub unavailable_every: u32,
    /// Graph requests whose path starts with this prefix answer 404 `Request_ResourceNotFound`
    /// the first `count` times, as a newly created object does while it replicates.
    pub not_found_first: Vec<NotFoundFault>,
    /// Lifetime of issued access tokens (0 = the default hour).
    pub access_token_lifetime_secs: u64,
    /// The browser's consent screen is answered with "Cancel" (access_denied / AADSTS65004).
    pub deny_consent: bool,
    /// The next device-code poll is answered with `slow_down`.
    pub device_slow_down_once: bool,
    /// The next N Graph requests answer 401 `InvalidAuthenticationToken` (a revoked access token).
    pub unauthorized_next: u32,
    /// Objects the simulator creates (applications, service principals, delegated grants,
    /// app-role assignments, synchronization jobs, and new credentials on an application) stay
    /// invisible for this many milliseconds after they were made, by the clock: reads by id or
    /// key answer 404 (or the documented 400s when another object refers to them) and lists
    /// leave them out, as Entra's replication does (reference §12: seconds to a few minutes).
    /// Writes still see them (a second create conflicts).
    pub replication_ms: u64,
    /// A new client secret is refused (AADSTS7000215) at the token endpoint for this many
    /// milliseconds after addPassword.
    pub secret_lag_ms: u64,
    /// A new application is unknown to the token endpoint (AADSTS700016) for this many
    /// milliseconds after it was made.
    pub token_app_lag_ms: u64,
    /// A newly granted application permission is missing from app-only tokens issued within
    /// this many milliseconds of the grant, so a Graph call with such a token answers 403.
    pub token_role_lag_ms: u64,
    /// Every Nth request to the login endpoints (the OpenID metadata, its signing keys, and the
    /// token endpoint for every grant) answers 429 with Retry-After.
    pub login_throttle_every: u32,
    /// Writes Entra applies but whose answer is lost: the change is made, the caller gets 504.
    pub lose_responses: Vec<LostResponse>,
    /// After removePassword, the removed secret still gets tokens for this many milliseconds.
    pub removed_secret_lag_ms: u64,
    /// A redirect URI or Reply URL added to an application is refused by the login endpoints
    /// (AADSTS50011 / AADSTS500113) for this many milliseconds after it was added.
    pub redirect_uri_lag_ms: u64,
    /// The tenant's app-management policy blocks new client secrets (passwordAddition).
    pub block_password_addition: bool,
    /// Graph requests whose path starts with this prefix fail with 500 (a broken network path);
    /// empty for none.
    pub fail_path_prefix: String,
    /// The next instantiate creates the app but answers 404, as Graph sometimes does (§8a).
    pub instantiate_not_found_once: bool,
    /// The tenant enforces secure identifier URIs (Entra's default for new apps since 2025):
    /// an https identifier URI is refused unless the app's service principal is in SAML mode
    /// (reference §8b).
    pub identifier_uri_policy: bool,
    /// A vendor's service principal, made by an admin's consent, stays invisible to reads for
    /// this many milliseconds (it replicates from the consent service like any new object).
    pub vendor_app_late_ms: u64,
    /// `@odata.nextLink`s name this root instead of the simulator's own (a misrouted or hostile
    /// answer sending the next page, and the token with it, to another host); empty for none.
    pub next_link_base: String,
    /// Gallery apps come without their synchronization template (a template Microsoft has
    /// withdrawn, or one not yet provisioned): `synchronization/templates` answers an empty list.
    pub gallery_sync_template_missing: bool,
    /// Gallery apps offer two synchronization templates (the gallery's own and a second one).
    pub gallery_sync_templates_several: bool,
    /// A provisioning cycle begins this many milliseconds after the job is started (Entra's
    /// first cycle takes minutes: reference §10.4).
    pub initial_cycle_ms: u64,
}

impl Faults {
    /// What a busy real tenant does, all at once: latency, throttling with Retry-After, 503s,
    /// replication delays on every new object (reads and lists), slow secrets and roles at the
    /// token endpoint, throttled live tests, a removed secret that keeps working a little
    /// longer, and the first answer to each non-idempotent create lost after it was applied.
    pub fn realistic() -> Self {
        let lose = |method: &str, path_suffix: &str| LostResponse {
            method: method.into(),
            path_suffix: path_suffix.into(),
            count: 1,
        };
        Self {
            latency_ms: 5,
            throttle_every: 11,
            retry_after_secs: 1,
            unavailable_every: 17,
            replication_ms: 1000,
            secret_lag_ms: 2000,
            token_app_lag_ms: 1000,
            token_role_lag_ms: 1000,
            login_throttle_every: 4,
            removed_secret_lag_ms: 1000,
            redirect_uri_lag_ms: 1000,
            lose_responses: vec![
                lose("POST", "/addPassword"),
                lose("POST", "/instantiate"),
                lose("POST", "/synchronization/jobs"),
                lose("POST", "/oauth2PermissionGrants"),
                lose("POST", "/appRoleAssignedTo"),
                lose("POST", "/servicePrincipals"),
                lose("POST", "/addTokenSigningCertificate"),
            ],
            identifier_uri_policy: true,
            vendor_app_late_ms: 1500,
            ..Default::default()
        }
    }
}

/// See [`Faults::lose_responses`]: the next `count` requests with this method whose path ends
/// with `path_suffix` are carried out, then answered 504 GatewayTimeout.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct LostResponse {
    pub method: String,
    pub path_suffix: String,
    pub count: u32,
}

/// See [`Faults::not_found_first`].
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct NotFoundFault {
    pub path_prefix: String,
    pub count: u32,
}

/// How the simulator answers the browser part of sign-in.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum Approval {
    /// Show an HTML page where a person picks the user and accepts or cancels.
    #[default]
    Interactive,
    /// Sign in as this user (UPN) at once, without a page; device codes are approved after
    /// `device_polls` polls.
    Auto { upn: String, device_polls: u32 },
}

/// Simulator settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SimConfig {
    /// 0 picks a free port.
    pub port: u16,
    pub faults: Faults,
    pub approval: Approval,
    /// Seconds a device code lives (Microsoft: 900).
    pub device_code_lifetime_secs: u64,
    /// Device-code poll interval in seconds (Microsoft: 5).
    pub device_interval_secs: u64,
    /// Client ids the tenant accepts as public clients.
    pub public_clients: Vec<String>,
    /// Who approves admin-consent links (`/adminconsent`) without a page, if anyone: a colleague
    /// with Privileged Role Administrator or Global Administrator.
    pub consent_approver: Option<String>,
    /// Whether "Entra's" provisioning service can reach SCIM endpoints on this computer
    /// (loopback and private addresses). The real one runs in Microsoft's cloud and cannot, so
    /// this is off unless a test or the demo puts the provider's SCIM server here.
    pub local_scim_reachable: bool,
    /// Whether each Graph request is checked against Microsoft's Graph v1.0 schema when it
    /// arrives, as Graph does (`schema_rules`). On by default; the schema is read from the
    /// checkout, so an installed app's demo tenant turns it off.
    pub check_schema: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            port: 0,
            faults: Faults::default(),
            approval: Approval::Interactive,
            device_code_lifetime_secs: 900,
            device_interval_secs: 5,
            public_clients: vec![GRAPH_CLI_CLIENT_ID.to_string()],
            consent_approver: None,
            local_scim_reachable: false,
            check_schema: true,
        }
    }
}

pub(crate) struct Shared {
    pub base_url: String,
    /// Microsoft's Graph v1.0 schema, when requests are checked against it.
    pub schema: Option<&'static graph_csdl::Schema>,
    /// The provider's SCIM endpoint in demo mode (`/_fake/scim/v2`).
    pub scim: scim_server::ScimService,
    pub world: Mutex<world::World>,
    pub keys: tokens::Keys,
}

impl Shared {
    pub(crate) fn world(&self) -> MutexGuard<'_, world::World> {
        // A panic while holding the lock only happens on a simulator bug; keep serving.
        self.world
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A running simulator. Dropping it stops the server.
pub struct SimHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl SimHandle {
    /// `http://127.0.0.1:{port}`: both the login authority and the Graph root.
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    /// Whether Graph requests are checked against Microsoft's schema as they arrive.
    pub fn checks_schema(&self) -> bool {
        self.shared.schema.is_some()
    }

    /// Every recorded Graph exchange checked after the fact against Microsoft's Graph v1.0
    /// schema: each request body, each successful answer's body, and each error's shape (Graph's
    /// `{"error": {"code", "message", "innerError": {"request-id"}}}`). Empty when all is well.
    ///
    /// # Panics
    /// When the vendored schema cannot be read: a broken checkout.
    pub fn schema_violations(&self) -> Vec<String> {
        let schema = graph_csdl::graph_v1();
        let mut violations = vec![];
        for x in &self.exchanges() {
            if let Some(body) = &x.request_body {
                violations.extend(schema.check_request(&x.method, &x.path, body));
            }
            let Some(body) = &x.response_body else {
                continue;
            };
            if (200..300).contains(&x.status) {
                violations.extend(schema.check_response(&x.method, &x.path, body));
            } else {
                let e = &body["error"];
                if !(e["code"].is_string()
                    && e["message"].is_string()
                    && e["innerError"]["request-id"].is_string())
                {
                    violations.push(format!(
                        "{} {}: error body is not Graph's error shape: {body}",
                        x.method, x.path
                    ));
                }
            }
        }
        violations
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the fault settings.
    pub fn set_faults(&self, faults: Faults) {
        self.shared.world().config.faults = faults;
    }

    pub fn faults(&self) -> Faults {
        self.shared.world().config.faults.clone()
    }

    /// Lets (or stops) the provisioning service reach SCIM endpoints on this computer.
    pub fn set_local_scim_reachable(&self, reachable: bool) {
        self.shared.world().config.local_scim_reachable = reachable;
    }

    pub fn set_consent_approver(&self, upn: Option<&str>) {
        self.shared.world().config.consent_approver = upn.map(str::to_string);
    }

    /// A snapshot of a tenant's directory objects, as Graph JSON, for assertions.
    pub fn directory(&self, tenant_id: &str) -> Option<DirectorySnapshot> {
        let world = self.shared.world();
        let d = world.directories.get(tenant_id)?;
        Some(DirectorySnapshot {
            applications: d.applications.clone(),
            service_principals: d.service_principals.clone(),
            grants: d.grants.clone(),
            assignments: d.assignments.clone(),
            signing_keys: d.signing_keys.clone(),
        })
    }

    pub fn set_approval(&self, approval: Approval) {
        self.shared.world().config.approval = approval;
    }

    /// Every Graph exchange so far, oldest first.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.shared.world().exchanges.clone()
    }

    pub fn clear_exchanges(&self) {
        self.shared.world().exchanges.clear();
    }

    /// Approves a pending device code as the user with this UPN (what a person does at /devicelogin).
    pub fn approve_device_code(&self, user_code: &str, upn: &str) -> Result<(), String> {
        self.shared.world().decide_device(user_code, Some(upn))
    }

    /// Declines a pending device code.
    pub fn decline_device_code(&self, user_code: &str) -> Result<(), String> {
        self.shared.world().decide_device(user_code, None)
    }

    /// The fixture tenants this simulator serves.
    pub fn tenants(&self) -> Vec<FixtureTenant> {
        self.shared
            .world()
            .tenants
            .iter()
            .map(fixtures::Tenant::summary)
            .collect()
    }

    /// Revokes every refresh token the simulator issued (as an admin revoking sessions would).
    pub fn revoke_refresh_tokens(&self) {
        self.shared.world().refresh_tokens.clear();
    }

    /// When each device-code poll reached the token endpoint.
    pub fn device_poll_times(&self) -> Vec<chrono::DateTime<chrono::Utc>> {
        self.shared.world().device_poll_times.clone()
    }

    /// Adds a client secret to an app the way someone else would (the portal, a pipeline):
    /// returns its key id, or None when there is no such app.
    pub fn add_password(
        &self,
        tenant_id: &str,
        unique_name: &str,
        display_name: &str,
    ) -> Option<String> {
        let mut world = self.shared.world();
        let d = world.directories.get_mut(tenant_id)?;
        let i = d
            .applications
            .iter()
            .position(|a| a["uniqueName"] == unique_name)?;
        let now = chrono::Utc::now();
        let (cred, _) = d.add_password(
            i,
            serde_json::json!(display_name),
            now,
            now + chrono::Duration::days(365),
            0,
        );
        cred["keyId"].as_str().map(str::to_string)
    }

    /// Registers an app the way a member of the tenant would in the portal (by default any
    /// member may): `app` is the application's JSON (uniqueName, tags, web.redirectUris, …),
    /// the member becomes its owner, and it gets a service principal. Returns the app's object
    /// id and appId, or None when the tenant or the user does not exist.
    pub fn register_app_as(
        &self,
        tenant_id: &str,
        owner_upn: &str,
        app: serde_json::Value,
    ) -> Option<(String, String)> {
        let mut world = self.shared.world();
        let owner = world
            .tenants
            .iter()
            .find(|t| t.id == tenant_id)?
            .user_by_upn(owner_upn)?
            .id
            .clone();
        let d = world.directories.get_mut(tenant_id)?;
        let id = uuid::Uuid::new_v4().to_string();
        let app_id = uuid::Uuid::new_v4().to_string();
        let mut v = serde_json::json!({
            "id": id, "appId": app_id, "displayName": "App",
            "createdDateTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "signInAudience": "AzureADMyOrg", "tags": [], "identifierUris": [],
            "passwordCredentials": [], "keyCredentials": [], "requiredResourceAccess": [],
            "appRoles": [], "addIns": [], "notes": null,
            "web": {"redirectUris": [], "implicitGrantSettings": {"enableAccessTokenIssuance": false, "enableIdTokenIssuance": false}},
        });
        if let (Some(o), Some(extra)) = (v.as_object_mut(), app.as_object()) {
            for (k, x) in extra {
                o.insert(k.clone(), x.clone());
            }
        }
        let name = v["displayName"].as_str().unwrap_or_default().to_string();
        d.applications.push(v);
        d.owners.insert(id.clone(), vec![owner.clone()]);
        let sp = uuid::Uuid::new_v4().to_string();
        d.service_principals
            .push(directory::sp_json_for(&sp, &app_id, &name));
        d.owners.insert(sp, vec![owner]);
        Some((id, app_id))
    }

    /// Adds to the tenant a service principal of another organisation's multi-tenant app
    /// under `display_name` — anyone's app can carry a vendor's name. Returns its id.
    pub fn add_lookalike_service_principal(
        &self,
        tenant_id: &str,
        display_name: &str,
        owner_tenant: &str,
    ) -> Option<String> {
        let mut world = self.shared.world();
        let d = world.directories.get_mut(tenant_id)?;
        let id = uuid::Uuid::new_v4().to_string();
        let mut sp = directory::sp_json_for(&id, &uuid::Uuid::new_v4().to_string(), display_name);
        sp["appOwnerOrganizationId"] = serde_json::json!(owner_tenant);
        d.service_principals.push(sp);
        Some(id)
    }

    /// Adds a federated identity credential (another identity provider's tokens accepted as
    /// the app's, e.g. a CI pipeline's) to the app with this object id.
    pub fn add_federated_credential(
        &self,
        tenant_id: &str,
        object_id: &str,
        issuer: &str,
        subject: &str,
    ) -> Option<String> {
        let mut world = self.shared.world();
        let d = world.directories.get_mut(tenant_id)?;
        let id = uuid::Uuid::new_v4().to_string();
        d.federated
            .entry(object_id.to_string())
            .or_default()
            .push(serde_json::json!({
                "id": id, "name": "pipeline", "issuer": issuer, "subject": subject,
                "audiences": ["api://AzureADTokenExchange"],
            }));
        Some(id)
    }

    /// The owners (user object ids) of an application or service principal.
    pub fn owners(&self, tenant_id: &str, object_id: &str) -> Vec<String> {
        let world = self.shared.world();
        world
            .directories
            .get(tenant_id)
            .and_then(|d| d.owners.get(object_id).cloned())
            .unwrap_or_default()
    }

    /// Moves a client secret's end date (to show a re-run a secret about to expire).
    pub fn set_password_end(
        &self,
        tenant_id: &str,
        key_id: &str,
        end: chrono::DateTime<chrono::Utc>,
    ) -> bool {
        let mut world = self.shared.world();
        let Some(d) = world.directories.get_mut(tenant_id) else {
            return false;
        };
        let mut found = false;
        for app in &mut d.applications {
            if let Some(creds) = app["passwordCredentials"].as_array_mut() {
                for c in creds.iter_mut().filter(|c| c["keyId"] == key_id) {
                    c["endDateTime"] =
                        serde_json::json!(end.format("%Y-%m-%dT%H:%M:%SZ").to_string());
                    found = true;
                }
            }
        }
        for s in d.secrets.iter_mut().filter(|s| s.key_id == key_id) {
            s.end = end;
        }
        found
    }

    /// The base URL of the simulator's stand-in for Cloudflare's API.
    pub fn fake_cloudflare_api(&self) -> String {
        format!("{}/_fake/cloudflare/client/v4", self.shared.base_url)
    }

    /// The stand-in for a provider's API that the demo pushes to, by provider id (the demo
    /// never reaches a real provider).
    pub fn fake_provider_api(&self, provider_id: &str) -> Option<String> {
        match provider_id {
            "cloudflare" => Some(self.fake_cloudflare_api()),
            _ => None,
        }
    }

    /// The demo SCIM endpoint (a provider's SCIM base URL); its token is
    /// [`scim_server::DEMO_SCIM_TOKEN`].
    pub fn fake_scim_url(&self) -> String {
        format!("{}/_fake/scim/v2", self.shared.base_url)
    }

    /// The demo SCIM endpoint's state: what Entra provisioned to it, its faults and token.
    pub fn fake_scim(&self) -> scim_server::ScimService {
        self.shared.scim.clone()
    }

    /// Identity providers pushed to the Cloudflare stand-in (secrets removed).
    pub fn fake_cloudflare_idps(&self) -> Vec<serde_json::Value> {
        self.shared
            .world()
            .fake_cloudflare
            .iter()
            .map(|(v, _)| v.clone())
            .collect()
    }

    /// Has a Global Administrator open an admin-consent link (what a colleague does), without
    /// following the redirect to the provider. Returns where Entra sends the browser.
    pub async fn consent_as_colleague(&self, url: &str) -> Result<String, String> {
        let tenant = url.split('/').nth(3).unwrap_or_default().to_string();
        let approver = {
            let world = self.shared.world();
            let t = world.tenant(&tenant).ok_or("unknown tenant")?;
            t.users
                .iter()
                .find(|u| u.active_roles.contains(&fixtures::ROLE_GLOBAL_ADMIN))
                .map(|u| u.upn.clone())
                .ok_or("no Global Administrator in this tenant")?
        };
        let previous = self
            .shared
            .world()
            .config
            .consent_approver
            .replace(approver);
        let r = reqwest_get_location(url).await;
        self.shared.world().config.consent_approver = previous;
        r
    }

    /// The stand-in console of a vendor (`twingate`, `firezone`): opening it sends the browser
    /// to Entra's admin consent for each of the vendor's apps in turn, as the vendor's real
    /// console does when an admin connects Entra.
    pub fn vendor_console_url(&self, vendor: &str, tenant: &str) -> String {
        format!(
            "{}/_vendor/{vendor}/console?tenant={tenant}",
            self.shared.base_url
        )
    }

    /// An administrator (`upn`, who must hold Global Administrator or Privileged Role
    /// Administrator) goes through the vendor's console and consents to all its apps in
    /// `tenant`. Returns the console's last page.
    pub async fn consent_to_vendor(
        &self,
        vendor: &str,
        tenant: &str,
        upn: &str,
    ) -> Result<String, String> {
        let previous = self
            .shared
            .world()
            .config
            .consent_approver
            .replace(upn.to_string());
        let mut url = self.vendor_console_url(vendor, tenant);
        let mut result = Err("the vendor's console did not answer".to_string());
        for _ in 0..8 {
            let r = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| e.to_string());
            let r = match r {
                Ok(c) => c.get(&url).send().await.map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            match r {
                Ok(resp) => match resp.headers().get("location").and_then(|l| l.to_str().ok()) {
                    Some(next) => url = next.to_string(),
                    None => {
                        result = resp.text().await.map_err(|e| e.to_string());
                        break;
                    }
                },
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        self.shared.world().config.consent_approver = previous;
        let page = result?;
        if page.contains("<h1>Connected</h1>") {
            Ok(page)
        } else {
            Err(page)
        }
    }

    /// Takes back a vendor's consent as an admin would in the portal (Enterprise apps → the
    /// app → Permissions → Review → Revoke): its delegated grants and app roles go; the service
    /// principal stays. With `delete_app`, the enterprise app itself is deleted too.
    pub fn revoke_vendor_consent(&self, tenant_id: &str, display_name: &str, delete_app: bool) {
        let mut world = self.shared.world();
        let Some(d) = world.directories.get_mut(tenant_id) else {
            return;
        };
        let ids: Vec<String> = d
            .service_principals
            .iter()
            .filter(|sp| {
                sp["displayName"] == display_name && sp["appOwnerOrganizationId"] != tenant_id
            })
            .filter_map(|sp| sp["id"].as_str().map(str::to_string))
            .collect();
        for id in &ids {
            d.grants.retain(|g| g["clientId"] != id.as_str());
            d.assignments.retain(|a| a["principalId"] != id.as_str());
            if delete_app {
                d.assignments.retain(|a| a["resourceId"] != id.as_str());
                d.service_principals.retain(|sp| sp["id"] != id.as_str());
            }
        }
    }

    /// Stops the server.
    pub fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// Directory objects of a tenant at one moment.
#[derive(Clone, Debug)]
pub struct DirectorySnapshot {
    pub applications: Vec<serde_json::Value>,
    pub service_principals: Vec<serde_json::Value>,
    pub grants: Vec<serde_json::Value>,
    pub assignments: Vec<serde_json::Value>,
    /// SAML token-signing certificates with their private keys.
    pub signing_keys: Vec<saml::SigningKey>,
}

/// The demo users the wizard offers ("Try the demo tenant").
pub fn demo_users() -> Vec<DemoUser> {
    fixtures::demo_users()
}

/// Starts the simulator on 127.0.0.1 and returns once it accepts connections.
pub async fn start(config: SimConfig) -> std::io::Result<SimHandle> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.port)).await?;
    let addr = listener.local_addr()?;
    let base_url = format!("http://127.0.0.1:{}", addr.port());
    let schema = if config.check_schema {
        Some(graph_csdl::try_graph_v1().map_err(std::io::Error::other)?)
    } else {
        None
    };
    let shared = Arc::new(Shared {
        base_url: base_url.clone(),
        schema,
        world: Mutex::new(world::World::new(config, &base_url)),
        keys: tokens::Keys::load(),
        scim: scim_server::ScimService::new(
            scim_server::DEMO_SCIM_TOKEN,
            scim_server::ScimFaults::default(),
        ),
    });
    let app = router(shared.clone());
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await;
    });
    Ok(SimHandle {
        shared,
        addr,
        stop: Some(tx),
    })
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(login::openid_configuration),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(login::jwks))
        .route(
            "/{tenant}/federationmetadata/2007-06/federationmetadata.xml",
            get(login::federation_metadata),
        )
        .route("/{tenant}/saml2", get(login::saml2))
        .route("/{tenant}/saml2/decision", post(login::saml2_decision))
        .route("/{tenant}/oauth2/v2.0/authorize", get(login::authorize))
        .route(
            "/{tenant}/oauth2/v2.0/authorize/decision",
            post(login::authorize_decision),
        )
        .route("/{tenant}/oauth2/v2.0/token", post(login::token))
        .route("/{tenant}/oauth2/v2.0/devicecode", post(login::devicecode))
        .route("/{tenant}/v2.0/adminconsent", get(login::admin_consent))
        .route(
            "/{tenant}/v2.0/adminconsent/decision",
            post(login::admin_consent_decision),
        )
        .route(
            "/devicelogin",
            get(login::devicelogin_page).post(login::devicelogin_submit),
        )
        .route(
            "/_fake/cloudflare/client/v4/accounts/{account}/access/identity_providers",
            get(fake_cloudflare::list).post(fake_cloudflare::create),
        )
        .route(
            "/_fake/cloudflare/client/v4/accounts/{account}/access/identity_providers/{id}",
            axum::routing::put(fake_cloudflare::update),
        )
        .route(
            "/_fake/cloudflare/client/v4/accounts/{account}/access/identity_providers/{id}/entra_check",
            get(fake_cloudflare::entra_check),
        )
        .route(
            "/_sim/faults",
            get(control_get_faults).post(control_set_faults),
        )
        .route("/_sim/faults/realistic", post(control_realistic_faults))
        .route("/_sim/approval", post(control_set_approval))
        .route("/_sim/consent-approver", post(control_set_consent_approver))
        .route("/_sim/exchanges", get(control_exchanges))
        .route("/_vendor/{vendor}/console", get(vendors::console))
        .route("/_vendor/{vendor}/callback", get(vendors::callback))
        .route("/v1.0/{*rest}", axum::routing::any(graph::dispatch))
        .nest("/_fake/scim/v2", shared.scim.router())
        .with_state(shared)
}

async fn control_get_faults(
    axum::extract::State(s): axum::extract::State<Arc<Shared>>,
) -> axum::Json<Faults> {
    axum::Json(s.world().config.faults.clone())
}

async fn control_set_faults(
    axum::extract::State(s): axum::extract::State<Arc<Shared>>,
    axum::Json(f): axum::Json<Faults>,
) -> axum::http::StatusCode {
    s.world().config.faults = f;
    axum::http::StatusCode::NO_CONTENT
}

async fn control_realistic_faults(
    axum::extract::State(s): axum::extract::State<Arc<Shared>>,
) -> axum::http::StatusCode {
    s.world().config.faults = Faults::realistic();
    axum::http::StatusCode::NO_CONTENT
}

/// How the next sign-ins are answered, e.g. `{"auto": {"upn": "megan@contoso.com",
/// "device_polls": 1}}` or `"interactive"`: a test driving a separate simulator process signs in
/// as someone else.
async fn control_set_approval(
    axum::extract::State(s): axum::extract::State<Arc<Shared>>,
    axum::Json(a): axum::Json<Approval>,
) -> axum::http::StatusCode {
    s.world().config.approval = a;
    axum::http::StatusCode::NO_CONTENT
}

/// Who approves admin-consent links from now on (`{"upn": "adele@contoso.com"}`), or nobody
/// (`{"upn": null}`): a colleague with the right role opening the link the wizard handed over.
async fn control_set_consent_approver(
    axum::extract::State(s): axum::extract::State<Arc<Shared>>,
    axum::Json(body): axum::Json<serde_json::Value>,
) -> axum::http::StatusCode {
    s.world().config.consent_approver = body["upn"].as_str().map(str::to_string);
    axum::http::StatusCode::NO_CONTENT
}

async fn control_exchanges(
    axum::extract::State(s): axum::extract::State<Arc<Shared>>,
) -> axum::Json<Vec<Exchange>> {
    axum::Json(s.world().exchanges.clone())
}

async fn reqwest_get_location(url: &str) -> Result<String, String> {
    // A raw HTTP/1.1 GET (the simulator is plain http on loopback), reading the Location header.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let u = url::Url::parse(url).map_err(|e| e.to_string())?;
    let addr = format!(
        "{}:{}",
        u.host_str().unwrap_or("127.0.0.1"),
        u.port().unwrap_or(80)
    );
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let path = match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_string(),
    };
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        u.host_str().unwrap_or_default()
    );
    stream
        .write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = String::new();
    stream
        .read_to_string(&mut buf)
        .await
        .map_err(|e| e.to_string())?;
    buf.lines()
        .find_map(|l| {
            l.strip_prefix("location: ")
                .or_else(|| l.strip_prefix("Location: "))
                .map(|v| v.trim().to_string())
        })
        .ok_or_else(|| "the consent page did not redirect".to_string())
}

pub(crate) async fn apply_latency(shared: &Shared) {
    let ms = shared.world().config.faults.latency_ms;
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}
