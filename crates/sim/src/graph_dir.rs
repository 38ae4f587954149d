//! Graph calls on directory objects: applications (upsert by `uniqueName`, addPassword,
//! removePassword), service principals, delegated grants, app-role assignments, the
//! app-management policy, users and groups. Permissions and directory roles are enforced, and
//! newly created objects can be made to "replicate" slowly (reference §12).

use axum::http::StatusCode;
use base64::Engine;
use chrono::{Duration, Utc};
use serde_json::{json, Map, Value};

use crate::directory::{filter_matches, split_key, Directory, Key, GRAPH_APP_ID};
use crate::fixtures::{
    Tenant, ROLE_APP_ADMIN, ROLE_APP_DEVELOPER, ROLE_CLOUD_APP_ADMIN, ROLE_GLOBAL_ADMIN,
    ROLE_PRIVILEGED_ROLE_ADMIN,
};
use crate::graph::{GraphErr, Req};
use crate::world::World;

type Out = Result<(StatusCode, Option<Value>), GraphErr>;

const DEFAULT_ROLE: &str = "00000000-0000-0000-0000-000000000000";

fn bad(message: impl Into<String>) -> GraphErr {
    GraphErr::new(StatusCode::BAD_REQUEST, "Request_BadRequest", message)
}

fn not_found(what: &str) -> GraphErr {
    GraphErr::new(
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        format!("Resource '{what}' does not exist or one of its queried reference-property objects are not present."),
    )
}

fn denied() -> GraphErr {
    GraphErr::new(
        StatusCode::FORBIDDEN,
        "Authorization_RequestDenied",
        "Insufficient privileges to complete the operation.",
    )
}

fn now() -> String {
    Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl Req<'_> {
    /// Delegated scopes for user tokens, application permissions for app tokens.
    fn allows(&self, delegated: &[&str], application: &[&str]) -> Result<(), GraphErr> {
        let ok = if self.claims.idtyp == "app" {
            self.claims
                .roles
                .iter()
                .any(|r| application.contains(&r.as_str()))
        } else {
            let have: Vec<&str> = self.claims.scp.split_whitespace().collect();
            delegated.iter().any(|d| have.contains(d))
        };
        ok.then_some(()).ok_or_else(denied)
    }

    /// The signed-in user holds one of these directory roles (app tokens never do).
    fn has_role(&self, roles: &[&str]) -> bool {
        self.claims.idtyp != "app" && self.claims.wids.iter().any(|w| roles.contains(&w.as_str()))
    }

    fn body_obj(&self) -> Result<&Map<String, Value>, GraphErr> {
        self.body
            .as_ref()
            .and_then(Value::as_object)
            .ok_or_else(|| bad("A JSON object is required in the request body."))
    }
}

const APP_READ: &[&str] = &[
    "Application.Read.All",
    "Application.ReadWrite.All",
    "Directory.Read.All",
];
const APP_WRITE: &[&str] = &["Application.ReadWrite.All"];
const APP_ROLES: &[&str] = &[
    ROLE_GLOBAL_ADMIN,
    ROLE_APP_ADMIN,
    ROLE_CLOUD_APP_ADMIN,
    ROLE_APP_DEVELOPER,
];
const CONSENT_ROLES: &[&str] = &[ROLE_GLOBAL_ADMIN, ROLE_APP_ADMIN, ROLE_CLOUD_APP_ADMIN];

/// Applies `$filter`, `$select` and `$top` (with `$skiptoken` paging) to a collection. Objects
/// that have not replicated yet are left out, as a list read from another replica would.
fn list(dir: &mut Directory, req: &Req<'_>, context: &str, items: &[Value]) -> Out {
    let mut out = vec![];
    for v in items {
        let keep = match req.param("$filter") {
            Some(f) => filter_matches(f, v).map_err(bad)?,
            None => true,
        };
        if keep && !dir.still_replicating(v["id"].as_str().unwrap_or_default()) {
            let v = if context == "applications" {
                dir.strip_fresh_credentials(v.clone())
            } else {
                v.clone()
            };
            out.push(without_key_bytes(select(v, req)));
        }
    }
    let skip: usize = req
        .param("$skiptoken")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let top: usize = req
        .param("$top")
        .and_then(|s| s.parse().ok())
        .unwrap_or(100)
        .clamp(1, 999);
    let page: Vec<Value> = out.iter().skip(skip).take(top).cloned().collect();
    let mut body = json!({"@odata.context": req.context(context), "value": page});
    if skip + top < out.len() {
        let base = if req.next_link_base.is_empty() {
            req.base
        } else {
            req.next_link_base.as_str()
        };
        let mut next = url::Url::parse(&format!("{}/v1.0/{}", base, req.segments.join("/")))
            .map_err(|e| bad(e.to_string()))?;
        {
            let mut q = next.query_pairs_mut();
            for (k, v) in &req.query {
                if k != "$skiptoken" {
                    q.append_pair(k, v);
                }
            }
            q.append_pair("$skiptoken", &(skip + top).to_string());
        }
        body["@odata.nextLink"] = json!(next.as_str());
    }
    Ok((StatusCode::OK, Some(body)))
}

fn select(v: Value, req: &Req<'_>) -> Value {
    let Some(sel) = req.param("$select") else {
        return v;
    };
    let wanted: Vec<&str> = sel.split(',').map(str::trim).collect();
    match v {
        Value::Object(o) => Value::Object(
            o.into_iter()
                .filter(|(k, _)| {
                    k == "id"
                        || k.starts_with('@')
                        || wanted.iter().any(|w| w.eq_ignore_ascii_case(k))
                })
                .collect(),
        ),
        other => other,
    }
}

/// `keyCredentials[].key` is "returned only on $select for a single object, that is, GET
/// applications/{applicationId}?$select=keyCredentials or GET servicePrincipals/
/// {servicePrincipalId}?$select=keyCredentials; otherwise, it's always null"
/// (learn.microsoft.com/graph/api/resources/keycredential).
fn without_key_bytes(mut v: Value) -> Value {
    if let Some(keys) = v.get_mut("keyCredentials").and_then(Value::as_array_mut) {
        for k in keys.iter_mut().filter_map(Value::as_object_mut) {
            k.insert("key".into(), Value::Null);
        }
    }
    v
}

fn one(req: &Req<'_>, context: &str, v: &Value) -> Out {
    let asked_for_keys = req.param("$select").is_some_and(|s| {
        s.split(',')
            .any(|p| p.trim().eq_ignore_ascii_case("keyCredentials"))
    });
    let mut v = select(v.clone(), req);
    if !asked_for_keys {
        v = without_key_bytes(v);
    }
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "@odata.context".into(),
            json!(req.context(&format!("{context}/$entity"))),
        );
    }
    Ok((StatusCode::OK, Some(v)))
}

/// `/x/{id}/rest` or `/x(key)/rest` → the key and the rest.
fn addressed<'a>(segs: &'a [&'a str], set: &str) -> Option<(Key, &'a [&'a str])> {
    let (name, key) = split_key(segs.first()?);
    if name != set {
        return None;
    }
    match key {
        Some(k) => Some((k, &segs[1..])),
        None if segs.len() >= 2 => Some((Key::Id(segs[1].to_string()), &segs[2..])),
        None => None,
    }
}

/// Dispatches a directory request; `None` when the path is not one of these.
pub fn route(world: &mut World, req: &Req<'_>, tenant: &Tenant) -> Option<Out> {
    let segs: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    let faults = world.config.faults.clone();
    let dir = world.directories.get_mut(&tenant.id)?;
    let m = req.method.as_str();
    let mut pending = None;
    let out = Some(match (m, segs.as_slice()) {
        ("POST", ["applicationTemplates", template, "instantiate"]) => {
            let out = crate::provisioning::instantiate(dir, req, template, &faults);
            if faults.instantiate_not_found_once {
                world.config.faults.instantiate_not_found_once = false;
            }
            out
        }
        // Microsoft's gallery (plus the non-gallery template); `$filter` on displayName or
        // categories only, as the real collection allows (reference §8c).
        ("GET", ["applicationTemplates"]) => {
            if let Some(f) = req.param("$filter") {
                let field = f.split_whitespace().next().unwrap_or_default();
                if !["displayName", "categories/any(c:c", "categories/any(x:x"].iter().any(|k| field.starts_with(k)) {
                    return Some(Err(bad(format!("Filtering applicationTemplates on '{field}' is not supported; use displayName or categories."))));
                }
            }
            let mut items: Vec<Value> = crate::vendors::GALLERY.iter().map(crate::vendors::GalleryTemplate::to_json).collect();
            items.push(json!({"id": crate::provisioning::NON_GALLERY_TEMPLATE, "displayName": "Custom", "homePageUrl": null,
                "supportedSingleSignOnModes": ["saml", "password", "notSupported"], "supportedProvisioningTypes": ["sync"],
                "logoUrl": null, "categories": [], "publisher": "Microsoft Corporation", "description": "An application you are developing or one not in the gallery."}));
            list(dir, req, "applicationTemplates", &items)
        }
        ("GET", ["auditLogs", "provisioning"]) => crate::provisioning::provisioning_logs(dir, req, tenant),
        ("GET", ["groups", id]) => req
            .allows(GROUP_READ, GROUP_READ)
            .and_then(|()| {
                let g = dir.groups.iter().find(|g| g["id"] == *id).ok_or_else(|| not_found(id))?;
                one(req, "groups", g)
            }),
        ("GET", ["groups", id, "members"]) => req.allows(GROUP_READ, GROUP_READ).and_then(|()| {
            let members = dir.members.get(*id).ok_or_else(|| not_found(id))?;
            let items: Vec<Value> = members.iter().filter_map(|m| member_json(dir, tenant, m)).collect();
            list(dir, req, "directoryObjects", &items)
        }),
        ("GET", ["groups", id, "transitiveMembers", "microsoft.graph.user"]) => req.allows(GROUP_READ, GROUP_READ).and_then(|()| {
            if !dir.members.contains_key(*id) {
                return Err(not_found(id));
            }
            let mut users: Vec<String> = vec![];
            let mut todo = vec![(*id).to_string()];
            let mut seen = vec![];
            while let Some(g) = todo.pop() {
                if seen.contains(&g) {
                    continue;
                }
                seen.push(g.clone());
                for m in dir.members.get(&g).into_iter().flatten() {
                    if dir.members.contains_key(m) {
                        todo.push(m.clone());
                    } else if !users.contains(m) {
                        users.push(m.clone());
                    }
                }
            }
            let items: Vec<Value> = users.iter().filter_map(|m| member_json(dir, tenant, m)).collect();
            let counted = req.param("$count") == Some("true");
            if counted && !req.header_eq("consistencylevel", "eventual") {
                return Err(bad("Count is not supported without the ConsistencyLevel: eventual header."));
            }
            let (status, body) = list(dir, req, "users", &items)?;
            let mut body = body.unwrap_or_default();
            if counted {
                let n = items.iter().filter(|v| req.param("$filter").is_none_or(|f| filter_matches(f, v).unwrap_or(false))).count();
                body["@odata.count"] = json!(n);
            }
            Ok((status, Some(body)))
        }),
        ("GET", ["applications"]) => req.allows(APP_READ, &["Application.Read.All"]).and_then(|()| {
            let items = dir.applications.clone();
            list(dir, req, "applications", &items)
        }),
        ("POST", ["applications"]) => create_app(dir, req, None, &faults),
        ("GET", ["servicePrincipals"]) => {
            req.allows(APP_READ, &["Application.Read.All"]).and_then(|()| {
                let items = dir.service_principals.clone();
                list(dir, req, "servicePrincipals", &items)
            })
        }
        ("POST", ["servicePrincipals"]) => create_sp(dir, req, &faults),
        ("GET", ["oauth2PermissionGrants"]) => req
            .allows(&["DelegatedPermissionGrant.ReadWrite.All", "Directory.Read.All"], &["Directory.Read.All"])
            .and_then(|()| {
                let items = dir.grants.clone();
                list(dir, req, "oauth2PermissionGrants", &items)
            }),
        ("POST", ["oauth2PermissionGrants"]) => create_grant(dir, req, &faults),
        (_, ["oauth2PermissionGrants", id]) => grant_by_id(dir, req, id),
        ("GET", ["policies", "defaultAppManagementPolicy"]) => {
            req.allows(&["Policy.Read.All", "Policy.ReadWrite.ApplicationConfiguration"], &["Policy.Read.All"]).and_then(|()| {
                let mut p = dir.policy.clone();
                if faults.block_password_addition {
                    p["isEnabled"] = json!(true);
                    p["applicationRestrictions"]["passwordCredentials"] = json!([{
                        "restrictionType": "passwordAddition", "maxLifetime": null, "state": "enabled",
                        "restrictForAppsCreatedAfterDateTime": "2019-01-01T00:00:00Z"
                    }]);
                }
                one(req, "policies/defaultAppManagementPolicy", &p)
            })
        }
        ("GET", ["users"]) => req
            .allows(&["User.Read.All", "User.ReadBasic.All", "Directory.Read.All"], &["User.Read.All", "Directory.Read.All"])
            .and_then(|()| {
                let users: Vec<Value> = tenant.users.iter().map(crate::fixtures::User::to_json).collect();
                list(dir, req, "users", &users)
            }),
        ("GET", ["users", id]) => req.allows(&["User.Read.All", "User.ReadBasic.All", "Directory.Read.All"], &["User.Read.All", "Directory.Read.All"]).and_then(|()| {
            let u = tenant.user_by_id(id).or_else(|| tenant.user_by_upn(id)).ok_or_else(|| not_found(id))?;
            one(req, "users", &u.to_json())
        }),
        ("GET", ["users", id, "transitiveMemberOf", "$count"]) => {
            req.allows(&["User.Read.All", "Directory.Read.All", "GroupMember.Read.All"], &["User.Read.All", "Directory.Read.All"]).and_then(|()| {
                if !req.header_eq("consistencylevel", "eventual") {
                    return Err(bad("Count is not supported without the ConsistencyLevel: eventual header."));
                }
                let u = tenant.user_by_id(id).ok_or_else(|| not_found(id))?;
                let n = transitive_groups(dir, &u.id).len() + u.extra_groups as usize;
                Ok((StatusCode::OK, Some(json!(n))))
            })
        }
        ("GET", ["groups"]) => req
            .allows(&["GroupMember.Read.All", "Group.Read.All", "Directory.Read.All"], &["GroupMember.Read.All", "Group.Read.All", "Directory.Read.All"])
            .and_then(|()| {
                let items = dir.groups.clone();
                list(dir, req, "groups", &items)
            }),
        _ => {
            if let Some((key, rest)) = addressed(&segs, "applications") {
                app_routes(dir, req, &key, rest, tenant, &faults)
            } else if let Some((key, rest)) = addressed(&segs, "servicePrincipals") {
                sp_routes(dir, req, &key, rest, tenant, &faults, &mut pending)
            } else {
                return None;
            }
        }
    });
    world.pending = pending;
    out
}

const GROUP_READ: &[&str] = &[
    "GroupMember.Read.All",
    "Group.Read.All",
    "Directory.Read.All",
];

/// A member as `/members` lists it: a user or a group, with its `@odata.type`.
fn member_json(dir: &Directory, tenant: &Tenant, id: &str) -> Option<Value> {
    if let Some(u) = tenant.user_by_id(id) {
        let mut v = u.to_json();
        v["@odata.type"] = json!("#microsoft.graph.user");
        return Some(v);
    }
    dir.groups.iter().find(|g| g["id"] == id).map(|g| {
        let mut v = g.clone();
        v["@odata.type"] = json!("#microsoft.graph.group");
        v
    })
}

pub(crate) fn transitive_groups(dir: &Directory, member: &str) -> Vec<String> {
    let mut found: Vec<String> = vec![];
    let mut todo = vec![member.to_string()];
    while let Some(m) = todo.pop() {
        for (g, ms) in &dir.members {
            if ms.contains(&m) && !found.contains(g) {
                found.push(g.clone());
                todo.push(g.clone());
            }
        }
    }
    found
}

fn merge(target: &mut Value, patch: &Map<String, Value>) {
    if let Some(o) = target.as_object_mut() {
        for (k, v) in patch {
            if !k.starts_with('@') {
                o.insert(k.clone(), v.clone());
            }
        }
    }
}

fn create_app(
    dir: &mut Directory,
    req: &Req<'_>,
    unique_name: Option<&str>,
    faults: &crate::Faults,
) -> Out {
    req.allows(APP_WRITE, &["Application.ReadWrite.All"])?;
    if !req.has_role(APP_ROLES) {
        return Err(denied());
    }
    let body = req.body_obj()?;
    if body
        .get("displayName")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(bad(
            "Property 'displayName' is required when creating an application.",
        ));
    }
    let id = new_id();
    let mut app = json!({
        "id": id,
        "appId": new_id(),
        "createdDateTime": now(),
        "publisherDomain": format!("{}.onmicrosoft.com", &dir.tenant_id[..8]),
        "signInAudience": "AzureADMyOrg",
        "tags": [],
        "identifierUris": [],
        "passwordCredentials": [],
        "keyCredentials": [],
        "requiredResourceAccess": [],
        "appRoles": [],
        "addIns": [],
        "groupMembershipClaims": null,
        "optionalClaims": null,
        "notes": null,
        "web": {"redirectUris": [], "redirectUriSettings": [], "homePageUrl": null, "logoutUrl": null,
                "implicitGrantSettings": {"enableAccessTokenIssuance": false, "enableIdTokenIssuance": false}},
    });
    merge(&mut app, body);
    if let Some(u) = unique_name {
        app["uniqueName"] = json!(u);
    }
    let app_id = app["appId"].as_str().unwrap_or_default().to_string();
    dir.hide(&[&id, &app_id], faults);
    dir.token_lag(&app_id, faults);
    dir.redirects_lag(&Value::Null, &app, faults);
    // The user who creates an app owns it (an app-only caller does not become an owner).
    if req.claims.idtyp != "app" && !req.claims.oid.is_empty() {
        dir.owners.insert(id.clone(), vec![req.claims.oid.clone()]);
    }
    dir.applications.push(app.clone());
    let mut out = app;
    out["@odata.context"] = json!(req.context("applications/$entity"));
    Ok((StatusCode::CREATED, Some(out)))
}

fn str_at(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// `GET …/owners`: the owners as directory objects (users, with their type).
fn owners_list(dir: &mut Directory, req: &Req<'_>, tenant: &Tenant, object_id: &str) -> Out {
    let items: Vec<Value> = dir
        .owners
        .get(object_id)
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|o| match tenant.user_by_id(o) {
            Some(u) => {
                let mut v = u.to_json();
                v["@odata.type"] = json!("#microsoft.graph.user");
                v
            }
            None => json!({"@odata.type": "#microsoft.graph.user", "id": o}),
        })
        .collect();
    list(dir, req, "directoryObjects", &items)
}

/// `POST …/owners/$ref` (add) and `DELETE …/owners/{id}/$ref` (remove).
fn owner_ref(dir: &mut Directory, req: &Req<'_>, object_id: &str, rest: &[&str]) -> Out {
    req.allows(APP_WRITE, &["Application.ReadWrite.All"])?;
    if !req.has_role(APP_ROLES) {
        return Err(denied());
    }
    match (req.method.as_str(), rest) {
        ("POST", ["$ref"]) => {
            let odata_id = req
                .body_obj()?
                .get("@odata.id")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("The @odata.id of the owner is required."))?
                .to_string();
            let owner = odata_id.rsplit('/').next().unwrap_or_default().to_string();
            if uuid::Uuid::parse_str(&owner).is_err() {
                return Err(bad(format!("Invalid object identifier '{owner}'.")));
            }
            let list = dir.owners.entry(object_id.to_string()).or_default();
            if list.iter().any(|o| o.eq_ignore_ascii_case(&owner)) {
                return Err(bad("One or more added object references already exist for the following modified properties: 'owners'."));
            }
            list.push(owner);
            Ok((StatusCode::NO_CONTENT, None))
        }
        ("DELETE", [owner, "$ref"]) => {
            let list = dir.owners.entry(object_id.to_string()).or_default();
            let before = list.len();
            list.retain(|o| !o.eq_ignore_ascii_case(owner));
            if list.len() == before {
                return Err(not_found(owner));
            }
            Ok((StatusCode::NO_CONTENT, None))
        }
        (m, _) => Err(bad(format!("Unsupported request {m} on owners."))),
    }
}

fn app_routes(
    dir: &mut Directory,
    req: &Req<'_>,
    key: &Key,
    rest: &[&str],
    tenant_users: &Tenant,
    faults: &crate::Faults,
) -> Out {
    let idx = dir.app_index(key);
    let m = req.method.as_str();
    if let Some(i) = idx {
        let id = dir.applications[i]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if dir.still_replicating(&id) {
            return Err(not_found(&key.describe()));
        }
    }
    match (m, rest, idx) {
        ("PATCH", [], None) => match (key, req.prefer.as_deref()) {
            (Key::Alt { prop, value }, Some(p))
                if prop == "uniqueName" && p.contains("create-if-missing") =>
            {
                create_app(dir, req, Some(value), faults)
            }
            _ => Err(not_found(&key.describe())),
        },
        (_, _, None) => Err(not_found(&key.describe())),
        ("GET", [], Some(i)) => {
            req.allows(APP_READ, &["Application.Read.All"])?;
            let app = dir.app_as_read(i);
            one(req, "applications", &app)
        }
        ("PATCH", [], Some(i)) => {
            req.allows(APP_WRITE, &["Application.ReadWrite.All"])?;
            if !req.has_role(APP_ROLES) {
                return Err(denied());
            }
            let body = req.body_obj()?.clone();
            // uniqueName can be set once (e.g. on an app made from a template), never changed.
            if body.contains_key("uniqueName")
                && !dir.applications[i]["uniqueName"].is_null()
                && body["uniqueName"] != dir.applications[i]["uniqueName"]
            {
                return Err(bad("Property 'uniqueName' is read-only once set."));
            }
            crate::saml::check_identifier_uris(dir, i, &body, faults)?;
            let before = dir.applications[i].clone();
            merge(&mut dir.applications[i], &body);
            let after = dir.applications[i].clone();
            dir.redirects_lag(&before, &after, faults);
            Ok((StatusCode::NO_CONTENT, None))
        }
        ("DELETE", [], Some(i)) => {
            req.allows(APP_WRITE, &["Application.ReadWrite.All"])?;
            if !req.has_role(APP_ROLES) {
                return Err(denied());
            }
            dir.delete_app(i);
            Ok((StatusCode::NO_CONTENT, None))
        }
        ("GET", ["owners"], Some(i)) => {
            req.allows(APP_READ, &["Application.Read.All"])?;
            let id = str_at(&dir.applications[i]["id"]);
            owners_list(dir, req, tenant_users, &id)
        }
        (_, ["owners", ..], Some(i)) => {
            let id = str_at(&dir.applications[i]["id"]);
            owner_ref(dir, req, &id, &rest[1..])
        }
        ("GET", ["federatedIdentityCredentials"], Some(i)) => {
            req.allows(APP_READ, &["Application.Read.All"])?;
            let id = str_at(&dir.applications[i]["id"]);
            let items = dir.federated.get(&id).cloned().unwrap_or_default();
            list(
                dir,
                req,
                "applications/federatedIdentityCredentials",
                &items,
            )
        }
        ("DELETE", ["federatedIdentityCredentials", fid], Some(i)) => {
            req.allows(APP_WRITE, &["Application.ReadWrite.All"])?;
            let id = str_at(&dir.applications[i]["id"]);
            let creds = dir.federated.entry(id).or_default();
            let before = creds.len();
            creds.retain(|c| c["id"] != *fid && c["name"] != *fid);
            if creds.len() == before {
                return Err(not_found(&format!("federatedIdentityCredential {fid}")));
            }
            Ok((StatusCode::NO_CONTENT, None))
        }
        ("POST", ["addPassword"], Some(i)) => add_password(dir, req, i, faults),
        ("POST", ["removePassword"], Some(i)) => {
            req.allows(APP_WRITE, &["Application.ReadWrite.All"])?;
            let key_id = req
                .body_obj()?
                .get("keyId")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("keyId is required."))?
                .to_string();
            let creds = dir.applications[i]["passwordCredentials"]
                .as_array_mut()
                .ok_or_else(|| bad("no credentials"))?;
            let before = creds.len();
            creds.retain(|c| c["keyId"].as_str() != Some(key_id.as_str()));
            if creds.len() == before {
                return Err(not_found(&format!("passwordCredential {key_id}")));
            }
            // The token endpoint learns of the removal late (reference §5: terraform waits for
            // a removal to be visible).
            if faults.removed_secret_lag_ms == 0 {
                dir.secrets.retain(|s| s.key_id != key_id);
            }
            let at = crate::directory::after_ms(faults.removed_secret_lag_ms);
            for secret in dir.secrets.iter_mut().filter(|s| s.key_id == key_id) {
                secret.removed_at = Some(at);
            }
            Ok((StatusCode::NO_CONTENT, None))
        }
        _ => Err(bad(format!("Unsupported request {m} on an application."))),
    }
}

fn add_password(dir: &mut Directory, req: &Req<'_>, i: usize, faults: &crate::Faults) -> Out {
    req.allows(APP_WRITE, &["Application.ReadWrite.All"])?;
    if !req.has_role(APP_ROLES) {
        return Err(denied());
    }
    let restrictions = dir.policy["applicationRestrictions"]["passwordCredentials"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let enabled = |r: &&Value| r["state"] == "enabled";
    if faults.block_password_addition
        || restrictions
            .iter()
            .filter(enabled)
            .any(|r| r["restrictionType"] == "passwordAddition")
    {
        return Err(bad("Credential addition failed: adding password credentials is blocked by the tenant's app management policy (passwordAddition)."));
    }
    let pc = req
        .body_obj()?
        .get("passwordCredential")
        .cloned()
        .unwrap_or(json!({}));
    let start = Utc::now();
    let end = match pc.get("endDateTime").and_then(Value::as_str) {
        Some(e) => chrono::DateTime::parse_from_rfc3339(e)
            .map_err(|_| bad(format!("Invalid endDateTime '{e}'.")))?
            .with_timezone(&Utc),
        None => start + Duration::days(730),
    };
    if end <= start {
        return Err(bad("The credential's endDateTime must be in the future."));
    }
    for r in restrictions
        .iter()
        .filter(enabled)
        .filter(|r| r["restrictionType"] == "passwordLifetime")
    {
        if let Some(days) = r["maxLifetime"].as_str().and_then(iso_days) {
            if end - start > Duration::days(days) + Duration::minutes(5) {
                return Err(bad(format!("Credential lifetime exceeds the max value allowed as per assigned policy ({}).", r["maxLifetime"].as_str().unwrap_or_default())));
            }
        }
    }
    let (mut out, text) = dir.add_password(
        i,
        pc.get("displayName").cloned().unwrap_or(Value::Null),
        start,
        end,
        faults.secret_lag_ms,
    );
    if let Some(key_id) = out["keyId"].as_str().map(str::to_string) {
        dir.hide(&[&key_id], faults);
    }
    out["secretText"] = json!(text);
    out["@odata.context"] = json!(req.context("microsoft.graph.passwordCredential"));
    Ok((StatusCode::OK, Some(out)))
}

/// Days in an ISO 8601 duration such as `P180D` or `P1Y`.
fn iso_days(d: &str) -> Option<i64> {
    let body = d.strip_prefix('P')?;
    let (num, unit) = body.split_at(body.len().checked_sub(1)?);
    let n: i64 = num.parse().ok()?;
    match unit {
        "D" => Some(n),
        "W" => Some(n * 7),
        "M" => Some(n * 30),
        "Y" => Some(n * 365),
        _ => None,
    }
}

fn create_sp(dir: &mut Directory, req: &Req<'_>, faults: &crate::Faults) -> Out {
    req.allows(APP_WRITE, &["Application.ReadWrite.All"])?;
    if !req.has_role(APP_ROLES) {
        return Err(denied());
    }
    let app_id = req
        .body_obj()?
        .get("appId")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("Property 'appId' is required."))?
        .to_string();
    let Some(app) = dir
        .applications
        .iter()
        .find(|a| a["appId"] == app_id.as_str())
        .cloned()
    else {
        return Err(bad(format!("The appId '{app_id}' of the service principal does not reference a valid application object.")));
    };
    if dir.still_replicating(&app_id) {
        return Err(bad(format!("The appId '{app_id}' of the service principal does not reference a valid application object.")));
    }
    if dir
        .service_principals
        .iter()
        .any(|s| s["appId"] == app_id.as_str())
    {
        return Err(GraphErr::new(
            StatusCode::CONFLICT,
            "Request_MultipleObjectsWithSameKeyValue",
            "Another object with the same value for property servicePrincipalNames already exists.",
        ));
    }
    let id = new_id();
    let mut sp = json!({
        "id": id,
        "appId": app_id,
        "displayName": app["displayName"],
        "appDisplayName": app["displayName"],
        "accountEnabled": true,
        "appRoleAssignmentRequired": false,
        "servicePrincipalType": "Application",
        "servicePrincipalNames": [app_id],
        "appOwnerOrganizationId": dir.tenant_id,
        "tags": [],
        "appRoles": app["appRoles"],
        "oauth2PermissionScopes": [],
        "replyUrls": app["web"]["redirectUris"],
        "passwordCredentials": [],
        "keyCredentials": [],
    });
    if let Some(tags) = req.body_obj()?.get("tags") {
        sp["tags"] = tags.clone();
    }
    dir.hide(&[&id], faults);
    dir.service_principals.push(sp.clone());
    sp["@odata.context"] = json!(req.context("servicePrincipals/$entity"));
    Ok((StatusCode::CREATED, Some(sp)))
}

fn principal_display(dir: &Directory, tenant: &Tenant, id: &str) -> Option<(String, &'static str)> {
    if let Some(sp) = dir.service_principals.iter().find(|s| s["id"] == id) {
        return Some((
            sp["displayName"].as_str().unwrap_or_default().to_string(),
            "ServicePrincipal",
        ));
    }
    if let Some(u) = tenant.user_by_id(id) {
        return Some((u.display_name.clone(), "User"));
    }
    dir.groups.iter().find(|g| g["id"] == id).map(|g| {
        (
            g["displayName"].as_str().unwrap_or_default().to_string(),
            "Group",
        )
    })
}

fn sp_routes(
    dir: &mut Directory,
    req: &Req<'_>,
    key: &Key,
    rest: &[&str],
    tenant: &Tenant,
    faults: &crate::Faults,
    pending: &mut Option<crate::provisioning::Pending>,
) -> Out {
    let Some(i) = dir.sp_index(key) else {
        return Err(not_found(&key.describe()));
    };
    let sp_id = dir.service_principals[i]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if dir.still_replicating(&sp_id) {
        return Err(not_found(&key.describe()));
    }
    let m = req.method.as_str();
    match (m, rest) {
        ("GET", ["owners"]) => {
            req.allows(APP_READ, &["Application.Read.All"])?;
            owners_list(dir, req, tenant, &sp_id)
        }
        (_, ["owners", more @ ..]) => owner_ref(dir, req, &sp_id, more),
        (_, ["synchronization", sync @ ..]) => {
            crate::provisioning::sync_routes(dir, req, i, sync, tenant, faults, pending)
        }
        ("GET", []) => {
            req.allows(APP_READ, &["Application.Read.All"])?;
            let sp = dir.service_principals[i].clone();
            let sp = dir.strip_fresh_credentials(sp);
            one(req, "servicePrincipals", &sp)
        }
        ("PATCH", []) => {
            req.allows(APP_WRITE, &["Application.ReadWrite.All"])?;
            if !req.has_role(APP_ROLES) {
                return Err(denied());
            }
            let body = req.body_obj()?.clone();
            crate::saml::check_sp_patch(dir, i, &body)?;
            let before = dir.service_principals[i].clone();
            merge(&mut dir.service_principals[i], &body);
            if body.contains_key("keyCredentials") || body.contains_key("passwordCredentials") {
                crate::saml::apply_credentials_patch(dir, i, &before);
            }
            Ok((StatusCode::NO_CONTENT, None))
        }
        ("POST", ["addTokenSigningCertificate"]) => {
            req.allows(APP_WRITE, &["Application.ReadWrite.All"])?;
            if !req.has_role(APP_ROLES) {
                return Err(denied());
            }
            crate::saml::add_token_signing_certificate(dir, req, i, faults)
        }
        ("DELETE", []) => {
            req.allows(APP_WRITE, &["Application.ReadWrite.All"])?;
            // Reference §8a: a SAML app is removed by deleting its application.
            if dir.service_principals[i]["preferredSingleSignOnMode"] == "saml" {
                return Err(GraphErr::new(StatusCode::BAD_REQUEST, "DeletingSamlSpNotAllowed", "Deleting a service principal of a SAML application is not allowed. Delete the application instead."));
            }
            dir.delete_sp(i);
            Ok((StatusCode::NO_CONTENT, None))
        }
        ("GET", ["appRoleAssignedTo"]) => {
            req.allows(
                &[
                    "Application.Read.All",
                    "AppRoleAssignment.ReadWrite.All",
                    "Directory.Read.All",
                ],
                &["Application.Read.All"],
            )?;
            let items: Vec<Value> = dir
                .assignments
                .iter()
                .filter(|a| a["resourceId"] == sp_id.as_str())
                .cloned()
                .collect();
            list(dir, req, "servicePrincipals('x')/appRoleAssignedTo", &items)
        }
        ("GET", ["appRoleAssignments"]) => {
            req.allows(
                &[
                    "Application.Read.All",
                    "AppRoleAssignment.ReadWrite.All",
                    "Directory.Read.All",
                ],
                &["Application.Read.All"],
            )?;
            let items: Vec<Value> = dir
                .assignments
                .iter()
                .filter(|a| a["principalId"] == sp_id.as_str())
                .cloned()
                .collect();
            list(
                dir,
                req,
                "servicePrincipals('x')/appRoleAssignments",
                &items,
            )
        }
        ("POST", ["appRoleAssignedTo"]) => {
            req.allows(&["AppRoleAssignment.ReadWrite.All"], &[])?;
            let resource_is_graph = dir.service_principals[i]["appId"] == GRAPH_APP_ID;
            let allowed_roles: &[&str] = if resource_is_graph {
                &[ROLE_GLOBAL_ADMIN, ROLE_PRIVILEGED_ROLE_ADMIN]
            } else {
                CONSENT_ROLES
            };
            if !req.has_role(allowed_roles) {
                return Err(denied());
            }
            let body = req.body_obj()?.clone();
            let principal = body
                .get("principalId")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("principalId is required."))?
                .to_string();
            let role = body
                .get("appRoleId")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("appRoleId is required."))?
                .to_string();
            if body.get("resourceId").and_then(Value::as_str) != Some(sp_id.as_str()) {
                return Err(bad(
                    "The resourceId must be the service principal in the request URL.",
                ));
            }
            if dir.still_replicating(&principal) {
                return Err(bad("Not a valid reference update."));
            }
            let roles = dir.service_principals[i]["appRoles"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let role_ok = roles.iter().any(|r| r["id"] == role.as_str())
                || (roles.is_empty() && role == DEFAULT_ROLE);
            if !role_ok {
                return Err(bad(
                    "Permission being assigned was not found on application.",
                ));
            }
            let Some((principal_name, principal_type)) = principal_display(dir, tenant, &principal)
            else {
                return Err(not_found(&principal));
            };
            if principal_type == "Group" && !resource_is_graph {
                // Group assignment needs P1/P2, and only security-enabled groups can be assigned
                // (reference §9). The wording of these errors is the simulator's own.
                if tenant.licence == "Free" {
                    return Err(bad("Group-based assignment to applications requires a Microsoft Entra ID P1 or P2 license. Assign users individually instead."));
                }
                let security = dir
                    .groups
                    .iter()
                    .find(|g| g["id"] == principal.as_str())
                    .is_some_and(|g| g["securityEnabled"] == true);
                if !security {
                    return Err(bad(
                        "Only security-enabled groups can be assigned to applications.",
                    ));
                }
            }
            if dir.assignments.iter().any(|a| {
                a["principalId"] == principal.as_str()
                    && a["resourceId"] == sp_id.as_str()
                    && a["appRoleId"] == role.as_str()
            }) {
                return Err(bad(
                    "Permission being assigned already exists on the object",
                ));
            }
            let a = json!({
                "id": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes()),
                "appRoleId": role,
                "createdDateTime": now(),
                "principalDisplayName": principal_name,
                "principalId": principal,
                "principalType": principal_type,
                "resourceDisplayName": dir.service_principals[i]["displayName"],
                "resourceId": sp_id,
            });
            let id = a["id"].as_str().unwrap_or_default().to_string();
            dir.hide(&[&id], faults);
            if resource_is_graph && faults.token_role_lag_ms > 0 {
                dir.role_token_lag
                    .insert(id, crate::directory::after_ms(faults.token_role_lag_ms));
            }
            dir.assignments.push(a.clone());
            Ok((StatusCode::CREATED, Some(a)))
        }
        ("DELETE", ["appRoleAssignedTo", id]) => {
            req.allows(&["AppRoleAssignment.ReadWrite.All"], &[])?;
            let before = dir.assignments.len();
            dir.assignments
                .retain(|a| !(a["id"] == *id && a["resourceId"] == sp_id.as_str()));
            if dir.assignments.len() == before {
                return Err(not_found(id));
            }
            Ok((StatusCode::NO_CONTENT, None))
        }
        _ => Err(bad(format!(
            "Unsupported request {m} on a service principal."
        ))),
    }
}

fn create_grant(dir: &mut Directory, req: &Req<'_>, faults: &crate::Faults) -> Out {
    req.allows(&["DelegatedPermissionGrant.ReadWrite.All"], &[])?;
    if !req.has_role(CONSENT_ROLES) {
        return Err(denied());
    }
    let b = req.body_obj()?.clone();
    let field = |k: &str| b.get(k).and_then(Value::as_str).map(str::to_string);
    let client = field("clientId").ok_or_else(|| bad("clientId is required."))?;
    let resource = field("resourceId").ok_or_else(|| bad("resourceId is required."))?;
    let consent = field("consentType").unwrap_or_else(|| "AllPrincipals".into());
    let principal = field("principalId");
    let missing_ref = || {
        bad(format!("Resource '{client}' does not exist or one of its queried reference-property objects are not present."))
    };
    if dir.still_replicating(&client)
        || !dir
            .service_principals
            .iter()
            .any(|s| s["id"] == client.as_str())
    {
        return Err(missing_ref());
    }
    let Some(res) = dir
        .service_principals
        .iter()
        .find(|s| s["id"] == resource.as_str())
    else {
        return Err(missing_ref());
    };
    let known: Vec<&str> = res["oauth2PermissionScopes"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["value"].as_str()).collect())
        .unwrap_or_default();
    for s in field("scope").unwrap_or_default().split_whitespace() {
        if !known.contains(&s) {
            return Err(bad(format!("Scope '{s}' does not exist on the resource.")));
        }
    }
    let dup = dir.grants.iter().any(|g| {
        g["clientId"] == client.as_str()
            && g["resourceId"] == resource.as_str()
            && g["consentType"] == consent.as_str()
            && g["principalId"].as_str() == principal.as_deref()
    });
    if dup {
        return Err(GraphErr::new(
            StatusCode::CONFLICT,
            "Request_MultipleObjectsWithSameKeyValue",
            "Permission entry already exists.",
        ));
    }
    let g = json!({
        "id": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes()),
        "clientId": client, "consentType": consent, "principalId": principal, "resourceId": resource,
        "scope": field("scope").unwrap_or_default(),
    });
    dir.hide(&[g["id"].as_str().unwrap_or_default()], faults);
    dir.grants.push(g.clone());
    Ok((StatusCode::CREATED, Some(g)))
}

fn grant_by_id(dir: &mut Directory, req: &Req<'_>, id: &str) -> Out {
    let Some(i) = dir.grants.iter().position(|g| g["id"] == id) else {
        return Err(not_found(id));
    };
    if dir.still_replicating(id) {
        return Err(not_found(id));
    }
    match req.method.as_str() {
        "GET" => {
            req.allows(
                &[
                    "DelegatedPermissionGrant.ReadWrite.All",
                    "Directory.Read.All",
                ],
                &["Directory.Read.All"],
            )?;
            one(req, "oauth2PermissionGrants", &dir.grants[i])
        }
        "PATCH" => {
            req.allows(&["DelegatedPermissionGrant.ReadWrite.All"], &[])?;
            if !req.has_role(CONSENT_ROLES) {
                return Err(denied());
            }
            let scope = req
                .body_obj()?
                .get("scope")
                .cloned()
                .ok_or_else(|| bad("scope is required."))?;
            dir.grants[i]["scope"] = scope;
            Ok((StatusCode::NO_CONTENT, None))
        }
        "DELETE" => {
            req.allows(&["DelegatedPermissionGrant.ReadWrite.All"], &[])?;
            dir.grants.remove(i);
            Ok((StatusCode::NO_CONTENT, None))
        }
        m => Err(bad(format!("Unsupported request {m} on a grant."))),
    }
}
