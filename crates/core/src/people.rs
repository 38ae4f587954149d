//! Users and groups for the Sync mode step: search, and a preview of who would be provisioned
//! with warnings for what Entra's SCIM does not do or what breaks at the provider (reference §9,
//! field survey pains 11 and 12): members of nested groups are not provisioned, disabled users
//! are not created, users without mail or with UPN ≠ mail, guests, non-security groups.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::auth::StepScopes;
use crate::graph::{GraphClient, GraphError};
use crate::setup::{Assignee, PrincipalKind};
use crate::tenant::{Advice, Severity};

/// A user or group the admin can pick.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct Principal {
    pub id: String,
    pub kind: PrincipalKind,
    pub display_name: String,
    /// The UPN for a user; "Security group" / "Microsoft 365 group" for a group.
    pub detail: String,
    /// Groups: can be assigned to apps (security-enabled).
    pub assignable: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GraphUser {
    id: String,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    user_principal_name: Option<String>,
    #[serde(default)]
    mail: Option<String>,
    #[serde(default)]
    account_enabled: Option<bool>,
    #[serde(default)]
    user_type: Option<String>,
    #[serde(rename = "@odata.type", default)]
    odata_type: Option<String>,
}

const USER_FIELDS: &str = "id,displayName,userPrincipalName,mail,accountEnabled,userType";
const GROUP_FIELDS: &str = "id,displayName,securityEnabled,mailEnabled,groupTypes";

/// A value for an OData string literal in a query string: quotes doubled (OData), then
/// percent-encoded, so `&`, `#`, `+` or `%` in what the admin typed stay part of the name
/// instead of ending the filter or the URL.
fn odata_quote(s: &str) -> String {
    percent_encoding::utf8_percent_encode(
        &s.replace('\'', "''"),
        percent_encoding::NON_ALPHANUMERIC,
    )
    .to_string()
}

/// Finds users and (when `groups`) groups whose name starts with `query`.
pub async fn search(
    graph: &GraphClient,
    query: &str,
    groups: bool,
) -> Result<Vec<Principal>, GraphError> {
    let q = query.trim();
    let filter = |field: &str| {
        if q.is_empty() {
            String::new()
        } else {
            format!("&$filter=startswith({field},'{}')", odata_quote(q))
        }
    };
    let s = StepScopes::SyncMode;
    let users_req = graph
        .get(format!(
            "/users?$select={USER_FIELDS}&$top=20{}",
            filter("displayName")
        ))
        .scopes(s);
    let groups_req = graph
        .get(format!(
            "/groups?$select={GROUP_FIELDS}&$top=20{}",
            filter("displayName")
        ))
        .scopes(s);
    let (users, found_groups) = if groups {
        let (u, g) = tokio::join!(
            users_req.send_json::<serde_json::Value>(),
            groups_req.send_json::<serde_json::Value>()
        );
        (u?, Some(g?))
    } else {
        (users_req.send_json::<serde_json::Value>().await?, None)
    };
    let mut out: Vec<Principal> = vec![];
    for g in found_groups
        .as_ref()
        .and_then(|v| v["value"].as_array())
        .into_iter()
        .flatten()
    {
        let unified = g["groupTypes"]
            .as_array()
            .is_some_and(|t| t.iter().any(|x| x == "Unified"));
        let security = g["securityEnabled"] == true;
        out.push(Principal {
            id: g["id"].as_str().unwrap_or_default().to_string(),
            kind: PrincipalKind::Group,
            display_name: g["displayName"].as_str().unwrap_or_default().to_string(),
            detail: match (unified, security) {
                (true, true) => "Microsoft 365 group (security-enabled)".into(),
                (true, false) => {
                    "Microsoft 365 group: not security-enabled, cannot be assigned".into()
                }
                (false, true) => "Security group".into(),
                (false, false) => "Distribution group: cannot be assigned".into(),
            },
            assignable: security,
        });
    }
    for u in users["value"].as_array().into_iter().flatten() {
        let upn = u["userPrincipalName"].as_str().unwrap_or_default();
        let disabled = u["accountEnabled"] == false;
        out.push(Principal {
            id: u["id"].as_str().unwrap_or_default().to_string(),
            kind: PrincipalKind::User,
            display_name: u["displayName"].as_str().unwrap_or_default().to_string(),
            detail: if disabled {
                format!("{upn} (disabled)")
            } else {
                upn.to_string()
            },
            assignable: true,
        });
    }
    Ok(out)
}

/// Why a name given on the command line does not name one assignable user or group.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("No user or group is called \"{0}\": give a user's sign-in name (UPN), a group's exact display name, or an object ID.")]
    NotFound(String),
    #[error(
        "{count} groups are called \"{name}\": give the object ID of the one to assign ({ids})."
    )]
    Ambiguous {
        name: String,
        count: usize,
        ids: String,
    },
    #[error("The group \"{0}\" is not security-enabled, and Entra only assigns security groups to apps: pick a security group or its members.")]
    NotAssignable(String),
    #[error(transparent)]
    Graph(#[from] GraphError),
}

/// Finds one user or group by a user's UPN (or mail-like name), a group's exact display name,
/// or an object ID: what a script names people by.
pub async fn resolve(graph: &GraphClient, name: &str) -> Result<Assignee, ResolveError> {
    resolve_with(graph, name, StepScopes::SyncMode, true).await
}

/// Finds one security group by its exact display name or object ID (for a groups claim or a
/// policy that names groups), with the setup's own permissions.
pub async fn resolve_group(graph: &GraphClient, name: &str) -> Result<Assignee, ResolveError> {
    resolve_with(graph, name, StepScopes::RegisterApp, false).await
}

async fn resolve_with(
    graph: &GraphClient,
    name: &str,
    s: StepScopes,
    users: bool,
) -> Result<Assignee, ResolveError> {
    let name = name.trim();
    let absent = |e: &GraphError| e.status() == Some(404);
    let user = |v: serde_json::Value| Assignee {
        id: v["id"].as_str().unwrap_or_default().to_string(),
        kind: PrincipalKind::User,
        display_name: v["displayName"].as_str().unwrap_or_default().to_string(),
    };
    let group = |v: &serde_json::Value| -> Result<Assignee, ResolveError> {
        let display = v["displayName"].as_str().unwrap_or_default().to_string();
        if v["securityEnabled"] != true {
            return Err(ResolveError::NotAssignable(display));
        }
        Ok(Assignee {
            id: v["id"].as_str().unwrap_or_default().to_string(),
            kind: PrincipalKind::Group,
            display_name: display,
        })
    };
    if users && (crate::values::is_guid(name) || name.contains('@')) {
        match graph
            .get(format!("/users/{name}?$select={USER_FIELDS}"))
            .scopes(s)
            .send_json::<serde_json::Value>()
            .await
        {
            Ok(v) => return Ok(user(v)),
            Err(e) if absent(&e) => {}
            Err(e) => return Err(e.into()),
        }
        if crate::values::is_guid(name) {
            match graph
                .get(format!("/groups/{name}?$select={GROUP_FIELDS}"))
                .scopes(s)
                .send_json::<serde_json::Value>()
                .await
            {
                Ok(v) => return group(&v),
                Err(e) if absent(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        return Err(ResolveError::NotFound(name.to_string()));
    }
    if !users && crate::values::is_guid(name) {
        return match graph
            .get(format!("/groups/{name}?$select={GROUP_FIELDS}"))
            .scopes(s)
            .send_json::<serde_json::Value>()
            .await
        {
            Ok(v) => group(&v),
            Err(e) if absent(&e) => Err(ResolveError::NotFound(name.to_string())),
            Err(e) => Err(e.into()),
        };
    }
    let found: serde_json::Value = graph
        .get(format!(
            "/groups?$select={GROUP_FIELDS}&$filter=displayName eq '{}'",
            odata_quote(name)
        ))
        .scopes(s)
        .send_json()
        .await?;
    let groups = found["value"].as_array().cloned().unwrap_or_default();
    match groups.len() {
        0 => Err(ResolveError::NotFound(name.to_string())),
        1 => group(&groups[0]),
        n => Err(ResolveError::Ambiguous {
            name: name.to_string(),
            count: n,
            ids: groups
                .iter()
                .filter_map(|g| g["id"].as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// A user in the preview, with anything to know about them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct PreviewUser {
    pub id: String,
    pub display_name: String,
    pub upn: String,
    pub mail: Option<String>,
    /// Why this user needs a look: "no mail", "UPN ≠ mail", "guest", "disabled", "nested".
    pub notes: Vec<String>,
}

/// Who would be provisioned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct SyncPreview {
    pub sync_all: bool,
    /// Enabled users Entra will create at the provider.
    pub users: u32,
    pub groups: u32,
    /// Disabled users in scope: not created.
    pub disabled: u32,
    /// Users reachable only through a nested group: Entra does not provision them.
    pub nested_only: Vec<PreviewUser>,
    /// Users who will be provisioned (the first 200).
    pub sample: Vec<PreviewUser>,
    pub warnings: Vec<Advice>,
    /// More users exist than were examined (All users mode in a large tenant).
    pub truncated: bool,
}

/// How many users the preview examines in "All users and groups" mode.
const ALL_USERS_LIMIT: usize = 5000;

fn preview_user(u: &GraphUser) -> PreviewUser {
    let upn = u.user_principal_name.clone().unwrap_or_default();
    let mut notes = vec![];
    match u.mail.as_deref().filter(|m| !m.is_empty()) {
        None => notes.push("no mail".to_string()),
        Some(m) if !m.eq_ignore_ascii_case(&upn) => notes.push("UPN ≠ mail".to_string()),
        Some(_) => {}
    }
    if u.user_type.as_deref() == Some("Guest") || upn.contains("#EXT#") {
        notes.push("guest".to_string());
    }
    PreviewUser {
        id: u.id.clone(),
        display_name: u.display_name.clone().unwrap_or_default(),
        upn,
        mail: u.mail.clone(),
        notes,
    }
}

fn is_group(u: &GraphUser) -> bool {
    u.odata_type.as_deref() == Some("#microsoft.graph.group")
}

/// How the service that syncs counts people: Entra's SCIM takes direct members of assigned
/// groups only; a vendor that reads the directory itself may take nested members too
/// (Firezone reads `transitiveMembers`). From the provider's profile, never assumed in code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreviewRules {
    pub members: crate::provider::MemberCount,
    /// Who syncs: "Entra's provisioning" or the vendor's name.
    pub syncer: String,
    /// Why users without a mail address matter to this service, when the profile says.
    pub no_mail_reason: Option<String>,
}

impl Default for PreviewRules {
    fn default() -> Self {
        Self {
            members: crate::provider::MemberCount::Direct,
            syncer: "Entra's provisioning".into(),
            no_mail_reason: None,
        }
    }
}

impl PreviewRules {
    /// The rules of a provider's profile: its directory sync's, else Entra's SCIM with the
    /// profile's no-mail reason.
    pub fn of(provider: &crate::provider::Provider) -> Self {
        match &provider.directory_sync {
            Some(d) => Self {
                members: d.members,
                syncer: provider.name.clone(),
                no_mail_reason: provider
                    .scim
                    .as_ref()
                    .and_then(|s| s.no_mail_reason.clone()),
            },
            None => Self {
                no_mail_reason: provider
                    .scim
                    .as_ref()
                    .and_then(|s| s.no_mail_reason.clone()),
                ..Self::default()
            },
        }
    }
}

/// Computes who would sync for the chosen mode and assignments, counted the way the syncing
/// service counts (`rules`).
pub async fn preview(
    graph: &GraphClient,
    sync_all: bool,
    assigned: &[Assignee],
    rules: &PreviewRules,
) -> Result<SyncPreview, GraphError> {
    let count_nested = rules.members == crate::provider::MemberCount::Transitive;
    let s = StepScopes::SyncMode;
    let mut in_scope: BTreeMap<String, GraphUser> = BTreeMap::new();
    let mut nested_only: BTreeMap<String, GraphUser> = BTreeMap::new();
    let mut warnings = vec![];
    let mut groups = 0u32;
    let mut truncated = false;
    if sync_all {
        let users: Vec<GraphUser> = graph
            .get(format!("/users?$select={USER_FIELDS}&$top=999"))
            .scopes(s)
            .list()
            .await?;
        truncated = users.len() > ALL_USERS_LIMIT;
        for u in users.into_iter().take(ALL_USERS_LIMIT) {
            in_scope.insert(u.id.clone(), u);
        }
        let all_groups: Vec<serde_json::Value> = graph
            .get("/groups?$select=id&$top=999")
            .scopes(s)
            .list()
            .await?;
        groups = u32::try_from(all_groups.len()).unwrap_or(u32::MAX);
    } else {
        let mut nested_groups: BTreeSet<String> = BTreeSet::new();
        let mut not_security = vec![];
        for a in assigned {
            match a.kind {
                PrincipalKind::User => {
                    let u: GraphUser = graph
                        .get(format!("/users/{}?$select={USER_FIELDS}", a.id))
                        .scopes(s)
                        .send_json()
                        .await?;
                    in_scope.insert(u.id.clone(), u);
                }
                PrincipalKind::Group => {
                    groups += 1;
                    let g: serde_json::Value = graph
                        .get(format!("/groups/{}?$select={GROUP_FIELDS}", a.id))
                        .scopes(s)
                        .send_json()
                        .await?;
                    if g["securityEnabled"] != true {
                        not_security.push(a.display_name.clone());
                    }
                    let direct_req = graph
                        .get(format!(
                            "/groups/{}/members?$select={USER_FIELDS}&$top=999",
                            a.id
                        ))
                        .scopes(s);
                    let transitive_req = graph
                        .get(format!(
                            "/groups/{}/transitiveMembers/microsoft.graph.user?$select={USER_FIELDS}&$top=999",
                            a.id
                        ))
                        .scopes(s)
                        .advanced();
                    let (direct, transitive) = tokio::join!(
                        direct_req.list::<GraphUser>(),
                        transitive_req.list::<GraphUser>()
                    );
                    let direct = direct?;
                    let direct_ids: BTreeSet<String> = direct
                        .iter()
                        .filter(|m| !is_group(m))
                        .map(|m| m.id.clone())
                        .collect();
                    for m in direct.iter().filter(|m| is_group(m)) {
                        nested_groups.insert(format!(
                            "{} (in {})",
                            m.display_name.clone().unwrap_or_default(),
                            a.display_name
                        ));
                    }
                    for u in transitive? {
                        if count_nested || direct_ids.contains(&u.id) {
                            in_scope.insert(u.id.clone(), u);
                        } else {
                            nested_only.insert(u.id.clone(), u);
                        }
                    }
                }
            }
        }
        nested_only.retain(|id, _| !in_scope.contains_key(id));
        if count_nested && !nested_groups.is_empty() {
            warnings.push(Advice {
                id: "nested_groups".into(),
                severity: Severity::Info,
                title: "Members of nested groups are included".into(),
                detail: format!(
                    "{} reads the members of nested groups too (unlike Entra's own provisioning), so they are counted here. Nested: {}.",
                    rules.syncer,
                    nested_groups.into_iter().collect::<Vec<_>>().join(", ")
                ),
                link: None,
            });
        } else if !nested_groups.is_empty() {
            warnings.push(Advice {
                id: "nested_groups".into(),
                severity: Severity::Warning,
                title: "Members of nested groups are not provisioned".into(),
                detail: format!(
                    "Entra's provisioning only takes direct members of assigned groups. Nested: {}. Assign those groups directly if their members need access ({} user{} would be left out).",
                    nested_groups.into_iter().collect::<Vec<_>>().join(", "),
                    nested_only.len(),
                    if nested_only.len() == 1 { "" } else { "s" }
                ),
                link: None,
            });
        }
        if !not_security.is_empty() {
            warnings.push(Advice {
                id: "not_security_enabled".into(),
                severity: Severity::Blocker,
                title: "Only security-enabled groups can be assigned".into(),
                detail: format!(
                    "{} cannot be assigned to an app. Use a security group, or a Microsoft 365 group with security enabled.",
                    not_security.join(", ")
                ),
                link: None,
            });
        }
    }
    let disabled: Vec<String> = in_scope
        .values()
        .filter(|u| u.account_enabled == Some(false))
        .map(|u| u.display_name.clone().unwrap_or_default())
        .collect();
    let active: Vec<PreviewUser> = in_scope
        .values()
        .filter(|u| u.account_enabled != Some(false))
        .map(preview_user)
        .collect();
    let with = |note: &str| -> Vec<&PreviewUser> {
        active
            .iter()
            .filter(|u| u.notes.iter().any(|n| n == note))
            .collect()
    };
    let names = |us: &[&PreviewUser]| {
        let mut n: Vec<String> = us.iter().take(5).map(|u| u.display_name.clone()).collect();
        if us.len() > 5 {
            n.push(format!("and {} more", us.len() - 5));
        }
        n.join(", ")
    };
    // Listed by name in full when the service says why they matter (up to 50).
    let all_names = |us: &[&PreviewUser]| {
        let mut n: Vec<String> = us.iter().take(50).map(|u| u.display_name.clone()).collect();
        if us.len() > 50 {
            n.push(format!("and {} more", us.len() - 50));
        }
        n.join(", ")
    };
    let no_mail = with("no mail");
    if !no_mail.is_empty() {
        warnings.push(Advice {
            id: "no_mail".into(),
            severity: Severity::Warning,
            title: format!("{} user{} without a mail address", no_mail.len(), if no_mail.len() == 1 { "" } else { "s" }),
            detail: match &rules.no_mail_reason {
                Some(why) => format!("{}: {why}", all_names(&no_mail)),
                None => format!("{}: Entra sends no work email for them, and providers that match people by email cannot link them to a sign-in. Give them a mail address, or map Coalesce([mail],[userPrincipalName]) to emails[type eq \"work\"].value.", names(&no_mail)),
            },
            link: None,
        });
    }
    let differs = with("UPN ≠ mail");
    if !differs.is_empty() {
        warnings.push(Advice {
            id: "upn_not_mail".into(),
            severity: Severity::Warning,
            title: format!("{} user{} whose sign-in name differs from their mail", differs.len(), if differs.len() == 1 { "" } else { "s" }),
            detail: format!("{}: userName (from the UPN) and the work email will not match. If the provider identifies people by email, map mail to userName.", names(&differs)),
            link: None,
        });
    }
    let guests = with("guest");
    if !guests.is_empty() {
        warnings.push(Advice {
            id: "guests".into(),
            severity: Severity::Info,
            title: format!("{} guest{} in scope", guests.len(), if guests.len() == 1 { "" } else { "s" }),
            detail: format!("{}: guests are provisioned with userNames like name_domain#EXT#@yourtenant; check the provider accepts them.", names(&guests)),
            link: None,
        });
    }
    if !disabled.is_empty() {
        warnings.push(Advice {
            id: "disabled".into(),
            severity: Severity::Info,
            title: format!("{} disabled user{} not created", disabled.len(), if disabled.len() == 1 { "" } else { "s" }),
            detail: format!("{}: Entra does not create disabled users, and disables them at the provider if they exist there.", disabled.join(", ")),
            link: None,
        });
    }
    let nested_list: Vec<PreviewUser> = nested_only
        .values()
        .filter(|u| u.account_enabled != Some(false))
        .map(|u| {
            let mut p = preview_user(u);
            p.notes.insert(0, "nested".into());
            p
        })
        .collect();
    Ok(SyncPreview {
        sync_all,
        users: u32::try_from(active.len()).unwrap_or(u32::MAX),
        groups,
        disabled: u32::try_from(disabled.len()).unwrap_or(u32::MAX),
        nested_only: nested_list,
        sample: active.into_iter().take(200).collect(),
        warnings,
        truncated,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Assigned {
    principal_id: String,
    #[serde(default)]
    principal_type: Option<String>,
    #[serde(default)]
    principal_display_name: Option<String>,
}

/// For providers whose SCIM groups replace the groups a user signs in with (Cloudflare): the
/// groups assigned to the sign-in app and to the provisioning app should be the same.
pub async fn group_mismatch(
    graph: &GraphClient,
    sign_in_sp: &str,
    scim_sp: &str,
    provider: &str,
) -> Result<Option<Advice>, GraphError> {
    let s = StepScopes::Consent;
    let groups_of = |sp: String| async move {
        let all: Vec<Assigned> = graph
            .get(format!("/servicePrincipals/{sp}/appRoleAssignedTo"))
            .scopes(s)
            .list()
            .await?;
        Ok::<BTreeMap<String, String>, GraphError>(
            all.into_iter()
                .filter(|a| a.principal_type.as_deref() == Some("Group"))
                .map(|a| {
                    let name = a
                        .principal_display_name
                        .unwrap_or_else(|| a.principal_id.clone());
                    (a.principal_id, name)
                })
                .collect(),
        )
    };
    let (sso, scim) = tokio::join!(
        groups_of(sign_in_sp.to_string()),
        groups_of(scim_sp.to_string())
    );
    let (sso, scim) = (sso?, scim?);
    if sso.is_empty() {
        return Ok(None);
    }
    let only_sso: Vec<&str> = sso
        .iter()
        .filter(|(id, _)| !scim.contains_key(*id))
        .map(|(_, n)| n.as_str())
        .collect();
    let only_scim: Vec<&str> = scim
        .iter()
        .filter(|(id, _)| !sso.contains_key(*id))
        .map(|(_, n)| n.as_str())
        .collect();
    if only_sso.is_empty() && only_scim.is_empty() {
        return Ok(None);
    }
    let mut parts = vec![];
    if !only_sso.is_empty() {
        parts.push(format!("only on the sign-in app: {}", only_sso.join(", ")));
    }
    if !only_scim.is_empty() {
        parts.push(format!(
            "only on the provisioning app: {}",
            only_scim.join(", ")
        ));
    }
    Ok(Some(Advice {
        id: "scim_group_mismatch".into(),
        severity: Severity::Warning,
        title: "The two apps have different groups".into(),
        detail: format!(
            "{provider} replaces a user's groups with what SCIM sends, so assign the same groups to both apps ({}).",
            parts.join("; ")
        ),
        link: None,
    }))
}
