//! What the wizard's steps show, as data both shells use: the desktop sends these to its
//! webview, the CLI prints them or their JSON.

use chrono::Utc;
use serde::Serialize;

use super::flow::Prepared;
use super::plan::{Change, Plan};
use super::secrets::SecretStatus;
use super::Intent;
use crate::checks::CheckResult;
use crate::outputs::Rendered;
use crate::preflight::Preflight;
use crate::provider::{ChoiceOption, InputKind, InputSpec, PermissionKind, Protocol, Provider};
use crate::tenant::{Advice, Link};

/// An input as a form shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct InputInfo {
    pub id: String,
    pub label: String,
    pub help: String,
    pub example: String,
    pub kind: InputKind,
    pub optional: bool,
    pub secret: bool,
    /// What a `choice` input offers.
    pub options: Vec<ChoiceOption>,
    /// Taken when the input is left empty.
    pub default: Option<String>,
}

impl From<&InputSpec> for InputInfo {
    fn from(i: &InputSpec) -> Self {
        Self {
            id: i.id.clone(),
            label: i.label.clone(),
            help: i.help.clone(),
            example: i.example.clone(),
            kind: i.kind,
            optional: i.optional,
            secret: i.secret,
            options: i.options.clone(),
            default: i.default.clone(),
        }
    }
}

/// After a rotation: the old secrets the wizard made, which the admin retires once the
/// provider uses the new one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct RetireOffer {
    pub old: Vec<SecretStatus>,
    /// Retired in this session.
    pub retired: Vec<SecretStatus>,
    /// The new secret was handed to the provider and signed in to Entra.
    pub ready: bool,
    /// What to do before retiring is allowed, when not ready.
    pub waiting_for: Option<String>,
    /// This computer had a copy of a retired secret: the live tests try it until Entra
    /// refuses it ("The retired secret no longer gets a token").
    pub tested: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct SecretInfo {
    pub key_id: String,
    pub hint: String,
    pub expires: chrono::DateTime<Utc>,
    pub handed_over: bool,
}

/// A group of the tenant, for a groups claim that carries Object IDs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct GroupInfo {
    pub id: String,
    pub name: String,
}

/// The provisioning part of Done.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct ScimDone {
    pub app_name: String,
    pub app_id: String,
    pub service_principal_id: String,
    pub job_id: Option<String>,
    pub status: Option<crate::provisioning::JobStatus>,
    pub tenant_url: Option<String>,
    pub sync_all: Option<bool>,
    pub advice: Vec<Advice>,
    pub links: Vec<Link>,
}

/// The Done step.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct DoneView {
    pub provider_name: String,
    pub display_name: String,
    pub tenant_id: String,
    pub app_id: String,
    pub app_object_id: String,
    pub service_principal_id: Option<String>,
    pub secret: Option<SecretInfo>,
    pub consent_url: Option<String>,
    pub checks: Vec<CheckResult>,
    pub outputs: Vec<Rendered>,
    pub advice: Vec<Advice>,
    pub links: Vec<Link>,
    pub push_inputs: Vec<InputInfo>,
    pub groups: Vec<GroupInfo>,
    pub groups_claim_note: Option<String>,
    pub journal: String,
    pub demo: bool,
    /// The provider has a sign-in app (false for SCIM-only providers).
    pub sign_in: bool,
    pub scim: Option<ScimDone>,
    pub retire: Option<RetireOffer>,
    /// SAML single sign-on, when the setup has it.
    pub saml: Option<SamlDone>,
}

/// One way to give the service Entra's SAML details, and its trade-off.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct HandOverWay {
    pub title: String,
    pub detail: String,
}

/// The SAML hand-over as Done shows it: fetched from Entra, never typed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct SamlDone {
    pub metadata_url: String,
    pub idp_entity_id: String,
    pub sso_url: String,
    pub logout_url: String,
    /// The service's Entity ID and Reply URLs as set on the app.
    pub entity_id: String,
    pub reply_urls: Vec<String>,
    pub relay_state: Option<String>,
    pub certificate_sha1: String,
    pub certificate_sha256: String,
    pub certificate_expires: Option<chrono::DateTime<Utc>>,
    /// A rotation's new certificate, not signing yet: hand it over, then make it active.
    pub new_certificate: Option<CertificateView>,
    /// The certificate that signed before the new one was made active: remove it once the
    /// service signs in with the new one.
    pub old_certificate: Option<CertificateView>,
    /// Old certificates removed in this run.
    pub retired_certificates: Vec<String>,
    /// The seed's three ways (metadata URL, XML, fingerprint), best first.
    pub ways: Vec<HandOverWay>,
    /// The admin confirmed an administrator of the service still signs in with a password.
    pub password_admin_confirmed: bool,
}

/// A signing certificate as Done shows it (public: no secret in it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct CertificateView {
    pub thumbprint: String,
    pub sha256: String,
    pub expires: Option<chrono::DateTime<Utc>>,
    /// The certificate as PEM, to copy into a service that pins it.
    pub pem: String,
}

impl CertificateView {
    pub fn of(c: &super::state::SigningCert) -> Self {
        let der = c.der().unwrap_or_default();
        Self {
            thumbprint: c.thumbprint.clone(),
            sha256: crate::saml::fingerprints(&der).1,
            expires: c.end,
            pem: crate::saml::pem(&der),
        }
    }
}

/// The three ways a service takes Entra's SAML details, in two lines each.
pub fn saml_ways() -> Vec<HandOverWay> {
    let way = |t: &str, d: &str| HandOverWay {
        title: t.into(),
        detail: d.into(),
    };
    vec![
        way("Metadata URL (recommended)", "The service reads Entra's settings from the URL itself. When Entra renews the signing certificate, the service picks it up with nothing to do."),
        way("Metadata XML file", "The same settings as a file you upload once. At each certificate renewal, save the new metadata and upload it again."),
        way("Certificate fingerprint", "You paste the certificate's fingerprint, the Issuer and the sign-on URL by hand. The most control, and the most work: every renewal needs the new fingerprint entered."),
    ]
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct PermissionInfo {
    pub name: String,
    pub kind: PermissionKind,
    pub why: String,
    /// Lets the service change the directory or read all of it (badged on screen).
    pub high_privilege: bool,
}

/// A provider as the Choose service step shows it.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct ProviderInfo {
    pub id: String,
    pub name: String,
    pub description: String,
    pub protocol: Protocol,
    pub docs_url: String,
    pub secret_lifetime_days: u32,
    pub inputs: Vec<InputInfo>,
    pub permissions: Vec<PermissionInfo>,
    pub push_inputs: Vec<InputInfo>,
    pub groups_claim_note: Option<String>,
    /// The provider registers a sign-in (OIDC) app.
    pub sign_in: bool,
    /// The provider takes SCIM provisioning from Entra.
    pub scim: bool,
    /// The vendor's own apps, connected from the vendor's console.
    pub vendor: Option<VendorInfo>,
    /// The vendor reads the directory itself (Firezone).
    pub directory_sync: Option<DirectorySyncInfo>,
    /// The profile's file when it is not built into the app (an admin's own, or shared).
    pub custom: Option<String>,
    /// The host a push sends the settings (with the client secret) to.
    pub push_host: Option<String>,
}

/// The vendor's own apps of a provider.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct VendorInfo {
    /// Their names, as the tenant will show them.
    pub apps: Vec<String>,
    pub console_steps: String,
}

/// A vendor's own directory sync, in its words.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct DirectorySyncInfo {
    /// The app groups are assigned to.
    pub assign_to: String,
    /// Which version or document of the vendor that choice follows.
    pub assign_to_note: String,
    pub assigned_label: String,
    pub all_label: String,
    pub where_to_choose: String,
    pub schedule: String,
    /// Members of nested groups count.
    pub nested_count: bool,
}

fn vendor_app_name(p: &Provider, id: &str) -> String {
    p.app(id)
        .map_or_else(|| id.to_string(), crate::provider::AppSpec::vendor_name)
}

impl From<&Provider> for ProviderInfo {
    fn from(p: &Provider) -> Self {
        Self {
            id: p.id().to_string(),
            name: p.name.clone(),
            description: p.description.clone(),
            protocol: p.protocol(),
            docs_url: p.docs_url.clone(),
            secret_lifetime_days: p.secret_lifetime_days(),
            inputs: p.inputs.iter().map(InputInfo::from).collect(),
            permissions: p
                .permissions
                .iter()
                .map(|x| PermissionInfo {
                    name: x.name.clone(),
                    kind: x.kind,
                    why: x.why.clone(),
                    high_privilege: crate::apis::is_high_privilege(&x.name),
                })
                .collect(),
            push_inputs: push_inputs(p),
            groups_claim_note: p.groups_claim_note().map(str::to_string),
            sign_in: p.has_sign_in(),
            scim: p.scim.is_some(),
            vendor: p.vendor.as_ref().map(|v| VendorInfo {
                apps: p.vendor_apps().map(|a| vendor_app_name(p, &a.id)).collect(),
                console_steps: v.console_steps.clone(),
            }),
            directory_sync: p.directory_sync.as_ref().map(|d| DirectorySyncInfo {
                assign_to: vendor_app_name(p, &d.assign_to),
                assign_to_note: d.assign_to_note.clone(),
                assigned_label: d.assigned_label.clone(),
                all_label: d.all_label.clone(),
                where_to_choose: d.where_to_choose.clone(),
                schedule: d.schedule.clone(),
                nested_count: d.members == crate::provider::MemberCount::Transitive,
            }),
            custom: p.custom.clone(),
            push_host: p
                .push
                .as_ref()
                .map(|x| crate::provider::url_host(&x.api_base))
                .filter(|h| !h.is_empty()),
        }
    }
}

/// The inputs a push asks for (the provider's API token among them).
pub fn push_inputs(p: &Provider) -> Vec<InputInfo> {
    p.push
        .iter()
        .flat_map(|x| x.inputs.iter())
        .map(InputInfo::from)
        .collect()
}

/// What the admin's inputs give: the app's names and redirect URIs.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct IntentView {
    pub provider_id: String,
    pub unique_name: String,
    pub display_name: String,
    pub redirect_uris: Vec<String>,
    pub secret_lifetime_days: u32,
    /// SAML sign-on, when the provider signs in with SAML.
    pub saml: Option<SamlIntentView>,
}

/// What the SAML app will carry.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct SamlIntentView {
    pub entity_id: String,
    pub reply_urls: Vec<String>,
    pub sign_on_url: Option<String>,
    pub relay_state: Option<String>,
    pub certificate_lifetime_days: u32,
}

impl From<&Intent> for IntentView {
    fn from(i: &Intent) -> Self {
        Self {
            provider_id: i.provider.id().to_string(),
            unique_name: i.unique_name(),
            display_name: i.display_name(),
            redirect_uris: i.redirect_uris(),
            secret_lifetime_days: i.secret_lifetime_days,
            saml: i.saml.as_ref().map(|s| SamlIntentView {
                entity_id: s.entity_id.clone(),
                reply_urls: s.reply_urls.clone(),
                sign_on_url: s.sign_on_url.clone(),
                relay_state: s.relay_state.clone(),
                certificate_lifetime_days: s.certificate_lifetime_days,
            }),
        }
    }
}

/// A SAML signing certificate already on the app (a re-run).
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct CertificateStatus {
    pub display_name: String,
    pub thumbprint: String,
    pub expires: Option<chrono::DateTime<Utc>>,
    /// Entra signs with this one.
    pub preferred: bool,
    /// Expired or expiring within 60 days.
    pub attention: bool,
}

/// The signing certificates on the setup's SAML app, newest expiry first.
pub fn certificate_statuses(p: &Prepared) -> Vec<CertificateStatus> {
    let Some(t) = p.state.provisioning() else {
        return vec![];
    };
    let soon = Utc::now() + chrono::Duration::days(60);
    let mut out: Vec<CertificateStatus> = t
        .saml
        .certificates
        .iter()
        .map(|c| CertificateStatus {
            display_name: c.display_name.clone(),
            thumbprint: c.thumbprint.clone(),
            expires: c.end,
            preferred: t
                .saml
                .preferred_thumbprint
                .as_deref()
                .is_some_and(|x| x.eq_ignore_ascii_case(&c.thumbprint)),
            attention: c.end.is_none_or(|e| e <= soon),
        })
        .collect();
    out.sort_by_key(|c| std::cmp::Reverse(c.expires));
    out
}

/// How one permission will be granted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub enum Grant {
    /// Already consented in this tenant.
    Granted,
    /// The admin's role lets the wizard grant it now.
    InFlow,
    /// A Privileged Role Administrator or Global Administrator must consent.
    Colleague,
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct PermissionStatus {
    pub name: String,
    pub kind: PermissionKind,
    pub why: String,
    pub grant: Grant,
    /// Lets the service change the directory or read all of it (badged on screen).
    pub high_privilege: bool,
}

/// The Register app, Permissions and Review steps.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct PlanView {
    pub intent: IntentView,
    pub plan: Plan,
    pub preflight: Preflight,
    pub permissions: Vec<PermissionStatus>,
    pub journal: String,
    pub interrupted: bool,
    /// The client secrets already on the app (a re-run), newest first.
    pub secrets: Vec<SecretStatus>,
    /// This plan rotates the client secret on request.
    pub rotate: bool,
    /// SAML signing certificates already on the app (a re-run).
    pub certificates: Vec<CertificateStatus>,
    /// Apps of the setup someone else also holds: apply writes nothing to them until the admin
    /// adopts them on Register app.
    pub foreign: Vec<crate::setup::custody::ForeignApp>,
    /// The profile's file when it is not built into the app.
    pub custom_profile: Option<String>,
}

impl From<&Prepared> for PlanView {
    fn from(p: &Prepared) -> Self {
        Self {
            intent: IntentView::from(&p.intent),
            plan: p.plan.clone(),
            preflight: p.preflight.clone(),
            permissions: permission_statuses(p),
            journal: p.journal.path().display().to_string(),
            // Read whole when the plan was made; damage since shows on the next plan.
            interrupted: p.journal.interrupted().unwrap_or(false),
            secrets: super::secrets::statuses(&p.state, Utc::now()),
            rotate: p.intent.rotate_secret,
            certificates: certificate_statuses(p),
            foreign: p.foreign.clone(),
            custom_profile: p.intent.provider.custom.clone(),
        }
    }
}

/// How each permission the provider needs will be granted: already, by this admin now, or by
/// a colleague through the admin-consent link.
fn permission_statuses(p: &Prepared) -> Vec<PermissionStatus> {
    let granted_scopes = p.state.granted_scopes();
    p.intent
        .provider
        .permissions
        .iter()
        .map(|perm| {
            let name = perm.name.clone();
            let already = match perm.kind {
                PermissionKind::Delegated => granted_scopes.contains(&name),
                PermissionKind::Application => p
                    .state
                    .graph_sp
                    .permission_id(&name, perm.kind)
                    .is_some_and(|id| {
                        p.state
                            .assignments()
                            .iter()
                            .any(|a| a.app_role_id.eq_ignore_ascii_case(id))
                    }),
            };
            let colleague = p.plan.changes.iter().any(|c| match &c.change {
                Change::RequestAdminConsent { roles, scopes } => {
                    roles.contains(&name) || scopes.contains(&name)
                }
                _ => false,
            });
            let grant = if already {
                Grant::Granted
            } else if colleague {
                Grant::Colleague
            } else {
                Grant::InFlow
            };
            PermissionStatus {
                high_privilege: crate::apis::is_high_privilege(&name),
                name,
                kind: perm.kind,
                why: perm.why.clone(),
                grant,
            }
        })
        .collect()
}
