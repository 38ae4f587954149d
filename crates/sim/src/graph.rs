//! A Microsoft Graph v1.0 subset. Every answer carries `request-id`; errors use Graph's exact
//! shape; delegated scopes in the access token are enforced as Graph does.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{json, Map, Value};

use crate::provisioning::{self, Pending};
use crate::tokens::AccessClaims;
use crate::world::{Exchange, World};
use crate::{apply_latency, Shared};

/// A Graph error before it is given its request ids.
pub struct GraphErr {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub retry_after: Option<u32>,
}

/// Graph's query rules for directory objects, which it enforces before it reads anything
/// ("Advanced query capabilities on Microsoft Entra ID objects", learn.microsoft.com/graph/
/// aad-advanced-queries; "Paging", learn.microsoft.com/graph/paging):
/// - `$top` is 1–999;
/// - `ne`, `not`, `endsWith`, a lambda on `web/redirectUris`, and an OData cast on
///   `transitiveMembers` / `transitiveMemberOf` need `ConsistencyLevel: eventual` and
///   `$count=true`; `$search` and a `/$count` segment need `ConsistencyLevel: eventual`.
fn query_rules(
    method: &Method,
    path: &str,
    query: &[(String, String)],
    headers: &HeaderMap,
) -> Result<(), GraphErr> {
    if method != Method::GET {
        return Ok(());
    }
    let param = |k: &str| {
        query
            .iter()
            .find(|(q, _)| q.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.as_str())
    };
    let unsupported =
        |m: String| GraphErr::new(StatusCode::BAD_REQUEST, "Request_UnsupportedQuery", m);
    if let Some(top) = param("$top") {
        if !top.parse::<u32>().is_ok_and(|n| (1..=999).contains(&n)) {
            return Err(GraphErr::new(
                StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                format!(
                    "Invalid page size specified: '{top}'. Must be between 1 and 999 inclusive."
                ),
            ));
        }
    }
    let eventual = headers
        .get("consistencylevel")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("eventual"));
    let counted = param("$count").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    // The filter's operators, without its quoted values (a name may say "not").
    let mut quoted = false;
    let filter: String = param("$filter")
        .unwrap_or_default()
        .chars()
        .filter(|c| {
            if *c == '\'' {
                quoted = !quoted;
            }
            !quoted && *c != '\''
        })
        .collect::<String>()
        .to_ascii_lowercase();
    let advanced_filter = [" ne ", "not(", "not ", "endswith("]
        .iter()
        .any(|op| filter.contains(op))
        || filter.contains("web/redirecturis/any(");
    let segments: Vec<&str> = path.split('/').collect();
    let cast_on_transitive = segments.windows(2).any(|w| {
        matches!(w[0], "transitiveMembers" | "transitiveMemberOf")
            && w[1].starts_with("microsoft.graph.")
    });
    if (advanced_filter || cast_on_transitive) && !(eventual && counted) {
        return Err(unsupported(
            "Unsupported Query. This query needs the advanced query parameters: the header ConsistencyLevel: eventual and $count=true.".into(),
        ));
    }
    if (param("$search").is_some() || path.ends_with("/$count")) && !eventual {
        return Err(unsupported(
            "This request needs the header ConsistencyLevel: eventual.".into(),
        ));
    }
    Ok(())
}

impl GraphErr {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }
    fn denied() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        )
    }
    fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "Request_ResourceNotFound", format!("Resource '{what}' does not exist or one of its queried reference-property objects are not present."))
    }
}

type GraphResult = Result<(StatusCode, Option<Value>), GraphErr>;

/// The request as the handlers see it.
pub struct Req<'a> {
    pub method: &'a Method,
    pub segments: Vec<String>,
    pub query: Vec<(String, String)>,
    pub body: Option<Value>,
    pub headers: &'a HeaderMap,
    pub prefer: Option<String>,
    pub claims: AccessClaims,
    pub base: &'a str,
    /// Where `@odata.nextLink`s point (`Faults::next_link_base`; the simulator itself when empty).
    pub next_link_base: String,
}

impl Req<'_> {
    fn scopes(&self) -> BTreeSet<&str> {
        self.claims.scp.split_whitespace().collect()
    }

    /// Passes when the token holds any of the scopes.
    fn require_any(&self, scopes: &[&str]) -> Result<(), GraphErr> {
        let have = self.scopes();
        if scopes.iter().any(|s| have.contains(s)) {
            Ok(())
        } else {
            Err(GraphErr::denied())
        }
    }

    pub fn header_eq(&self, name: &str, value: &str) -> bool {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case(value))
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn context(&self, fragment: &str) -> String {
        format!("{}/v1.0/$metadata#{fragment}", self.base)
    }
}

pub async fn dispatch(
    State(s): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at_ms = u64::try_from(s.world().started.elapsed().as_millis()).unwrap_or(u64::MAX);
    apply_latency(&s).await;
    let raw_path = uri
        .path()
        .strip_prefix("/v1.0")
        .unwrap_or(uri.path())
        .to_string();
    let path = percent_decode(&raw_path);
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    let shown_path = match uri.query() {
        Some(q) => format!("{path}?{}", percent_decode(q)),
        None => path.clone(),
    };
    let client_request_id = headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let request_id = uuid::Uuid::new_v4().to_string();
    let body_json: Result<Option<Value>, GraphErr> = if body.is_empty() {
        Ok(None)
    } else {
        serde_json::from_slice(&body).map(Some).map_err(|e| {
            GraphErr::new(StatusCode::BAD_REQUEST, "BadRequest", format!("Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format. ({e})"))
        })
    };
    let recorded_body = body_json.as_ref().ok().cloned().flatten();

    let (result, pending, lost) = {
        let mut world = s.world();
        let result = body_json.and_then(|b| {
            let claims = authenticate(&s, &headers)?;
            if world.config.faults.unauthorized_next > 0 {
                world.config.faults.unauthorized_next -= 1;
                return Err(GraphErr::new(
                    StatusCode::UNAUTHORIZED,
                    "InvalidAuthenticationToken",
                    "Access token has expired or is not yet valid.",
                ));
            }
            inject_faults(&mut world, &path)?;
            query_rules(&method, &path, &query, &headers)?;
            if let Some(schema) = s.schema {
                crate::schema_rules::check(schema, &method, &path, &query, b.as_ref())?;
            }
            let segments = split_path(&path);
            let prefer = headers
                .get("prefer")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let req = Req {
                method: &method,
                segments,
                query,
                body: b,
                headers: &headers,
                prefer,
                claims,
                base: &s.base_url,
                next_link_base: world.config.faults.next_link_base.clone(),
            };
            route(&mut world, &req)
        });
        let lost = result.is_ok() && lose_response(&mut world, &method, &path);
        (result, world.pending.take(), lost)
    };
    // Work that calls out over HTTP runs without the lock.
    let result = match (result, pending) {
        (Err(e), _) => Err(e),
        (ok, None) => ok,
        (_, Some(Pending::Validate { base, token })) => {
            let local = s.world().config.local_scim_reachable;
            provisioning::validate(&base, &token, local)
                .await
                .map(|()| (StatusCode::NO_CONTENT, None))
        }
        (ok, Some(Pending::Cycle { tenant, sp, job })) => {
            tokio::spawn(provisioning::run_cycle(s.clone(), tenant, sp, job));
            ok
        }
        (
            _,
            Some(Pending::OnDemand {
                tenant,
                sp,
                job,
                user,
            }),
        ) => provisioning::on_demand(s.clone(), tenant, sp, job, user).await,
    };

    // The write was made; its answer never reaches the caller (a gateway timed out).
    let result = match result {
        Ok(_) if lost => Err(GraphErr::new(
            StatusCode::GATEWAY_TIMEOUT,
            "GatewayTimeout",
            "The gateway did not receive a response from the service in time.",
        )),
        other => other,
    };
    let (status, response_body, retry_after) = match result {
        Ok((status, body)) => (status, body, None),
        Err(e) => {
            let body = json!({"error": {
                "code": e.code,
                "message": e.message,
                "innerError": {
                    "date": Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string(),
                    "request-id": request_id,
                    "client-request-id": client_request_id.clone().unwrap_or_else(|| request_id.clone()),
                }
            }});
            (e.status, Some(body), e.retry_after)
        }
    };
    s.world().exchanges.push(Exchange {
        method: method.to_string(),
        path: shown_path,
        status: status.as_u16(),
        client_request_id: client_request_id.clone(),
        request_id: request_id.clone(),
        request_body: recorded_body,
        response_body: response_body.clone(),
        at_ms,
    });
    let mut resp = match response_body {
        Some(b) => (status, axum::Json(b)).into_response(),
        None => status.into_response(),
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert("request-id", v);
    }
    if let Some(c) = client_request_id.and_then(|c| HeaderValue::from_str(&c).ok()) {
        h.insert("client-request-id", c);
    }
    if let Some(ra) = retry_after {
        h.insert("retry-after", HeaderValue::from(ra));
    }
    h.insert(
        "x-ms-ags-diagnostic",
        HeaderValue::from_static(
            r#"{"ServerInfo":{"DataCenter":"Simulated","Slice":"E","Ring":"1"}}"#,
        ),
    );
    resp
}

/// Splits a path on '/', keeping `(...)` key groups whole.
fn split_path(path: &str) -> Vec<String> {
    let mut out = vec![];
    let mut cur = String::new();
    let mut depth = 0usize;
    for c in path.chars() {
        match c {
            '(' => {
                depth += 1;
                cur.push(c);
            }
            ')' => {
                depth = depth.saturating_sub(1);
                cur.push(c);
            }
            '/' if depth == 0 => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// A query string as it reads once decoded: every parameter (the record of an exchange shows
/// the whole query, `&`s and all).
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

fn authenticate(s: &Shared, headers: &HeaderMap) -> Result<AccessClaims, GraphErr> {
    let header = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(token) = header.strip_prefix("Bearer ") else {
        return Err(GraphErr::new(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Access token is empty.",
        ));
    };
    s.keys
        .verify_access(token.trim(), &s.base_url)
        .map_err(|m| GraphErr::new(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", m))
}

/// Whether this request's answer is to be lost (see `Faults::lose_responses`); counts it.
fn lose_response(world: &mut World, method: &Method, path: &str) -> bool {
    let found = world.config.faults.lose_responses.iter_mut().find(|l| {
        l.count > 0
            && l.method.eq_ignore_ascii_case(method.as_str())
            && path.ends_with(&l.path_suffix)
    });
    match found {
        Some(l) => {
            l.count -= 1;
            true
        }
        None => false,
    }
}

fn inject_faults(world: &mut World, path: &str) -> Result<(), GraphErr> {
    world.graph_requests += 1;
    let n = world.graph_requests;
    let f = world.config.faults.clone();
    let retry_after = f.retry_after_secs.max(1);
    if f.throttle_every > 0 && n.is_multiple_of(u64::from(f.throttle_every)) {
        let mut e = GraphErr::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "Too many requests.",
        );
        e.retry_after = Some(retry_after);
        return Err(e);
    }
    if f.unavailable_every > 0 && n.is_multiple_of(u64::from(f.unavailable_every)) {
        let mut e = GraphErr::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "serviceNotAvailable",
            "The service is temporarily unavailable. Please retry later.",
        );
        e.retry_after = Some(retry_after);
        return Err(e);
    }
    if !f.fail_path_prefix.is_empty() && path.starts_with(&f.fail_path_prefix) {
        return Err(GraphErr::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "Simulated failure: the connection to the directory was lost.",
        ));
    }
    for fault in &f.not_found_first {
        if path.starts_with(&fault.path_prefix) {
            let served = world
                .not_found_served
                .entry(fault.path_prefix.clone())
                .or_default();
            if *served < fault.count {
                *served += 1;
                return Err(GraphErr::not_found(path));
            }
        }
    }
    Ok(())
}

fn route(world: &mut World, req: &Req<'_>) -> GraphResult {
    let segs: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    let tenant = world
        .tenant_by_id(&req.claims.tid)
        .cloned()
        .ok_or_else(|| {
            GraphErr::new(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                "The tenant of this token is unknown.",
            )
        })?;
    let get = *req.method == Method::GET;
    match segs.as_slice() {
        ["organization"] if get => {
            req.require_any(&[
                "User.Read",
                "Organization.Read.All",
                "Directory.Read.All",
                "Organization.ReadWrite.All",
            ])?;
            let org = select(tenant.organization_json(), req);
            ok_collection(req, "organization", vec![org])
        }
        ["me"] if get => {
            req.require_any(&[
                "User.Read",
                "User.ReadBasic.All",
                "User.Read.All",
                "Directory.Read.All",
            ])?;
            let me = tenant
                .user_by_id(&req.claims.oid)
                .ok_or_else(|| GraphErr::not_found(&req.claims.oid))?;
            let mut v = select(me.to_json(), req);
            if let Some(o) = v.as_object_mut() {
                o.insert("@odata.context".into(), json!(req.context("users/$entity")));
            }
            Ok((StatusCode::OK, Some(v)))
        }
        ["me", nav @ ("memberOf" | "transitiveMemberOf"), "microsoft.graph.directoryRole"]
            if get =>
        {
            req.require_any(&[
                "User.Read",
                "Directory.Read.All",
                "RoleManagement.Read.Directory",
            ])?;
            let me = tenant
                .user_by_id(&req.claims.oid)
                .ok_or_else(|| GraphErr::not_found(&req.claims.oid))?;
            let can_read_roles = req
                .require_any(&[
                    "Directory.Read.All",
                    "RoleManagement.Read.Directory",
                    "Directory.AccessAsUser.All",
                ])
                .is_ok();
            let roles: Vec<Value> = me
                .active_roles
                .iter()
                .map(|r| {
                    let full = tenant.directory_role_json(r);
                    if can_read_roles {
                        let mut v = select(full, req);
                        if let Some(o) = v.as_object_mut() {
                            o.insert(
                                "@odata.type".into(),
                                json!("#microsoft.graph.directoryRole"),
                            );
                        }
                        v
                    } else {
                        // Graph returns only the type and id of objects the caller may not read.
                        json!({"@odata.type": "#microsoft.graph.directoryRole", "id": full["id"]})
                    }
                })
                .collect();
            ok_collection(req, &format!("directoryRoles ({nav})"), roles)
        }
        ["roleManagement", "directory", "roleEligibilityScheduleInstances"] if get => {
            req.require_any(&[
                "RoleManagement.Read.Directory",
                "RoleEligibilitySchedule.Read.Directory",
                "RoleManagement.ReadWrite.Directory",
            ])?;
            if !tenant.has_p2() {
                return Err(GraphErr::new(StatusCode::FORBIDDEN, "AadPremiumLicenseRequired", "The tenant needs to have a Microsoft Entra ID P2 or Microsoft Entra ID Governance license."));
            }
            let principal = req
                .param("$filter")
                .and_then(|f| f.split('\'').nth(1))
                .ok_or_else(|| {
                    GraphErr::new(
                        StatusCode::BAD_REQUEST,
                        "BadRequest",
                        "A $filter on principalId is required.",
                    )
                })?;
            let user = tenant.user_by_id(principal);
            let items = user
                .map(|u| {
                    u.eligible_roles
                        .iter()
                        .map(|r| {
                            select(
                                json!({
                                    "id": format!("{}-{}", &r[..8], &u.id[..8]),
                                    "principalId": u.id,
                                    "roleDefinitionId": r,
                                    "directoryScopeId": "/",
                                    "memberType": "Direct",
                                    "startDateTime": "2026-01-01T00:00:00Z",
                                    "endDateTime": null,
                                    "roleEligibilityScheduleId": format!("{r}-eligibility"),
                                }),
                                req,
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            ok_collection(
                req,
                "roleManagement/directory/roleEligibilityScheduleInstances",
                items,
            )
        }
        ["subscribedSkus"] if get => {
            req.require_any(&[
                "LicenseAssignment.Read.All",
                "Organization.Read.All",
                "Directory.Read.All",
                "Organization.ReadWrite.All",
            ])?;
            let skus = tenant
                .skus
                .iter()
                .cloned()
                .map(|v| select(v, req))
                .collect();
            ok_collection(req, "subscribedSkus", skus)
        }
        _ => {
            if let Some(out) = crate::graph_dir::route(world, req, &tenant) {
                return out;
            }
            Err(GraphErr::new(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                format!(
                    "Resource not found for the segment '{}'.",
                    segs.last().copied().unwrap_or_default()
                ),
            ))
        }
    }
}

fn ok_collection(req: &Req<'_>, context: &str, items: Vec<Value>) -> GraphResult {
    Ok((
        StatusCode::OK,
        Some(json!({"@odata.context": req.context(context), "value": items})),
    ))
}

/// Applies `$select`: keeps `id`, annotations and the selected properties.
fn select(v: Value, req: &Req<'_>) -> Value {
    let Some(sel) = req.param("$select") else {
        return v;
    };
    let wanted: Vec<&str> = sel.split(',').map(str::trim).collect();
    match v {
        Value::Object(o) => {
            let kept: Map<String, Value> = o
                .into_iter()
                .filter(|(k, _)| {
                    k == "id"
                        || k.starts_with('@')
                        || wanted.iter().any(|w| w.eq_ignore_ascii_case(k))
                })
                .collect();
            Value::Object(kept)
        }
        other => other,
    }
}
