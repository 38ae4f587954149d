//! The token endpoint: authorization codes, refresh tokens, device codes, and the tokens it issues.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{Form, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use chrono::Utc;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::fixtures::{Tenant, User, ROLE_MEMBER_USER};
use crate::tokens::AccessClaims;
use crate::world::{is_oidc_scope, RefreshGrant, World};
use crate::{apply_latency, Shared};

use super::*;

pub(super) fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let digest = Sha256::digest(verifier.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest) == challenge
}

pub(super) struct Issue<'a> {
    pub(super) tenant: &'a Tenant,
    pub(super) user: &'a User,
    pub(super) client_id: &'a str,
    pub(super) requested: &'a BTreeSet<String>,
    pub(super) nonce: Option<&'a str>,
}

pub(super) fn issue_tokens(s: &Shared, world: &mut World, i: &Issue<'_>) -> Response {
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
        let mut id = id;
        if let Some(app) = world.directory_app(&i.tenant.id, i.client_id) {
            app_claims(world, app, i, &mut id);
        }
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

/// Entra puts at most this many groups in a JWT; past it, `_claim_names` points to Graph.
const JWT_GROUPS_LIMIT: usize = 200;

/// What an id token for one of the tenant's own apps carries beyond the basics: the optional
/// claims it asks for (`email`, `upn`) and its groups claim, or the overage marker.
fn app_claims(world: &World, app: &serde_json::Value, i: &Issue<'_>, id: &mut serde_json::Value) {
    let optional: Vec<&str> = app["optionalClaims"]["idToken"]
        .as_array()
        .map(|a| a.iter().filter_map(|c| c["name"].as_str()).collect())
        .unwrap_or_default();
    if optional.contains(&"email") {
        if let Some(mail) = &i.user.mail {
            id["email"] = json!(mail);
        }
    }
    if optional.contains(&"upn") && i.user.user_type == "Member" {
        id["upn"] = json!(i.user.upn);
    }
    let claim = app["groupMembershipClaims"].as_str().unwrap_or("None");
    if !matches!(claim, "SecurityGroup" | "All" | "ApplicationGroup") {
        return;
    }
    let Some(dir) = world.directories.get(&i.tenant.id) else {
        return;
    };
    let groups = crate::graph_dir::transitive_groups(dir, &i.user.id);
    if groups.len() + i.user.extra_groups as usize > JWT_GROUPS_LIMIT {
        id["_claim_names"] = json!({"groups": "src1"});
        id["_claim_sources"] = json!({"src1": {"endpoint": format!("https://graph.microsoft.com/v1.0/users/{}/getMemberObjects", i.user.id)}});
    } else {
        id["groups"] = json!(groups);
    }
}

/// Checks the tenant, the client and the scopes of a token or devicecode request.
#[allow(clippy::result_large_err)]
pub(super) fn check_client(
    world: &World,
    tenant: &str,
    p: &Params,
    base: &str,
) -> Result<(String, BTreeSet<String>), Response> {
    if !is_multi_tenant_alias(tenant) && world.tenant(tenant).is_none() {
        return Err(unknown_tenant(tenant));
    }
    let client_id = p.get("client_id").cloned().unwrap_or_default();
    if !world.config.public_clients.contains(&client_id)
        && world.directory_app(tenant, &client_id).is_none()
    {
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
            if let Some(app) = world.directory_app(&grant.tenant_id, &client_id) {
                if app_redirect(app, &grant.redirect_uri) != Some("publicClient") {
                    return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.");
                }
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
