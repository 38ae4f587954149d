//! The Microsoft identity platform v2.0 endpoints, as far as a desktop public client uses them.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use axum::extract::{Form, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Json;
use base64::Engine;
use chrono::{Duration, Utc};
use rand::Rng;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::fixtures::{Tenant, User, ROLE_MEMBER_USER};
use crate::tokens::AccessClaims;
use crate::world::{is_oidc_scope, AuthCode, DeviceGrant, DeviceState, RefreshGrant, World};
use crate::{apply_latency, Approval, Shared};

type Params = HashMap<String, String>;

fn random_token(len: usize) -> String {
    let bytes: Vec<u8> = (0..len).map(|_| rand::thread_rng().gen()).collect();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Microsoft's token-endpoint error shape.
fn oauth_error(status: StatusCode, error: &str, aadsts: u32, description: &str) -> Response {
    oauth_error_with(status, error, aadsts, description, None)
}

fn oauth_error_with(
    status: StatusCode,
    error: &str,
    aadsts: u32,
    description: &str,
    suberror: Option<&str>,
) -> Response {
    let trace = uuid::Uuid::new_v4();
    let correlation = uuid::Uuid::new_v4();
    let now = Utc::now().format("%Y-%m-%d %H:%M:%SZ");
    let mut body = json!({
        "error": error,
        "error_description": format!("AADSTS{aadsts}: {description} Trace ID: {trace} Correlation ID: {correlation} Timestamp: {now}"),
        "error_codes": [aadsts],
        "timestamp": now.to_string(),
        "trace_id": trace.to_string(),
        "correlation_id": correlation.to_string(),
        "error_uri": format!("https://login.microsoftonline.com/error?code={aadsts}"),
    });
    if let Some(s) = suberror {
        body["suberror"] = json!(s);
    }
    (status, Json(body)).into_response()
}

/// Every Nth request to the login endpoints (OpenID metadata, keys, token, device code) answers 429 with Retry-After
/// (see `Faults::login_throttle_every`). AADSTS90055 is Entra's TenantThrottlingError; the rest
/// of the wording is the simulator's.
fn login_throttled(world: &mut World) -> Option<Response> {
    let every = world.config.faults.login_throttle_every;
    if every == 0 {
        return None;
    }
    world.login_requests += 1;
    if world.login_requests % u64::from(every) != 0 {
        return None;
    }
    let retry_after = world.config.faults.retry_after_secs.max(1);
    let mut r = oauth_error(
        StatusCode::TOO_MANY_REQUESTS,
        "temporarily_unavailable",
        90055,
        "TenantThrottlingError: there are too many incoming requests. Retry after the time given in Retry-After.",
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from(retry_after));
    Some(r)
}

fn error_page(status: StatusCode, aadsts: u32, title: &str, detail: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=en><meta charset=utf-8><title>Sign in - simulated Entra</title>\
         <body style='font-family:sans-serif;max-width:40em;margin:3em auto'><h1>Sorry, but we're having trouble signing you in.</h1>\
         <p><strong>AADSTS{aadsts}</strong>: {title}</p><p>{detail}</p></body></html>",
        title = escape(title),
        detail = escape(detail)
    );
    (status, Html(html)).into_response()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn is_multi_tenant_alias(t: &str) -> bool {
    matches!(t.to_ascii_lowercase().as_str(), "organizations" | "common")
}

fn unknown_tenant(tenant: &str) -> Response {
    oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_tenant",
        90002,
        &format!("Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."),
    )
}

pub async fn openid_configuration(
    State(s): State<Arc<Shared>>,
    Path(tenant): Path<String>,
) -> Response {
    apply_latency(&s).await;
    let base = &s.base_url;
    let mut world = s.world();
    if let Some(throttled) = login_throttled(&mut world) {
        return throttled;
    }
    let (issuer_tid, path_tid) = if is_multi_tenant_alias(&tenant) {
        ("{tenantid}".to_string(), tenant.to_ascii_lowercase())
    } else if consumers(&tenant) {
        return unknown_tenant(&tenant);
    } else {
        match world.tenant(&tenant) {
            Some(t) => (t.id.clone(), t.id.clone()),
            None => return unknown_tenant(&tenant),
        }
    };
    let host = base.trim_start_matches("http://");
    Json(json!({
        "token_endpoint": format!("{base}/{path_tid}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/{path_tid}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": format!("{base}/{issuer_tid}/v2.0"),
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": format!("{base}/oidc/userinfo"),
        "authorization_endpoint": format!("{base}/{path_tid}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{base}/{path_tid}/oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{base}/{path_tid}/oauth2/v2.0/logout"),
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "name", "tid", "ver", "preferred_username", "oid", "email"],
        "tenant_region_scope": "NA",
        "cloud_instance_name": "simulated.entra",
        "cloud_graph_host_name": host,
        "msgraph_host": host,
        "rbac_url": base,
    }))
    .into_response()
}

fn consumers(t: &str) -> bool {
    t.eq_ignore_ascii_case("consumers")
}

pub async fn jwks(State(s): State<Arc<Shared>>) -> Response {
    apply_latency(&s).await;
    if let Some(throttled) = login_throttled(&mut s.world()) {
        return throttled;
    }
    Json(s.keys.jwks()).into_response()
}

/// Normalises a requested scope: `https://graph.microsoft.com/User.Read`, `{sim}/User.Read` and
/// `User.Read` all become `User.Read`. Scopes for other resources are refused.
fn normalise_scope(scope: &str, base: &str) -> Result<String, String> {
    if is_oidc_scope(scope) {
        return Ok(scope.to_string());
    }
    for prefix in [
        "https://graph.microsoft.com/",
        "https://graph.microsoft.us/",
        "https://microsoftgraph.chinacloudapi.cn/",
    ] {
        if let Some(rest) = scope.strip_prefix(prefix) {
            return Ok(rest.to_string());
        }
    }
    if let Some(rest) = scope.strip_prefix(&format!("{base}/")) {
        return Ok(rest.to_string());
    }
    if scope.contains("://") {
        return Err(format!(
            "The resource of scope '{scope}' is not known in this tenant."
        ));
    }
    Ok(scope.to_string())
}

fn parse_scopes(raw: &str, base: &str) -> Result<BTreeSet<String>, String> {
    raw.split_whitespace()
        .map(|s| normalise_scope(s, base))
        .collect()
}

fn is_loopback_redirect(uri: &str) -> bool {
    let Ok(u) = url::Url::parse(uri) else {
        return false;
    };
    u.scheme() == "http" && matches!(u.host_str(), Some("localhost" | "127.0.0.1"))
}

/// Validates an authorize request; on success returns the scopes, on failure the error page.
#[allow(clippy::result_large_err)]
fn validate_authorize(
    world: &World,
    tenant: &str,
    p: &Params,
    base: &str,
) -> Result<BTreeSet<String>, Response> {
    if !is_multi_tenant_alias(tenant) && world.tenant(tenant).is_none() {
        return Err(error_page(
            StatusCode::BAD_REQUEST,
            90002,
            &format!("Tenant '{tenant}' not found."),
            "Check the tenant domain or ID, and that you are signing in to the right cloud.",
        ));
    }
    let client_id = p.get("client_id").map(String::as_str).unwrap_or_default();
    if !world.config.public_clients.iter().any(|c| c == client_id) {
        return Err(error_page(StatusCode::BAD_REQUEST, 700016, &format!("Application with identifier '{client_id}' was not found in the directory."), "This can happen if the application has not been installed by the administrator of the tenant."));
    }
    let redirect = p
        .get("redirect_uri")
        .map(String::as_str)
        .unwrap_or_default();
    if !is_loopback_redirect(redirect) {
        return Err(error_page(StatusCode::BAD_REQUEST, 50011, &format!("The redirect URI '{redirect}' specified in the request does not match the redirect URIs configured for the application."), "Desktop clients must use an http://localhost or http://127.0.0.1 loopback redirect."));
    }
    if p.get("response_type").map(String::as_str) != Some("code") {
        return Err(error_page(
            StatusCode::BAD_REQUEST,
            900144,
            "The request body must contain the following parameter: 'response_type'=code.",
            "",
        ));
    }
    if p.get("code_challenge").is_none_or(String::is_empty)
        || p.get("code_challenge_method").map(String::as_str) != Some("S256")
    {
        return Err(error_page(StatusCode::BAD_REQUEST, 9002325, "Proof Key for Code Exchange is required for cross-origin authorization code redemption.", "Send code_challenge with code_challenge_method=S256."));
    }
    parse_scopes(p.get("scope").map(String::as_str).unwrap_or_default(), base)
        .map_err(|e| error_page(StatusCode::BAD_REQUEST, 70011, &e, ""))
}

fn redirect_with(redirect_uri: &str, pairs: &[(&str, &str)]) -> Response {
    match url::Url::parse(redirect_uri) {
        Ok(mut u) => {
            {
                let mut q = u.query_pairs_mut();
                for (k, v) in pairs {
                    q.append_pair(k, v);
                }
            }
            Redirect::to(u.as_str()).into_response()
        }
        Err(_) => error_page(StatusCode::BAD_REQUEST, 50011, "Invalid redirect URI.", ""),
    }
}

fn deny(p: &Params) -> Response {
    let mut pairs = vec![
        ("error", "access_denied"),
        (
            "error_description",
            "AADSTS65004: User declined to consent to access the app.",
        ),
    ];
    if let Some(state) = p.get("state") {
        pairs.push(("state", state.as_str()));
    }
    redirect_with(
        p.get("redirect_uri")
            .map(String::as_str)
            .unwrap_or_default(),
        &pairs,
    )
}

fn issue_code(
    world: &mut World,
    tenant: &Tenant,
    user: &User,
    p: &Params,
    scopes: BTreeSet<String>,
) -> Response {
    let code = random_token(48);
    let client_id = p.get("client_id").cloned().unwrap_or_default();
    world.consent(&tenant.id, &client_id, &user.id, &scopes);
    world.codes.insert(
        code.clone(),
        AuthCode {
            client_id,
            redirect_uri: p.get("redirect_uri").cloned().unwrap_or_default(),
            code_challenge: p.get("code_challenge").cloned().unwrap_or_default(),
            scopes,
            tenant_id: tenant.id.clone(),
            user_id: user.id.clone(),
            nonce: p.get("nonce").cloned(),
            expires: Utc::now() + Duration::minutes(10),
        },
    );
    let mut pairs = vec![("code", code.as_str())];
    if let Some(state) = p.get("state") {
        pairs.push(("state", state.as_str()));
    }
    let session = uuid::Uuid::new_v4().to_string();
    pairs.push(("session_state", session.as_str()));
    redirect_with(
        p.get("redirect_uri")
            .map(String::as_str)
            .unwrap_or_default(),
        &pairs,
    )
}

pub async fn authorize(
    State(s): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    Query(p): Query<Params>,
) -> Response {
    apply_latency(&s).await;
    let mut world = s.world();
    let scopes = match validate_authorize(&world, &tenant, &p, &s.base_url) {
        Ok(sc) => sc,
        Err(r) => return r,
    };
    let auto_upn = match &world.config.approval {
        Approval::Auto { upn, .. } => Some(upn.clone()),
        Approval::Interactive => None,
    };
    let Some(upn) = auto_upn else {
        return consent_page(&world, &tenant, &p, &scopes);
    };
    if world.config.faults.deny_consent {
        return deny(&p);
    }
    code_for(&mut world, &tenant, &upn, &p, scopes)
}

/// Issues a code for `upn` in `tenant`, or the error page when there is no such user.
fn code_for(
    world: &mut World,
    tenant: &str,
    upn: &str,
    p: &Params,
    scopes: BTreeSet<String>,
) -> Response {
    let Some((t, u)) = world
        .find_user(tenant, upn)
        .map(|(t, u)| (t.clone(), u.clone()))
    else {
        return error_page(
            StatusCode::BAD_REQUEST,
            50034,
            &format!("The user account {upn} does not exist in the tenant."),
            "",
        );
    };
    issue_code(world, &t, &u, p, scopes)
}

fn consent_page(world: &World, tenant: &str, p: &Params, scopes: &BTreeSet<String>) -> Response {
    let users: Vec<(String, String)> = match world.tenant(tenant) {
        Some(t) => t
            .users
            .iter()
            .map(|u| {
                (
                    u.upn.clone(),
                    format!("{} ({})", u.display_name, t.display_name),
                )
            })
            .collect(),
        None => world
            .tenants
            .iter()
            .flat_map(|t| {
                t.users.iter().map(move |u| {
                    (
                        u.upn.clone(),
                        format!("{} ({})", u.display_name, t.display_name),
                    )
                })
            })
            .collect(),
    };
    let hidden: String = p
        .iter()
        .map(|(k, v)| {
            format!(
                "<input type=hidden name=\"{}\" value=\"{}\">",
                escape(k),
                escape(v)
            )
        })
        .collect();
    let options: String = users
        .iter()
        .map(|(upn, label)| {
            format!(
                "<option value=\"{}\">{}</option>",
                escape(upn),
                escape(label)
            )
        })
        .collect();
    let scope_list: String = scopes
        .iter()
        .map(|s| format!("<li><code>{}</code></li>", escape(s)))
        .collect();
    Html(format!(
        "<!doctype html><html lang=en><meta charset=utf-8><title>Sign in - simulated Entra</title>\
         <body style='font-family:sans-serif;max-width:40em;margin:3em auto'>\
         <h1>Simulated Microsoft Entra sign-in</h1>\
         <p>An application wants to sign you in and use these permissions:</p><ul>{scope_list}</ul>\
         <form method=post action=\"authorize/decision\">{hidden}\
         <label>Sign in as <select name=sim_user>{options}</select></label>\
         <p><button name=sim_decision value=accept>Accept</button> <button name=sim_decision value=cancel>Cancel</button></p>\
         </form></body></html>"
    ))
    .into_response()
}

pub async fn authorize_decision(
    State(s): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    Form(p): Form<Params>,
) -> Response {
    apply_latency(&s).await;
    let mut world = s.world();
    let scopes = match validate_authorize(&world, &tenant, &p, &s.base_url) {
        Ok(sc) => sc,
        Err(r) => return r,
    };
    if p.get("sim_decision").map(String::as_str) != Some("accept")
        || world.config.faults.deny_consent
    {
        return deny(&p);
    }
    let upn = p.get("sim_user").cloned().unwrap_or_default();
    code_for(&mut world, &tenant, &upn, &p, scopes)
}

fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let digest = Sha256::digest(verifier.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest) == challenge
}

struct Issue<'a> {
    tenant: &'a Tenant,
    user: &'a User,
    client_id: &'a str,
    requested: &'a BTreeSet<String>,
    nonce: Option<&'a str>,
}

fn issue_tokens(s: &Shared, world: &mut World, i: &Issue<'_>) -> Response {
    let now = Utc::now().timestamp();
    let lifetime = match world.config.faults.access_token_lifetime_secs {
        0 => 3599,
        n => i64::try_from(n).unwrap_or(3599),
    };
    let consented = world.consented(&i.tenant.id, i.client_id, &i.user.id);
    let scp: Vec<String> = consented.iter().cloned().collect();
    let mut wids: Vec<String> = i
        .user
        .active_roles
        .iter()
        .map(|r| (*r).to_string())
        .collect();
    if i.user.user_type == "Member" {
        wids.push(ROLE_MEMBER_USER.to_string());
    }
    let access = AccessClaims {
        aud: s.base_url.clone(),
        iss: format!("https://sts.windows.net/{}/", i.tenant.id),
        iat: now,
        nbf: now,
        exp: now + lifetime,
        appid: i.client_id.to_string(),
        tid: i.tenant.id.clone(),
        oid: i.user.id.clone(),
        upn: i.user.upn.clone(),
        name: i.user.display_name.clone(),
        scp: scp.join(" "),
        roles: vec![],
        wids,
        ver: "1.0".into(),
        idtyp: "user".into(),
    };
    let mut granted: Vec<String> = scp.iter().map(|x| format!("{}/{x}", s.base_url)).collect();
    let mut body = json!({
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": s.keys.sign(&access),
    });
    if i.requested.contains("openid") {
        granted.push("openid".into());
        let id = json!({
            "aud": i.client_id,
            "iss": format!("{}/{}/v2.0", s.base_url, i.tenant.id),
            "iat": now, "nbf": now, "exp": now + 3600,
            "name": i.user.display_name,
            "oid": i.user.id,
            "preferred_username": i.user.upn,
            "sub": format!("sub-{}", i.user.id),
            "tid": i.tenant.id,
            "ver": "2.0",
            "nonce": i.nonce,
        });
        body["id_token"] = json!(s.keys.sign(&id));
    }
    if i.requested.contains("profile") {
        granted.push("profile".into());
    }
    if i.requested.contains("offline_access") {
        granted.push("offline_access".into());
        let rt = random_token(64);
        world.refresh_tokens.insert(
            rt.clone(),
            RefreshGrant {
                client_id: i.client_id.to_string(),
                tenant_id: i.tenant.id.clone(),
                user_id: i.user.id.clone(),
            },
        );
        body["refresh_token"] = json!(rt);
    }
    body["scope"] = json!(granted.join(" "));
    (
        StatusCode::OK,
        [(header::CACHE_CONTROL, "no-store")],
        Json(body),
    )
        .into_response()
}

/// Checks the tenant, the client and the scopes of a token or devicecode request.
#[allow(clippy::result_large_err)]
fn check_client(
    world: &World,
    tenant: &str,
    p: &Params,
    base: &str,
) -> Result<(String, BTreeSet<String>), Response> {
    if !is_multi_tenant_alias(tenant) && world.tenant(tenant).is_none() {
        return Err(unknown_tenant(tenant));
    }
    let client_id = p.get("client_id").cloned().unwrap_or_default();
    if !world.config.public_clients.contains(&client_id) {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &format!("Application with identifier '{client_id}' was not found in the directory."),
        ));
    }
    let scopes = parse_scopes(p.get("scope").map(String::as_str).unwrap_or_default(), base)
        .map_err(|e| oauth_error(StatusCode::BAD_REQUEST, "invalid_scope", 70011, &e))?;
    Ok((client_id, scopes))
}

pub async fn token(
    State(s): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    headers: axum::http::HeaderMap,
    Form(p): Form<Params>,
) -> Response {
    apply_latency(&s).await;
    if let Some(throttled) = login_throttled(&mut s.world()) {
        return throttled;
    }
    if p.get("grant_type").map(String::as_str) == Some("client_credentials") {
        let mut world = s.world();
        return client_credentials(&s, &mut world, &tenant, &p, &headers);
    }
    if p.contains_key("client_secret") {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", 700025, "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.");
    }
    let mut world = s.world();
    let (client_id, requested) = match check_client(&world, &tenant, &p, &s.base_url) {
        Ok(ok) => ok,
        Err(r) => return r,
    };
    match p.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let code = p.get("code").cloned().unwrap_or_default();
            let Some(grant) = world.codes.remove(&code) else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", 54005, "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.");
            };
            if grant.expires < Utc::now() {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", 70008, "The provided authorization code or refresh token has expired due to inactivity.");
            }
            if grant.client_id != client_id {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    70000,
                    "The provided authorization code was issued to a different client.",
                );
            }
            if p.get("redirect_uri") != Some(&grant.redirect_uri) {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    50148,
                    "The redirect_uri doesn't match the one used in the authorization request.",
                );
            }
            let verifier = p.get("code_verifier").cloned().unwrap_or_default();
            if !pkce_matches(&verifier, &grant.code_challenge) {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", 501481, "The Code_Verifier does not match the code_challenge supplied in the authorization request.");
            }
            let Some(t) = world.tenant_by_id(&grant.tenant_id).cloned() else {
                return unknown_tenant(&grant.tenant_id);
            };
            let Some(u) = t.user_by_id(&grant.user_id).cloned() else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    50034,
                    "The user account does not exist.",
                );
            };
            let mut scopes = grant.scopes.clone();
            scopes.extend(requested);
            let nonce = grant.nonce.clone();
            issue_tokens(
                &s,
                &mut world,
                &Issue {
                    tenant: &t,
                    user: &u,
                    client_id: &client_id,
                    requested: &scopes,
                    nonce: nonce.as_deref(),
                },
            )
        }
        Some("refresh_token") => {
            let rt = p.get("refresh_token").cloned().unwrap_or_default();
            let Some(grant) = world.refresh_tokens.get(&rt).cloned() else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    700082,
                    "The refresh token has expired or been revoked. Sign in again.",
                );
            };
            if grant.client_id != client_id {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    700082,
                    "The refresh token was issued to a different client.",
                );
            }
            let consented = world.consented(&grant.tenant_id, &client_id, &grant.user_id);
            let missing: Vec<&String> = requested
                .iter()
                .filter(|x| !is_oidc_scope(x) && *x != ".default" && !consented.contains(*x))
                .collect();
            if !missing.is_empty() {
                let list = missing
                    .iter()
                    .map(|m| m.as_str())
                    .collect::<Vec<_>>()
                    .join(" ");
                return oauth_error_with(StatusCode::BAD_REQUEST, "invalid_grant", 65001, &format!("The user or administrator has not consented to use the application. Send an interactive authorization request for this user and resource. Missing: {list}"), Some("consent_required"));
            }
            // Microsoft rotates refresh tokens; the old one stays valid for a while, as here.
            let Some(t) = world.tenant_by_id(&grant.tenant_id).cloned() else {
                return unknown_tenant(&grant.tenant_id);
            };
            let Some(u) = t.user_by_id(&grant.user_id).cloned() else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    50034,
                    "The user account does not exist.",
                );
            };
            let mut scopes = requested;
            scopes.insert("offline_access".into());
            issue_tokens(
                &s,
                &mut world,
                &Issue {
                    tenant: &t,
                    user: &u,
                    client_id: &client_id,
                    requested: &scopes,
                    nonce: None,
                },
            )
        }
        Some("urn:ietf:params:oauth:grant-type:device_code") => {
            device_token(&s, &mut world, &p, &client_id)
        }
        other => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            &format!(
                "The app requested an unsupported grant type '{}'.",
                other.unwrap_or("")
            ),
        ),
    }
}

fn device_token(s: &Shared, world: &mut World, p: &Params, client_id: &str) -> Response {
    let code = p.get("device_code").cloned().unwrap_or_default();
    let now = Utc::now();
    world.device_poll_times.push(now);
    let auto = match &world.config.approval {
        Approval::Auto { upn, device_polls } => Some((upn.clone(), *device_polls)),
        Approval::Interactive => None,
    };
    let slow_down = std::mem::take(&mut world.config.faults.device_slow_down_once);
    let interval = i64::try_from(world.config.device_interval_secs).unwrap_or(5);
    let Some(grant) = world.device_codes.get_mut(&code) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "bad_verification_code",
            70019,
            "Verification code was not recognised.",
        );
    };
    if grant.client_id != client_id {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            70000,
            "The device code was issued to a different client.",
        );
    }
    if grant.expires < now {
        return oauth_error(StatusCode::BAD_REQUEST, "expired_token", 70020, "The provided value for the input parameter 'device_code' is not valid. This device code has expired.");
    }
    grant.polls += 1;
    let too_fast = grant
        .last_poll
        .is_some_and(|t| (now - t).num_milliseconds() < interval * 1000 - 250);
    grant.last_poll = Some(now);
    if slow_down || too_fast {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "slow_down",
            70016,
            "Polling too fast. Increase the interval by 5 seconds.",
        );
    }
    if let (DeviceState::Pending, Some((upn, after))) = (&grant.state, &auto) {
        if grant.polls > *after {
            let user_code = grant.user_code.clone();
            let upn = upn.clone();
            if let Err(e) = world.decide_device(&user_code, Some(&upn)) {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", 50034, &e);
            }
        }
    }
    let Some(grant) = world.device_codes.get(&code) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "bad_verification_code",
            70019,
            "Verification code was not recognised.",
        );
    };
    match &grant.state {
        DeviceState::Pending => oauth_error(
            StatusCode::BAD_REQUEST,
            "authorization_pending",
            70016,
            "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
        ),
        DeviceState::Declined => {
            world.device_codes.remove(&code);
            oauth_error(
                StatusCode::BAD_REQUEST,
                "authorization_declined",
                70000,
                "The user declined the sign-in request.",
            )
        }
        DeviceState::Approved { tenant_id, user_id } => {
            let scopes = grant.scopes.clone();
            let (Some(t), Some(_)) = (world.tenant_by_id(tenant_id).cloned(), Some(())) else {
                return unknown_tenant(tenant_id);
            };
            let Some(u) = t.user_by_id(user_id).cloned() else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    50034,
                    "The user account does not exist.",
                );
            };
            world.device_codes.remove(&code);
            issue_tokens(
                s,
                world,
                &Issue {
                    tenant: &t,
                    user: &u,
                    client_id,
                    requested: &scopes,
                    nonce: None,
                },
            )
        }
    }
}

pub async fn devicecode(
    State(s): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    Form(p): Form<Params>,
) -> Response {
    apply_latency(&s).await;
    if let Some(throttled) = login_throttled(&mut s.world()) {
        return throttled;
    }
    let mut world = s.world();
    let (client_id, scopes) = match check_client(&world, &tenant, &p, &s.base_url) {
        Ok(ok) => ok,
        Err(r) => return r,
    };
    let device_code = random_token(48);
    let user_code: String = {
        const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
        let mut rng = rand::thread_rng();
        (0..9)
            .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
            .collect()
    };
    let lifetime = world.config.device_code_lifetime_secs;
    let interval = world.config.device_interval_secs;
    world.device_codes.insert(
        device_code.clone(),
        DeviceGrant {
            user_code: user_code.clone(),
            client_id,
            scopes,
            tenant_hint: (!is_multi_tenant_alias(&tenant)).then(|| tenant.clone()),
            expires: Utc::now() + Duration::seconds(i64::try_from(lifetime).unwrap_or(900)),
            state: DeviceState::Pending,
            polls: 0,
            last_poll: None,
        },
    );
    let verification_uri = format!("{}/devicelogin", s.base_url);
    Json(json!({
        "user_code": user_code,
        "device_code": device_code,
        "verification_uri": verification_uri,
        "expires_in": lifetime,
        "interval": interval,
        "message": format!("To sign in, use a web browser to open the page {verification_uri} and enter the code {user_code} to authenticate."),
    }))
    .into_response()
}

pub async fn devicelogin_page(State(s): State<Arc<Shared>>) -> Response {
    let world = s.world();
    let options: String = world
        .tenants
        .iter()
        .flat_map(|t| {
            t.users.iter().map(move |u| {
                format!(
                    "<option value=\"{}\">{} ({})</option>",
                    escape(&u.upn),
                    escape(&u.display_name),
                    escape(&t.display_name)
                )
            })
        })
        .collect();
    Html(format!(
        "<!doctype html><html lang=en><meta charset=utf-8><title>Enter code - simulated Entra</title>\
         <body style='font-family:sans-serif;max-width:40em;margin:3em auto'><h1>Enter code</h1>\
         <form method=post><label>Code <input name=user_code autofocus></label><br>\
         <label>Sign in as <select name=sim_user>{options}</select></label>\
         <p><button name=sim_decision value=accept>Continue</button> <button name=sim_decision value=cancel>Cancel</button></p></form></body></html>"
    ))
    .into_response()
}

pub async fn devicelogin_submit(State(s): State<Arc<Shared>>, Form(p): Form<Params>) -> Response {
    let code = p.get("user_code").cloned().unwrap_or_default();
    let accept = p.get("sim_decision").map(String::as_str) == Some("accept");
    let upn = p.get("sim_user").cloned().unwrap_or_default();
    let result = s
        .world()
        .decide_device(code.trim(), accept.then_some(upn.as_str()));
    let message = match (result, accept) {
        (Ok(()), true) => {
            "You have signed in. You can close this window and return to the application."
                .to_string()
        }
        (Ok(()), false) => "You declined the sign-in. You can close this window.".to_string(),
        (Err(e), _) => e,
    };
    Html(format!("<!doctype html><html lang=en><meta charset=utf-8><title>Device sign-in</title><body style='font-family:sans-serif;max-width:40em;margin:3em auto'><p>{}</p></body></html>", escape(&message))).into_response()
}

/// `client_id` and `client_secret` from the form or from HTTP Basic authentication.
fn client_auth(p: &Params, headers: &axum::http::HeaderMap) -> (String, String) {
    if let Some(basic) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    {
        if let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(basic.trim()) {
            let text = String::from_utf8_lossy(&decoded).to_string();
            if let Some((id, secret)) = text.split_once(':') {
                let dec = |x: &str| {
                    url::form_urlencoded::parse(format!("v={x}").as_bytes())
                        .next()
                        .map(|(_, v)| v.into_owned())
                        .unwrap_or_default()
                };
                return (dec(id), dec(secret));
            }
        }
    }
    (
        p.get("client_id").cloned().unwrap_or_default(),
        p.get("client_secret").cloned().unwrap_or_default(),
    )
}

/// The client-credentials grant with a client secret: an app-only token whose `roles` are the
/// Microsoft Graph application permissions granted to the app.
fn client_credentials(
    s: &Shared,
    world: &mut World,
    tenant: &str,
    p: &Params,
    headers: &axum::http::HeaderMap,
) -> Response {
    let Some(t) = world.tenant(tenant).cloned() else {
        if is_multi_tenant_alias(tenant) {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                90002,
                "Use a tenant-specific endpoint for the client credentials flow.",
            );
        }
        return unknown_tenant(tenant);
    };
    let (client_id, secret) = client_auth(p, headers);
    let scope = p.get("scope").cloned().unwrap_or_default();
    if !scope.ends_with("/.default") {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_scope", 1002012, "The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.");
    }
    let Some(dir) = world.directories.get_mut(&t.id) else {
        return unknown_tenant(tenant);
    };
    let lagging = match dir.app_token_lag.get_mut(&client_id) {
        Some(n) if *n > 0 => {
            *n -= 1;
            true
        }
        _ => false,
    };
    if lagging
        || !dir
            .applications
            .iter()
            .any(|a| a["appId"] == client_id.as_str())
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{}'.",
                t.display_name
            ),
        );
    }
    let now = Utc::now();
    let Some(found) = dir
        .secrets
        .iter_mut()
        .find(|x| x.app_id == client_id && x.text == secret)
    else {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", 7000215, &format!("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."));
    };
    if found.end < now {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", 7000222, &format!("The provided client secret keys for app '{client_id}' are expired. Visit the Azure portal to create new keys for your app."));
    }
    if found.unreplicated_attempts > 0 {
        found.unreplicated_attempts -= 1;
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", 7000215, &format!("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."));
    }
    // A removed secret keeps working until the removal reaches the token endpoint.
    if let Some(n) = found.removed_lag.as_mut() {
        *n = n.saturating_sub(1);
    }
    dir.secrets
        .retain(|x| x.removed_lag.is_none_or(|n| n > 0) || x.app_id != client_id);
    let Some(sp) = dir
        .service_principals
        .iter()
        .find(|x| x["appId"] == client_id.as_str())
        .cloned()
    else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            7000229,
            "The client application is missing a service principal in the tenant.",
        );
    };
    let graph_sp = dir.graph_sp().clone();
    let roles: Vec<String> = dir
        .assignments
        .iter()
        .filter(|a| a["principalId"] == sp["id"] && a["resourceId"] == graph_sp["id"])
        .filter(|a| {
            // A new role is not in the first tokens after it was granted.
            match dir
                .role_token_lag
                .get_mut(a["id"].as_str().unwrap_or_default())
            {
                Some(n) if *n > 0 => {
                    *n -= 1;
                    false
                }
                _ => true,
            }
        })
        .filter_map(|a| {
            graph_sp["appRoles"]
                .as_array()?
                .iter()
                .find(|r| r["id"] == a["appRoleId"])
                .and_then(|r| r["value"].as_str().map(str::to_string))
        })
        .collect();
    let iat = now.timestamp();
    let claims = AccessClaims {
        aud: s.base_url.clone(),
        iss: format!("https://sts.windows.net/{}/", t.id),
        iat,
        nbf: iat,
        exp: iat + 3599,
        appid: client_id,
        tid: t.id.clone(),
        oid: sp["id"].as_str().unwrap_or_default().to_string(),
        upn: String::new(),
        name: String::new(),
        scp: String::new(),
        roles,
        wids: vec![],
        ver: "1.0".into(),
        idtyp: "app".into(),
    };
    let body = json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": s.keys.sign(&claims)});
    (
        StatusCode::OK,
        [(header::CACHE_CONTROL, "no-store")],
        Json(body),
    )
        .into_response()
}

/// `GET /{tenant}/v2.0/adminconsent`: a Privileged Role Administrator or Global Administrator
/// consents for the organisation to everything the app's requiredResourceAccess lists.
pub async fn admin_consent(
    State(s): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    Query(p): Query<Params>,
) -> Response {
    apply_latency(&s).await;
    let mut world = s.world();
    let approver = world.config.consent_approver.clone();
    match approver {
        Some(upn) => consent_as(&mut world, &tenant, &p, &upn),
        None => {
            let Some(t) = world.tenant(&tenant) else {
                return unknown_tenant(&tenant);
            };
            let options: String = t
                .users
                .iter()
                .map(|u| {
                    format!(
                        "<option value=\"{}\">{}</option>",
                        escape(&u.upn),
                        escape(&u.display_name)
                    )
                })
                .collect();
            let hidden: String = p
                .iter()
                .map(|(k, v)| {
                    format!(
                        "<input type=hidden name=\"{}\" value=\"{}\">",
                        escape(k),
                        escape(v)
                    )
                })
                .collect();
            Html(format!(
                "<!doctype html><html lang=en><meta charset=utf-8><title>Admin consent - simulated Entra</title>\
                 <body style='font-family:sans-serif;max-width:40em;margin:3em auto'><h1>Permissions requested</h1>\
                 <p>An application asks an administrator to consent for the whole organisation.</p>\
                 <form method=post action=\"adminconsent/decision\">{hidden}<label>Consent as <select name=sim_user>{options}</select></label>\
                 <p><button name=sim_decision value=accept>Accept</button> <button name=sim_decision value=cancel>Cancel</button></p></form></body></html>"
            ))
            .into_response()
        }
    }
}

pub async fn admin_consent_decision(
    State(s): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    Form(p): Form<Params>,
) -> Response {
    apply_latency(&s).await;
    let mut world = s.world();
    if p.get("sim_decision").map(String::as_str) != Some("accept") {
        return deny(&p);
    }
    let upn = p.get("sim_user").cloned().unwrap_or_default();
    consent_as(&mut world, &tenant, &p, &upn)
}

fn consent_as(world: &mut World, tenant: &str, p: &Params, upn: &str) -> Response {
    use crate::fixtures::{ROLE_GLOBAL_ADMIN, ROLE_PRIVILEGED_ROLE_ADMIN};
    let Some(t) = world.tenant(tenant).cloned() else {
        return unknown_tenant(tenant);
    };
    let client_id = p.get("client_id").cloned().unwrap_or_default();
    let redirect = p.get("redirect_uri").cloned().unwrap_or_default();
    let Some(dir) = world.directories.get_mut(&t.id) else {
        return unknown_tenant(tenant);
    };
    let Some(app) = dir
        .applications
        .iter()
        .find(|a| a["appId"] == client_id.as_str())
        .cloned()
    else {
        return error_page(
            StatusCode::BAD_REQUEST,
            700016,
            &format!("Application with identifier '{client_id}' was not found in the directory."),
            "",
        );
    };
    let registered: Vec<&str> = app["web"]["redirectUris"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !registered.contains(&redirect.as_str()) {
        return error_page(StatusCode::BAD_REQUEST, 50011, &format!("The redirect URI '{redirect}' specified in the request does not match the redirect URIs configured for the application."), "");
    }
    let Some(user) = t.user_by_upn(upn) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            50034,
            &format!("The user account {upn} does not exist in the tenant."),
            "",
        );
    };
    if !user
        .active_roles
        .iter()
        .any(|r| *r == ROLE_GLOBAL_ADMIN || *r == ROLE_PRIVILEGED_ROLE_ADMIN)
    {
        let mut pairs = vec![
            ("error", "access_denied"),
            (
                "error_description",
                "AADSTS90094: The grant requires admin permission.",
            ),
        ];
        if let Some(state) = p.get("state") {
            pairs.push(("state", state.as_str()));
        }
        return redirect_with(&redirect, &pairs);
    }
    // Make sure the app has a service principal, then grant what it asks for.
    let sp_id = match dir
        .service_principals
        .iter()
        .find(|x| x["appId"] == client_id.as_str())
    {
        Some(sp) => sp["id"].as_str().unwrap_or_default().to_string(),
        None => {
            let id = uuid::Uuid::new_v4().to_string();
            dir.service_principals.push(json!({"id": id, "appId": client_id, "displayName": app["displayName"], "appRoles": [], "oauth2PermissionScopes": [], "tags": [], "servicePrincipalNames": [client_id], "accountEnabled": true, "appRoleAssignmentRequired": false}));
            id
        }
    };
    let graph_sp = dir.graph_sp().clone();
    let graph_id = graph_sp["id"].as_str().unwrap_or_default().to_string();
    let mut scopes: Vec<String> = vec![];
    for rra in app["requiredResourceAccess"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        if rra["resourceAppId"] != crate::directory::GRAPH_APP_ID {
            continue;
        }
        for ra in rra["resourceAccess"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let id = ra["id"].as_str().unwrap_or_default().to_string();
            if ra["type"] == "Role" {
                let exists = dir
                    .assignments
                    .iter()
                    .any(|a| a["principalId"] == sp_id.as_str() && a["appRoleId"] == id.as_str());
                if !exists {
                    dir.assignments.push(json!({
                        "id": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes()),
                        "appRoleId": id, "createdDateTime": Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                        "principalDisplayName": app["displayName"], "principalId": sp_id, "principalType": "ServicePrincipal",
                        "resourceDisplayName": "Microsoft Graph", "resourceId": graph_id,
                    }));
                }
            } else if let Some(name) = graph_sp["oauth2PermissionScopes"]
                .as_array()
                .and_then(|a| a.iter().find(|x| x["id"] == id.as_str()))
                .and_then(|x| x["value"].as_str())
            {
                scopes.push(name.to_string());
            }
        }
    }
    if !scopes.is_empty() {
        match dir.grants.iter_mut().find(|g| g["clientId"] == sp_id.as_str() && g["resourceId"] == graph_id.as_str() && g["consentType"] == "AllPrincipals") {
            Some(g) => {
                let mut have: Vec<String> = g["scope"].as_str().unwrap_or_default().split_whitespace().map(str::to_string).collect();
                for sc in scopes {
                    if !have.contains(&sc) {
                        have.push(sc);
                    }
                }
                g["scope"] = json!(have.join(" "));
            }
            None => dir.grants.push(json!({
                "id": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes()),
                "clientId": sp_id, "consentType": "AllPrincipals", "principalId": null, "resourceId": graph_id, "scope": scopes.join(" "),
            })),
        }
    }
    let mut pairs = vec![("admin_consent", "True"), ("tenant", t.id.as_str())];
    let scope = p.get("scope").cloned().unwrap_or_default();
    pairs.push(("scope", scope.as_str()));
    if let Some(state) = p.get("state") {
        pairs.push(("state", state.as_str()));
    }
    redirect_with(&redirect, &pairs)
}
