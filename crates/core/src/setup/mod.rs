//! Setting a provider up in a tenant: what the admin wants ([`Intent`]), what the tenant has
//! ([`state::TenantState`]), the [`plan::Plan`] between them, the one code path that writes
//! ([`apply`]), the [`journal`] that makes an interrupted apply resumable and undoable.

pub mod apply;
pub mod certificates;
pub mod custody;
pub mod flow;
pub mod found;
pub mod journal;
pub mod plan;
pub mod run;
pub mod secrets;
pub mod state;
pub mod status;
pub mod sync;
pub mod test_sign_in;
pub mod undo;
pub mod vendor;
pub mod view;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::graph::permissions::{GraphServicePrincipal, GRAPH_APP_ID};
use crate::provider::{self, InputError, PermissionKind, Provider};

/// A permission the provider's profile names that the tenant's Microsoft Graph does not offer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("This tenant's Microsoft Graph has no {} permission named {name}: check the profile's [[permissions]].", match kind { PermissionKind::Delegated => "delegated", PermissionKind::Application => "application" })]
pub struct UnknownPermission {
    pub kind: PermissionKind,
    pub name: String,
}

/// The tag every object the wizard manages carries.
pub const TAG: &str = "entra-setup";

/// A provider plus the admin's validated inputs and choices.
#[derive(Clone, Debug)]
pub struct Intent {
    pub provider: Provider,
    /// Validated, normalised inputs (plus derived values such as `<url input>_host`).
    pub inputs: BTreeMap<String, String>,
    pub secret_lifetime_days: u32,
    /// SCIM provisioning, when the admin set it up in this run.
    pub scim: Option<ScimIntent>,
    /// Add a new client secret even though a good one exists (rotation: the current ones stay
    /// valid until they are retired, so sign-in never stops).
    pub rotate_secret: bool,
    /// SAML single sign-on, for providers that sign in with SAML (from the profile and inputs).
    pub saml: Option<SamlIntent>,
    /// The cloud's non-gallery application template (set from the session when planning).
    pub non_gallery_template: String,
    /// Gallery apps' template ids found in the tenant's gallery by name, by the profile's app
    /// id (set when planning; a profile may pin one instead).
    pub gallery_templates: BTreeMap<String, String>,
    /// The tenant being set up (set from the session when planning): a vendor's app is one whose
    /// owner is another tenant.
    pub tenant_id: String,
    /// The vendor's own directory sync (Firezone): its mode and who is assigned.
    pub directory_sync: Option<DirectorySyncIntent>,
}

/// What the admin chose for a vendor's directory sync (`[directory_sync]` of the profile).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectorySyncIntent {
    /// "All groups" (nothing assigned) or "Assigned groups only".
    pub sync_all: bool,
    /// Who is assigned to the profile's `assign_to` app (the whole set).
    pub assign: Vec<Assignee>,
}

impl DirectorySyncIntent {
    /// Checks the choice: "assigned groups only" needs someone assigned.
    pub fn new(sync_all: bool, assign: Vec<Assignee>) -> Result<Self, Vec<InputError>> {
        if !sync_all && assign.is_empty() {
            return Err(vec![InputError {
                field: "scim_assign".into(),
                label: "Groups".into(),
                message: "With \"Assigned groups only\", nothing syncs until you assign a group: pick at least one group, or choose \"All groups\".".into(),
            }]);
        }
        Ok(Self { sync_all, assign })
    }
}

/// SAML single sign-on on an enterprise app (reference §8b): the service's values, rendered from
/// the profile with the admin's inputs, and who may sign in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SamlIntent {
    /// The service's Entity ID: the app's `identifierUris`, unique in the tenant.
    pub entity_id: String,
    /// Assertion Consumer Service URLs: the app's `web.redirectUris` (the first is the default).
    pub reply_urls: Vec<String>,
    /// SP-initiated sign-on URL: the service principal's `loginUrl`.
    pub sign_on_url: Option<String>,
    pub relay_state: Option<String>,
    /// The service's single logout URL: the app's `web.logoutUrl`.
    pub logout_url: Option<String>,
    /// The groups claim (`groupMembershipClaims`), when the service wants one.
    pub groups_claim: Option<String>,
    /// Who gets Entra's certificate-expiry mails (the signed-in admin).
    pub notify: Vec<String>,
    /// Who may sign in: `None` lets every user of the tenant in (assignment not required).
    pub assign: Option<Vec<Assignee>>,
    pub certificate_lifetime_days: u32,
}

/// A user or a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub enum PrincipalKind {
    User,
    Group,
}

/// Someone to assign to the provisioning app.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct Assignee {
    pub id: String,
    pub kind: PrincipalKind,
    pub display_name: String,
}

/// What the admin chose for SCIM provisioning. The bearer token is not here: it stays in the
/// shell's memory (or the keychain) and reaches apply through [`apply::ApplyOptions`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScimIntent {
    /// The tenant URL as Entra will call it (may carry `?aadOptscim062020`).
    pub tenant_url: String,
    /// Save a (new) token and the settings: false keeps what Entra has saved.
    pub new_token: bool,
    /// When the provider's token expires, if it does.
    pub token_expires: Option<chrono::NaiveDate>,
    /// "Sync all users and groups" (`SyncAll` = true) or only assigned ones.
    pub sync_all: bool,
    /// Who is assigned to the app (the whole set: others the wizard assigned are removed).
    pub assign: Vec<Assignee>,
    /// Start provisioning once configured.
    pub start: bool,
}

impl ScimIntent {
    /// Checks the tenant URL and choices; every problem names the field to fix.
    pub fn new(
        tenant_url: &str,
        new_token: bool,
        token_expires: Option<chrono::NaiveDate>,
        sync_all: bool,
        assign: Vec<Assignee>,
        start: bool,
    ) -> Result<Self, Vec<InputError>> {
        let mut errors = vec![];
        let url = tenant_url.trim().to_string();
        match crate::endpoint::parse(&url, crate::endpoint::Http::Loopback, true) {
            Err(why) => errors.push(InputError {
                field: "scim_url".into(),
                label: "Tenant URL".into(),
                message: format!("Enter the provider's full SCIM base URL, e.g. https://scim.example.com/scim/v2: {why}."),
            }),
            Ok(u) => {
                if u.query().is_some_and(|q| q != "aadOptscim062020") {
                    errors.push(InputError {
                        field: "scim_url".into(),
                        label: "Tenant URL".into(),
                        message: "Remove the query string: Entra only understands ?aadOptscim062020 there.".into(),
                    });
                }
            }
        }
        if let Some(d) = token_expires {
            let today = chrono::Utc::now().date_naive();
            if let Err(e) = crate::values::future_date(&d.format("%Y-%m-%d").to_string(), today) {
                errors.push(InputError {
                    field: "scim_token_expires".into(),
                    label: "Token expiry".into(),
                    message: format!("{e}."),
                });
            }
        }
        if !sync_all && assign.is_empty() {
            errors.push(InputError {
                field: "scim_assign".into(),
                label: "Users and groups".into(),
                message: "With \"Assigned users and groups only\", nothing syncs until you assign someone: pick at least one user or group, or choose \"All users and groups\".".into(),
            });
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            tenant_url: url,
            new_token,
            token_expires,
            sync_all,
            assign,
            start,
        })
    }
}

/// A permission resolved to its id in this tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedPermission {
    pub name: String,
    pub kind: PermissionKind,
    pub id: String,
}

impl Intent {
    /// Validates the inputs; every bad one is reported, each with what to type.
    pub fn new(
        provider: Provider,
        raw: &BTreeMap<String, String>,
        secret_lifetime_days: Option<u32>,
    ) -> Result<Self, Vec<InputError>> {
        let inputs = provider.validate_inputs(raw)?;
        let days = secret_lifetime_days.unwrap_or(provider.secret_lifetime_days());
        if !(1..=730).contains(&days) {
            return Err(vec![InputError {
                field: "secret_lifetime_days".into(),
                label: "Secret lifetime".into(),
                message: format!("{days} days is not allowed: choose 1 to 730 days (Entra's portal allows at most 24 months)."),
            }]);
        }
        let saml = provider.saml().map(|spec| {
            let r = |t: &str| provider::render(t, &inputs, str::to_string).unwrap_or_default();
            let opt = |t: &Option<String>| t.as_deref().map(r).filter(|v| !v.trim().is_empty());
            SamlIntent {
                entity_id: r(&spec.entity_id),
                reply_urls: spec
                    .reply_urls
                    .iter()
                    .flat_map(|u| provider::list_items(&r(u)))
                    .collect(),
                sign_on_url: opt(&spec.sign_on_url),
                relay_state: opt(&spec.relay_state),
                logout_url: opt(&spec.logout_url),
                groups_claim: opt(&spec.groups_claim).filter(|g| g != "None"),
                notify: vec![],
                assign: None,
                certificate_lifetime_days: spec.certificate_lifetime_days,
            }
        });
        Ok(Self {
            provider,
            inputs,
            secret_lifetime_days: days,
            scim: None,
            rotate_secret: false,
            saml,
            non_gallery_template: provider::NON_GALLERY_TEMPLATE.to_string(),
            gallery_templates: BTreeMap::new(),
            tenant_id: String::new(),
            directory_sync: None,
        })
    }

    /// Adds the vendor's directory sync choice (the profile must have `[directory_sync]`).
    pub fn with_directory_sync(mut self, d: DirectorySyncIntent) -> Result<Self, Vec<InputError>> {
        if self.provider.directory_sync.is_none() {
            return Err(vec![InputError {
                field: "scim_assign".into(),
                label: "Sync mode".into(),
                message: format!("{} has no directory sync of its own.", self.provider.name),
            }]);
        }
        self.directory_sync = Some(d);
        Ok(self)
    }

    /// Who may sign in with SAML (`None`: everyone) and who gets the certificate-expiry mails.
    #[must_use]
    pub fn with_saml_access(mut self, assign: Option<Vec<Assignee>>, notify: Vec<String>) -> Self {
        if let Some(s) = &mut self.saml {
            s.assign = assign;
            s.notify = notify;
        }
        self
    }

    /// The application template an app is made from: a gallery app's own, or this cloud's
    /// non-gallery one.
    pub fn template_id<'a>(&'a self, spec: &'a provider::AppSpec) -> Option<&'a str> {
        match &spec.source {
            provider::AppSource::NonGallery => Some(self.non_gallery_template.as_str()),
            provider::AppSource::Gallery {
                template_id: None, ..
            } => self.gallery_templates.get(&spec.id).map(String::as_str),
            other => other.template_id(),
        }
    }

    /// The enterprise app made from a template that this setup uses (for SAML sign-in, SCIM
    /// provisioning or both), if any.
    pub fn template_app(&self) -> Option<&provider::AppSpec> {
        let saml = self.provider.saml().and_then(|s| self.provider.app(&s.app));
        let scim = self.scim.as_ref().and_then(|_| self.provider.scim_app());
        saml.or(scim).filter(|a| {
            matches!(
                a.source,
                provider::AppSource::NonGallery | provider::AppSource::Gallery { .. }
            )
        })
    }

    /// The provider's declared, non-secret inputs as validated (no derived values): what a
    /// re-run needs to find this setup again.
    pub fn entered_inputs(&self) -> BTreeMap<String, String> {
        self.provider
            .inputs
            .iter()
            .filter(|i| !i.secret)
            .filter_map(|i| {
                let id = &i.id;
                self.inputs.get(id).map(|v| (id.clone(), v.clone()))
            })
            .collect()
    }

    /// Asks for a new client secret now, next to the current one (rotation without downtime).
    #[must_use]
    pub fn with_rotation(mut self, rotate: bool) -> Self {
        self.rotate_secret = rotate;
        self
    }

    /// Adds SCIM provisioning (the provider must offer it).
    pub fn with_scim(mut self, scim: ScimIntent) -> Result<Self, Vec<InputError>> {
        if self.provider.scim.is_none() {
            return Err(vec![InputError {
                field: "scim".into(),
                label: "SCIM".into(),
                message: format!(
                    "{} does not take SCIM provisioning from Entra.",
                    self.provider.name
                ),
            }]);
        }
        self.scim = Some(scim);
        Ok(self)
    }

    /// The alternate key of the enterprise app made from a template (for SAML, SCIM or both).
    pub fn template_unique_name(&self) -> String {
        if self.provider.has_sign_in() {
            let mut n = format!("{}-scim", self.unique_name());
            n.truncate(120);
            n
        } else {
            self.unique_name()
        }
    }

    /// The display name of the enterprise app made from a template (for SAML, SCIM or both).
    pub fn template_display_name(&self) -> String {
        self.template_app()
            .or_else(|| self.provider.scim_app())
            .and_then(|a| a.name.as_deref())
            .and_then(|name| provider::render(name, &self.values(), str::to_string).ok())
            .unwrap_or_else(|| format!("{} SCIM", self.provider.name))
    }

    fn values(&self) -> BTreeMap<String, String> {
        self.inputs.clone()
    }

    /// The app's alternate key: the same provider instance always finds the same app.
    pub fn unique_name(&self) -> String {
        let instance = self
            .inputs
            .get(&self.provider.instance_input)
            .map(String::as_str)
            .unwrap_or_default();
        let instance = instance
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        let slug: String = instance
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        let slug = slug.trim_matches('-');
        // An optional instance input left empty: one setup of the provider per tenant.
        let mut name = if slug.is_empty() {
            format!("{TAG}-{}", self.provider.id())
        } else {
            format!("{TAG}-{}-{slug}", self.provider.id())
        };
        name.truncate(120);
        name
    }

    pub fn display_name(&self) -> String {
        provider::render(self.provider.app_name(), &self.values(), str::to_string)
            .unwrap_or_else(|_| self.provider.name.clone())
    }

    /// The service as the admin calls it: "Team Wiki" for a generic provider, else the
    /// provider's name.
    pub fn service_name(&self) -> String {
        self.provider
            .service_name
            .as_deref()
            .and_then(|t| provider::render(t, &self.values(), str::to_string).ok())
            .unwrap_or_else(|| self.provider.name.clone())
    }

    pub fn redirect_uris(&self) -> Vec<String> {
        self.provider.render_redirect_uris(&self.values())
    }

    pub fn provider_tag(&self) -> String {
        format!("{TAG}:{}", self.provider.id())
    }

    /// Resolves the provider's permissions by name against the tenant's Microsoft Graph service
    /// principal. A name the tenant does not know is an error naming it.
    pub fn resolve_permissions(
        &self,
        graph_sp: &GraphServicePrincipal,
    ) -> Result<Vec<ResolvedPermission>, UnknownPermission> {
        self.provider
            .permissions
            .iter()
            .map(|p| {
                let name = &p.name;
                graph_sp
                    .permission_id(name, p.kind)
                    .map(|id| ResolvedPermission {
                        name: name.clone(),
                        kind: p.kind,
                        id: id.to_string(),
                    })
                    .ok_or_else(|| UnknownPermission {
                        kind: p.kind,
                        name: name.clone(),
                    })
            })
            .collect()
    }

    /// The application body the wizard wants (before merging with what already exists).
    pub fn desired_app(&self, perms: &[ResolvedPermission]) -> Value {
        let claims = &self.provider.claims();
        let optional = |names: &Vec<String>| -> Value {
            names
                .iter()
                .map(|n| json!({"name": n, "essential": false}))
                .collect()
        };
        let access: Vec<Value> = perms
            .iter()
            .map(|p| json!({"id": p.id, "type": if p.kind == PermissionKind::Delegated { "Scope" } else { "Role" }}))
            .collect();
        let mut body = json!({
            "displayName": self.display_name(),
            "signInAudience": "AzureADMyOrg",
            "tags": [TAG, self.provider_tag()],
            "notes": format!("Managed by Entra Setup for {} ({}). Re-run Entra Setup to change or remove it. {}", self.provider.name, self.unique_name(), found::notes_line(&self.entered_inputs())),
            "web": {
                "redirectUris": self.redirect_uris(),
                "implicitGrantSettings": {"enableIdTokenIssuance": false, "enableAccessTokenIssuance": false},
            },
            "requiredResourceAccess": if access.is_empty() { json!([]) } else { json!([{"resourceAppId": GRAPH_APP_ID, "resourceAccess": access}]) },
        });
        // The groups claim, unless the profile (or the admin's choice) leaves it out.
        let groups = claims
            .group_membership_claims
            .as_deref()
            .and_then(|g| provider::render(g, &self.values(), str::to_string).ok())
            .filter(|g| !g.is_empty() && g != "None");
        let keep = |names: &Vec<String>| -> Vec<String> {
            names
                .iter()
                .filter(|n| groups.is_some() || n.as_str() != "groups")
                .cloned()
                .collect()
        };
        let (id_token, access_token, saml2_token) = (
            keep(&claims.id_token),
            keep(&claims.access_token),
            keep(&claims.saml2_token),
        );
        if let Some(g) = &groups {
            body["groupMembershipClaims"] = json!(g);
        }
        if !(id_token.is_empty() && access_token.is_empty() && saml2_token.is_empty()) {
            body["optionalClaims"] = json!({
                "idToken": optional(&id_token),
                "accessToken": optional(&access_token),
                "saml2Token": optional(&saml2_token),
            });
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intent(id: &str, key: &str, value: &str) -> Intent {
        let mut raw = BTreeMap::new();
        raw.insert(key.to_string(), value.to_string());
        Intent::new(provider::find(id).unwrap(), &raw, None).unwrap()
    }

    #[test]
    fn names_and_uris_come_from_the_inputs() {
        let cf = intent("cloudflare", "team", "acme");
        assert_eq!(cf.unique_name(), "entra-setup-cloudflare-acme");
        assert_eq!(cf.display_name(), "Cloudflare Access (acme)");
        assert_eq!(
            cf.redirect_uris(),
            ["https://acme.cloudflareaccess.com/cdn-cgi/access/callback"]
        );
        let pom = intent(
            "pomerium",
            "authenticate_url",
            "https://auth.corp.example.com/",
        );
        assert_eq!(
            pom.unique_name(),
            "entra-setup-pomerium-auth-corp-example-com"
        );
        assert_eq!(
            pom.redirect_uris(),
            ["https://auth.corp.example.com/oauth2/callback"]
        );
    }

    #[test]
    fn lifetime_outside_limits_is_refused() {
        let mut raw = BTreeMap::new();
        raw.insert("team".to_string(), "acme".to_string());
        let e = Intent::new(provider::find("cloudflare").unwrap(), &raw, Some(1000)).unwrap_err();
        assert_eq!(e[0].field, "secret_lifetime_days");
    }

    #[test]
    fn desired_body_matches_the_graph_schema() {
        let cf = intent("cloudflare", "team", "acme");
        let perms = vec![ResolvedPermission {
            name: "openid".into(),
            kind: PermissionKind::Delegated,
            id: "37f7f235-527c-4136-accd-4a02d197296e".into(),
        }];
        let body = cf.desired_app(&perms);
        assert_eq!(
            body["requiredResourceAccess"][0]["resourceAccess"][0]["type"],
            "Scope"
        );
        assert_eq!(body["groupMembershipClaims"], "SecurityGroup");
        assert_eq!(body["optionalClaims"]["idToken"][0]["name"], "email");
    }
}
