//! Provisioning: the non-gallery application template, the synchronization API (templates, jobs,
//! validateCredentials, secrets, start / pause / restart, schema, provisionOnDemand), the
//! provisioning logs, and the provisioning service itself, which calls the configured SCIM
//! endpoint the way Entra does (reference §8a, §10, §11): Test Connection's random-GUID probe,
//! creates with Entra's body, capitalised PATCH ops unless the tenant URL carries
//! `aadOptscim062020`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use chrono::Utc;
use serde_json::{json, Value};

use crate::directory::Directory;
use crate::fixtures::{Tenant, ROLE_APP_ADMIN, ROLE_CLOUD_APP_ADMIN, ROLE_GLOBAL_ADMIN};
use crate::graph::{GraphErr, Req};
use crate::Shared;

type Out = Result<(StatusCode, Option<Value>), GraphErr>;

/// The "Non-gallery application" template every custom SAML / SCIM app is made from.
pub const NON_GALLERY_TEMPLATE: &str = "8adf8e6e-67b2-4cf2-a259-e3dc5476c621";
/// The app roles a template app comes with (reference §8a).
pub const USER_ROLE: &str = "18d14569-c3bd-439b-9a66-3a2aee01d14f";
const MSIAM_ROLE: &str = "b9632174-c057-4f7e-951b-be3adc52bfe6";
/// The user rule of the `scim` template's schema (provisionOnDemand names it).
pub const USER_RULE_ID: &str = "0b1f2a3c-5d6e-4f70-8a91-b2c3d4e5f601";
const NEVER: &str = "0001-01-01T00:00:00Z";

const SYNC_READ: &[&str] = &["Synchronization.Read.All", "Synchronization.ReadWrite.All"];
const SYNC_WRITE: &[&str] = &["Synchronization.ReadWrite.All"];
const SYNC_ROLES: &[&str] = &[ROLE_GLOBAL_ADMIN, ROLE_APP_ADMIN, ROLE_CLOUD_APP_ADMIN];

/// The provisioning configuration of one service principal.
#[derive(Debug, Default)]
pub struct SyncState {
    /// Saved secrets (key, value), as the last PUT left them.
    pub secrets: Vec<(String, String)>,
    pub jobs: Vec<Value>,
    /// provisioningObjectSummary entries, newest last.
    pub logs: Vec<Value>,
}

/// Work a Graph request leaves for after the world lock is released (it calls out over HTTP).
pub enum Pending {
    /// validateCredentials: probe the endpoint as Test Connection does.
    Validate { base: String, token: String },
    /// start / restart: run a provisioning cycle in the background.
    Cycle {
        tenant: String,
        sp: String,
        job: String,
    },
    /// provisionOnDemand for one user; its answer is the response.
    OnDemand {
        tenant: String,
        sp: String,
        job: String,
        user: String,
    },
}

fn bad(message: impl Into<String>) -> GraphErr {
    GraphErr::new(StatusCode::BAD_REQUEST, "BadRequest", message)
}

fn denied() -> GraphErr {
    GraphErr::new(
        StatusCode::FORBIDDEN,
        "Authorization_RequestDenied",
        "Insufficient privileges to complete the operation.",
    )
}

fn now() -> String {
    Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn allowed(req: &Req<'_>, scopes: &[&str]) -> Result<(), GraphErr> {
    let have: Vec<&str> = req.claims.scp.split_whitespace().collect();
    if req.claims.idtyp == "app"
        || !scopes.iter().any(|s| have.contains(s))
        || !req
            .claims
            .wids
            .iter()
            .any(|w| SYNC_ROLES.contains(&w.as_str()))
    {
        return Err(denied());
    }
    Ok(())
}

/// An app role as a template app carries it: Microsoft's "configure provisioning using Graph"
/// page shows `GET /servicePrincipals/{id}/appRoles` answering `User` and `msiam_access` with
/// `"value": null` (reference §8a), so they can only be told apart by `displayName`.
fn template_role(id: &str, name: &str) -> Value {
    json!({"id": id, "value": null, "displayName": name, "description": name,
           "allowedMemberTypes": ["User"], "isEnabled": true, "origin": "Application"})
}

/// `POST /applicationTemplates/{id}/instantiate`.
pub fn instantiate(
    dir: &mut Directory,
    req: &Req<'_>,
    template: &str,
    faults: &crate::Faults,
) -> Out {
    let have: Vec<&str> = req.claims.scp.split_whitespace().collect();
    if !have.contains(&"Application.ReadWrite.All")
        || !req
            .claims
            .wids
            .iter()
            .any(|w| SYNC_ROLES.contains(&w.as_str()))
    {
        return Err(denied());
    }
    let gallery = crate::vendors::gallery_template(template);
    if !template.eq_ignore_ascii_case(NON_GALLERY_TEMPLATE) && gallery.is_none() {
        return Err(GraphErr::new(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            format!("Application template '{template}' does not exist."),
        ));
    }
    let name = req
        .body
        .as_ref()
        .and_then(|b| b["displayName"].as_str())
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| bad("displayName is required."))?
        .to_string();
    let app_id = uuid::Uuid::new_v4().to_string();
    // A gallery app carries its template's id, home page and gallery tags; a non-gallery one
    // Entra's "custom app" ones.
    let (template_id, home_page, tags) = match gallery {
        Some(g) => (
            g.id.to_string(),
            g.home_page_url.to_string(),
            json!(["WindowsAzureActiveDirectoryGalleryApplicationNonPrimaryV1", "WindowsAzureActiveDirectoryIntegratedApp"]),
        ),
        None => (
            NON_GALLERY_TEMPLATE.to_string(),
            "https://account.activedirectory.windowsazure.com:444/applications/default.aspx?metadata=customappsso|ISV9.1|primary|z".to_string(),
            json!(["WindowsAzureActiveDirectoryCustomSingleSignOnApplication", "WindowsAzureActiveDirectoryIntegratedApp"]),
        ),
    };
    let roles = json!([
        template_role(USER_ROLE, "User"),
        template_role(MSIAM_ROLE, "msiam_access"),
    ]);
    let app = json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "appId": app_id,
        "applicationTemplateId": template_id,
        "createdDateTime": now(),
        "displayName": name,
        "signInAudience": "AzureADMyOrg",
        "tags": [],
        "identifierUris": [],
        "passwordCredentials": [],
        "keyCredentials": [],
        "requiredResourceAccess": [],
        "appRoles": roles,
        "groupMembershipClaims": null,
        "optionalClaims": null,
        "notes": null,
        "web": {"redirectUris": [], "homePageUrl": home_page, "logoutUrl": null,
                "implicitGrantSettings": {"enableAccessTokenIssuance": false, "enableIdTokenIssuance": false}},
    });
    let sp = json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "appId": app_id,
        "displayName": name,
        "appDisplayName": name,
        "accountEnabled": true,
        "appRoleAssignmentRequired": true,
        "preferredSingleSignOnMode": null,
        "servicePrincipalType": "Application",
        "servicePrincipalNames": [app_id],
        "appOwnerOrganizationId": dir.tenant_id,
        "applicationTemplateId": template_id,
        "tags": tags,
        "appRoles": roles,
        "oauth2PermissionScopes": [],
        "replyUrls": [],
        "passwordCredentials": [],
        "keyCredentials": [],
    });
    let ids: Vec<&str> = [&app["id"], &app["appId"], &sp["id"]]
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    dir.hide(&ids, faults);
    dir.token_lag(&app_id, faults);
    dir.applications.push(app.clone());
    dir.service_principals.push(sp.clone());
    if faults.instantiate_not_found_once {
        // Reference §8a: instantiate can answer 404 although the app was created.
        return Err(GraphErr::new(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            format!("Resource '{template_id}' does not exist or one of its queried reference-property objects are not present."),
        ));
    }
    Ok((
        StatusCode::CREATED,
        Some(json!({
            "@odata.context": req.context("microsoft.graph.applicationServicePrincipal"),
            "application": app,
            "servicePrincipal": sp,
        })),
    ))
}

fn new_job(template: &str) -> Value {
    let id = format!(
        "{template}.{}.{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4()
    );
    json!({
        "id": id,
        "templateId": template,
        "schedule": {"interval": "P10675199DT2H48M5.4775807S", "state": "Disabled", "expiration": null},
        "status": {
            "code": "NotConfigured", "countSuccessiveCompleteFailures": 0, "escrowsPruned": false,
            "lastExecution": null, "lastSuccessfulExecution": null, "lastSuccessfulExecutionWithExports": null,
            "progress": [], "quarantine": null,
            "steadyStateFirstAchievedTime": NEVER, "steadyStateLastAchievedTime": NEVER,
            "synchronizedEntryCountByType": [], "troubleshootingUrl": null,
        },
        "synchronizationJobSettings": [
            {"name": "QuarantineTooManyDeletesThreshold", "value": "500"},
        ],
    })
}

fn is_template_app(sp: &Value) -> bool {
    sp["applicationTemplateId"] == NON_GALLERY_TEMPLATE
}

/// The synchronization templates (id, factoryTag) an enterprise app offers: `scim` for
/// non-gallery apps; a gallery app's own (none when the fault withdraws it, and a second one when
/// the fault says the gallery offers two).
fn sync_templates_of(sp: &Value, faults: &crate::Faults) -> Vec<(String, String)> {
    if is_template_app(sp) {
        return vec![("scim".into(), "scim".into())];
    }
    let Some((id, tag)) = sp["applicationTemplateId"]
        .as_str()
        .and_then(crate::vendors::gallery_template)
        .and_then(|g| g.sync_template)
    else {
        return vec![];
    };
    if faults.gallery_sync_template_missing {
        return vec![];
    }
    let mut out = vec![(id.to_string(), tag.to_string())];
    if faults.gallery_sync_templates_several {
        out.push((format!("{id}-v2"), format!("{tag}V2")));
    }
    out
}

/// `/servicePrincipals/{id}/synchronization/...`.
pub fn sync_routes(
    dir: &mut Directory,
    req: &Req<'_>,
    sp_index: usize,
    rest: &[&str],
    tenant: &Tenant,
    faults: &crate::Faults,
    pending: &mut Option<Pending>,
) -> Out {
    let sp = dir.service_principals[sp_index].clone();
    let sp_id = sp["id"].as_str().unwrap_or_default().to_string();
    let m = req.method.as_str();
    let write = m != "GET";
    allowed(req, if write { SYNC_WRITE } else { SYNC_READ })?;
    // A job created moments ago is not there yet for reads, lists or actions (reference §10.2).
    let job_ids: Vec<String> = dir
        .sync
        .get(&sp_id)
        .map(|st| {
            st.jobs
                .iter()
                .filter_map(|j| j["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let hidden_jobs: Vec<String> = match rest {
        ["jobs"] if m == "GET" => job_ids
            .into_iter()
            .filter(|id| dir.still_replicating(id))
            .collect(),
        ["jobs", id, ..] if dir.still_replicating(id) => vec![(*id).to_string()],
        _ => vec![],
    };
    if let ["jobs", id, ..] = rest {
        if hidden_jobs.iter().any(|h| h == id) {
            return Err(GraphErr::new(
                StatusCode::NOT_FOUND,
                "Request_ResourceNotFound",
                format!("The synchronization job '{id}' was not found."),
            ));
        }
    }
    let state = dir.sync.entry(sp_id.clone()).or_default();
    let job_index = |state: &SyncState, id: &str| {
        state
            .jobs
            .iter()
            .position(|j| j["id"] == id)
            .ok_or_else(|| {
                GraphErr::new(
                    StatusCode::NOT_FOUND,
                    "Request_ResourceNotFound",
                    format!("The synchronization job '{id}' was not found."),
                )
            })
    };
    match (m, rest) {
        ("GET", ["templates"]) => {
            let items: Vec<Value> = sync_templates_of(&sp, faults)
                .into_iter()
                .enumerate()
                .map(|(i, (t, tag))| {
                    json!({"id": t, "applicationId": sp["appId"], "factoryTag": tag, "default": i == 0, "discoverable": true, "description": format!("{tag} provisioning"), "metadata": []})
                })
                .collect();
            Ok((
                StatusCode::OK,
                Some(
                    json!({"@odata.context": req.context("servicePrincipals('x')/synchronization/templates"), "value": items}),
                ),
            ))
        }
        ("GET", ["jobs"]) => {
            let shown: Vec<&Value> = state
                .jobs
                .iter()
                .filter(|j| !hidden_jobs.iter().any(|h| j["id"] == h.as_str()))
                .collect();
            Ok((
                StatusCode::OK,
                Some(
                    json!({"@odata.context": req.context("servicePrincipals('x')/synchronization/jobs"), "value": shown}),
                ),
            ))
        }
        ("POST", ["jobs"]) => {
            let template = req
                .body
                .as_ref()
                .and_then(|b| b["templateId"].as_str())
                .unwrap_or_default();
            if !sync_templates_of(&sp, faults)
                .iter()
                .any(|(id, _)| id == template)
            {
                return Err(bad(format!("The template '{template}' is not available for this application. Only applications created from the non-gallery template or a gallery template that provisions can provision, each with its own synchronization template.")));
            }
            let job = new_job(template);
            state.jobs.push(job.clone());
            dir.hide(&[job["id"].as_str().unwrap_or_default()], faults);
            let mut out = job;
            out["@odata.context"] =
                json!(req.context("servicePrincipals('x')/synchronization/jobs/$entity"));
            Ok((StatusCode::CREATED, Some(out)))
        }
        ("GET", ["jobs", id]) => {
            let i = job_index(state, id)?;
            let mut out = state.jobs[i].clone();
            out["@odata.context"] =
                json!(req.context("servicePrincipals('x')/synchronization/jobs/$entity"));
            Ok((StatusCode::OK, Some(out)))
        }
        ("DELETE", ["jobs", id]) => {
            let i = job_index(state, id)?;
            state.jobs.remove(i);
            Ok((StatusCode::NO_CONTENT, None))
        }
        ("GET", ["jobs", id, "schema"]) => {
            job_index(state, id)?;
            Ok((
                StatusCode::OK,
                Some(json!({
                    "@odata.context": req.context("servicePrincipals('x')/synchronization/jobs('x')/schema/$entity"),
                    "id": id, "version": "Date:2026-01-01",
                    "synchronizationRules": [{
                        "id": USER_RULE_ID, "name": "USER_INBOUND_USER", "editable": true, "priority": 1,
                        "sourceDirectoryName": "Azure Active Directory", "targetDirectoryName": "customappsso",
                        "metadata": [], "objectMappings": [],
                    }],
                })),
            ))
        }
        ("POST", ["jobs", id, "validateCredentials"]) => {
            job_index(state, id)?;
            let body = req.body.clone().unwrap_or(Value::Null);
            let creds: Vec<(String, String)> = if body["useSavedCredentials"] == true {
                state.secrets.clone()
            } else {
                body["credentials"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|c| {
                        (
                            c["key"].as_str().unwrap_or_default().to_string(),
                            c["value"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            };
            check_keys(creds.iter().map(|(k, _)| k.as_str()))?;
            let get = |k: &str| creds.iter().find(|(x, _)| x == k).map(|(_, v)| v.clone());
            let base = get("BaseAddress")
                .filter(|b| !b.is_empty())
                .ok_or_else(|| bad("The Tenant URL (BaseAddress) is required."))?;
            *pending = Some(Pending::Validate {
                base,
                token: get("SecretToken").unwrap_or_default(),
            });
            Ok((StatusCode::NO_CONTENT, None))
        }
        ("GET", ["secrets"]) => {
            let masked: Vec<Value> = state
                .secrets
                .iter()
                .map(|(k, _)| json!({"key": k, "value": "*"}))
                .collect();
            Ok((
                StatusCode::OK,
                Some(
                    json!({"@odata.context": req.context("servicePrincipals('x')/synchronization/secrets"), "value": masked}),
                ),
            ))
        }
        ("PUT", ["secrets"]) => {
            let items = req
                .body
                .as_ref()
                .and_then(|b| b["value"].as_array())
                .cloned()
                .ok_or_else(|| bad("A value array of secrets is required."))?;
            let pairs: Vec<(String, String)> = items
                .iter()
                .map(|c| {
                    (
                        c["key"].as_str().unwrap_or_default().to_string(),
                        c["value"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect();
            check_keys(pairs.iter().map(|(k, _)| k.as_str()))?;
            // PUT replaces the whole set (reference §10.4).
            state.secrets = pairs;
            for job in &mut state.jobs {
                if job["status"]["code"] == "NotConfigured" {
                    job["status"]["code"] = json!("NotRun");
                }
            }
            Ok((StatusCode::NO_CONTENT, None))
        }
        ("POST", ["jobs", id, action @ ("start" | "restart")]) => {
            let i = job_index(state, id)?;
            if !state.secrets.iter().any(|(k, _)| k == "BaseAddress") {
                return Err(bad("The job cannot start: provisioning credentials are not configured. Save the Tenant URL and Secret Token first."));
            }
            let job = &mut state.jobs[i];
            job["schedule"]["state"] = json!("Active");
            job["schedule"]["interval"] = json!("PT40M");
            job["status"]["quarantine"] = Value::Null;
            if *action == "restart" || job["status"]["code"] != "Active" {
                job["status"]["code"] = json!("Active");
                *pending = Some(Pending::Cycle {
                    tenant: tenant.id.clone(),
                    sp: sp_id.clone(),
                    job: (*id).to_string(),
                });
            }
            Ok((StatusCode::NO_CONTENT, None))
        }
        ("POST", ["jobs", id, "pause"]) => {
            let i = job_index(state, id)?;
            state.jobs[i]["schedule"]["state"] = json!("Paused");
            state.jobs[i]["status"]["code"] = json!("Paused");
            Ok((StatusCode::NO_CONTENT, None))
        }
        ("POST", ["jobs", id, "provisionOnDemand"]) => {
            job_index(state, id)?;
            let params = req
                .body
                .as_ref()
                .and_then(|b| b["parameters"].as_array())
                .cloned()
                .unwrap_or_default();
            let p = params
                .first()
                .ok_or_else(|| bad("parameters is required."))?;
            if p["ruleId"] != USER_RULE_ID {
                return Err(bad(format!(
                    "The rule '{}' is not part of this job's schema.",
                    p["ruleId"].as_str().unwrap_or_default()
                )));
            }
            let subject = &p["subjects"][0];
            if subject["objectTypeName"] != "User" {
                return Err(bad("Only users can be provisioned on demand here."));
            }
            let user = subject["objectId"].as_str().unwrap_or_default();
            if tenant.user_by_id(user).is_none() {
                return Err(bad(format!("The user '{user}' was not found.")));
            }
            *pending = Some(Pending::OnDemand {
                tenant: tenant.id.clone(),
                sp: sp_id.clone(),
                job: (*id).to_string(),
                user: user.to_string(),
            });
            Ok((StatusCode::OK, None))
        }
        _ => Err(bad(format!(
            "Unsupported request {m} on synchronization/{}.",
            rest.join("/")
        ))),
    }
}

/// Secret keys are a case-sensitive enum: `baseAddress` fails as Graph fails (reference §10.3).
fn check_keys<'a>(keys: impl Iterator<Item = &'a str>) -> Result<(), GraphErr> {
    const KNOWN: &[&str] = &[
        "None",
        "UserName",
        "Password",
        "SecretToken",
        "AppKey",
        "BaseAddress",
        "ClientIdentifier",
        "ClientSecret",
        "SingleSignOnType",
        "Sandbox",
        "Url",
        "Domain",
        "ConsumerKey",
        "ConsumerSecret",
        "TokenKey",
        "TokenExpiration",
        "Oauth2AccessToken",
        "Oauth2AccessTokenCreationTime",
        "Oauth2RefreshToken",
        "SyncAll",
        "InstanceName",
        "Oauth2ClientId",
        "Oauth2ClientSecret",
        "CompanyId",
        "UpdateKeyOnSoftDelete",
        "SynchronizationSchedule",
        "SystemOfRecord",
        "SandboxName",
        "EnforceDomain",
        "SyncNotificationSettings",
        "SkipOutOfScopeDeletions",
        "Oauth2AuthorizationCode",
        "Oauth2RedirectUri",
        "ApplicationTemplateIdentifier",
        "Oauth2TokenExchangeUri",
        "Oauth2AuthorizationUri",
        "AuthenticationType",
        "Server",
        "PerformInboundEntitlementGrants",
        "HardDeletesEnabled",
        "SyncAgentCompatibilityKey",
        "SyncAgentADContainer",
        "ValidateDomain",
        "TestReferences",
        "ConnectionString",
    ];
    for k in keys {
        if !KNOWN.contains(&k) {
            return Err(GraphErr::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                format!("Requested value '{k}' was not found."),
            ));
        }
    }
    Ok(())
}

/// `GET /auditLogs/provisioning`: needs a premium tenant.
pub fn provisioning_logs(dir: &Directory, req: &Req<'_>, tenant: &Tenant) -> Out {
    let have: Vec<&str> = req.claims.scp.split_whitespace().collect();
    if !have.contains(&"AuditLog.Read.All") {
        return Err(denied());
    }
    if tenant.licence == "Free" {
        return Err(GraphErr::new(
            StatusCode::FORBIDDEN,
            "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
            "Neither tenant is B2C or tenant doesn't have premium license",
        ));
    }
    let sp_filter = req.param("$filter").and_then(|f| {
        f.strip_prefix("servicePrincipal/id eq '")
            .map(|r| r.trim_end_matches('\'').to_string())
    });
    let top: usize = req.param("$top").and_then(|t| t.parse().ok()).unwrap_or(50);
    let mut all: Vec<Value> = dir
        .sync
        .iter()
        .filter(|(sp, _)| sp_filter.as_ref().is_none_or(|f| f == *sp))
        .flat_map(|(_, s)| s.logs.iter().cloned())
        .collect();
    all.sort_by(|a, b| {
        b["activityDateTime"]
            .as_str()
            .cmp(&a["activityDateTime"].as_str())
    });
    all.truncate(top);
    Ok((
        StatusCode::OK,
        Some(json!({"@odata.context": req.context("auditLogs/provisioning"), "value": all})),
    ))
}

// ---------------------------------------------------------------------------------------------
// The provisioning service: what runs after the lock is released.

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

fn split_base(base: &str) -> (String, bool) {
    (
        base.split('?')
            .next()
            .unwrap_or(base)
            .trim_end_matches('/')
            .to_string(),
        base.contains("aadOptscim062020"),
    )
}

/// Test Connection: `GET /Users?filter=userName eq "<random guid>"` must answer 200 with an
/// empty ListResponse. The error text mirrors what the portal shows.
pub async fn validate(base: &str, token: &str, local_reachable: bool) -> Result<(), GraphErr> {
    let (root, _) = split_base(base);
    let fail = |detail: String| {
        bad(format!("Error code: SystemForCrossDomainIdentityManagementCredentialValidationUnavailable. Details: We received this unexpected response from your application: {detail}. Please check with your application vendor to understand why this response is being returned."))
    };
    // Test Connection looks up a user, then a group, that cannot exist (reference §10: "be
    // ready for a Groups probe"); each must answer 200 with an empty list.
    let probes = [
        format!(
            "{root}/Users?filter={}",
            urlencode(&format!("userName eq \"{}\"", uuid::Uuid::new_v4()))
        ),
        format!(
            "{root}/Groups?excludedAttributes=members&filter={}",
            urlencode(&format!("displayName eq \"{}\"", uuid::Uuid::new_v4()))
        ),
    ];
    for url in probes {
        if !local_reachable && is_local(&root) {
            return Err(fail(format!(
                "the request to {url} failed (Unable to connect to the remote server)"
            )));
        }
        let mut r = client().get(&url);
        if !token.is_empty() {
            r = r.bearer_auth(token);
        }
        let resp = r
            .send()
            .await
            .map_err(|e| fail(format!("the request to {url} failed ({e})")))?;
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        if status != StatusCode::OK || v["totalResults"] != 0 {
            return Err(fail(format!(
                "Received response from Web resource. Resource: GET {url}. Status Code: {} {}. Response Content: {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or_default(),
                body.chars().take(300).collect::<String>()
            )));
        }
    }
    Ok(())
}

/// An address only this computer (or its network) can reach: what Entra's provisioning service,
/// running in Microsoft's cloud, cannot connect to.
pub fn is_local(url: &str) -> bool {
    let Ok(u) = url::Url::parse(url) else {
        return false;
    };
    match u.host() {
        Some(url::Host::Domain(d)) => {
            let d = d.to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost") || d.ends_with(".local")
        }
        Some(url::Host::Ipv4(ip)) => {
            ip.is_loopback() || ip.is_private() || ip.is_link_local() || ip.is_unspecified()
        }
        Some(url::Host::Ipv6(ip)) => ip.is_loopback() || ip.is_unspecified(),
        None => true,
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// What a cycle works on, read under the lock.
struct Scope {
    base: String,
    aad_opt: bool,
    token: String,
    sp_name: String,
    /// Users in scope (Graph JSON).
    users: Vec<Value>,
    /// Groups in scope and their direct user members.
    groups: Vec<(Value, Vec<String>)>,
    /// The endpoint is on this computer and the simulated Entra cannot reach it.
    unreachable: bool,
}

fn gather(shared: &Shared, tenant_id: &str, sp_id: &str) -> Option<Scope> {
    let world = shared.world();
    let tenant = world.tenant_by_id(tenant_id)?;
    let dir = world.directories.get(tenant_id)?;
    let state = dir.sync.get(sp_id)?;
    let get = |k: &str| {
        state
            .secrets
            .iter()
            .find(|(x, _)| x == k)
            .map(|(_, v)| v.clone())
    };
    let (base, aad_opt) = split_base(&get("BaseAddress")?);
    let sync_all = get("SyncAll").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let sp = dir.service_principals.iter().find(|s| s["id"] == sp_id)?;
    let assigned: Vec<&Value> = dir
        .assignments
        .iter()
        .filter(|a| a["resourceId"] == sp_id)
        .collect();
    let user_ids: Vec<String> = if sync_all {
        tenant.users.iter().map(|u| u.id.clone()).collect()
    } else {
        let mut ids: Vec<String> = assigned
            .iter()
            .filter(|a| a["principalType"] == "User")
            .filter_map(|a| a["principalId"].as_str().map(str::to_string))
            .collect();
        // Only direct members of assigned groups are in scope (nested groups are not expanded).
        for a in assigned.iter().filter(|a| a["principalType"] == "Group") {
            for m in dir
                .members
                .get(a["principalId"].as_str().unwrap_or_default())
                .into_iter()
                .flatten()
            {
                if tenant.user_by_id(m).is_some() && !ids.contains(m) {
                    ids.push(m.clone());
                }
            }
        }
        ids
    };
    let group_ids: Vec<String> = if sync_all {
        dir.groups
            .iter()
            .filter_map(|g| g["id"].as_str().map(str::to_string))
            .collect()
    } else {
        assigned
            .iter()
            .filter(|a| a["principalType"] == "Group")
            .filter_map(|a| a["principalId"].as_str().map(str::to_string))
            .collect()
    };
    Some(Scope {
        unreachable: !world.config.local_scim_reachable && is_local(&base),
        base,
        aad_opt,
        token: get("SecretToken").unwrap_or_default(),
        sp_name: sp["displayName"].as_str().unwrap_or_default().to_string(),
        users: user_ids
            .iter()
            .filter_map(|id| tenant.user_by_id(id).map(crate::fixtures::User::to_json))
            .collect(),
        groups: group_ids
            .iter()
            .filter_map(|id| {
                let g = dir.groups.iter().find(|g| g["id"] == id.as_str())?;
                let members = dir
                    .members
                    .get(id)
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|m| tenant.user_by_id(m).is_some())
                    .collect();
                Some((g.clone(), members))
            })
            .collect(),
    })
}

/// One outcome the log records.
struct Outcome {
    source: Value,
    kind: &'static str,
    action: &'static str,
    target_id: Option<String>,
    error: Option<(String, String)>,
    unauthorized: bool,
}

async fn send(
    scope: &Scope,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Result<(u16, Value), String> {
    if scope.unreachable {
        return Err(format!(
            "Unable to connect to the remote server ({}{path})",
            scope.base
        ));
    }
    let mut r = client()
        .request(method, format!("{}{path}", scope.base))
        .header("Accept", "application/scim+json");
    if !scope.token.is_empty() {
        r = r.bearer_auth(&scope.token);
    }
    if let Some(b) = body {
        r = r
            .header("Content-Type", "application/scim+json")
            .body(b.to_string());
    }
    let resp = r.send().await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

fn op(scope: &Scope, name: &str) -> String {
    if scope.aad_opt {
        name.to_lowercase()
    } else {
        name.to_string()
    }
}

/// Provisions one user as Entra does: match on userName, create if missing, disable if the
/// account is disabled.
async fn provision_user(scope: &Scope, user: &Value) -> Outcome {
    let upn = user["userPrincipalName"].as_str().unwrap_or_default();
    let enabled = user["accountEnabled"] != false;
    let mut out = Outcome {
        source: user.clone(),
        kind: "User",
        action: "other",
        target_id: None,
        error: None,
        unauthorized: false,
    };
    let filter = format!(
        "/Users?filter={}",
        urlencode(&format!("userName eq \"{upn}\""))
    );
    let found = match send(scope, reqwest::Method::GET, &filter, None).await {
        Ok((200, v)) => v["Resources"][0]["id"].as_str().map(str::to_string),
        Ok((s, v)) => {
            out.unauthorized = s == 401;
            out.error = Some((
                format!("SystemForCrossDomainIdentityManagementServiceIncompatible{s}"),
                format!("The SCIM endpoint answered {s} to the user lookup: {v}"),
            ));
            return out;
        }
        Err(e) => {
            out.error = Some((
                "SystemForCrossDomainIdentityManagementServiceUnavailable".into(),
                e,
            ));
            return out;
        }
    };
    match (found, enabled) {
        (Some(id), true) => {
            out.action = "update";
            out.target_id = Some(id);
        }
        (Some(id), false) => {
            out.action = "disable";
            let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": op(scope, "Replace"), "path": "active", "value": if scope.aad_opt { json!(false) } else { json!("False") }}]});
            match send(
                scope,
                reqwest::Method::PATCH,
                &format!("/Users/{id}"),
                Some(body),
            )
            .await
            {
                Ok((s, _)) if (200..300).contains(&s) => out.target_id = Some(id),
                Ok((s, v)) => out.error = Some((format!("ScimPatchFailed{s}"), v.to_string())),
                Err(e) => {
                    out.error = Some((
                        "SystemForCrossDomainIdentityManagementServiceUnavailable".into(),
                        e,
                    ))
                }
            }
        }
        (None, false) => out.action = "other",
        (None, true) => {
            out.action = "create";
            let mail = user["mail"].as_str();
            let body = json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
                "externalId": upn.split('@').next().unwrap_or(upn),
                "userName": upn,
                "active": true,
                "displayName": user["displayName"],
                "emails": mail.map(|m| json!([{"primary": true, "type": "work", "value": m}])).unwrap_or(Value::Null),
                "meta": {"resourceType": "User"},
                "name": {"formatted": user["displayName"], "familyName": user["surname"], "givenName": user["givenName"]},
                "title": user["jobTitle"],
                "roles": [],
            });
            // Entra leaves out attributes that are null in the directory (reference §10).
            let body = match body {
                Value::Object(o) => {
                    Value::Object(o.into_iter().filter(|(_, v)| !v.is_null()).collect())
                }
                other => other,
            };
            match send(scope, reqwest::Method::POST, "/Users", Some(body)).await {
                Ok((201, v)) => out.target_id = v["id"].as_str().map(str::to_string),
                Ok((s, v)) => {
                    out.unauthorized = s == 401;
                    out.error = Some((format!("ScimCreateFailed{s}"), v.to_string()));
                }
                Err(e) => {
                    out.error = Some((
                        "SystemForCrossDomainIdentityManagementServiceUnavailable".into(),
                        e,
                    ))
                }
            }
        }
    }
    out
}

async fn provision_group(scope: &Scope, group: &Value, member_ids: &[String]) -> Outcome {
    let name = group["displayName"].as_str().unwrap_or_default();
    let mut out = Outcome {
        source: group.clone(),
        kind: "Group",
        action: "update",
        target_id: None,
        error: None,
        unauthorized: false,
    };
    let filter = format!(
        "/Groups?excludedAttributes=members&filter={}",
        urlencode(&format!("displayName eq \"{name}\""))
    );
    let id = match send(scope, reqwest::Method::GET, &filter, None).await {
        Ok((200, v)) => v["Resources"][0]["id"].as_str().map(str::to_string),
        Ok((s, v)) => {
            out.unauthorized = s == 401;
            out.error = Some((format!("ScimLookupFailed{s}"), v.to_string()));
            return out;
        }
        Err(e) => {
            out.error = Some((
                "SystemForCrossDomainIdentityManagementServiceUnavailable".into(),
                e,
            ));
            return out;
        }
    };
    let id = match id {
        Some(id) => id,
        None => {
            out.action = "create";
            // Entra's Create Group body (Microsoft's SCIM tutorial): its legacy schema next to
            // the core one, no members (they follow in a PATCH).
            let body = json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group", "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
                "externalId": group["id"],
                "displayName": name,
                "meta": {"resourceType": "Group"},
            });
            match send(scope, reqwest::Method::POST, "/Groups", Some(body)).await {
                Ok((201, v)) => match v["id"].as_str() {
                    Some(id) => id.to_string(),
                    None => {
                        out.error = Some(("ScimCreateFailed".into(), "no id in the answer".into()));
                        return out;
                    }
                },
                Ok((s, v)) => {
                    out.error = Some((format!("ScimCreateFailed{s}"), v.to_string()));
                    return out;
                }
                Err(e) => {
                    out.error = Some((
                        "SystemForCrossDomainIdentityManagementServiceUnavailable".into(),
                        e,
                    ));
                    return out;
                }
            }
        }
    };
    if !member_ids.is_empty() {
        let values: Vec<Value> = member_ids
            .iter()
            .map(|m| json!({"$ref": null, "value": m}))
            .collect();
        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": op(scope, "Add"), "path": "members", "value": values}]});
        match send(
            scope,
            reqwest::Method::PATCH,
            &format!("/Groups/{id}"),
            Some(body),
        )
        .await
        {
            Ok((s, _)) if (200..300).contains(&s) => {}
            Ok((s, v)) => out.error = Some((format!("ScimPatchFailed{s}"), v.to_string())),
            Err(e) => {
                out.error = Some((
                    "SystemForCrossDomainIdentityManagementServiceUnavailable".into(),
                    e,
                ))
            }
        }
    }
    out.target_id = Some(id);
    out
}

fn log_entry(o: &Outcome, job: &str, cycle: &str, sp: &str, sp_name: &str, tenant: &str) -> Value {
    let status = match (&o.error, o.action) {
        (Some(_), _) => "failure",
        (None, "other") => "skipped",
        _ => "success",
    };
    let target_type = if o.kind == "User" {
        "urn:ietf:params:scim:schemas:core:2.0:User"
    } else {
        "urn:ietf:params:scim:schemas:core:2.0:Group"
    };
    json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "activityDateTime": Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        "tenantId": tenant,
        "jobId": job,
        "cycleId": cycle,
        "changeId": uuid::Uuid::new_v4().to_string(),
        "durationInMilliseconds": 40,
        "provisioningAction": o.action,
        "provisioningStatusInfo": {
            "status": status,
            "errorInformation": o.error.as_ref().map(|(code, reason)| json!({
                "errorCode": code, "reason": reason, "errorCategory": "failure",
                "recommendedAction": "Check the SCIM endpoint's answer in the details, fix it, then restart provisioning.",
                "additionalDetails": null,
            })),
        },
        "initiatedBy": {"id": "", "displayName": "Azure AD Provisioning Service", "initiatorType": "system"},
        "servicePrincipal": {"id": sp, "displayName": sp_name},
        "sourceSystem": {"id": "", "displayName": "Azure Active Directory", "details": null},
        "targetSystem": {"id": "", "displayName": sp_name, "details": null},
        "sourceIdentity": {"id": o.source["id"], "displayName": o.source["displayName"], "identityType": o.kind, "details": null},
        "targetIdentity": {"id": o.target_id, "displayName": o.source["displayName"], "identityType": target_type, "details": null},
        "modifiedProperties": [],
        "provisioningSteps": [
            {"name": "EntryImport", "provisioningStepType": "import", "status": "success", "description": format!("Retrieved {} from Microsoft Entra ID", o.source["displayName"].as_str().unwrap_or_default()), "details": null},
            {"name": "EntryExportAdd", "provisioningStepType": "export", "status": status, "description": match &o.error { Some((_, r)) => r.clone(), None => format!("{} in {sp_name}", o.action) }, "details": null},
        ],
    })
}

fn execution(began: &str, entitled: usize, exported: usize, error: Option<Value>) -> Value {
    json!({
        "activityIdentifier": uuid::Uuid::new_v4().to_string(),
        "countEntitled": entitled, "countEntitledForProvisioning": entitled,
        "countEscrowed": 0, "countEscrowedRaw": 0,
        "countExported": exported, "countExports": exported,
        "countImported": entitled, "countImportedDeltas": entitled, "countImportedReferenceDeltas": 0,
        "error": error,
        "state": if error.is_some() { "Failed" } else { "Succeeded" },
        "timeBegan": began, "timeEnded": now(),
    })
}

/// Runs one provisioning cycle for the job and records its status and logs.
pub async fn run_cycle(shared: Arc<Shared>, tenant: String, sp: String, job: String) {
    let wait = shared.world().config.faults.initial_cycle_ms;
    if wait > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
    }
    let Some(scope) = gather(&shared, &tenant, &sp) else {
        return;
    };
    let began = now();
    let cycle = uuid::Uuid::new_v4().to_string();
    let mut outcomes = vec![];
    let mut scim_ids: HashMap<String, String> = HashMap::new();
    for u in &scope.users {
        let o = provision_user(&scope, u).await;
        let stop = o.unauthorized;
        if let (Some(t), Some(id)) = (&o.target_id, u["id"].as_str()) {
            scim_ids.insert(id.to_string(), t.clone());
        }
        outcomes.push(o);
        if stop {
            break;
        }
    }
    if !outcomes.iter().any(|o| o.unauthorized) {
        for (g, members) in &scope.groups {
            let ids: Vec<String> = members
                .iter()
                .filter_map(|m| scim_ids.get(m).cloned())
                .collect();
            outcomes.push(provision_group(&scope, g, &ids).await);
        }
    }
    let unauthorized = outcomes.iter().any(|o| o.unauthorized);
    let failures = outcomes.iter().filter(|o| o.error.is_some()).count();
    let exported = outcomes
        .iter()
        .filter(|o| o.error.is_none() && o.action != "other")
        .count();
    let users_done = outcomes
        .iter()
        .filter(|o| o.kind == "User" && o.error.is_none() && o.action != "other")
        .count();
    let groups_done = outcomes
        .iter()
        .filter(|o| o.kind == "Group" && o.error.is_none())
        .count();
    let mut world = shared.world();
    let Some(state) = world
        .directories
        .get_mut(&tenant)
        .and_then(|d| d.sync.get_mut(&sp))
    else {
        return;
    };
    for o in &outcomes {
        state
            .logs
            .push(log_entry(o, &job, &cycle, &sp, &scope.sp_name, &tenant));
    }
    let Some(j) = state.jobs.iter_mut().find(|j| j["id"] == job.as_str()) else {
        return;
    };
    let status = &mut j["status"];
    if unauthorized {
        let err = json!({"code": "SystemForCrossDomainIdentityManagementCredentialValidationUnavailable", "message": "The SCIM endpoint refused the Secret Token (401 Unauthorized). Provisioning is quarantined until the credentials are fixed.", "tenantActionable": true});
        status["code"] = json!("Quarantine");
        status["countSuccessiveCompleteFailures"] = json!(
            status["countSuccessiveCompleteFailures"]
                .as_i64()
                .unwrap_or(0)
                + 1
        );
        status["lastExecution"] = execution(&began, scope.users.len(), exported, Some(err.clone()));
        status["quarantine"] = json!({
            "currentBegan": now(), "nextAttempt": (Utc::now() + chrono::Duration::hours(6)).format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "reason": "EncounteredQuarantineException", "seriesBegan": now(), "seriesCount": 1, "error": err,
        });
        return;
    }
    let exec = if failures > 0 {
        let mut e = execution(&began, scope.users.len(), exported, None);
        e["state"] = json!("EntryLevelErrors");
        e
    } else {
        execution(&began, scope.users.len(), exported, None)
    };
    status["code"] = json!("Active");
    status["countSuccessiveCompleteFailures"] = json!(0);
    status["lastExecution"] = exec.clone();
    status["lastSuccessfulExecution"] = exec.clone();
    if exported > 0 {
        status["lastSuccessfulExecutionWithExports"] = exec;
    }
    if status["steadyStateFirstAchievedTime"] == NEVER {
        status["steadyStateFirstAchievedTime"] = json!(now());
    }
    status["steadyStateLastAchievedTime"] = json!(now());
    status["synchronizedEntryCountByType"] = json!([
        {"key": "User", "value": users_done},
        {"key": "Group", "value": groups_done},
    ]);
}

/// Provisions one user now and answers as provisionOnDemand does: a stringKeyStringValuePair
/// whose value is the JSON of the steps.
pub async fn on_demand(
    shared: Arc<Shared>,
    tenant: String,
    sp: String,
    job: String,
    user: String,
) -> Out {
    let scope = gather(&shared, &tenant, &sp)
        .ok_or_else(|| bad("Provisioning credentials are not configured for this job."))?;
    let u = {
        let world = shared.world();
        world
            .tenant_by_id(&tenant)
            .and_then(|t| t.user_by_id(&user))
            .map(crate::fixtures::User::to_json)
            .ok_or_else(|| bad("The user was not found."))?
    };
    if !scope.users.iter().any(|x| x["id"] == user.as_str()) {
        let value = json!([{
            "provisioningSteps": [
                {"name": "EntryImport", "provisioningStepType": "import", "status": "success", "description": format!("Retrieved {} from Microsoft Entra ID", u["displayName"].as_str().unwrap_or_default())},
                {"name": "EntrySynchronizationScoping", "provisioningStepType": "scoping", "status": "skipped", "description": "The user is not in scope: assign them, or a group they are a direct member of, to the application."},
            ],
            "statusInfo": {"status": "skipped", "errorInformation": {"reason": "NotEffectivelyEntitled: the user is not assigned to the application."}},
            "provisioningAction": "other",
        }]);
        return Ok((
            StatusCode::OK,
            Some(
                json!({"key": "Microsoft.Identity.Health.CPP.Common.DataContracts.SyncFabric.StatusInfo", "value": value.to_string()}),
            ),
        ));
    }
    let o = provision_user(&scope, &u).await;
    let entry = log_entry(&o, &job, "on-demand", &sp, &scope.sp_name, &tenant);
    if let Some(state) = shared
        .world()
        .directories
        .get_mut(&tenant)
        .and_then(|d| d.sync.get_mut(&sp))
    {
        state.logs.push(entry.clone());
    }
    let value = json!([{
        "provisioningSteps": entry["provisioningSteps"],
        "statusInfo": entry["provisioningStatusInfo"],
        "provisioningAction": entry["provisioningAction"],
        "sourceIdentity": entry["sourceIdentity"],
        "targetIdentity": entry["targetIdentity"],
    }]);
    Ok((
        StatusCode::OK,
        Some(json!({
            "key": "Microsoft.Identity.Health.CPP.Common.DataContracts.SyncFabric.StatusInfo",
            "value": value.to_string(),
        })),
    ))
}
