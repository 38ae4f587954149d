//! The tenant's OpenID configuration and its signing keys.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::{apply_latency, Shared};

use super::*;

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

pub(super) fn consumers(t: &str) -> bool {
    t.eq_ignore_ascii_case("consumers")
}

pub async fn jwks(State(s): State<Arc<Shared>>) -> Response {
    apply_latency(&s).await;
    if let Some(throttled) = login_throttled(&mut s.world()) {
        return throttled;
    }
    Json(s.keys.jwks()).into_response()
}

/// An app's SAML federation metadata (reference §8b step 5).
pub async fn federation_metadata(
    State(s): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    axum::extract::Query(q): axum::extract::Query<Params>,
) -> Response {
    apply_latency(&s).await;
    let base = s.base_url.clone();
    let mut world = s.world();
    if let Some(throttled) = login_throttled(&mut world) {
        return throttled;
    }
    let Some(t) = world.tenant(&tenant).cloned() else {
        return unknown_tenant(&tenant);
    };
    let Some(app_id) = q.get("appid") else {
        return (axum::http::StatusCode::BAD_REQUEST, "appid is required").into_response();
    };
    let xml = world
        .directories
        .get(&t.id)
        .and_then(|d| crate::saml::federation_metadata(d, &base, &t.id, app_id));
    match xml {
        Some(x) => (
            [(
                axum::http::header::CONTENT_TYPE,
                "application/xml; charset=utf-8",
            )],
            x,
        )
            .into_response(),
        None => oauth_error(
            axum::http::StatusCode::BAD_REQUEST,
            "invalid_request",
            700016,
            &format!(
                "Application with identifier '{app_id}' was not found in the directory '{}'.",
                t.id
            ),
        ),
    }
}
