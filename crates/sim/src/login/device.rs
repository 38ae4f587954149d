//! The device-code flow: codes, the /devicelogin page, and polling.

use std::sync::Arc;

use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use chrono::{Duration, Utc};
use rand::Rng;
use serde_json::json;

use crate::world::{DeviceGrant, DeviceState, World};
use crate::{apply_latency, Approval, Shared};

use super::*;

pub(super) fn device_token(s: &Shared, world: &mut World, p: &Params, client_id: &str) -> Response {
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
