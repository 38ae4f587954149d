//! What the tenant already has for an intent: found by the app's `uniqueName`, then by `appId`.

use serde::Deserialize;
use serde_json::Value;

use crate::auth::StepScopes;
use crate::graph::permissions::{GraphServicePrincipal, GRAPH_APP_ID};
use crate::graph::{GraphClient, GraphError};

/// A client secret's metadata (never its value).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PasswordInfo {
    pub key_id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub hint: Option<String>,
    #[serde(default)]
    pub start_date_time: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default)]
    pub end_date_time: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Clone, Debug)]
pub struct AppState {
    pub id: String,
    pub app_id: String,
    pub passwords: Vec<PasswordInfo>,
    /// The whole application as Graph returned it.
    pub value: Value,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrantState {
    pub id: String,
    #[serde(default)]
    pub scope: Option<String>,
    pub resource_id: String,
    #[serde(default)]
    pub consent_type: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignmentState {
    pub id: String,
    pub app_role_id: String,
    pub resource_id: String,
}

/// The objects that already exist for one provider instance.
#[derive(Clone, Debug)]
pub struct TenantState {
    pub app: Option<AppState>,
    pub sp_id: Option<String>,
    pub graph_sp: GraphServicePrincipal,
    /// The AllPrincipals delegated grant from our service principal to Microsoft Graph.
    pub grant: Option<GrantState>,
    /// App roles of Microsoft Graph assigned to our service principal.
    pub assignments: Vec<AssignmentState>,
    /// The SCIM provisioning app, when the intent provisions.
    pub scim: Option<ScimState>,
}

impl TenantState {
    /// Delegated scopes already granted for the whole organisation.
    pub fn granted_scopes(&self) -> Vec<String> {
        self.grant
            .as_ref()
            .and_then(|g| g.scope.clone())
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }
}

/// 404 means "absent"; anything else is an error.
fn absent<T>(r: Result<T, GraphError>) -> Result<Option<T>, GraphError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.status() == Some(404) => Ok(None),
        Err(e) => Err(e),
    }
}

pub(crate) fn unique_name_path(unique_name: &str) -> String {
    format!(
        "/applications(uniqueName='{}')",
        unique_name.replace('\'', "''")
    )
}

/// Reads the sign-in app (by uniqueName; `None` for providers without one), its service
/// principal, its grants and assignments, and the tenant's Microsoft Graph service principal.
pub async fn read(
    graph: &GraphClient,
    unique_name: Option<&str>,
) -> Result<TenantState, GraphError> {
    let s = StepScopes::RegisterApp;
    let app_req = async {
        match unique_name {
            Some(u) => absent(
                graph
                    .get(unique_name_path(u))
                    .scopes(s)
                    .send_json::<Value>()
                    .await,
            ),
            None => Ok(None),
        }
    };
    let graph_sp_req = graph
        .get(format!("/servicePrincipals(appId='{GRAPH_APP_ID}')?$select=id,appId,appRoles,oauth2PermissionScopes"))
        .scopes(s);
    let (app, graph_sp) = tokio::join!(app_req, graph_sp_req.send_json::<GraphServicePrincipal>());
    let graph_sp = graph_sp?;
    let app = app?.map(|v| AppState {
        id: v["id"].as_str().unwrap_or_default().to_string(),
        app_id: v["appId"].as_str().unwrap_or_default().to_string(),
        passwords: serde_json::from_value(v["passwordCredentials"].clone()).unwrap_or_default(),
        value: v,
    });
    let Some(app_ref) = &app else {
        return Ok(TenantState {
            app,
            sp_id: None,
            graph_sp,
            grant: None,
            assignments: vec![],
            scim: None,
        });
    };
    let sp: Option<Value> = absent(
        graph
            .get(format!(
                "/servicePrincipals(appId='{}')?$select=id,appId",
                app_ref.app_id
            ))
            .scopes(s)
            .send_json()
            .await,
    )?;
    let sp_id = sp.and_then(|v| v["id"].as_str().map(str::to_string));
    let (grant, assignments) = match &sp_id {
        Some(id) => {
            let grants_req = graph
                .get(format!("/oauth2PermissionGrants?$filter=clientId eq '{id}' and consentType eq 'AllPrincipals'"))
                .scopes(StepScopes::Consent);
            let assignments_req = graph
                .get(format!("/servicePrincipals/{id}/appRoleAssignments"))
                .scopes(StepScopes::Consent);
            let (grants, assignments) = tokio::join!(
                grants_req.list::<GrantState>(),
                assignments_req.list::<AssignmentState>()
            );
            let grant = grants?.into_iter().find(|g| g.resource_id == graph_sp.id);
            let assignments = assignments?
                .into_iter()
                .filter(|a| a.resource_id == graph_sp.id)
                .collect();
            (grant, assignments)
        }
        None => (None, vec![]),
    };
    Ok(TenantState {
        app,
        sp_id,
        graph_sp,
        grant,
        assignments,
        scim: None,
    })
}

/// Default access: the role to assign with when an app defines no roles (reference §9).
pub const DEFAULT_ACCESS_ROLE: &str = "00000000-0000-0000-0000-000000000000";

/// The app role to assign users and groups with, from the service principal's `appRoles`.
/// Apps made from a template carry `User` and `msiam_access`, both with `"value": null`
/// (reference §8a), so the `User` role is found by its value or, failing that, its display
/// name; an app with roles but no `User` role gets its first enabled role users can hold; only
/// an app without roles gets default access (assigning default access to an app that has
/// roles fails: "Permission being assigned was not found on application").
pub fn assignment_role(app_roles: &Value) -> String {
    let roles: Vec<Value> = app_roles
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|r| r["isEnabled"] != false)
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let named_user = |r: &&Value| {
        r["value"].as_str() == Some("User")
            || (r["value"].is_null()
                && r["displayName"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case("User")))
    };
    let for_users = |r: &&Value| {
        r["allowedMemberTypes"]
            .as_array()
            .is_none_or(|t| t.iter().any(|x| x == "User"))
    };
    roles
        .iter()
        .find(named_user)
        .or_else(|| {
            roles
                .iter()
                .filter(for_users)
                .find(|r| r["displayName"] != "msiam_access")
        })
        .or_else(|| roles.iter().find(for_users))
        .and_then(|r| r["id"].as_str())
        .unwrap_or(DEFAULT_ACCESS_ROLE)
        .to_string()
}

/// The provisioning app's Microsoft Graph template id ("Non-gallery application").
pub const NON_GALLERY_TEMPLATE: &str = "8adf8e6e-67b2-4cf2-a259-e3dc5476c621";

/// Someone assigned to the provisioning app.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PrincipalAssignment {
    pub id: String,
    pub principal_id: String,
    #[serde(default)]
    pub principal_type: Option<String>,
    #[serde(default)]
    pub principal_display_name: Option<String>,
    pub app_role_id: String,
}

/// A provisioning job as the plan needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobState {
    pub id: String,
    /// `NotConfigured`, `NotRun`, `Active`, `Paused`, `Quarantine`.
    pub status: String,
    /// `Active`, `Disabled`, `Paused`.
    pub schedule: String,
}

/// The SCIM provisioning app (a non-gallery enterprise app) and its job.
#[derive(Clone, Debug)]
pub struct ScimState {
    pub app_object_id: String,
    pub app_id: String,
    pub sp_id: String,
    /// Whether the app carries the wizard's uniqueName (false for one adopted after an
    /// interrupted instantiate).
    pub tagged: bool,
    /// The app role users and groups are assigned with (see [`assignment_role`]).
    pub user_role_id: String,
    pub job: Option<JobState>,
    pub assignments: Vec<PrincipalAssignment>,
}

/// Reads the provisioning app by uniqueName, or (after an interrupted run) by the temporary
/// display name an instantiate used.
pub async fn read_scim(
    graph: &GraphClient,
    unique_name: &str,
    pending_names: &[String],
) -> Result<Option<ScimState>, GraphError> {
    let s = StepScopes::RegisterApp;
    let mut tagged = true;
    let mut app: Option<Value> = absent(
        graph
            .get(unique_name_path(unique_name))
            .scopes(s)
            .send_json()
            .await,
    )?;
    if app.is_none() {
        for name in pending_names {
            let found: Vec<Value> = graph
                .get(format!(
                    "/applications?$filter=applicationTemplateId eq '{NON_GALLERY_TEMPLATE}' and displayName eq '{}'",
                    name.replace('\'', "''")
                ))
                .scopes(s)
                .list()
                .await?;
            if let Some(a) = found.into_iter().next() {
                app = Some(a);
                tagged = false;
                break;
            }
        }
    }
    let Some(app) = app else {
        return Ok(None);
    };
    let app_id = app["appId"].as_str().unwrap_or_default().to_string();
    // Instantiate makes the app and its service principal together: a 404 here is replication,
    // not absence (treating it as absence would instantiate a second app).
    let sp: Value = graph
        .get(format!(
            "/servicePrincipals(appId='{app_id}')?$select=id,appId,appRoles"
        ))
        .scopes(s)
        .retry_if(|e| e.status == 404)
        .send_json()
        .await?;
    let sp_id = sp["id"].as_str().unwrap_or_default().to_string();
    let user_role_id = assignment_role(&sp["appRoles"]);
    let jobs_req = graph
        .get(format!("/servicePrincipals/{sp_id}/synchronization/jobs"))
        .scopes(StepScopes::Scim);
    let assigned_req = graph
        .get(format!("/servicePrincipals/{sp_id}/appRoleAssignedTo"))
        .scopes(StepScopes::Consent);
    let (jobs, assigned) = tokio::join!(
        jobs_req.list::<Value>(),
        assigned_req.list::<PrincipalAssignment>()
    );
    let job = jobs?
        .into_iter()
        .find(|j| {
            j["templateId"] == "scim" || j["id"].as_str().is_some_and(|i| i.starts_with("scim"))
        })
        .map(|j| JobState {
            id: j["id"].as_str().unwrap_or_default().to_string(),
            status: j["status"]["code"].as_str().unwrap_or_default().to_string(),
            schedule: j["schedule"]["state"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        });
    Ok(Some(ScimState {
        app_object_id: app["id"].as_str().unwrap_or_default().to_string(),
        app_id,
        sp_id,
        tagged,
        user_role_id,
        job,
        assignments: assigned?,
    }))
}
