//! The authorization endpoint: the sign-in and consent pages, codes with PKCE.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{Duration, Utc};

use crate::fixtures::{Tenant, User};
use crate::world::{is_oidc_scope, AuthCode, World};
use crate::{apply_latency, Approval, Shared};

use super::*;

/// Normalises a requested scope: `https://graph.microsoft.com/User.Read`, `{sim}/User.Read` and
/// `User.Read` all become `User.Read`. Scopes for other resources are refused.
pub(super) fn normalise_scope(scope: &str, base: &str) -> Result<String, String> {
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

pub(super) fn parse_scopes(raw: &str, base: &str) -> Result<BTreeSet<String>, String> {
    raw.split_whitespace()
        .map(|s| normalise_scope(s, base))
        .collect()
}

/// Where an app registered `uri`: `publicClient` (mobile and desktop: codes redeem without a
/// secret), `web` (a secret is needed) or `spa`.
pub(super) fn app_redirect(app: &serde_json::Value, uri: &str) -> Option<&'static str> {
    ["publicClient", "web", "spa"].into_iter().find(|platform| {
        app[*platform]["redirectUris"]
            .as_array()
            .is_some_and(|a| a.iter().any(|u| u.as_str() == Some(uri)))
    })
}

pub(super) fn is_loopback_redirect(uri: &str) -> bool {
    let Ok(u) = url::Url::parse(uri) else {
        return false;
    };
    u.scheme() == "http" && matches!(u.host_str(), Some("localhost" | "127.0.0.1"))
}

/// Validates an authorize request; on success returns the scopes, on failure the error page.
#[allow(clippy::result_large_err)]
pub(super) fn validate_authorize(
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
    let redirect = p
        .get("redirect_uri")
        .map(String::as_str)
        .unwrap_or_default();
    if let Some(app) = world.directory_app(tenant, client_id) {
        // An app of the tenant: the redirect URI must be one it registered (any platform).
        let known = world
            .directory_of(tenant)
            .is_none_or(|d| d.redirect_known(redirect));
        if app_redirect(app, redirect).is_none() || !known {
            return Err(error_page(StatusCode::BAD_REQUEST, 50011, &format!("The redirect URI '{redirect}' specified in the request does not match the redirect URIs configured for the application '{client_id}'."), "Make sure the redirect URI sent in the request matches one added to your application in the Azure portal."));
        }
    } else if !world.config.public_clients.iter().any(|c| c == client_id) {
        return Err(error_page(StatusCode::BAD_REQUEST, 700016, &format!("Application with identifier '{client_id}' was not found in the directory."), "This can happen if the application has not been installed by the administrator of the tenant."));
    } else if !is_loopback_redirect(redirect) {
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

pub(super) fn redirect_with(redirect_uri: &str, pairs: &[(&str, &str)]) -> Response {
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

pub(super) fn deny(p: &Params) -> Response {
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

pub(super) fn issue_code(
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
pub(super) fn code_for(
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

pub(super) fn consent_page(
    world: &World,
    tenant: &str,
    p: &Params,
    scopes: &BTreeSet<String>,
) -> Response {
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
    let hidden = hidden_inputs(p);
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
