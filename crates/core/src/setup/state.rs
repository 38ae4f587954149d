//! What the tenant already has for an intent: found by the app's `uniqueName`, then by `appId`.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::auth::StepScopes;
use crate::graph::permissions::{GraphServicePrincipal, GRAPH_APP_ID};
use crate::graph::{GraphClient, GraphError};
use crate::provider::AppSource;

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

/// An app registration a setup manages (the OIDC sign-in app), with its service principal and
/// what it was granted on Microsoft Graph.
#[derive(Clone, Debug)]
pub struct RegisteredApp {
    pub app: AppState,
    pub sp_id: Option<String>,
    /// Its service principal's AllPrincipals delegated grants, one per resource API.
    pub grants: Vec<GrantState>,
    /// App roles of resource APIs assigned to its service principal.
    pub assignments: Vec<AssignmentState>,
}

/// One app of a setup, as found in the tenant. (A setup has two or three: their size does not
/// matter.)
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum FoundApp {
    Registration(RegisteredApp),
    /// An enterprise app made from a template (non-gallery or gallery).
    Template(TemplateApp),
    /// The vendor's own app, present because an admin consented to it.
    Vendor(VendorApp),
}

/// A vendor's multi-tenant app as this tenant has it: its service principal (the app itself
/// lives in the vendor's tenant), the consent it holds and who is assigned to it.
#[derive(Clone, Debug)]
pub struct VendorApp {
    pub sp_id: String,
    pub app_id: String,
    pub display_name: String,
    /// The tenant that owns the app (the vendor's).
    pub owner_tenant: Option<String>,
    /// The publisher Microsoft verified for the app, if any.
    pub verified_publisher: Option<String>,
    /// Disabled in this tenant: nobody can sign in to it and it gets no tokens.
    pub enabled: bool,
    pub assignment_required: bool,
    /// The app role users and groups are assigned with (see [`assignment_role`]).
    pub user_role_id: String,
    /// Its delegated grants for the whole organisation (one per resource API).
    pub grants: Vec<GrantState>,
    /// App roles of resource APIs (application permissions) it holds.
    pub roles: Vec<AssignmentState>,
    /// Users and groups assigned to it.
    pub assignments: Vec<PrincipalAssignment>,
}

/// The objects that already exist for one provider instance: every app of the setup that
/// exists, by the id the provider's profile gives it, and the tenant's Microsoft Graph.
#[derive(Clone, Debug)]
pub struct TenantState {
    pub graph_sp: GraphServicePrincipal,
    pub apps: BTreeMap<String, FoundApp>,
    /// Other apps that already hold the setup's SAML Entity ID (display names); Entra allows
    /// an identifier URI on one app only.
    pub entity_id_holders: Vec<String>,
    /// Other apps that have one of the SAML Reply URLs: (Reply URL, the app's display name).
    pub reply_url_holders: Vec<(String, String)>,
    /// Reply URLs the tenant would not let the wizard look up, with Graph's reason: the
    /// warning above could not be checked for them.
    pub reply_url_unchecked: Vec<(String, String)>,
}

impl TenantState {
    /// Nothing of the setup exists yet.
    pub fn empty(graph_sp: GraphServicePrincipal) -> Self {
        Self {
            graph_sp,
            apps: BTreeMap::new(),
            entity_id_holders: vec![],
            reply_url_holders: vec![],
            reply_url_unchecked: vec![],
        }
    }

    /// The setup's app registration, if it exists.
    pub fn registered(&self) -> Option<&RegisteredApp> {
        self.apps.values().find_map(|a| match a {
            FoundApp::Registration(r) => Some(r),
            _ => None,
        })
    }

    /// The app made from a template that provisions (today a setup has at most one).
    pub fn provisioning(&self) -> Option<&TemplateApp> {
        self.apps.values().find_map(|a| match a {
            FoundApp::Template(t) => Some(t),
            _ => None,
        })
    }

    /// The vendor's app the profile calls `id`, if the tenant has it.
    pub fn vendor(&self, id: &str) -> Option<&VendorApp> {
        match self.apps.get(id) {
            Some(FoundApp::Vendor(v)) => Some(v),
            _ => None,
        }
    }

    /// The app registration itself.
    pub fn app(&self) -> Option<&AppState> {
        self.registered().map(|r| &r.app)
    }

    /// The app registration's service principal.
    pub fn sp_id(&self) -> Option<&str> {
        self.registered().and_then(|r| r.sp_id.as_deref())
    }

    /// The registration's delegated grant to Microsoft Graph for the whole organisation.
    pub fn grant(&self) -> Option<&GrantState> {
        self.registered()?
            .grants
            .iter()
            .find(|g| g.resource_id == self.graph_sp.id)
    }

    /// Microsoft Graph application permissions assigned to the registration.
    pub fn assignments(&self) -> Vec<&AssignmentState> {
        self.registered()
            .map(|r| {
                r.assignments
                    .iter()
                    .filter(|a| a.resource_id == self.graph_sp.id)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Delegated scopes already granted for the whole organisation.
    pub fn granted_scopes(&self) -> Vec<String> {
        self.grant()
            .and_then(|g| g.scope.clone())
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }
}

/// 404 means "absent"; anything else is an error.
pub(crate) fn absent<T>(r: Result<T, GraphError>) -> Result<Option<T>, GraphError> {
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

/// Reads every app of the intent's setup that exists (the registration by its uniqueName, an
/// app made from a template by its uniqueName or, after an interrupted run, by the temporary
/// name in `pending_names`), and the tenant's Microsoft Graph service principal.
pub async fn read(
    graph: &GraphClient,
    intent: &super::Intent,
    pending_names: &[String],
) -> Result<TenantState, GraphError> {
    let graph_sp_req = graph
        .get(format!("/servicePrincipals(appId='{GRAPH_APP_ID}')?$select=id,appId,appRoles,oauth2PermissionScopes"))
        .scopes(StepScopes::RegisterApp);
    let apps = async {
        let mut reads = vec![];
        for spec in &intent.provider.apps {
            reads.push(async move {
                let found = match &spec.source {
                    AppSource::Registration => read_registration(graph, &intent.unique_name())
                        .await?
                        .map(FoundApp::Registration),
                    AppSource::NonGallery | AppSource::Gallery { .. } => {
                        read_made_from_template(graph, intent, spec, pending_names)
                            .await?
                            .map(FoundApp::Template)
                    }
                    AppSource::Vendor { .. } => read_vendor(graph, &intent.tenant_id, spec)
                        .await?
                        .map(FoundApp::Vendor),
                };
                Ok::<_, GraphError>(found.map(|f| (spec.id.clone(), f)))
            });
        }
        let found = futures::future::join_all(reads).await;
        found
            .into_iter()
            .filter_map(Result::transpose)
            .collect::<Result<BTreeMap<_, _>, _>>()
    };
    let holders = entity_id_holders(graph, intent);
    let (graph_sp, apps, holders, reply_holders) = tokio::join!(
        graph_sp_req.send_json::<GraphServicePrincipal>(),
        apps,
        holders,
        reply_url_holders(graph, intent)
    );
    let apps = apps?;
    // The setup's own app holds its Entity ID after the first run.
    let own: Vec<&str> = apps
        .values()
        .map(|a| match a {
            FoundApp::Template(t) => t.app_id.as_str(),
            FoundApp::Registration(r) => r.app.app_id.as_str(),
            FoundApp::Vendor(v) => v.app_id.as_str(),
        })
        .collect();
    let entity_id_holders = holders?
        .into_iter()
        .filter(|(app_id, _)| !own.contains(&app_id.as_str()))
        .map(|(_, name)| name)
        .collect();
    let (reply_holders, reply_url_unchecked) = reply_holders;
    let reply_url_holders = reply_holders
        .into_iter()
        .filter(|(_, app_id, _)| !own.contains(&app_id.as_str()))
        .map(|(url, _, name)| (url, name))
        .collect();
    Ok(TenantState {
        graph_sp: graph_sp?,
        apps,
        entity_id_holders,
        reply_url_holders,
        reply_url_unchecked,
    })
}

/// Apps that have one of the SAML Reply URLs: (Reply URL, appId, display name), and the Reply
/// URLs that could not be looked up, with why. Only a warning depends on it, so a tenant that
/// refuses the query (or any read error) does not stop the setup; the plan says it was not
/// checked. A lambda filter on `web/redirectUris` is an advanced query.
async fn reply_url_holders(
    graph: &GraphClient,
    intent: &super::Intent,
) -> (Vec<(String, String, String)>, Vec<(String, String)>) {
    let Some(saml) = &intent.saml else {
        return (vec![], vec![]);
    };
    let mut out = vec![];
    let mut unchecked = vec![];
    for url in &saml.reply_urls {
        let found: Result<Vec<Value>, _> = graph
            .get(format!(
                "/applications?$filter=web/redirectUris/any(x:x eq '{}')&$select=id,appId,displayName",
                url.replace('\'', "''")
            ))
            .scopes(StepScopes::RegisterApp)
            .advanced()
            .list()
            .await;
        match found {
            Ok(apps) => out.extend(apps.into_iter().map(|a| {
                (
                    url.clone(),
                    a["appId"].as_str().unwrap_or_default().to_string(),
                    a["displayName"].as_str().unwrap_or_default().to_string(),
                )
            })),
            Err(e) => {
                tracing::info!(error = %e, "could not look for other apps with the Reply URL");
                unchecked.push((url.clone(), e.to_string()));
            }
        }
    }
    (out, unchecked)
}

/// Apps holding the intent's SAML Entity ID as an identifier URI: (appId, display name).
async fn entity_id_holders(
    graph: &GraphClient,
    intent: &super::Intent,
) -> Result<Vec<(String, String)>, GraphError> {
    let Some(saml) = &intent.saml else {
        return Ok(vec![]);
    };
    let found: Vec<Value> = graph
        .get(format!(
            "/applications?$filter=identifierUris/any(x:x eq '{}')&$select=id,appId,displayName",
            saml.entity_id.replace('\'', "''")
        ))
        .scopes(StepScopes::RegisterApp)
        .list()
        .await?;
    Ok(found
        .into_iter()
        .map(|a| {
            (
                a["appId"].as_str().unwrap_or_default().to_string(),
                a["displayName"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect())
}

/// Reads the app the provider provisions through, if the profile has one and it exists.
pub async fn read_provisioning(
    graph: &GraphClient,
    intent: &super::Intent,
    pending_names: &[String],
) -> Result<Option<TemplateApp>, GraphError> {
    match intent.provider.scim_app() {
        Some(spec) => read_made_from_template(graph, intent, spec, pending_names).await,
        None => Ok(None),
    }
}

async fn read_made_from_template(
    graph: &GraphClient,
    intent: &super::Intent,
    spec: &crate::provider::AppSpec,
    pending_names: &[String],
) -> Result<Option<TemplateApp>, GraphError> {
    let template = intent.template_id(spec).unwrap_or(NON_GALLERY_TEMPLATE);
    // An app that does not provision has no job to read (and reading one needs more consent).
    let job = intent
        .provider
        .scim
        .as_ref()
        .filter(|x| x.app == spec.id)
        // Without a template name, the job on the app, whatever template it came from.
        .map(|x| x.job_template.as_deref().unwrap_or_default());
    read_template(
        graph,
        &intent.template_unique_name(),
        pending_names,
        template,
        job,
    )
    .await
}

/// Reads an app registration by uniqueName, its service principal, its delegated grant and
/// its application-permission assignments.
async fn read_registration(
    graph: &GraphClient,
    unique_name: &str,
) -> Result<Option<RegisteredApp>, GraphError> {
    let s = StepScopes::RegisterApp;
    let Some(v) = absent(
        graph
            .get(unique_name_path(unique_name))
            .scopes(s)
            .send_json::<Value>()
            .await,
    )?
    else {
        return Ok(None);
    };
    let app = AppState {
        id: v["id"].as_str().unwrap_or_default().to_string(),
        app_id: v["appId"].as_str().unwrap_or_default().to_string(),
        passwords: serde_json::from_value(v["passwordCredentials"].clone()).unwrap_or_default(),
        value: v,
    };
    let sp: Option<Value> = absent(
        graph
            .get(format!(
                "/servicePrincipals(appId='{}')?$select=id,appId",
                app.app_id
            ))
            .scopes(s)
            .send_json()
            .await,
    )?;
    let sp_id = sp.and_then(|v| v["id"].as_str().map(str::to_string));
    let (grants, assignments) = match &sp_id {
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
            (grants?, assignments?)
        }
        None => (vec![], vec![]),
    };
    Ok(Some(RegisteredApp {
        app,
        sp_id,
        grants,
        assignments,
    }))
}

/// Finds a vendor's app in this tenant: by appId when the profile knows it, else by exact
/// display name among the service principals another tenant owns (so an app of this tenant
/// with the same name — a gallery app, an admin's own registration — is never mistaken for
/// the vendor's). Then its consent and assignments.
pub async fn read_vendor(
    graph: &GraphClient,
    tenant_id: &str,
    spec: &crate::provider::AppSpec,
) -> Result<Option<VendorApp>, GraphError> {
    let AppSource::Vendor {
        app_id,
        display_name,
    } = &spec.source
    else {
        return Ok(None);
    };
    let (app_id, display_name) = (app_id.as_deref(), display_name.as_deref());
    let s = StepScopes::RegisterApp;
    const FIELDS: &str = "id,appId,displayName,accountEnabled,appOwnerOrganizationId,appRoleAssignmentRequired,appRoles,verifiedPublisher";
    let filter = match (app_id, display_name) {
        (Some(id), _) => format!("appId eq '{}'", id.replace('\'', "''")),
        (None, Some(n)) => format!("displayName eq '{}'", n.replace('\'', "''")),
        (None, None) => return Ok(None),
    };
    let found: Vec<Value> = graph
        .get(format!(
            "/servicePrincipals?$filter={filter}&$select={FIELDS}"
        ))
        .scopes(s)
        .list()
        .await?;
    let mut candidates: Vec<Value> = found
        .into_iter()
        .filter(|sp| {
            app_id.is_some()
                || sp["appOwnerOrganizationId"]
                    .as_str()
                    .is_none_or(|o| !o.eq_ignore_ascii_case(tenant_id))
        })
        .collect();
    // Found by name, two apps of other tenants are one too many: anyone's multi-tenant app can
    // be called "Twingate". The wizard does not guess which one is the vendor's.
    if app_id.is_none() && candidates.len() > 1 {
        let owners: Vec<String> = candidates
            .iter()
            .map(|c| {
                format!(
                    "{} (owned by tenant {}{})",
                    c["appId"].as_str().unwrap_or_default(),
                    c["appOwnerOrganizationId"].as_str().unwrap_or("unknown"),
                    c["verifiedPublisher"]["displayName"]
                        .as_str()
                        .map(|p| format!(", verified publisher {p}"))
                        .unwrap_or_default()
                )
            })
            .collect();
        return Err(GraphError::Refused(format!(
            "{} apps of other organisations are called \"{}\" in this tenant: {}. Entra Setup does not guess which one is the vendor's. Remove the one you do not recognise in the Entra admin center (Enterprise applications), or give the profile the vendor's app_id.",
            candidates.len(),
            crate::redact::echo(display_name.unwrap_or_default(), 80),
            owners.join("; ")
        )));
    }
    let Some(sp) = candidates.pop() else {
        return Ok(None);
    };
    let sp_id = sp["id"].as_str().unwrap_or_default().to_string();
    let grants_req = graph
        .get(format!(
            "/oauth2PermissionGrants?$filter=clientId eq '{sp_id}' and consentType eq 'AllPrincipals'"
        ))
        .scopes(StepScopes::Consent);
    let roles_req = graph
        .get(format!("/servicePrincipals/{sp_id}/appRoleAssignments"))
        .scopes(StepScopes::Consent);
    let assigned_req = graph
        .get(format!("/servicePrincipals/{sp_id}/appRoleAssignedTo"))
        .scopes(StepScopes::Consent);
    let (grants, roles, assigned) = tokio::join!(
        grants_req.list::<GrantState>(),
        roles_req.list::<AssignmentState>(),
        assigned_req.list::<PrincipalAssignment>()
    );
    Ok(Some(VendorApp {
        app_id: sp["appId"].as_str().unwrap_or_default().to_string(),
        display_name: sp["displayName"].as_str().unwrap_or_default().to_string(),
        owner_tenant: sp["appOwnerOrganizationId"].as_str().map(str::to_string),
        verified_publisher: sp["verifiedPublisher"]["displayName"]
            .as_str()
            .filter(|p| !p.is_empty())
            .map(str::to_string),
        enabled: sp["accountEnabled"] != false,
        assignment_required: sp["appRoleAssignmentRequired"] == true,
        user_role_id: assignment_role(&sp["appRoles"]),
        grants: grants?,
        roles: roles?,
        assignments: assigned?,
        sp_id,
    }))
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

pub use crate::provider::NON_GALLERY_TEMPLATE;

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

/// An enterprise app made from a template (the provisioning app), its job and who is assigned.
#[derive(Clone, Debug)]
pub struct TemplateApp {
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
    pub saml: SamlState,
}

/// A token-signing certificate of a SAML app (its Verify key credential).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigningCert {
    pub key_id: String,
    pub display_name: String,
    pub end: Option<chrono::DateTime<chrono::Utc>>,
    /// SHA-1 of the certificate, upper-case hex (computed from the key: reads do not carry it).
    pub thumbprint: String,
    /// The certificate, base64 DER.
    pub key: String,
}

impl SigningCert {
    /// The certificate, DER.
    pub fn der(&self) -> Option<Vec<u8>> {
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &self.key).ok()
    }
}

/// How an enterprise app's SAML sign-on is configured.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SamlState {
    pub mode: Option<String>,
    pub login_url: Option<String>,
    pub relay_state: Option<String>,
    pub notification_emails: Vec<String>,
    pub assignment_required: bool,
    pub preferred_thumbprint: Option<String>,
    pub certificates: Vec<SigningCert>,
    pub identifier_uris: Vec<String>,
    pub reply_urls: Vec<String>,
    pub logout_url: Option<String>,
    pub groups_claim: Option<String>,
}

impl SamlState {
    /// The service principal's part (for reading certificates alone).
    pub fn from_service_principal(sp: &Value) -> Self {
        Self::read(&Value::Null, sp)
    }

    fn read(app: &Value, sp: &Value) -> Self {
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_string);
        let certificates = sp["keyCredentials"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|k| k["usage"] == "Verify")
                    .filter_map(|k| {
                        let key = k["key"].as_str()?.to_string();
                        let der = base64::Engine::decode(
                            &base64::engine::general_purpose::STANDARD,
                            &key,
                        )
                        .ok()?;
                        Some(SigningCert {
                            key_id: k["keyId"].as_str().unwrap_or_default().to_string(),
                            display_name: k["displayName"].as_str().unwrap_or_default().to_string(),
                            end: k["endDateTime"]
                                .as_str()
                                .and_then(|e| chrono::DateTime::parse_from_rfc3339(e).ok())
                                .map(|e| e.with_timezone(&chrono::Utc)),
                            thumbprint: crate::saml::thumbprint(&der),
                            key,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            mode: text(&sp["preferredSingleSignOnMode"]),
            login_url: text(&sp["loginUrl"]),
            relay_state: text(&sp["samlSingleSignOnSettings"]["relayState"]),
            notification_emails: strings(&sp["notificationEmailAddresses"]),
            assignment_required: sp["appRoleAssignmentRequired"] == true,
            preferred_thumbprint: text(&sp["preferredTokenSigningKeyThumbprint"]),
            certificates,
            identifier_uris: strings(&app["identifierUris"]),
            reply_urls: strings(&app["web"]["redirectUris"]),
            logout_url: text(&app["web"]["logoutUrl"]),
            groups_claim: text(&app["groupMembershipClaims"]).filter(|g| g != "None"),
        }
    }

    /// The certificate Entra signs with, if it is among the readable ones.
    pub fn preferred(&self) -> Option<&SigningCert> {
        let t = self.preferred_thumbprint.as_deref()?;
        self.certificates
            .iter()
            .find(|c| c.thumbprint.eq_ignore_ascii_case(t))
    }
}

/// Reads an app made from `template_id` by uniqueName, or (after an interrupted run) by the
/// temporary display name an instantiate used.
pub async fn read_template(
    graph: &GraphClient,
    unique_name: &str,
    pending_names: &[String],
    template_id: &str,
    job_template: Option<&str>,
) -> Result<Option<TemplateApp>, GraphError> {
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
                    "/applications?$filter=applicationTemplateId eq '{template_id}' and displayName eq '{}'",
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
            "/servicePrincipals(appId='{app_id}')?$select=id,appId,appRoles,appRoleAssignmentRequired,preferredSingleSignOnMode,loginUrl,samlSingleSignOnSettings,notificationEmailAddresses,preferredTokenSigningKeyThumbprint,keyCredentials"
        ))
        .scopes(s)
        .retry_if(|e| e.status == 404)
        .send_json()
        .await?;
    let sp_id = sp["id"].as_str().unwrap_or_default().to_string();
    let user_role_id = assignment_role(&sp["appRoles"]);
    let jobs = async {
        match job_template {
            Some(_) => {
                graph
                    .get(format!("/servicePrincipals/{sp_id}/synchronization/jobs"))
                    .scopes(StepScopes::Scim)
                    .list::<Value>()
                    .await
            }
            None => Ok(vec![]),
        }
    };
    let assigned_req = graph
        .get(format!("/servicePrincipals/{sp_id}/appRoleAssignedTo"))
        .scopes(StepScopes::Consent);
    let (jobs, assigned) = tokio::join!(jobs, assigned_req.list::<PrincipalAssignment>());
    let job_template = job_template.unwrap_or_default();
    let job = jobs?
        .into_iter()
        .find(|j| {
            j["templateId"] == job_template
                || j["id"]
                    .as_str()
                    .is_some_and(|i| i.starts_with(job_template))
        })
        .map(|j| JobState {
            id: j["id"].as_str().unwrap_or_default().to_string(),
            status: j["status"]["code"].as_str().unwrap_or_default().to_string(),
            schedule: j["schedule"]["state"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        });
    Ok(Some(TemplateApp {
        app_object_id: app["id"].as_str().unwrap_or_default().to_string(),
        app_id,
        sp_id,
        tagged,
        user_role_id,
        job,
        assignments: assigned?,
        saml: SamlState::read(&app, &sp),
    }))
}
