//! The resource APIs provider profiles ask permissions of, from `data/apis.toml`: each API's
//! well-known application id and the permission ids Microsoft uses in every tenant.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "lowercase")]
pub enum PermissionKind {
    /// A delegated permission (scope), granted with an oauth2PermissionGrant.
    Delegated,
    /// An application permission (app role), granted with an appRoleAssignment.
    Application,
}

const SOURCE: &str = include_str!("../../../data/apis.toml");

/// One resource API (e.g. Microsoft Graph).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Api {
    pub name: String,
    pub app_id: String,
    #[serde(default)]
    pub delegated: BTreeMap<String, String>,
    #[serde(default)]
    pub application: BTreeMap<String, String>,
}

impl Api {
    /// The id Microsoft publishes for one of this API's permissions.
    pub fn pinned_id(&self, name: &str, kind: PermissionKind) -> Option<&str> {
        match kind {
            PermissionKind::Delegated => &self.delegated,
            PermissionKind::Application => &self.application,
        }
        .get(name)
        .map(String::as_str)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    apis: Vec<Api>,
}

/// Every known API. The file is part of the build: a broken one fails the tests at once.
pub fn all() -> &'static [Api] {
    static APIS: OnceLock<Vec<Api>> = OnceLock::new();
    APIS.get_or_init(|| {
        toml::from_str::<File>(SOURCE)
            .map(|f| f.apis)
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "data/apis.toml is not valid");
                vec![]
            })
    })
}

/// An API by its name as profiles write it (e.g. "Microsoft Graph").
pub fn by_name(name: &str) -> Option<&'static Api> {
    all().iter().find(|a| a.name == name)
}

/// Whether a permission lets the service change the directory or widen its own access: any
/// `*.ReadWrite.All`, and anything under `Directory.`, `RoleManagement.` or
/// `AppRoleAssignment.` (Directory.Read.All too: it reads every user, group and app). Shown
/// with a badge wherever a permission is listed.
pub fn is_high_privilege(name: &str) -> bool {
    name.ends_with(".ReadWrite.All")
        || ["Directory.", "RoleManagement.", "AppRoleAssignment."]
            .iter()
            .any(|p| name.starts_with(p))
}

/// Microsoft Graph, which every profile's permissions default to.
pub const MICROSOFT_GRAPH: &str = "Microsoft Graph";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn high_privilege_permissions_are_named() {
        for p in [
            "Directory.Read.All",
            "User.ReadWrite.All",
            "RoleManagement.Read.Directory",
            "AppRoleAssignment.ReadWrite.All",
        ] {
            assert!(is_high_privilege(p), "{p}");
        }
        for p in [
            "User.Read",
            "GroupMember.Read.All",
            "openid",
            "Group.Read.All",
        ] {
            assert!(!is_high_privilege(p), "{p}");
        }
    }

    #[test]
    fn the_data_file_reads_and_pins_graph() {
        let g = by_name(MICROSOFT_GRAPH).expect("Microsoft Graph is known");
        assert_eq!(g.app_id, "00000003-0000-0000-c000-000000000000");
        assert_eq!(
            g.pinned_id("User.Read", PermissionKind::Delegated),
            Some("e1fe6dd8-ba31-4d61-89e7-88639da4683d")
        );
        assert_eq!(
            g.pinned_id("Directory.Read.All", PermissionKind::Application),
            Some("7ab1d382-f21e-4acd-a863-ba3e13f7da61")
        );
        assert_eq!(g.pinned_id("User.Read", PermissionKind::Application), None);
    }
}
