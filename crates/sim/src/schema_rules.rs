//! Graph checks every request against its schema before it reads or writes anything; so does
//! the simulator, at request time, with Microsoft's own Graph v1.0 CSDL
//! (`tests/graph/graph-v1.0.csdl.xml`, read through `graph-csdl`):
//! - a path Graph does not have: 400 `BadRequest` "Resource not found for the segment …";
//! - a body property the type does not have, or a value of the wrong shape: 400
//!   `Request_BadRequest`;
//! - a `$select`, `$filter`, `$orderby` or `$expand` name the type does not have: 400
//!   `Request_BadRequest` "Could not find a property named …";
//! - a property that the create call's documentation marks Required, left out: 400;
//! - a `$filter` on a property that the resource's documentation does not mark "Supports
//!   $filter": 400 `Request_UnsupportedQuery`.

use axum::http::{Method, StatusCode};
use graph_csdl::{Schema, Target};
use serde_json::Value;

use crate::graph::GraphErr;

/// Properties the v1.0 "Create" pages mark Required, by the type created (or the action
/// called). Sources: learn.microsoft.com/graph/api/application-post-applications,
/// serviceprincipal-post-serviceprincipals, group-post-groups, user-post-users,
/// oauth2permissiongrant-post, serviceprincipal-post-approleassignedto,
/// synchronization-synchronization-post-jobs, applicationtemplate-instantiate,
/// application-removepassword, application-removekey, application-addkey.
const REQUIRED: &[(&str, &[&str])] = &[
    ("microsoft.graph.application", &["displayName"]),
    ("microsoft.graph.servicePrincipal", &["appId"]),
    (
        "microsoft.graph.group",
        &[
            "displayName",
            "mailEnabled",
            "mailNickname",
            "securityEnabled",
        ],
    ),
    (
        "microsoft.graph.user",
        &[
            "accountEnabled",
            "displayName",
            "mailNickname",
            "passwordProfile",
            "userPrincipalName",
        ],
    ),
    (
        "microsoft.graph.oAuth2PermissionGrant",
        &["clientId", "consentType", "resourceId"],
    ),
    (
        "microsoft.graph.appRoleAssignment",
        &["principalId", "resourceId", "appRoleId"],
    ),
    ("microsoft.graph.synchronizationJob", &["templateId"]),
    ("instantiate", &["displayName"]),
    ("removePassword", &["keyId"]),
    ("removeKey", &["keyId", "proof"]),
    ("addKey", &["keyCredential", "passwordCredential", "proof"]),
];

/// The properties each resource's v1.0 page marks "Supports $filter", by type. A type not
/// listed is not restricted here. Sources: learn.microsoft.com/graph/api/resources/application,
/// serviceprincipal, oauth2permissiongrant, group, user, approleassignment,
/// unifiedroleeligibilityscheduleinstance, provisioningobjectsummary; and
/// applicationtemplate-list ("You can only filter by displayName or categories").
const FILTERABLE: &[(&str, &[&str])] = &[
    (
        "microsoft.graph.application",
        &[
            "id",
            "appId",
            "applicationTemplateId",
            "createdDateTime",
            "description",
            "disabledByMicrosoftStatus",
            "displayName",
            "identifierUris",
            "info",
            "keyCredentials",
            "notes",
            "passwordCredentials",
            "publisherDomain",
            "requiredResourceAccess",
            "serviceManagementReference",
            "signInAudience",
            "spa",
            "tags",
            "uniqueName",
            "web",
            "owners",
        ],
    ),
    (
        "microsoft.graph.servicePrincipal",
        &[
            "id",
            "accountEnabled",
            "alternativeNames",
            "appDisplayName",
            "appId",
            "appOwnerOrganizationId",
            "applicationTemplateId",
            "appRoleAssignmentRequired",
            "description",
            "disabledByMicrosoftStatus",
            "displayName",
            "homepage",
            "info",
            "keyCredentials",
            "notificationEmailAddresses",
            "passwordCredentials",
            "preferredSingleSignOnMode",
            "publisherName",
            "replyUrls",
            "servicePrincipalNames",
            "servicePrincipalType",
            "signInAudience",
            "tags",
            "verifiedPublisher",
            "owners",
        ],
    ),
    (
        "microsoft.graph.oAuth2PermissionGrant",
        &["id", "clientId", "consentType", "principalId", "resourceId"],
    ),
    (
        "microsoft.graph.group",
        &[
            "id",
            "assignedLicenses",
            "classification",
            "createdDateTime",
            "description",
            "displayName",
            "expirationDateTime",
            "groupTypes",
            "isAssignableToRole",
            "mail",
            "mailEnabled",
            "mailNickname",
            "membershipRule",
            "onPremisesSamAccountName",
            "onPremisesSecurityIdentifier",
            "onPremisesSyncEnabled",
            "preferredLanguage",
            "proxyAddresses",
            "renewedDateTime",
            "securityEnabled",
            "securityIdentifier",
            "theme",
            "visibility",
            "members",
            "owners",
        ],
    ),
    (
        "microsoft.graph.user",
        &[
            "id",
            "accountEnabled",
            "ageGroup",
            "assignedLicenses",
            "city",
            "companyName",
            "country",
            "createdDateTime",
            "creationType",
            "department",
            "displayName",
            "employeeHireDate",
            "employeeId",
            "employeeOrgData",
            "employeeType",
            "externalUserState",
            "faxNumber",
            "givenName",
            "identities",
            "imAddresses",
            "jobTitle",
            "mail",
            "mailNickname",
            "mobilePhone",
            "officeLocation",
            "onPremisesExtensionAttributes",
            "onPremisesImmutableId",
            "onPremisesSamAccountName",
            "onPremisesSecurityIdentifier",
            "onPremisesSyncEnabled",
            "onPremisesUserPrincipalName",
            "otherMails",
            "postalCode",
            "preferredLanguage",
            "proxyAddresses",
            "signInActivity",
            "state",
            "streetAddress",
            "surname",
            "usageLocation",
            "userPrincipalName",
            "userType",
            "memberOf",
            "manager",
        ],
    ),
    (
        "microsoft.graph.appRoleAssignment",
        &[
            "id",
            "principalId",
            "resourceId",
            "appRoleId",
            "principalType",
        ],
    ),
    (
        "microsoft.graph.unifiedRoleEligibilityScheduleInstance",
        &[
            "id",
            "principalId",
            "roleDefinitionId",
            "directoryScopeId",
            "appScopeId",
            "roleEligibilityScheduleId",
            "memberType",
            "startDateTime",
            "endDateTime",
        ],
    ),
    (
        "microsoft.graph.applicationTemplate",
        &["displayName", "categories"],
    ),
    (
        "microsoft.graph.provisioningObjectSummary",
        &[
            "id",
            "activityDateTime",
            "changeId",
            "cycleId",
            "durationInMilliseconds",
            "initiatedBy",
            "jobId",
            "modifiedProperties",
            "provisioningAction",
            "provisioningStatusInfo",
            "provisioningSteps",
            "servicePrincipal",
            "sourceIdentity",
            "sourceSystem",
            "targetIdentity",
            "targetSystem",
            "tenantId",
        ],
    ),
];

/// Checks one request against the schema and Graph's documented rules.
pub(crate) fn check(
    schema: &Schema,
    method: &Method,
    path: &str,
    query: &[(String, String)],
    body: Option<&Value>,
) -> Result<(), GraphErr> {
    let bad = |m: String| GraphErr::new(StatusCode::BAD_REQUEST, "Request_BadRequest", m);
    let target = schema.resolve(path).map_err(|e| {
        GraphErr::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("Resource not found for the segment: {e}"),
        )
    })?;
    if let Some(body) = body {
        let errors = schema.check_request(method.as_str(), path, body);
        if !errors.is_empty() {
            return Err(bad(format!("Invalid request body. {}", errors.join("; "))));
        }
        if method == Method::POST {
            required(&target, body).map_err(bad)?;
        }
    }
    if method == Method::GET {
        let errors = schema.check_query(path, query);
        if !errors.is_empty() {
            return Err(bad(errors.join("; ")));
        }
        filterable(&target, query)?;
    }
    Ok(())
}

fn required(target: &Target, body: &Value) -> Result<(), String> {
    let key = match target {
        Target::Collection(ty) => ty.name.as_str(),
        Target::Operation(op) => op.name.as_str(),
        _ => return Ok(()),
    };
    let Some((_, props)) = REQUIRED.iter().find(|(k, _)| *k == key) else {
        return Ok(());
    };
    // addKey needs a keyCredential or a passwordCredential, and the proof.
    let missing: Vec<&str> = if key == "addKey" {
        let has = |p: &str| body.get(p).is_some_and(|v| !v.is_null());
        let mut m = vec![];
        if !has("keyCredential") && !has("passwordCredential") {
            m.push("keyCredential");
        }
        if !has("proof") {
            m.push("proof");
        }
        m
    } else {
        props
            .iter()
            .copied()
            .filter(|p| body.get(*p).is_none_or(Value::is_null))
            .collect()
    };
    match missing.as_slice() {
        [] => Ok(()),
        _ => Err(format!(
            "Invalid request body. The required propert{} {} {} missing.",
            if missing.len() == 1 { "y" } else { "ies" },
            missing
                .iter()
                .map(|p| format!("'{p}'"))
                .collect::<Vec<_>>()
                .join(", "),
            if missing.len() == 1 { "is" } else { "are" },
        )),
    }
}

fn filterable(target: &Target, query: &[(String, String)]) -> Result<(), GraphErr> {
    let Some(filter) = query
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("$filter"))
        .map(|(_, v)| v)
    else {
        return Ok(());
    };
    let ty = match target {
        Target::Collection(ty) => ty.name.as_str(),
        _ => return Ok(()),
    };
    let Some((_, allowed)) = FILTERABLE.iter().find(|(t, _)| *t == ty) else {
        return Ok(());
    };
    let short = ty.trim_start_matches("microsoft.graph.");
    for p in graph_csdl::filtered_properties(filter) {
        if !p.top_level {
            continue;
        }
        let root = p.path.split('/').next().unwrap_or_default();
        if !allowed.contains(&root) {
            return Err(GraphErr::new(
                StatusCode::BAD_REQUEST,
                "Request_UnsupportedQuery",
                format!(
                    "Unsupported or invalid query filter clause specified for property '{root}' of resource '{short}'."
                ),
            ));
        }
    }
    Ok(())
}
