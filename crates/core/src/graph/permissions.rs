//! Microsoft Graph permissions by name. At run time ids are resolved from the tenant's own
//! Microsoft Graph service principal; the pinned ids (identical in every tenant, reference §4)
//! validate provider files and cross-check what the tenant returns.

use serde::Deserialize;

use crate::provider::PermissionKind;

/// Microsoft Graph's application id.
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

const DELEGATED: &[(&str, &str)] = &[
    ("email", "64a6cdd6-aab1-4aaf-94b8-3cc8405e90d0"),
    ("offline_access", "7427e0e9-2fba-42fe-b0c0-848c9e6a8182"),
    ("openid", "37f7f235-527c-4136-accd-4a02d197296e"),
    ("profile", "14dad69e-099b-42c9-810b-d002981feec1"),
    ("User.Read", "e1fe6dd8-ba31-4d61-89e7-88639da4683d"),
    ("Directory.Read.All", "06da0dbc-49e2-44d2-8312-53f166ab848a"),
    (
        "GroupMember.Read.All",
        "bc024368-1153-4739-b217-4326f2e966d0",
    ),
    ("User.Read.All", "a154be20-db9c-4678-8ab7-66f6cc099a59"),
    ("Group.Read.All", "5f8c59db-677d-491f-a6b8-5f174b11ec1d"),
    (
        "Application.ReadWrite.All",
        "bdfbf15f-ee85-4955-8675-146e8e5296b5",
    ),
];

const APPLICATION: &[(&str, &str)] = &[
    ("Directory.Read.All", "7ab1d382-f21e-4acd-a863-ba3e13f7da61"),
    ("Group.Read.All", "5b567255-7703-4780-807c-7be8301ae99b"),
    ("User.Read.All", "df021288-bdef-4463-88db-98f22de89214"),
    (
        "GroupMember.Read.All",
        "98830695-27a2-44f7-8c18-0c3ebc9698f6",
    ),
];

/// The id Microsoft publishes for a permission, if we know it.
pub fn pinned_id(name: &str, kind: PermissionKind) -> Option<&'static str> {
    let table = match kind {
        PermissionKind::Delegated => DELEGATED,
        PermissionKind::Application => APPLICATION,
    };
    table.iter().find(|(n, _)| *n == name).map(|(_, id)| *id)
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Named {
    id: String,
    #[serde(default)]
    value: Option<String>,
}

/// The tenant's Microsoft Graph service principal: its object id and permission ids by name.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphServicePrincipal {
    pub id: String,
    #[serde(default)]
    app_roles: Vec<Named>,
    #[serde(default)]
    oauth2_permission_scopes: Vec<Named>,
}

impl GraphServicePrincipal {
    /// The id of a permission in this tenant.
    pub fn permission_id(&self, name: &str, kind: PermissionKind) -> Option<&str> {
        let list = match kind {
            PermissionKind::Delegated => &self.oauth2_permission_scopes,
            PermissionKind::Application => &self.app_roles,
        };
        list.iter()
            .find(|n| n.value.as_deref() == Some(name))
            .map(|n| n.id.as_str())
    }

    /// The permission's name from its id.
    pub fn permission_name(&self, id: &str, kind: PermissionKind) -> Option<&str> {
        let list = match kind {
            PermissionKind::Delegated => &self.oauth2_permission_scopes,
            PermissionKind::Application => &self.app_roles,
        };
        list.iter()
            .find(|n| n.id.eq_ignore_ascii_case(id))
            .and_then(|n| n.value.as_deref())
    }
}
