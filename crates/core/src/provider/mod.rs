//! Service-provider profiles: data files that say what a provider needs from Entra, by
//! capability — which apps (an app registration, a non-gallery or gallery enterprise app, or
//! the vendor's own multi-tenant app), how users sign in (OIDC or SAML), SCIM provisioning,
//! the permissions each app needs of which API, what to hand over (outputs) and how to push it
//! to the provider's API. Adding a provider is adding a file: to providers/ (built in), to the
//! `providers` folder of the app's configuration directory, or to a folder given with
//! `--providers-dir`.

mod inputs;
mod profile;
mod template;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use inputs::{list_items, validate, ChoiceOption, InputError, InputKind, InputRule, InputSpec};
pub use profile::ProfileError;
pub use template::{escape_quoted, placeholders, render, unrender, url_host, MissingValue};

include!(concat!(env!("OUT_DIR"), "/providers.rs"));

/// How users sign in to the provider through Entra; `Scim` for providers that only provision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Oidc,
    Saml,
    Scim,
    /// Users sign in through the vendor's own multi-tenant app (the vendor set its sign-in up).
    Vendor,
}

pub use crate::apis::PermissionKind;

/// Where an app of a setup comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppSource {
    /// An app registration the wizard creates (found again by its `uniqueName`).
    Registration,
    /// An enterprise app instantiated from Entra's non-gallery template.
    NonGallery,
    /// An enterprise app instantiated from a gallery template, found by its display name; its
    /// id, when pinned, is checked against what the tenant lists.
    Gallery {
        template: String,
        template_id: Option<String>,
    },
    /// The vendor's own multi-tenant app, consented from the vendor's console: found by appId
    /// or display name, never created or deleted by the wizard.
    Vendor {
        app_id: Option<String>,
        display_name: Option<String>,
    },
}

/// Microsoft Graph's id of the "Non-gallery application" template.
pub const NON_GALLERY_TEMPLATE: &str = "8adf8e6e-67b2-4cf2-a259-e3dc5476c621";

impl AppSource {
    /// The application template an enterprise app is instantiated from (`None` for app
    /// registrations, vendor apps, and gallery apps whose id the profile does not pin).
    pub fn template_id(&self) -> Option<&str> {
        match self {
            Self::NonGallery => Some(NON_GALLERY_TEMPLATE),
            Self::Gallery { template_id, .. } => template_id.as_deref(),
            Self::Registration | Self::Vendor { .. } => None,
        }
    }

    /// Whether the wizard creates (and may delete) the app.
    pub fn wizard_made(&self) -> bool {
        !matches!(self, Self::Vendor { .. })
    }
}

/// One app a setup manages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppSpec {
    /// How the profile and the plan name it (`sign_in`, `provisioning`, …).
    pub id: String,
    pub source: AppSource,
    /// Display name template (none for vendor apps, whose name is the vendor's).
    pub name: Option<String>,
}

impl AppSpec {
    /// What a vendor's app is called in the tenant: its display name, else its appId; the
    /// profile's id for an app that is not the vendor's.
    pub fn vendor_name(&self) -> String {
        match &self.source {
            AppSource::Vendor {
                display_name: Some(n),
                ..
            } => n.clone(),
            AppSource::Vendor {
                app_id: Some(id), ..
            } => format!("the app {id}"),
            _ => self.id.clone(),
        }
    }
}

/// Optional claims and the groups claim of an OIDC app.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClaimsSpec {
    pub group_membership_claims: Option<String>,
    pub id_token: Vec<String>,
    pub access_token: Vec<String>,
    pub saml2_token: Vec<String>,
}

/// Sign-in with OpenID Connect through an app registration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OidcSpec {
    pub app: String,
    pub redirect_uris: Vec<String>,
    pub secret_lifetime_days: u32,
    pub claims: ClaimsSpec,
    pub groups_claim_note: Option<String>,
}

/// Sign-in with SAML through an enterprise app (built by the SAML work: the schema has its
/// place so profiles can say it now).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SamlSpec {
    pub app: String,
    pub entity_id: String,
    pub reply_urls: Vec<String>,
    pub sign_on_url: Option<String>,
    /// The service's single logout URL (the app's `web.logoutUrl`).
    pub logout_url: Option<String>,
    /// The groups claim in the SAML token (the app's `groupMembershipClaims`).
    pub groups_claim: Option<String>,
    pub relay_state: Option<String>,
    pub name_id: String,
    pub certificate_lifetime_days: u32,
}

/// How users sign in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignIn {
    Oidc(OidcSpec),
    Saml(SamlSpec),
    /// Through the vendor's own app (`[sign_in.vendor] app = "…"`): the wizard verifies its
    /// consent and may assign users to it, never changes it.
    Vendor {
        app: String,
    },
}

/// How the admin connects a vendor's own apps (`[vendor]`): where the vendor's console starts
/// the consent, what to do there and what to copy into it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VendorSpec {
    /// The console page where the connection starts (a template: the inputs may be used; an
    /// empty optional input leaves the link out).
    pub console_url: String,
    /// What the admin does there, in the vendor's words.
    pub console_steps: String,
    /// Values the vendor's console asks for (built-in names such as `tenant_id`).
    pub hand_over: Vec<String>,
    /// What the vendor's troubleshooting says to do when its consent is missing or revoked.
    pub reconsent: String,
}

/// How the vendor's service counts the members of an assigned group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "lowercase")]
pub enum MemberCount {
    /// Members of nested groups count too (the service reads `transitiveMembers`).
    Transitive,
    /// Only direct members count (as Entra's SCIM does).
    Direct,
}

/// The vendor reads the directory itself through Microsoft Graph (`[directory_sync]`, e.g.
/// Firezone): which of its apps reads, which app assigned groups go to, how members count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectorySyncSpec {
    /// The vendor app that reads the directory (its consent is checked).
    pub app: String,
    /// The app groups are assigned to for "assigned groups only".
    pub assign_to: String,
    /// Which of the vendor's versions or documents the choice of `assign_to` follows.
    pub assign_to_note: String,
    /// Apps where assigned groups are a mistake the admin is warned about.
    pub warn_if_assigned_to: Vec<String>,
    pub members: MemberCount,
    /// Disabled accounts are left out (the service filters `accountEnabled eq true`).
    pub enabled_users_only: bool,
    /// The service's names for its two modes.
    pub assigned_label: String,
    pub all_label: String,
    /// Where in the vendor's console the mode is chosen.
    pub where_to_choose: String,
    /// When the service syncs.
    pub schedule: String,
}

/// SCIM provisioning from Entra to the provider: an enterprise app whose provisioning job
/// calls the provider's SCIM endpoint (reference §8a, §10).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScimSpec {
    /// The app that provisions.
    pub app: String,
    /// The synchronization template the job is made from: `scim` for non-gallery apps; on a
    /// gallery app, the one its profile names, or (None) the one the app's own
    /// `synchronization/templates` offers, so no invented constant decides it.
    pub job_template: Option<String>,
    /// The provider documents that its SCIM needs Entra ID P1 or P2 (group provisioning).
    pub needs_premium: bool,
    /// Where the admin finds the SCIM endpoint (Entra's "Tenant URL") at the provider.
    pub endpoint_help: String,
    /// Where the admin finds the bearer token (Entra's "Secret Token").
    pub token_help: String,
    pub endpoint_example: String,
    /// How long the provider's tokens last, if they expire (suggests the expiry date to record).
    pub token_lifetime_days: Option<u32>,
    /// The provisioning app should be assigned the same groups as the sign-in app (the
    /// provider overwrites a user's groups with what SCIM sends).
    pub match_sso_groups: bool,
    /// Advice shown in the SCIM step and on Done (e.g. attribute mappings).
    pub advice: Vec<WarningSpec>,
    /// Why users without a mail address matter to this service (listed by name in the preview).
    pub no_mail_reason: Option<String>,
}

/// A permission one of the setup's apps needs, of a resource API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PermissionSpec {
    /// The app that gets it.
    pub app: String,
    /// The API by name (`data/apis.toml`), e.g. "Microsoft Graph".
    pub api: String,
    pub name: String,
    pub kind: PermissionKind,
    pub why: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    Json,
    Yaml,
    Hcl,
    Text,
}

/// Something to hand the provider: an API body, a Terraform block, a settings file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputSpec {
    pub id: String,
    pub title: String,
    pub help: String,
    pub format: OutputFormat,
    pub template: String,
    pub contains_secret: bool,
    pub file_name: Option<String>,
}

impl OutputSpec {
    /// The file this output is saved as: the profile's name, or its id with the format's
    /// extension.
    pub fn save_as(&self) -> String {
        self.file_name.clone().unwrap_or_else(|| {
            let ext = match self.format {
                OutputFormat::Json => "json",
                OutputFormat::Yaml => "yaml",
                OutputFormat::Hcl => "tf",
                OutputFormat::Text => "txt",
            };
            format!("{}.{ext}", self.id)
        })
    }
}

/// One HTTP request of a push, as data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushRequest {
    pub method: String,
    /// URL template: `{api_base}`, the push inputs, the setup's values and `{id}` (update).
    pub url: String,
}

/// How the push finds an object it made before, so it updates rather than duplicates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushFind {
    /// A GET listing the objects (paged, see `page_param`).
    pub url: String,
    /// JSON pointer to the array in the answer.
    pub items: String,
    /// JSON pointer in each item → template of the value it must have.
    pub matches: BTreeMap<String, String>,
    /// JSON pointer to an item's id.
    pub id: String,
    /// Query parameter of the page number (1, 2, …), if the list is paged.
    pub page_param: Option<String>,
    /// JSON pointer to the number of pages, if the API says it.
    pub total_pages: Option<String>,
}

/// How to read the provider API's answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushAnswer {
    /// JSON pointer to a boolean that must be true, if the API has one.
    pub ok: Option<String>,
    /// JSON pointer to an array of `{code, message}` errors.
    pub errors: Option<String>,
    /// JSON pointer to the created or updated object's id.
    pub id: Option<String>,
}

/// Pushing the settings to the provider's API, described as data: an optional lookup of the
/// object made before, then a create or an update with an output as the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushSpec {
    /// What the push makes at the provider, in words ("the identity provider").
    pub object: String,
    /// The output whose rendering is the request body.
    pub output: String,
    pub api_base: String,
    /// The header that authenticates, and its value template (e.g. `Bearer {api_token}`).
    pub auth_header: String,
    pub auth_value: String,
    /// What to tell the admin when the API refuses the credentials.
    pub auth_hint: Option<String>,
    pub find: Option<PushFind>,
    pub create: PushRequest,
    pub update: Option<PushRequest>,
    pub answer: PushAnswer,
    pub inputs: Vec<InputSpec>,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WarningSpec {
    pub id: String,
    pub severity: crate::tenant::Severity,
    pub title: String,
    pub detail: String,
}

/// One provider profile, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Provider {
    pub id: String,
    pub name: String,
    pub description: String,
    pub docs_url: String,
    /// Hosts of the provider's pages the wizard may open (its docs and consoles).
    pub link_hosts: Vec<String>,
    /// The file of a custom profile (an admin's own, or one someone shared): `None` for a
    /// profile built into the app. Shown wherever the provider is, since the file decides
    /// which permissions are asked for and where secrets are pushed.
    pub custom: Option<String>,
    /// The input that tells two setups of this provider apart (it names the apps' uniqueNames).
    pub instance_input: String,
    /// What the admin calls the service of one setup (e.g. `{name}` for a generic provider);
    /// the provider's name when absent.
    pub service_name: Option<String>,
    pub inputs: Vec<InputSpec>,
    pub apps: Vec<AppSpec>,
    pub sign_in: Option<SignIn>,
    pub scim: Option<ScimSpec>,
    pub permissions: Vec<PermissionSpec>,
    pub outputs: Vec<OutputSpec>,
    pub push: Option<PushSpec>,
    pub warnings: Vec<WarningSpec>,
    /// How the admin connects the vendor's own apps, for profiles that have some.
    pub vendor: Option<VendorSpec>,
    /// The vendor's own directory sync through Graph, if it has one.
    pub directory_sync: Option<DirectorySyncSpec>,
    /// Where the profile came from (for messages): `providers/x.toml` or a path.
    pub file: String,
}

/// Placeholders every template may use besides the provider's own inputs.
pub const BUILTIN_PLACEHOLDERS: &[&str] = &[
    "tenant_id",
    "saml_metadata_url",
    "saml_idp_entity_id",
    "saml_sso_url",
    "saml_logout_url",
    "saml_cert_sha1",
    "saml_cert_sha256",
    "client_id",
    "client_secret",
    "authority",
    "app_name",
    "secret_expiry",
    "issuer",
    "discovery_url",
];

pub use crate::values::RedirectUriError;

/// Entra's rules for a redirect URI or Reply URL: [`crate::values::redirect_uri`].
pub fn check_redirect_uri(uri: &str) -> Result<(), RedirectUriError> {
    crate::values::redirect_uri(uri).map(|_| ())
}

impl Provider {
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Parses and checks one profile. `file` names it in errors.
    pub fn parse(file: &str, src: &str) -> Result<Self, ProfileError> {
        profile::parse(file, src)
    }

    /// How users sign in (`Scim` for a provider that only provisions).
    pub fn protocol(&self) -> Protocol {
        match &self.sign_in {
            Some(SignIn::Oidc(_)) => Protocol::Oidc,
            Some(SignIn::Saml(_)) => Protocol::Saml,
            Some(SignIn::Vendor { .. }) => Protocol::Vendor,
            None => Protocol::Scim,
        }
    }

    /// OIDC sign-in, if the provider signs users in that way.
    pub fn oidc(&self) -> Option<&OidcSpec> {
        match &self.sign_in {
            Some(SignIn::Oidc(o)) => Some(o),
            _ => None,
        }
    }

    /// SAML sign-in, if the provider signs users in that way.
    pub fn saml(&self) -> Option<&SamlSpec> {
        match &self.sign_in {
            Some(SignIn::Saml(s)) => Some(s),
            _ => None,
        }
    }

    /// Whether the provider signs users in (registers an OIDC app); false for SCIM-only ones.
    pub fn has_sign_in(&self) -> bool {
        self.oidc().is_some()
    }

    pub fn app(&self, id: &str) -> Option<&AppSpec> {
        self.apps.iter().find(|a| a.id == id)
    }

    /// The app users sign in through.
    pub fn sign_in_app(&self) -> Option<&AppSpec> {
        match &self.sign_in {
            Some(SignIn::Oidc(o)) => self.app(&o.app),
            Some(SignIn::Saml(s)) => self.app(&s.app),
            Some(SignIn::Vendor { app }) => self.app(app),
            None => None,
        }
    }

    /// The vendor's own apps of the setup.
    pub fn vendor_apps(&self) -> impl Iterator<Item = &AppSpec> {
        self.apps
            .iter()
            .filter(|a| matches!(a.source, AppSource::Vendor { .. }))
    }

    /// The app that provisions.
    pub fn scim_app(&self) -> Option<&AppSpec> {
        self.scim.as_ref().and_then(|s| self.app(&s.app))
    }

    /// The display-name template of the setup's main app: the sign-in app's, else the
    /// provisioning app's.
    pub fn app_name(&self) -> &str {
        self.sign_in_app()
            .or_else(|| self.scim_app())
            .and_then(|a| a.name.as_deref())
            .unwrap_or(&self.name)
    }

    /// Redirect URI templates of OIDC sign-in.
    pub fn redirect_uris(&self) -> &[String] {
        self.oidc().map_or(&[], |o| o.redirect_uris.as_slice())
    }

    /// The default client-secret lifetime (OIDC).
    pub fn secret_lifetime_days(&self) -> u32 {
        self.oidc().map_or(365, |o| o.secret_lifetime_days)
    }

    pub fn claims(&self) -> ClaimsSpec {
        self.oidc().map(|o| o.claims.clone()).unwrap_or_default()
    }

    pub fn groups_claim_note(&self) -> Option<&str> {
        self.oidc().and_then(|o| o.groups_claim_note.as_deref())
    }

    /// What this version's engine cannot set up yet, if anything, in words.
    pub fn unsupported(&self) -> Option<String> {
        if let Some(p) = self
            .permissions
            .iter()
            .find(|p| p.api != crate::apis::MICROSOFT_GRAPH)
        {
            return Some(format!(
                "{} needs {} of {}; this version grants permissions of Microsoft Graph only.",
                self.name, p.name, p.api
            ));
        }
        if let Some(saml) = self.saml() {
            if !saml.name_id.eq_ignore_ascii_case("user.userprincipalname") {
                return Some(format!(
                    "{} asks for the NameID {}; this version sets up Entra's default NameID (user.userprincipalname) only, since another needs a claims-mapping policy.",
                    self.name, saml.name_id
                ));
            }
        }
        if let (Some(saml), Some(scim)) = (self.saml(), &self.scim) {
            let scim_from_template = self
                .app(&scim.app)
                .is_some_and(|a| a.source.template_id().is_some());
            if scim.app != saml.app && scim_from_template {
                return Some(format!(
                    "{} signs in through one enterprise app and provisions through another; this version sets up SAML and SCIM on the same app only.",
                    self.name
                ));
            }
        }
        if let (Some(SignIn::Saml(saml)), Some(app)) = (&self.sign_in, self.sign_in_app()) {
            if matches!(app.source, AppSource::Gallery { .. }) {
                return Some(format!(
                    "{} signs in with SAML through the gallery app of app '{}'; this version sets up SAML on non-gallery apps only.",
                    self.name, saml.app
                ));
            }
        }
        None
    }

    /// Every input, the push's included.
    pub fn all_inputs(&self) -> impl Iterator<Item = &InputSpec> {
        self.inputs
            .iter()
            .chain(self.push.iter().flat_map(|p| p.inputs.iter()))
    }

    /// Example values for every placeholder (used to check templates).
    pub fn sample_values(&self) -> BTreeMap<String, String> {
        let mut v: BTreeMap<String, String> = [
            ("tenant_id", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
            ("client_id", "00001111-aaaa-2222-bbbb-3333cccc4444"),
            ("client_secret", "Abc8Q~example-secret.value_0123456789"),
            ("authority", "https://login.microsoftonline.com"),
            ("app_name", "Example app"),
            ("secret_expiry", "2027-11-22"),
            (
                "issuer",
                "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0",
            ),
            ("discovery_url", "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0/.well-known/openid-configuration"),
            ("saml_metadata_url", "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/federationmetadata/2007-06/federationmetadata.xml?appid=00001111-aaaa-2222-bbbb-3333cccc4444"),
            ("saml_idp_entity_id", "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/"),
            ("saml_sso_url", "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/saml2"),
            ("saml_logout_url", "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/saml2"),
            ("saml_cert_sha1", "4F:1A:0B:6C:22:9D:3E:71:80:AB:CD:EF:01:23:45:67:89:AB:CD:EF"),
            ("saml_cert_sha256", "4F:1A:0B:6C:22:9D:3E:71:80:AB:CD:EF:01:23:45:67:89:AB:CD:EF:4F:1A:0B:6C:22:9D:3E:71:80:AB:CD:EF"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for i in self.all_inputs() {
            let example = if i.kind.is_list() {
                list_items(&i.example).join(",")
            } else {
                i.example.clone()
            };
            if i.kind == InputKind::Url {
                v.insert(format!("{}_host", i.id), url_host(&i.example));
            }
            if i.kind == InputKind::GroupList {
                v.insert(
                    format!("{}_ids", i.id),
                    "e14f56fd-b956-4009-b06c-dc8a5e9207c8".into(),
                );
            }
            v.insert(i.id.clone(), example);
        }
        v
    }

    /// Validates and normalises the admin's inputs for this provider (without push inputs).
    pub fn validate_inputs(
        &self,
        given: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, Vec<InputError>> {
        let values = validate(self.inputs.iter(), given)?;
        let errors = self.check_rendered_uris(&values);
        if errors.is_empty() {
            Ok(values)
        } else {
            Err(errors)
        }
    }

    /// Every redirect URI and SAML Reply URL as the admin's values render it, checked by
    /// [`crate::values::redirect_uri`]: a value can pass its own input's pattern and still make
    /// a URL Entra refuses. Each error names the input that went into the URL.
    fn check_rendered_uris(&self, values: &BTreeMap<String, String>) -> Vec<InputError> {
        let templates = self
            .redirect_uris()
            .iter()
            .chain(self.saml().map(|s| s.reply_urls.as_slice()).unwrap_or(&[]));
        let mut errors: Vec<InputError> = vec![];
        for t in templates {
            let rendered = render(t, values, str::to_string).unwrap_or_default();
            for uri in list_items(&rendered) {
                let Err(e) = crate::values::redirect_uri(&uri) else {
                    continue;
                };
                let field = placeholders(t)
                    .into_iter()
                    .find(|p| self.inputs.iter().any(|i| &i.id == p))
                    .unwrap_or_else(|| "redirect_uris".into());
                if errors.iter().all(|x| x.field != field) {
                    let label = self
                        .inputs
                        .iter()
                        .find(|i| i.id == field)
                        .map_or_else(|| field.clone(), |i| i.label.clone());
                    errors.push(InputError {
                        field,
                        label,
                        message: format!("{e}."),
                    });
                }
            }
        }
        errors
    }

    /// Validates the inputs for pushing to the provider's API.
    pub fn validate_push_inputs(
        &self,
        given: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, Vec<InputError>> {
        validate(self.push.iter().flat_map(|p| p.inputs.iter()), given)
    }

    /// The values that hold several items separated by commas (list inputs, and the object IDs
    /// of a group list): an output line that uses one is repeated for each item.
    pub fn list_values(&self) -> Vec<String> {
        self.all_inputs()
            .filter(|i| i.kind.is_list())
            .map(|i| {
                if i.kind == InputKind::GroupList {
                    format!("{}_ids", i.id)
                } else {
                    i.id.clone()
                }
            })
            .collect()
    }

    /// The permissions of a kind by name (all apps, all APIs).
    pub fn permission_names(&self, kind: PermissionKind) -> Vec<String> {
        self.permissions
            .iter()
            .filter(|p| p.kind == kind)
            .map(|p| p.name.clone())
            .collect()
    }

    /// Renders redirect URI templates: a template that is just a `url_list` input stands for
    /// each of its URLs.
    pub fn render_redirect_uris(&self, values: &BTreeMap<String, String>) -> Vec<String> {
        let lists: Vec<&str> = self
            .inputs
            .iter()
            .filter(|i| i.kind == InputKind::UrlList)
            .map(|i| i.id.as_str())
            .collect();
        let mut out = vec![];
        for t in self.redirect_uris() {
            let whole = t
                .strip_prefix('{')
                .and_then(|r| r.strip_suffix('}'))
                .filter(|n| lists.contains(n));
            match whole {
                Some(list) => {
                    out.extend(list_items(values.get(list).map_or("", String::as_str)));
                }
                None => {
                    if let Ok(u) = render(t, values, str::to_string) {
                        out.push(u);
                    }
                }
            }
        }
        out
    }
}

/// Every built-in provider, parsed. A broken file is a build-time mistake the tests catch.
pub fn builtin() -> Result<Vec<Provider>, ProfileError> {
    BUILTIN
        .iter()
        .map(|(file, src)| Provider::parse(&format!("providers/{file}"), src))
        .collect()
}

/// The largest provider profile read (the built-in ones are under 12 KB).
pub const MAX_PROFILE_BYTES: u64 = 256 * 1024;

/// Reads a profile file: a regular file (not a FIFO, a device or a folder, which could block
/// or never end) of at most [`MAX_PROFILE_BYTES`].
pub fn read_profile_file(path: &Path) -> Result<String, ProfileError> {
    let shown = path.display().to_string();
    let err = |message: String| ProfileError {
        file: shown.clone(),
        line: 1,
        message,
    };
    crate::files::read_regular(path, MAX_PROFILE_BYTES).map_err(|e| err(e.to_string()))
}

/// The profiles in a folder (`*.toml`), each validated like a built-in one and marked custom.
/// A folder that does not exist holds none.
pub fn from_dir(dir: &Path) -> Result<Vec<Provider>, ProfileError> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Ok(vec![]);
    };
    let mut paths: Vec<_> = read
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let shown = p.display().to_string();
            let src = read_profile_file(p)?;
            let mut provider = Provider::parse(&shown, &src)?;
            provider.custom = Some(shown);
            Ok(provider)
        })
        .collect()
}

/// The built-in providers and those in `extra` folders (an admin's own): a folder's profile
/// cannot take a built-in one's id.
pub fn catalogue(extra: &[&Path]) -> Result<Vec<Provider>, ProfileError> {
    let mut all = builtin()?;
    for dir in extra {
        for p in from_dir(dir)? {
            if all.iter().any(|b| b.id == p.id) {
                return Err(ProfileError {
                    file: p.file.clone(),
                    line: 1,
                    message: format!(
                        "id '{}' is already taken by {}: give this provider an id of its own (and the file the same name)",
                        p.id,
                        all.iter().find(|b| b.id == p.id).map_or("", |b| b.file.as_str())
                    ),
                });
            }
            // A custom profile may not pass for a built-in one on screen.
            if let Some(b) = all
                .iter()
                .find(|b| b.custom.is_none() && b.name.trim().eq_ignore_ascii_case(p.name.trim()))
            {
                return Err(ProfileError {
                    file: p.file.clone(),
                    line: 1,
                    message: format!(
                        "name '{}' is the name of the built-in provider '{}': give this custom provider a name of its own, so nobody takes it for the built-in one",
                        crate::redact::echo(&p.name, 80),
                        b.id
                    ),
                });
            }
            all.push(p);
        }
    }
    Ok(all)
}

/// The folders the desktop app and the CLI read an admin's own profiles from, besides the
/// built-in ones: `providers` in the app's configuration directory, and
/// `ENTRA_SETUP_PROVIDERS_DIR` (what `--providers-dir` sets).
pub fn user_dirs() -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    if let Some(dir) = std::env::var_os("ENTRA_SETUP_PROVIDERS_DIR") {
        out.push(std::path::PathBuf::from(dir));
    }
    if let Some(config) = dirs::config_dir() {
        out.push(config.join("dev.entrasetup.wizard").join("providers"));
    }
    out
}

/// Every provider this installation knows: built in, and the admin's own (see [`user_dirs`]).
pub fn all() -> Result<Vec<Provider>, ProfileError> {
    let dirs = user_dirs();
    let refs: Vec<&Path> = dirs.iter().map(std::path::PathBuf::as_path).collect();
    catalogue(&refs)
}

/// One provider by id, from [`all`].
pub fn find(id: &str) -> Option<Provider> {
    all().ok()?.into_iter().find(|p| p.id() == id)
}

/// Hosts of every built-in provider's pages (for the links the wizard may open). A custom
/// profile's hosts count only while that provider is the one shown ([`Provider::page_hosts`]).
pub fn link_hosts() -> Vec<String> {
    builtin()
        .unwrap_or_default()
        .iter()
        .flat_map(Provider::page_hosts)
        .collect()
}

impl Provider {
    /// The hosts of this provider's pages: its `link_hosts` and its docs page's host.
    pub fn page_hosts(&self) -> Vec<String> {
        self.link_hosts
            .iter()
            .cloned()
            .chain(std::iter::once(url_host(&self.docs_url)))
            .filter(|h| !h.is_empty())
            .collect()
    }
}
