//! Vendors' own multi-tenant apps (Twingate's sign-in app, Firezone's two apps) and the gallery
//! templates services publish in Entra's app gallery.
//!
//! A vendor's app is registered in the vendor's tenant, never in the customer's: it appears in a
//! tenant as a service principal only when an administrator consents, through the admin-consent
//! endpoint a vendor's console sends them to (reference §7c, §8c). The stand-in consoles under
//! `/_vendor/{vendor}/console` do what the vendors' consoles do: send the admin to
//! `/{tenant}/v2.0/adminconsent` for each of the vendor's apps in turn and show the result.
//!
//! The appIds are the simulator's own (the vendors' real ones are not published); profiles find
//! vendor apps by display name, as the vendors' guides tell admins to.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde_json::{json, Value};

use crate::directory::GRAPH_APP_ID;
use crate::Shared;

/// One of a vendor's multi-tenant apps.
#[derive(Clone, Debug)]
pub struct VendorApp {
    pub vendor: &'static str,
    pub app_id: &'static str,
    pub display_name: &'static str,
    /// The vendor's own tenant (the service principal's `appOwnerOrganizationId`).
    pub publisher_tenant: &'static str,
    /// Microsoft Graph delegated scopes and application roles it asks for.
    pub delegated: &'static [&'static str],
    pub application: &'static [&'static str],
}

pub const TWINGATE_PUBLISHER: &str = "d8c3b1a2-5e4f-4a6b-9c7d-0e1f2a3b4c5d";
pub const FIREZONE_PUBLISHER: &str = "4b7e9f10-2c3d-4e5f-8a9b-c0d1e2f3a4b5";

/// Every vendor app the simulated world knows.
pub const VENDOR_APPS: &[VendorApp] = &[
    VendorApp {
        vendor: "twingate",
        app_id: "3c9e1f0a-8b7d-4c6e-a5f4-1d2c3b4a5f60",
        display_name: "Twingate",
        publisher_tenant: TWINGATE_PUBLISHER,
        delegated: &["openid", "profile", "email", "offline_access", "User.Read"],
        application: &[],
    },
    VendorApp {
        vendor: "firezone",
        app_id: "7a1b2c3d-4e5f-4061-8273-9485a6b7c8d9",
        display_name: "Firezone Authentication",
        publisher_tenant: FIREZONE_PUBLISHER,
        delegated: &["openid", "profile", "email", "offline_access"],
        application: &[],
    },
    VendorApp {
        vendor: "firezone",
        app_id: "9e8d7c6b-5a49-4382-9170-6f5e4d3c2b1a",
        display_name: "Firezone Directory Sync",
        publisher_tenant: FIREZONE_PUBLISHER,
        delegated: &[],
        application: &[
            "Directory.Read.All",
            "User.Read.All",
            "Application.Read.All",
        ],
    },
];

pub fn by_app_id(app_id: &str) -> Option<&'static VendorApp> {
    VENDOR_APPS
        .iter()
        .find(|a| a.app_id.eq_ignore_ascii_case(app_id))
}

impl VendorApp {
    /// Where the vendor's console takes the browser back to after consent.
    pub fn redirect_uri(&self, base_url: &str) -> String {
        format!("{base_url}/_vendor/{}/callback", self.vendor)
    }

    /// The application object as the vendor's tenant holds it (what consent reads).
    pub fn application(&self, base_url: &str) -> Value {
        let (delegated, application) = crate::directory::graph_permissions();
        let id_of = |list: &[(String, String)], name: &str| {
            list.iter()
                .find(|(n, _)| n == name)
                .map(|(_, id)| id.clone())
                .unwrap_or_default()
        };
        let mut access: Vec<Value> = self
            .delegated
            .iter()
            .map(|n| json!({"id": id_of(&delegated, n), "type": "Scope"}))
            .collect();
        access.extend(
            self.application
                .iter()
                .map(|n| json!({"id": id_of(&application, n), "type": "Role"})),
        );
        json!({
            "appId": self.app_id,
            "displayName": self.display_name,
            "signInAudience": "AzureADMultipleOrgs",
            "publisherTenant": self.publisher_tenant,
            "web": {"redirectUris": [self.redirect_uri(base_url)]},
            "requiredResourceAccess": [{"resourceAppId": GRAPH_APP_ID, "resourceAccess": access}],
        })
    }

    /// The service principal consent creates in the customer's tenant.
    pub fn service_principal(&self, id: &str) -> Value {
        json!({
            "id": id,
            "appId": self.app_id,
            "displayName": self.display_name,
            "appDisplayName": self.display_name,
            "accountEnabled": true,
            "appRoleAssignmentRequired": false,
            "appOwnerOrganizationId": self.publisher_tenant,
            "servicePrincipalType": "Application",
            "servicePrincipalNames": [self.app_id],
            "signInAudience": "AzureADMultipleOrgs",
            "tags": ["WindowsAzureActiveDirectoryIntegratedApp"],
            "appRoles": [],
            "oauth2PermissionScopes": [],
            "keyCredentials": [],
            "passwordCredentials": [],
            "notificationEmailAddresses": [],
            "replyUrls": [],
        })
    }
}

/// A gallery template: `applicationTemplates` lists it, instantiate makes its app, and its apps
/// provision with their own synchronization template.
#[derive(Clone, Debug)]
pub struct GalleryTemplate {
    pub id: &'static str,
    pub display_name: &'static str,
    pub publisher: &'static str,
    pub home_page_url: &'static str,
    pub logo_url: &'static str,
    pub single_sign_on_modes: &'static [&'static str],
    pub provisioning_types: &'static [&'static str],
    pub categories: &'static [&'static str],
    /// The synchronization template its apps carry (id, factoryTag), if it provisions.
    ///
    /// SOURCE: placeholders. Microsoft publishes neither the ids nor the factory tags of gallery
    /// apps' synchronization templates (`GET /servicePrincipals/{id}/synchronization/templates`
    /// answers them only inside a tenant), so these are made up, deliberately unlike the app's
    /// name: the wizard must take the template the app offers, never a name it guessed.
    pub sync_template: Option<(&'static str, &'static str)>,
}

pub const GALLERY: &[GalleryTemplate] = &[GalleryTemplate {
    id: "5f2b3c4d-6e7f-4801-9a2b-3c4d5e6f7081",
    display_name: "Twingate",
    publisher: "Twingate Inc.",
    home_page_url: "https://www.twingate.com/",
    logo_url: "https://az495088.vo.msecnd.net/app-logo/twingate_215.png",
    single_sign_on_modes: &["oidc"],
    provisioning_types: &["sync"],
    categories: &["security", "productivity"],
    sync_template: Some(("gallerysync-7c1e-placeholder", "placeholderTag")),
}];

pub fn gallery_template(id: &str) -> Option<&'static GalleryTemplate> {
    GALLERY.iter().find(|t| t.id.eq_ignore_ascii_case(id))
}

impl GalleryTemplate {
    /// The template as `GET /applicationTemplates` answers it.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "displayName": self.display_name,
            "homePageUrl": self.home_page_url,
            "supportedSingleSignOnModes": self.single_sign_on_modes,
            "supportedProvisioningTypes": self.provisioning_types,
            "logoUrl": self.logo_url,
            "categories": self.categories,
            "publisher": self.publisher,
            "description": format!("{} from the Microsoft Entra app gallery.", self.display_name),
        })
    }
}

/// `GET /_vendor/{vendor}/console?tenant=…`: the vendor's console starting its Entra
/// connection: to the admin-consent page for its first app.
pub(crate) async fn console(
    State(s): State<Arc<Shared>>,
    Path(vendor): Path<String>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let tenant = q
        .get("tenant")
        .cloned()
        .unwrap_or_else(|| "organizations".into());
    match consent_url(&s.base_url, &vendor, &tenant, 0) {
        Some(url) => Redirect::to(&url).into_response(),
        None => (
            axum::http::StatusCode::NOT_FOUND,
            format!("No vendor '{vendor}' here"),
        )
            .into_response(),
    }
}

/// The admin-consent link for the vendor's `n`th app.
pub fn consent_url(base_url: &str, vendor: &str, tenant: &str, n: usize) -> Option<String> {
    let app = VENDOR_APPS.iter().filter(|a| a.vendor == vendor).nth(n)?;
    let mut u = url::Url::parse(&format!("{base_url}/{tenant}/v2.0/adminconsent")).ok()?;
    u.query_pairs_mut()
        .append_pair("client_id", app.app_id)
        .append_pair("scope", "https://graph.microsoft.com/.default")
        .append_pair("redirect_uri", &app.redirect_uri(base_url))
        .append_pair("state", &format!("{tenant}|{n}"));
    Some(u.to_string())
}

/// `GET /_vendor/{vendor}/callback`: where Entra sends the admin back; on to the vendor's next
/// app, or the console's result page.
pub(crate) async fn callback(
    State(s): State<Arc<Shared>>,
    Path(vendor): Path<String>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let (tenant, n) = q
        .get("state")
        .and_then(|st| st.split_once('|'))
        .map(|(t, n)| (t.to_string(), n.parse::<usize>().unwrap_or(0)))
        .unwrap_or_default();
    if let Some(e) = q.get("error") {
        let d = q.get("error_description").cloned().unwrap_or_default();
        return Html(format!(
            "<!doctype html><title>{vendor}</title><h1>Not connected</h1><p id=result>{}: {}</p>",
            crate::login::escape(e),
            crate::login::escape(&d)
        ))
        .into_response();
    }
    match consent_url(&s.base_url, &vendor, &tenant, n + 1) {
        Some(next) => Redirect::to(&next).into_response(),
        None => Html(format!(
            "<!doctype html><title>{vendor}</title><h1>Connected</h1><p id=result>connected to tenant {}</p>",
            crate::login::escape(q.get("tenant").map_or("", String::as_str))
        ))
        .into_response(),
    }
}
