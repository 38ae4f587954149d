//! Microsoft Graph permissions by name. At run time ids are resolved from the tenant's own
//! Microsoft Graph service principal; the pinned ids (identical in every tenant, reference §4)
//! validate provider files and cross-check what the tenant returns.

use serde::Deserialize;

use crate::apis::PermissionKind;

/// Microsoft Graph's application id.
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

/// The id Microsoft publishes for a Microsoft Graph permission, if we know it
/// (`data/apis.toml`).
pub fn pinned_id(name: &str, kind: PermissionKind) -> Option<&'static str> {
    crate::apis::by_name(crate::apis::MICROSOFT_GRAPH)?.pinned_id(name, kind)
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
