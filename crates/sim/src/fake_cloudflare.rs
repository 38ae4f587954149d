//! A stand-in for Cloudflare's Access identity-provider API, so the demo can show "Push to
//! Cloudflare" end to end without leaving the computer. Any bearer token is accepted. Like
//! Cloudflare, it keeps the client secret it is given (never returning it); unlike Cloudflare,
//! it can say which of the Entra app's secrets that is (`…/{id}/entra_check`), so a test can
//! prove that a push after a rotation carried the new secret.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Value};

use crate::Shared;

fn authorised(h: &HeaderMap) -> bool {
    h.get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bearer ") && v.len() > 7)
}

fn refuse() -> (StatusCode, Json<Value>) {
    (
        StatusCode::FORBIDDEN,
        Json(
            json!({"success": false, "errors": [{"code": 10000, "message": "Authentication error"}], "messages": [], "result": null}),
        ),
    )
}

fn invalid(message: &str) -> (StatusCode, Json<Value>) {
    (
        StatusCode::BAD_REQUEST,
        Json(
            json!({"success": false, "errors": [{"code": 12000, "message": message}], "messages": [], "result": null}),
        ),
    )
}

/// Checks an Entra ID identity provider body as Cloudflare's API documents it (type azureAD,
/// client_id, client_secret, directory_id; the optional switches as booleans) and splits the secret off: it is kept apart and
/// never returned.
fn checked(body: Value) -> Result<(Value, String), (StatusCode, Json<Value>)> {
    if body["type"] != "azureAD" {
        return Err(invalid("type must be azureAD for Microsoft Entra ID."));
    }
    let config = &body["config"];
    for field in ["client_id", "client_secret", "directory_id"] {
        if config[field].as_str().is_none_or(str::is_empty) {
            return Err(invalid(&format!("config.{field} is required.")));
        }
    }
    for flag in [
        "support_groups",
        "pkce_enabled",
        "conditional_access_enabled",
    ] {
        if !config[flag].is_null() && !config[flag].is_boolean() {
            return Err(invalid(&format!("config.{flag} must be true or false.")));
        }
    }
    if !config["email_claim_name"].is_null() && !config["email_claim_name"].is_string() {
        return Err(invalid("config.email_claim_name must be a string."));
    }
    let secret = config["client_secret"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut idp = body;
    if let Some(c) = idp["config"].as_object_mut() {
        c.remove("client_secret");
    }
    Ok((idp, secret))
}

pub async fn list(
    State(s): State<Arc<Shared>>,
    Path(_account): Path<String>,
    h: HeaderMap,
) -> (StatusCode, Json<Value>) {
    if !authorised(&h) {
        return refuse();
    }
    let idps: Vec<Value> = s
        .world()
        .fake_cloudflare
        .iter()
        .map(|(v, _)| v.clone())
        .collect();
    (
        StatusCode::OK,
        Json(json!({"success": true, "errors": [], "messages": [], "result": idps})),
    )
}

pub async fn create(
    State(s): State<Arc<Shared>>,
    Path(_account): Path<String>,
    h: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    if !authorised(&h) {
        return refuse();
    }
    let (mut idp, secret) = match checked(body) {
        Ok(x) => x,
        Err(e) => return e,
    };
    idp["id"] = json!(uuid::Uuid::new_v4().to_string());
    s.world().fake_cloudflare.push((idp.clone(), secret));
    (
        StatusCode::OK,
        Json(json!({"success": true, "errors": [], "messages": [], "result": idp})),
    )
}

pub async fn update(
    State(s): State<Arc<Shared>>,
    Path((_account, id)): Path<(String, String)>,
    h: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    if !authorised(&h) {
        return refuse();
    }
    let (mut idp, secret) = match checked(body) {
        Ok(x) => x,
        Err(e) => return e,
    };
    let mut world = s.world();
    let Some(existing) = world
        .fake_cloudflare
        .iter_mut()
        .find(|(i, _)| i["id"] == id.as_str())
    else {
        return (
            StatusCode::NOT_FOUND,
            Json(
                json!({"success": false, "errors": [{"code": 12130, "message": "identity provider not found"}], "messages": [], "result": null}),
            ),
        );
    };
    idp["id"] = json!(id);
    *existing = (idp.clone(), secret);
    (
        StatusCode::OK,
        Json(json!({"success": true, "errors": [], "messages": [], "result": idp})),
    )
}

/// The stand-in's own check: which of the Entra app's client secrets the identity provider
/// holds (its key id, or none), and whether that secret is still on the app.
pub async fn entra_check(
    State(s): State<Arc<Shared>>,
    Path((_account, id)): Path<(String, String)>,
    h: HeaderMap,
) -> (StatusCode, Json<Value>) {
    if !authorised(&h) {
        return refuse();
    }
    let world = s.world();
    let Some((idp, secret)) = world
        .fake_cloudflare
        .iter()
        .find(|(i, _)| i["id"] == id.as_str())
    else {
        return invalid("identity provider not found");
    };
    let client_id = idp["config"]["client_id"].as_str().unwrap_or_default();
    let tenant = idp["config"]["directory_id"].as_str().unwrap_or_default();
    let dir = world.directories.get(tenant);
    let key_id = dir.and_then(|d| {
        d.secrets
            .iter()
            .find(|x| x.app_id == client_id && &x.text == secret)
            .map(|x| x.key_id.clone())
    });
    let on_app = dir.is_some_and(|d| {
        d.applications.iter().any(|a| {
            a["appId"] == client_id
                && a["passwordCredentials"].as_array().is_some_and(|c| {
                    c.iter()
                        .any(|c| Some(c["keyId"].as_str().unwrap_or_default()) == key_id.as_deref())
                })
        })
    });
    (
        StatusCode::OK,
        Json(
            json!({"success": true, "errors": [], "messages": [], "result": {"clientId": client_id, "secretKeyId": key_id, "secretOnApp": on_app}}),
        ),
    )
}
