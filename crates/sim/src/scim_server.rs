//! A small SCIM 2.0 service provider (RFC 7643/7644 subset): the provider side of provisioning
//! in demo mode, and a server whose faults the tests choose (no auth, 404 on the probe, the wrong
//! content type, case-sensitive PATCH ops, string `active` refused, no 409, a redirect to a login
//! page, no-path replace refused).
//!
//! Healthy, it accepts what Entra sends in both PATCH dialects (reference §11 "Server rules"):
//! ops in any case, `active` as a bool or "True"/"False", no-path replace with dotted keys, member
//! removal with a value list or a path filter.

// Handlers answer with the `Err` response as is; boxing it buys nothing in a test server.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// The bearer token the demo's SCIM endpoint accepts.
pub const DEMO_SCIM_TOKEN: &str = "demo-scim-token-7f3a9c";

/// Faults a test can give the server.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct ScimFaults {
    /// Any request is served, with or without a token.
    pub no_auth: bool,
    /// Collection queries answer 404 (a wrong SCIM path).
    pub probe_404: bool,
    /// The Content-Type of answers (default `application/scim+json`).
    pub content_type: Option<String>,
    /// PATCH ops must be lower case (`Replace` is refused).
    pub lowercase_ops_only: bool,
    /// `active` as the string "False" is refused.
    pub reject_string_active: bool,
    /// A duplicate userName or displayName is accepted.
    pub allow_duplicates: bool,
    /// Every request is redirected to a login page (a proxy in front of the endpoint).
    pub redirect_to_login: bool,
    /// PATCH replace without a path is refused.
    pub reject_no_path_replace: bool,
    /// A create listing a schema the server does not know (such as Entra's legacy Group
    /// schema) is refused, as strict servers do.
    pub reject_unknown_schemas: bool,
    /// Member removal with a value list (Entra's default) is refused: only a
    /// `members[value eq "…"]` path works.
    pub reject_value_list_removal: bool,
    /// Member removal by a `members[value eq "…"]` path (the aadOptscim062020 form) is refused.
    pub reject_path_filter_removal: bool,
    /// The Groups collection answers 404 (a server that only knows users).
    pub groups_404: bool,
}

#[derive(Default)]
struct Store {
    users: BTreeMap<String, Value>,
    groups: BTreeMap<String, Value>,
    requests: u64,
}

/// A running SCIM service provider's state: its token, faults and resources.
#[derive(Clone)]
pub struct ScimService {
    token: Arc<Mutex<String>>,
    faults: Arc<Mutex<ScimFaults>>,
    store: Arc<Mutex<Store>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl ScimService {
    pub fn new(token: &str, faults: ScimFaults) -> Self {
        Self {
            token: Arc::new(Mutex::new(token.to_string())),
            faults: Arc::new(Mutex::new(faults)),
            store: Arc::new(Mutex::new(Store::default())),
        }
    }

    pub fn set_faults(&self, f: ScimFaults) {
        *lock(&self.faults) = f;
    }

    /// Replaces the accepted token (as "Regenerate secret" at a provider does).
    pub fn set_token(&self, token: &str) {
        *lock(&self.token) = token.to_string();
    }

    /// The users provisioned so far.
    pub fn users(&self) -> Vec<Value> {
        lock(&self.store).users.values().cloned().collect()
    }

    /// The groups provisioned so far.
    pub fn groups(&self) -> Vec<Value> {
        lock(&self.store).groups.values().cloned().collect()
    }

    /// Requests served so far.
    pub fn requests(&self) -> u64 {
        lock(&self.store).requests
    }

    /// The routes, to be nested under the SCIM base path.
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        Router::new()
            .route("/ServiceProviderConfig", get(service_provider_config))
            .route("/Schemas", get(schemas))
            .route("/ResourceTypes", get(resource_types))
            .route("/{kind}", get(collection).post(create))
            .route("/{kind}/{id}", get(one).patch(one).put(one).delete(one))
            .with_state(self.clone())
    }
}

/// A SCIM server on its own port, for tests. Dropping it stops the server.
pub struct RunningScim {
    /// The SCIM base URL, e.g. `http://127.0.0.1:41234/scim/v2`.
    pub url: String,
    pub service: ScimService,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for RunningScim {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// Serves a SCIM endpoint at `http://127.0.0.1:{port}/scim/v2`.
pub async fn serve(token: &str, faults: ScimFaults) -> std::io::Result<RunningScim> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/scim/v2", listener.local_addr()?);
    let service = ScimService::new(token, faults);
    let app = Router::new().nest("/scim/v2", service.router());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await;
    });
    Ok(RunningScim {
        url,
        service,
        stop: Some(tx),
    })
}

fn scim_json(status: StatusCode, body: Value, f: &ScimFaults) -> Response {
    let ct = f
        .content_type
        .clone()
        .unwrap_or_else(|| "application/scim+json".into());
    (status, [("content-type", ct)], body.to_string()).into_response()
}

fn error(status: StatusCode, scim_type: Option<&str>, detail: &str, f: &ScimFaults) -> Response {
    let mut body =
        json!({"schemas": [ERROR], "status": status.as_u16().to_string(), "detail": detail});
    if let Some(t) = scim_type {
        body["scimType"] = json!(t);
    }
    scim_json(status, body, f)
}

/// Redirects, authentication; counts the request. `Err` is the answer to send.
fn guard(s: &ScimService, h: &HeaderMap) -> Result<ScimFaults, Response> {
    lock(&s.store).requests += 1;
    let f = lock(&s.faults).clone();
    if f.redirect_to_login {
        return Err((
            StatusCode::FOUND,
            [(
                "location",
                "https://login.example.invalid/signin?return=/scim",
            )],
        )
            .into_response());
    }
    let want = format!("Bearer {}", lock(&s.token));
    let ok = h.get("authorization").and_then(|v| v.to_str().ok()) == Some(want.as_str());
    if !ok && !f.no_auth {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            None,
            "Authorization failure. The authorization header is invalid or missing.",
            &f,
        ));
    }
    Ok(f)
}

fn kind_key(kind: &str) -> Option<(&'static str, &'static str)> {
    match kind {
        "Users" => Some(("userName", "User")),
        "Groups" => Some(("displayName", "Group")),
        _ => None,
    }
}

/// `attr eq "value"` clauses joined by `and`: (attribute, lower-cased value) pairs.
fn parse_filter(f: &str) -> Vec<(String, String)> {
    f.split(" and ")
        .filter_map(|c| {
            let (attr, rest) = c.trim().split_once(' ')?;
            let (op, value) = rest.trim().split_once(' ')?;
            op.eq_ignore_ascii_case("eq").then(|| {
                (
                    attr.to_string(),
                    value.trim().trim_matches('"').to_lowercase(),
                )
            })
        })
        .collect()
}

fn attr_value(v: &Value, attr: &str) -> Option<String> {
    if attr.starts_with("emails") {
        return v["emails"]
            .as_array()
            .and_then(|a| a.first())
            .and_then(|e| e["value"].as_str())
            .map(str::to_lowercase);
    }
    v[attr].as_str().map(str::to_lowercase)
}

fn without_members(mut v: Value, q: &BTreeMap<String, String>) -> Value {
    if q.get("excludedAttributes")
        .is_some_and(|e| e.split(',').any(|a| a.trim() == "members"))
    {
        if let Some(o) = v.as_object_mut() {
            o.remove("members");
        }
    }
    v
}

async fn collection(
    State(s): State<ScimService>,
    Path(kind): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
    h: HeaderMap,
) -> Response {
    let f = match guard(&s, &h) {
        Ok(f) => f,
        Err(r) => return r,
    };
    if f.probe_404 || (f.groups_404 && kind == "Groups") {
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    }
    let Some(_) = kind_key(&kind) else {
        return error(StatusCode::NOT_FOUND, None, "Unknown resource type.", &f);
    };
    let store = lock(&s.store);
    let items = if kind == "Users" {
        &store.users
    } else {
        &store.groups
    };
    let clauses = q.get("filter").map(|f| parse_filter(f)).unwrap_or_default();
    let found: Vec<Value> = items
        .values()
        .filter(|v| {
            clauses
                .iter()
                .all(|(a, want)| attr_value(v, a).as_ref() == Some(want))
        })
        .cloned()
        .map(|v| without_members(v, &q))
        .collect();
    let start = q
        .get("startIndex")
        .and_then(|x| x.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let count = q
        .get("count")
        .and_then(|x| x.parse::<usize>().ok())
        .unwrap_or(100);
    let page: Vec<Value> = found.iter().skip(start - 1).take(count).cloned().collect();
    scim_json(
        StatusCode::OK,
        json!({"schemas": [LIST], "totalResults": found.len(), "startIndex": start, "itemsPerPage": page.len(), "Resources": page}),
        &f,
    )
}

async fn create(
    State(s): State<ScimService>,
    Path(kind): Path<String>,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    let f = match guard(&s, &h) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let Some((key, resource_type)) = kind_key(&kind) else {
        return error(StatusCode::NOT_FOUND, None, "Unknown resource type.", &f);
    };
    let Ok(mut v) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            Some("invalidSyntax"),
            "The body is not JSON.",
            &f,
        );
    };
    if f.reject_unknown_schemas {
        let known = [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
            "urn:ietf:params:scim:schemas:core:2.0:Group",
        ];
        if let Some(unknown) = v["schemas"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .find(|x| !known.contains(x))
        {
            return error(
                StatusCode::BAD_REQUEST,
                Some("invalidValue"),
                &format!("Unknown schema '{unknown}'."),
                &f,
            );
        }
    }
    let Some(name) = v[key].as_str().map(str::to_lowercase) else {
        return error(
            StatusCode::BAD_REQUEST,
            Some("invalidValue"),
            &format!("{key} is required."),
            &f,
        );
    };
    let mut store = lock(&s.store);
    let items = if kind == "Users" {
        &mut store.users
    } else {
        &mut store.groups
    };
    if !f.allow_duplicates
        && items
            .values()
            .any(|x| x[key].as_str().map(str::to_lowercase).as_deref() == Some(name.as_str()))
    {
        return error(
            StatusCode::CONFLICT,
            Some("uniqueness"),
            &format!("A resource with this {key} already exists."),
            &f,
        );
    }
    let id = uuid::Uuid::new_v4().to_string();
    v["id"] = json!(id);
    if let Some(a) = v["active"].as_str() {
        v["active"] = json!(a.eq_ignore_ascii_case("true"));
    }
    if kind == "Groups" && v["members"].is_null() {
        v["members"] = json!([]);
    }
    v["meta"] = json!({"resourceType": resource_type, "created": chrono::Utc::now().to_rfc3339(), "location": format!("{kind}/{id}")});
    items.insert(id, v.clone());
    scim_json(StatusCode::CREATED, v, &f)
}

/// Applies one PATCH operation; `Err` is a SCIM error answer.
fn patch_op(target: &mut Value, op: &Value, f: &ScimFaults) -> Result<(), Response> {
    let name = op["op"].as_str().unwrap_or_default();
    if f.lowercase_ops_only && name != name.to_lowercase() {
        return Err(error(
            StatusCode::BAD_REQUEST,
            Some("invalidSyntax"),
            &format!("Unknown op '{name}'."),
            f,
        ));
    }
    let path = op["path"].as_str();
    let value = &op["value"];
    match (name.to_lowercase().as_str(), path) {
        ("add" | "replace", Some("members")) => {
            let mut m = target["members"].as_array().cloned().unwrap_or_default();
            for new in value.as_array().cloned().unwrap_or_default() {
                if !m.iter().any(|x| x["value"] == new["value"]) {
                    m.push(json!({"value": new["value"]}));
                }
            }
            target["members"] = json!(m);
        }
        ("remove", Some(p)) if p.starts_with("members") => {
            let by_filter = p.contains('[');
            if (by_filter && f.reject_path_filter_removal)
                || (!by_filter && f.reject_value_list_removal)
            {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    Some("invalidPath"),
                    &format!("This server does not support member removal with path '{p}'."),
                    f,
                ));
            }
            let drop: Vec<Value> = match p.split('"').nth(1) {
                Some(one) => vec![json!(one)],
                None => value
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|x| x["value"].clone())
                    .collect(),
            };
            let m: Vec<Value> = target["members"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|x| !drop.contains(&x["value"]))
                .collect();
            target["members"] = json!(m);
        }
        (_, Some("active")) => {
            if value.is_string() && f.reject_string_active {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    Some("invalidValue"),
                    "active must be a boolean.",
                    f,
                ));
            }
            target["active"] = match value.as_str() {
                Some(s) => json!(s.eq_ignore_ascii_case("true")),
                None => value.clone(),
            };
        }
        (_, Some(p)) => set_path(target, p, value.clone()),
        (_, None) => {
            if f.reject_no_path_replace {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    Some("noTarget"),
                    "A path is required.",
                    f,
                ));
            }
            for (k, v) in value.as_object().cloned().unwrap_or_default() {
                set_path(target, &k, v);
            }
        }
    }
    Ok(())
}

/// Sets `a`, `a.b` or `emails[type eq "work"].value`.
fn set_path(target: &mut Value, path: &str, value: Value) {
    if let Some((coll, rest)) = path.split_once('[') {
        let sub = rest.rsplit_once("].").map(|(_, s)| s).unwrap_or("value");
        let mut arr = target[coll].as_array().cloned().unwrap_or_default();
        match arr.first_mut() {
            Some(first) => first[sub] = value,
            None => arr.push(json!({ sub: value, "type": "work", "primary": true })),
        }
        target[coll] = json!(arr);
        return;
    }
    if path.starts_with("urn:") {
        target[path] = value;
        return;
    }
    match path.split_once('.') {
        Some((a, b)) => target[a][b] = value,
        None => target[path] = value,
    }
}

async fn one(
    State(s): State<ScimService>,
    Path((kind, id)): Path<(String, String)>,
    Query(q): Query<BTreeMap<String, String>>,
    h: HeaderMap,
    method: Method,
    body: Bytes,
) -> Response {
    let f = match guard(&s, &h) {
        Ok(f) => f,
        Err(r) => return r,
    };
    if kind_key(&kind).is_none() {
        return error(StatusCode::NOT_FOUND, None, "Unknown resource type.", &f);
    }
    let mut store = lock(&s.store);
    let items = if kind == "Users" {
        &mut store.users
    } else {
        &mut store.groups
    };
    let missing = |f: &ScimFaults| {
        error(
            StatusCode::NOT_FOUND,
            None,
            &format!("Resource {id} not found."),
            f,
        )
    };
    match method.as_str() {
        "GET" => match items.get(&id) {
            Some(v) => scim_json(StatusCode::OK, without_members(v.clone(), &q), &f),
            None => missing(&f),
        },
        "DELETE" => match items.remove(&id) {
            Some(_) => StatusCode::NO_CONTENT.into_response(),
            None => missing(&f),
        },
        "PUT" => {
            let Some(target) = items.get_mut(&id) else {
                return missing(&f);
            };
            let Ok(mut v) = serde_json::from_slice::<Value>(&body) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    Some("invalidSyntax"),
                    "The body is not JSON.",
                    &f,
                );
            };
            v["id"] = json!(id);
            v["meta"] = target["meta"].clone();
            *target = v;
            scim_json(StatusCode::OK, target.clone(), &f)
        }
        "PATCH" => {
            let Some(target) = items.get_mut(&id) else {
                return missing(&f);
            };
            let msg: Value = serde_json::from_slice(&body).unwrap_or(json!({}));
            let Some(ops) = msg["Operations"].as_array() else {
                return error(
                    StatusCode::BAD_REQUEST,
                    Some("invalidSyntax"),
                    "Operations is required.",
                    &f,
                );
            };
            let mut changed = target.clone();
            for op in ops {
                if let Err(r) = patch_op(&mut changed, op, &f) {
                    return r;
                }
            }
            *target = changed;
            if kind == "Groups" {
                StatusCode::NO_CONTENT.into_response()
            } else {
                scim_json(StatusCode::OK, target.clone(), &f)
            }
        }
        _ => StatusCode::METHOD_NOT_ALLOWED.into_response(),
    }
}

async fn service_provider_config(State(s): State<ScimService>, h: HeaderMap) -> Response {
    let f = lock(&s.faults).clone();
    if f.redirect_to_login {
        return match guard(&s, &h) {
            Err(r) => r,
            Ok(f) => scim_json(StatusCode::OK, json!({}), &f),
        };
    }
    scim_json(
        StatusCode::OK,
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "patch": {"supported": true},
            "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
            "filter": {"supported": true, "maxResults": 100},
            "changePassword": {"supported": false},
            "sort": {"supported": false},
            "etag": {"supported": false},
            "authenticationSchemes": [{"type": "oauthbearertoken", "name": "OAuth Bearer Token", "description": "A long-lived bearer token"}]
        }),
        &f,
    )
}

async fn schemas(State(s): State<ScimService>, h: HeaderMap) -> Response {
    match guard(&s, &h) {
        Err(r) => r,
        Ok(f) => scim_json(
            StatusCode::OK,
            json!({"schemas": [LIST], "totalResults": 2, "Resources": [
                {"id": "urn:ietf:params:scim:schemas:core:2.0:User", "name": "User"},
                {"id": "urn:ietf:params:scim:schemas:core:2.0:Group", "name": "Group"}
            ]}),
            &f,
        ),
    }
}

async fn resource_types(State(s): State<ScimService>, h: HeaderMap) -> Response {
    match guard(&s, &h) {
        Err(r) => r,
        Ok(f) => scim_json(
            StatusCode::OK,
            json!({"schemas": [LIST], "totalResults": 2, "Resources": [
                {"id": "User", "name": "User", "endpoint": "/Users", "schema": "urn:ietf:params:scim:schemas:core:2.0:User"},
                {"id": "Group", "name": "Group", "endpoint": "/Groups", "schema": "urn:ietf:params:scim:schemas:core:2.0:Group"}
            ]}),
            &f,
        ),
    }
}
