//! A stand-in for Cloudflare's Access identity-provider API, so the demo can show "Push to
//! Cloudflare" end to end without leaving the computer. Any bearer token is accepted.

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

pub async fn list(
    State(s): State<Arc<Shared>>,
    Path(_account): Path<String>,
    h: HeaderMap,
) -> (StatusCode, Json<Value>) {
    if !authorised(&h) {
        return refuse();
    }
    let idps = s.world().fake_cloudflare.clone();
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
    let mut idp = body;
    idp["id"] = json!(uuid::Uuid::new_v4().to_string());
    if let Some(c) = idp["config"].as_object_mut() {
        c.remove("client_secret");
    }
    s.world().fake_cloudflare.push(idp.clone());
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
    let mut world = s.world();
    let Some(existing) = world
        .fake_cloudflare
        .iter_mut()
        .find(|i| i["id"] == id.as_str())
    else {
        return (
            StatusCode::NOT_FOUND,
            Json(
                json!({"success": false, "errors": [{"code": 12130, "message": "identity provider not found"}], "messages": [], "result": null}),
            ),
        );
    };
    let mut idp = body;
    idp["id"] = json!(id);
    if let Some(c) = idp["config"].as_object_mut() {
        c.remove("client_secret");
    }
    *existing = idp.clone();
    (
        StatusCode::OK,
        Json(json!({"success": true, "errors": [], "messages": [], "result": idp})),
    )
}
