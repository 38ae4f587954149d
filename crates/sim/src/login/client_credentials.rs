//! App-only tokens with a client secret (client credentials).

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use chrono::Utc;
use serde_json::json;

use crate::tokens::AccessClaims;
use crate::world::World;
use crate::Shared;

use super::*;

/// `client_id` and `client_secret` from the form or from HTTP Basic authentication.
pub(super) fn client_auth(p: &Params, headers: &axum::http::HeaderMap) -> (String, String) {
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
pub(super) fn client_credentials(
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
    let now_mono = crate::directory::Instant::now();
    let lagging = dir
        .app_token_lag
        .get(&client_id)
        .is_some_and(|until| now_mono < *until);
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
    if now_mono < found.usable_from {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", 7000215, &format!("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."));
    }
    // A removed secret keeps working until the removal reaches the token endpoint.
    if found.removed_at.is_some_and(|at| at <= now_mono) {
        dir.secrets
            .retain(|x| x.removed_at.is_none_or(|at| at > now_mono));
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", 7000215, &format!("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."));
    }
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
            dir.role_token_lag
                .get(a["id"].as_str().unwrap_or_default())
                .is_none_or(|until| *until <= now_mono)
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
