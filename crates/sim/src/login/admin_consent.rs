//! Admin-consent links a colleague opens.

use std::sync::Arc;

use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use base64::Engine;
use chrono::Utc;
use serde_json::{json, Value};

use crate::world::World;
use crate::{apply_latency, Shared};

use super::*;

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
            let options = user_options(t);
            let hidden = hidden_inputs(&p);
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

pub(super) fn consent_as(world: &mut World, tenant: &str, p: &Params, upn: &str) -> Response {
    use crate::fixtures::{ROLE_GLOBAL_ADMIN, ROLE_PRIVILEGED_ROLE_ADMIN};
    let Some(t) = world.tenant(tenant).cloned() else {
        return unknown_tenant(tenant);
    };
    let client_id = p.get("client_id").cloned().unwrap_or_default();
    let redirect = p.get("redirect_uri").cloned().unwrap_or_default();
    let base_url = world.base_url.clone();
    let late_ms = world.config.faults.vendor_app_late_ms;
    let Some(dir) = world.directories.get_mut(&t.id) else {
        return unknown_tenant(tenant);
    };
    // The tenant's own app, or a vendor's multi-tenant app (registered in the vendor's tenant).
    let vendor = crate::vendors::by_app_id(&client_id);
    let Some(app) = dir
        .applications
        .iter()
        .find(|a| a["appId"] == client_id.as_str())
        .cloned()
        .or_else(|| vendor.map(|v| v.application(&base_url)))
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
            match vendor {
                Some(v) => {
                    dir.service_principals.push(v.service_principal(&id));
                    // A vendor's app shows up in reads a while after consent (replication).
                    if late_ms > 0 {
                        dir.fresh.insert(
                            id.clone(),
                            crate::directory::Fresh {
                                until: crate::directory::after_ms(late_ms),
                            },
                        );
                    }
                }
                None => dir.service_principals.push(json!({"id": id, "appId": client_id, "displayName": app["displayName"], "appRoles": [], "oauth2PermissionScopes": [], "tags": [], "servicePrincipalNames": [client_id], "accountEnabled": true, "appRoleAssignmentRequired": false})),
            }
            id
        }
    };
    let graph_sp = dir.graph_sp().clone();
    let graph_id = graph_sp["id"].as_str().unwrap_or_default().to_string();
    let mut scopes: Vec<String> = vec![];
    let mut roles: Vec<String> = vec![];
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
                roles.push(id.clone());
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
    // "Granting tenant-wide admin consent may revoke permissions that have already been granted
    // tenant-wide for that application. Permissions that users have already granted on their
    // own behalf aren't affected." (learn.microsoft.com/entra/identity/enterprise-apps/
    // grant-admin-consent): the organisation-wide set becomes exactly what the app asks for.
    dir.assignments.retain(|a| {
        !(a["principalId"] == sp_id.as_str()
            && a["resourceId"] == graph_id.as_str()
            && !roles.iter().any(|r| a["appRoleId"] == r.as_str()))
    });
    if scopes.is_empty() {
        dir.grants.retain(|g| {
            !(g["clientId"] == sp_id.as_str()
                && g["resourceId"] == graph_id.as_str()
                && g["consentType"] == "AllPrincipals")
        });
    } else {
        match dir.grants.iter_mut().find(|g| g["clientId"] == sp_id.as_str() && g["resourceId"] == graph_id.as_str() && g["consentType"] == "AllPrincipals") {
            Some(g) => {
                g["scope"] = json!(scopes.join(" "));
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
