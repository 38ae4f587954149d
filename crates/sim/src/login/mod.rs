//! The Microsoft identity platform v2.0 endpoints, as far as a desktop public client uses them.

mod admin_consent;
mod authorize;
mod client_credentials;
mod device;
mod discovery;
mod saml2;
mod token;

// The endpoints share their helpers through this module.
#[allow(unused_imports)]
use {authorize::*, client_credentials::*, device::*, token::*};

pub use admin_consent::{admin_consent, admin_consent_decision};
pub use authorize::{authorize, authorize_decision};
pub use device::{devicecode, devicelogin_page, devicelogin_submit};
pub use discovery::{federation_metadata, jwks, openid_configuration};
pub use saml2::{saml2, saml2_decision};
pub use token::token;

use std::collections::HashMap;

use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use base64::Engine;
use chrono::Utc;
use rand::Rng;
use serde_json::json;

use crate::world::World;

pub(super) type Params = HashMap<String, String>;

pub(super) fn random_token(len: usize) -> String {
    let bytes: Vec<u8> = (0..len).map(|_| rand::thread_rng().gen()).collect();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Microsoft's token-endpoint error shape.
pub(super) fn oauth_error(
    status: StatusCode,
    error: &str,
    aadsts: u32,
    description: &str,
) -> Response {
    oauth_error_with(status, error, aadsts, description, None)
}

pub(super) fn oauth_error_with(
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
pub(super) fn login_throttled(world: &mut World) -> Option<Response> {
    let every = world.config.faults.login_throttle_every;
    if every == 0 {
        return None;
    }
    world.login_requests += 1;
    if !world.login_requests.is_multiple_of(u64::from(every)) {
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

pub(super) fn error_page(status: StatusCode, aadsts: u32, title: &str, detail: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=en><meta charset=utf-8><title>Sign in - simulated Entra</title>\
         <body style='font-family:sans-serif;max-width:40em;margin:3em auto'><h1>Sorry, but we're having trouble signing you in.</h1>\
         <p><strong>AADSTS{aadsts}</strong>: {title}</p><p>{detail}</p></body></html>",
        title = escape(title),
        detail = escape(detail)
    );
    (status, Html(html)).into_response()
}

/// The request's parameters as hidden form fields, so a page's form carries them on.
pub(super) fn hidden_inputs(p: &Params) -> String {
    p.iter()
        .map(|(k, v)| {
            format!(
                "<input type=hidden name=\"{}\" value=\"{}\">",
                escape(k),
                escape(v)
            )
        })
        .collect()
}

/// A tenant's users as `<option>`s of a sign-in page (UPN as the value).
pub(super) fn user_options(t: &crate::fixtures::Tenant) -> String {
    t.users
        .iter()
        .map(|u| {
            format!(
                "<option value=\"{}\">{}</option>",
                escape(&u.upn),
                escape(&u.display_name)
            )
        })
        .collect()
}

/// The error page for a tenant segment that names no tenant.
pub(super) fn no_such_tenant(tenant: &str) -> Response {
    error_page(
        StatusCode::BAD_REQUEST,
        90002,
        &format!("Tenant '{tenant}' not found."),
        "",
    )
}

pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

pub(super) fn is_multi_tenant_alias(t: &str) -> bool {
    matches!(t.to_ascii_lowercase().as_str(), "organizations" | "common")
}

pub(super) fn unknown_tenant(tenant: &str) -> Response {
    oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_tenant",
        90002,
        &format!("Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."),
    )
}
