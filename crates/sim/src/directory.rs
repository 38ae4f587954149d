//! The directory objects a tenant holds beyond users: applications, service principals,
//! delegated grants, app-role assignments, groups and the app-management policy. Objects are kept
//! as Graph JSON, exactly as the simulator returns them.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

/// Microsoft Graph's well-known application id.
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

/// Microsoft Graph's permissions with the ids Microsoft uses in every tenant, from the same
/// data file the wizard validates profiles with (`data/apis.toml`): (delegated, application),
/// each as (name, id).
#[allow(clippy::type_complexity)]
pub fn graph_permissions() -> (Vec<(String, String)>, Vec<(String, String)>) {
    #[derive(serde::Deserialize)]
    struct Api {
        app_id: String,
        #[serde(default)]
        delegated: std::collections::BTreeMap<String, String>,
        #[serde(default)]
        application: std::collections::BTreeMap<String, String>,
    }
    #[derive(serde::Deserialize)]
    struct File {
        apis: Vec<Api>,
    }
    let file: Option<File> = toml::from_str(include_str!("../../../data/apis.toml")).ok();
    let graph = file
        .into_iter()
        .flat_map(|f| f.apis)
        .find(|a| a.app_id == GRAPH_APP_ID);
    match graph {
        Some(g) => {
            let mut delegated: Vec<(String, String)> = g.delegated.into_iter().collect();
            // Microsoft Graph has it (the wizard's own sign-in asks for it); data/apis.toml leaves
            // it out so that no provider profile can ask for it.
            delegated.push((
                "Application.ReadWrite.All".into(),
                "bdfbf15f-ee85-4955-8675-146e8e5296b5".into(),
            ));
            (delegated, g.application.into_iter().collect())
        }
        None => (vec![], vec![]),
    }
}

/// A client secret the simulator will accept at the token endpoint.
#[derive(Clone, Debug)]
pub struct Secret {
    pub app_id: String,
    pub key_id: String,
    pub text: String,
    pub end: DateTime<Utc>,
    /// Until then the token endpoint refuses it with AADSTS7000215, as during replication.
    pub usable_from: Instant,
    /// Set by removePassword: when the removal reaches the token endpoint (until then the
    /// secret still gets tokens).
    pub removed_at: Option<Instant>,
}

/// The simulator's clock: tokio's, so an in-process test on a paused clock controls every lag
/// (a three-minute replication costs no wall time), and a simulator in its own process lags by
/// the wall clock.
pub type Instant = tokio::time::Instant;

/// `ms` milliseconds from now (a fault asking for more than a year gets a year).
pub fn after_ms(ms: u64) -> Instant {
    const YEAR_MS: u64 = 365 * 24 * 3600 * 1000;
    Instant::now() + std::time::Duration::from_millis(ms.min(YEAR_MS))
}

/// Until when a new object stays invisible to reads (see `Faults::replication_ms`).
#[derive(Clone, Copy, Debug)]
pub struct Fresh {
    pub until: Instant,
}

#[derive(Debug)]
pub struct Directory {
    pub tenant_id: String,
    pub applications: Vec<Value>,
    pub service_principals: Vec<Value>,
    pub grants: Vec<Value>,
    pub assignments: Vec<Value>,
    pub groups: Vec<Value>,
    /// Direct members of each group (user or group ids).
    pub members: HashMap<String, Vec<String>>,
    pub secrets: Vec<Secret>,
    pub policy: Value,
    /// Objects created here that other readers do not see yet (replication), by id.
    pub fresh: HashMap<String, Fresh>,
    /// Provisioning configuration per service principal id.
    pub sync: HashMap<String, crate::provisioning::SyncState>,
    /// New applications the token endpoint does not know yet: when it will (AADSTS700016
    /// until then), by appId.
    pub app_token_lag: HashMap<String, Instant>,
    /// New app-role assignments not yet in app-only tokens: when they will be, by assignment id.
    pub role_token_lag: HashMap<String, Instant>,
    /// Redirect URIs and Reply URLs the login endpoints do not know yet: when they will, by URI.
    pub redirect_lag: HashMap<String, Instant>,
    /// Token-signing certificates' private keys (SAML), to sign responses with.
    pub signing_keys: Vec<crate::saml::SigningKey>,
    /// Owners (user object ids) of applications and service principals, by object id. A
    /// user who creates an app becomes its owner, as in the portal.
    pub owners: HashMap<String, Vec<String>>,
    /// Federated identity credentials of applications, by application object id.
    pub federated: HashMap<String, Vec<Value>>,
}

/// A new service principal as Graph shows it (for test set-ups).
pub fn sp_json_for(id: &str, app_id: &str, name: &str) -> Value {
    sp_json(id, app_id, name)
}

fn sp_json(id: &str, app_id: &str, name: &str) -> Value {
    json!({
        "id": id,
        "appId": app_id,
        "displayName": name,
        "appDisplayName": name,
        "accountEnabled": true,
        "appRoleAssignmentRequired": false,
        "servicePrincipalType": "Application",
        "servicePrincipalNames": [app_id],
        "tags": [],
        "appRoles": [],
        "oauth2PermissionScopes": [],
        "addIns": [],
        "alternativeNames": [],
        "keyCredentials": [],
        "passwordCredentials": [],
        "notificationEmailAddresses": [],
        "replyUrls": [],
        "resourceSpecificApplicationPermissions": [],
    })
}

impl Directory {
    /// Adds a client secret to application `i` (as addPassword does): returns the
    /// passwordCredential as Graph lists it, and the secret's value.
    pub fn add_password(
        &mut self,
        i: usize,
        display_name: Value,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        lag_ms: u64,
    ) -> (Value, String) {
        use rand::Rng;
        const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789~._-";
        let mut rng = rand::thread_rng();
        let text: String = (0..40)
            .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
            .collect();
        let key_id = uuid::Uuid::new_v4().to_string();
        let app_id = self.applications[i]["appId"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let cred = json!({
            "customKeyIdentifier": null,
            "displayName": display_name,
            "endDateTime": end.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "hint": &text[..3],
            "keyId": key_id,
            "startDateTime": start.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        });
        if let Some(creds) = self.applications[i]["passwordCredentials"].as_array_mut() {
            creds.push(cred.clone());
        }
        self.secrets.push(Secret {
            app_id,
            key_id,
            text: text.clone(),
            end,
            usable_from: after_ms(lag_ms),
            removed_at: None,
        });
        (cred, text)
    }

    pub fn new(
        tenant_id: &str,
        groups: Vec<(String, String, bool, Vec<String>)>,
        policy: Value,
    ) -> Self {
        let mut graph = sp_json(
            &format!("{}-0000-4000-8000-00000000a003", &tenant_id[..8]),
            GRAPH_APP_ID,
            "Microsoft Graph",
        );
        graph["appOwnerOrganizationId"] = json!("f8cdef31-a31e-4b4a-93e4-5f571e91255a");
        graph["servicePrincipalNames"] = json!([GRAPH_APP_ID, "https://graph.microsoft.com"]);
        let (scopes, app_roles) = graph_permissions();
        graph["appRoles"] = app_roles
            .iter()
            .map(|(name, id)| {
                json!({"id": id, "value": name, "displayName": format!("Read {name}"), "description": format!("Allows the app to {name} without a signed-in user."), "allowedMemberTypes": ["Application"], "isEnabled": true, "origin": "Application"})
            })
            .collect();
        graph["oauth2PermissionScopes"] = scopes
            .iter()
            .map(|(name, id)| {
                json!({"id": id, "value": name, "type": if name.contains(".All") { "Admin" } else { "User" }, "adminConsentDisplayName": name, "adminConsentDescription": name, "isEnabled": true, "origin": "Application"})
            })
            .collect();
        let mut members = HashMap::new();
        let group_values = groups
            .into_iter()
            .map(|(id, name, security, group_members)| {
                members.insert(id.clone(), group_members);
                json!({
                    "id": id,
                    "displayName": name,
                    "mailNickname": name.to_lowercase().replace(' ', "-"),
                    "securityEnabled": security,
                    "mailEnabled": !security,
                    "groupTypes": if security { json!([]) } else { json!(["Unified"]) },
                    "description": format!("{name} (simulated)"),
                })
            })
            .collect();
        Self {
            tenant_id: tenant_id.to_string(),
            applications: vec![],
            service_principals: vec![graph],
            grants: vec![],
            assignments: vec![],
            groups: group_values,
            members,
            secrets: vec![],
            policy,
            fresh: HashMap::new(),
            sync: HashMap::new(),
            app_token_lag: HashMap::new(),
            role_token_lag: HashMap::new(),
            redirect_lag: HashMap::new(),
            signing_keys: vec![],
            owners: HashMap::new(),
            federated: HashMap::new(),
        }
    }

    /// Fills the tenant with apps nobody in a test made: `registered_apps` apps members
    /// registered (each with its service principal, some with a certificate), and
    /// `vendor_apps` enterprise apps published by other tenants. Ids are fixed, so a run
    /// reads the same tenant every time.
    pub fn add_bulk(&mut self, bulk: crate::fixtures::Bulk) {
        let prefix = &self.tenant_id[..8];
        let guid = |kind: u32, i: u32| format!("{prefix}-{kind:04}-4000-8000-{i:012}");
        for i in 1..=bulk.registered_apps {
            let (id, app_id) = (guid(2222, i), guid(3333, i));
            let name = format!("Line-of-business app {i:03}");
            let keys = if i % 10 == 0 {
                json!([{
                    "keyId": guid(4444, i), "type": "AsymmetricX509Cert", "usage": "Verify",
                    "displayName": format!("CN={name}"),
                    "startDateTime": "2025-01-01T00:00:00Z", "endDateTime": "2027-01-01T00:00:00Z",
                    "customKeyIdentifier": "6A7D1F3C2B8E9A0D4C5B6E7F8A9B0C1D2E3F4A5B",
                    "key": "MIIBszCCAVmgAwIBAgIUSimulatedCertificateBytes"
                }])
            } else {
                json!([])
            };
            self.applications.push(json!({
                "id": id, "appId": app_id, "displayName": name,
                "createdDateTime": "2022-06-01T00:00:00Z",
                "signInAudience": "AzureADMyOrg", "tags": [], "identifierUris": [],
                "passwordCredentials": [], "keyCredentials": keys, "requiredResourceAccess": [],
                "appRoles": [], "addIns": [], "notes": null,
                "web": {"redirectUris": [format!("https://lob{i:03}.tailspintoys.com/signin")], "implicitGrantSettings": {"enableAccessTokenIssuance": false, "enableIdTokenIssuance": false}},
            }));
            self.service_principals
                .push(sp_json(&guid(5555, i), &app_id, &name));
        }
        for i in 1..=bulk.vendor_apps {
            let name = format!("Vendor app {i:04}");
            let mut sp = sp_json(&guid(6666, i), &guid(7777, i), &name);
            sp["appOwnerOrganizationId"] = json!(format!("0f0f0f0f-0000-4000-8000-{i:012}"));
            sp["tags"] = json!(["WindowsAzureActiveDirectoryIntegratedApp"]);
            self.service_principals.push(sp);
        }
    }

    pub fn graph_sp(&self) -> &Value {
        // The Microsoft Graph service principal is created with the directory and never deleted.
        self.service_principals
            .iter()
            .find(|s| s["appId"] == GRAPH_APP_ID)
            .unwrap_or(&Value::Null)
    }

    /// Marks objects just created as not yet replicated, as the faults ask.
    pub fn hide(&mut self, ids: &[&str], faults: &crate::Faults) {
        if faults.replication_ms == 0 {
            return;
        }
        let until = after_ms(faults.replication_ms);
        for id in ids.iter().filter(|i| !i.is_empty()) {
            self.fresh.insert((*id).to_string(), Fresh { until });
        }
    }

    /// A new application the token endpoint will not know for a while, as the faults ask.
    pub fn token_lag(&mut self, app_id: &str, faults: &crate::Faults) {
        if faults.token_app_lag_ms > 0 {
            self.app_token_lag
                .insert(app_id.to_string(), after_ms(faults.token_app_lag_ms));
        }
    }

    /// Redirect URIs or Reply URLs just added to an application (in `after`, not in `before`),
    /// which the login endpoints will not accept for a while, as the faults ask.
    pub fn redirects_lag(&mut self, before: &Value, after: &Value, faults: &crate::Faults) {
        let uris = |app: &Value| -> Vec<String> {
            ["web", "spa", "publicClient"]
                .iter()
                .filter_map(|p| app[*p]["redirectUris"].as_array())
                .flatten()
                .filter_map(|u| u.as_str().map(str::to_string))
                .collect()
        };
        if faults.redirect_uri_lag_ms > 0 {
            let old = uris(before);
            for uri in uris(after).iter().filter(|u| !old.contains(u)) {
                self.redirect_lag
                    .insert(uri.clone(), after_ms(faults.redirect_uri_lag_ms));
            }
        }
    }

    /// Whether the login endpoints know this redirect URI or Reply URL yet.
    pub fn redirect_known(&self, uri: &str) -> bool {
        self.redirect_lag
            .get(uri)
            .is_none_or(|until| *until <= Instant::now())
    }

    /// True while an object made moments ago should still look absent to reads.
    pub fn still_replicating(&mut self, id: &str) -> bool {
        let Some(f) = self.fresh.get(id) else {
            return false;
        };
        if Instant::now() < f.until {
            return true;
        }
        self.fresh.remove(id);
        false
    }

    /// An application as a reader sees it: credentials added moments ago are not there yet.
    pub fn app_as_read(&mut self, i: usize) -> Value {
        let app = self.applications[i].clone();
        self.strip_fresh_credentials(app)
    }

    /// Leaves out of an application the credentials that have not replicated yet.
    pub fn strip_fresh_credentials(&mut self, mut app: Value) -> Value {
        for field in ["passwordCredentials", "keyCredentials"] {
            if let Some(creds) = app[field].as_array().cloned() {
                let shown: Vec<Value> = creds
                    .into_iter()
                    .filter(|c| !self.still_replicating(c["keyId"].as_str().unwrap_or_default()))
                    .collect();
                app[field] = Value::Array(shown);
            }
        }
        app
    }

    pub fn app_index(&self, key: &Key) -> Option<usize> {
        self.applications.iter().position(|a| key.matches(a))
    }

    pub fn sp_index(&self, key: &Key) -> Option<usize> {
        self.service_principals.iter().position(|a| key.matches(a))
    }

    /// Deletes an application and, as Entra does, its service principal and everything granted
    /// to or by that service principal.
    pub fn delete_app(&mut self, index: usize) {
        let app = self.applications.remove(index);
        let app_id = app["appId"].as_str().unwrap_or_default().to_string();
        self.secrets.retain(|s| s.app_id != app_id);
        if let Some(sp) = self
            .service_principals
            .iter()
            .position(|s| s["appId"] == app_id.as_str())
        {
            self.delete_sp(sp);
        }
    }

    pub fn delete_sp(&mut self, index: usize) {
        let sp = self.service_principals.remove(index);
        let id = sp["id"].as_str().unwrap_or_default().to_string();
        self.sync.remove(&id);
        self.grants
            .retain(|g| g["clientId"] != id.as_str() && g["resourceId"] != id.as_str());
        self.assignments
            .retain(|a| a["principalId"] != id.as_str() && a["resourceId"] != id.as_str());
    }
}

/// How a request names an object: `/x/{id}` or `/x(prop='value')`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Key {
    Id(String),
    Alt { prop: String, value: String },
}

impl Key {
    pub fn matches(&self, v: &Value) -> bool {
        match self {
            Self::Id(id) => v["id"].as_str().is_some_and(|x| x.eq_ignore_ascii_case(id)),
            Self::Alt { prop, value } => v[prop.as_str()]
                .as_str()
                .is_some_and(|x| x.eq_ignore_ascii_case(value)),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Id(id) => id.clone(),
            Self::Alt { prop, value } => format!("{prop}='{value}'"),
        }
    }
}

/// Splits `applications(uniqueName='x')` into (`applications`, Some(Alt)); `applications` alone
/// gives (`applications`, None). Values are unquoted; `(id)` gives an Id key.
pub fn split_key(segment: &str) -> (&str, Option<Key>) {
    let Some(open) = segment.find('(') else {
        return (segment, None);
    };
    if !segment.ends_with(')') {
        return (segment, None);
    }
    let name = &segment[..open];
    let inner = &segment[open + 1..segment.len() - 1];
    let key = match inner.split_once('=') {
        Some((prop, value)) => Key::Alt {
            prop: prop.trim().to_string(),
            value: value.trim().trim_matches('\'').replace("''", "'"),
        },
        None => Key::Id(inner.trim().trim_matches('\'').to_string()),
    };
    (name, Some(key))
}

/// A tiny OData `$filter` evaluator for the shapes the wizard sends: `a eq 'x'`,
/// `a eq 'x' and b eq 'y'`, `tags/any(t:t eq 'x')`, `web/redirectUris/any(x:x eq 'y')`,
/// `startswith(a,'x')`.
/// Splits a `$filter` at its ` and `s, but not inside quoted values (a display name may say
/// "and", as OData allows).
fn and_clauses(filter: &str) -> Vec<&str> {
    let mut out = vec![];
    let (mut start, mut quoted) = (0, false);
    let bytes = filter.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\'' {
            quoted = !quoted;
        } else if !quoted && filter[i..].starts_with(" and ") {
            out.push(&filter[start..i]);
            i += 5;
            start = i;
            continue;
        }
        i += 1;
    }
    out.push(&filter[start..]);
    out
}

pub fn filter_matches(filter: &str, v: &Value) -> Result<bool, String> {
    for clause in and_clauses(filter) {
        let clause = clause.trim();
        let ok = if let Some(rest) = clause.strip_prefix("startswith(") {
            let (prop, value) = rest
                .trim_end_matches(')')
                .split_once(',')
                .ok_or("bad startswith")?;
            let value = value.trim().trim_matches('\'').to_lowercase();
            v[prop.trim()]
                .as_str()
                .is_some_and(|x| x.to_lowercase().starts_with(&value))
        } else if let Some((coll, rest)) = clause.split_once("/any(") {
            let (_, cond) = rest
                .trim_end_matches(')')
                .split_once(':')
                .ok_or("bad any()")?;
            let (_, value) = cond.split_once(" eq ").ok_or("bad any() condition")?;
            let value = value.trim().trim_matches('\'');
            // A collection inside a complex property: `web/redirectUris/any(…)`.
            coll.trim()
                .split('/')
                .fold(v, |at, key| &at[key])
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(value)))
        } else if let Some((prop, value)) = clause.split_once(" eq ") {
            let value = value.trim();
            let field = &v[prop.trim()];
            match value {
                "true" => field == &json!(true),
                "false" => field == &json!(false),
                "null" => field.is_null(),
                quoted => field
                    .as_str()
                    .is_some_and(|x| x.eq_ignore_ascii_case(quoted.trim_matches('\''))),
            }
        } else {
            return Err(format!("Unsupported filter clause '{clause}'."));
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}
