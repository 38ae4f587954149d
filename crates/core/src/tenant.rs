//! Tenant discovery after sign-in: who the admin is, which directory roles they hold, which
//! licence tier the tenant has, and what that allows — in plain words.

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::auth::StepScopes;
use crate::cloud::Cloud;
use crate::graph::models::{DirectoryRole, Organization, RoleEligibility, SubscribedSku, User};
use crate::graph::{GraphClient, GraphError};

pub const ROLE_GLOBAL_ADMIN: &str = "62e90394-69f5-4237-9190-012177145e10";
pub const ROLE_PRIVILEGED_ROLE_ADMIN: &str = "e8611ab8-c189-46e8-94e1-60213ab1f814";
pub const ROLE_APP_ADMIN: &str = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3";
pub const ROLE_CLOUD_APP_ADMIN: &str = "158c047a-c907-4556-b7ef-446551a6b5f7";
pub const ROLE_APP_DEVELOPER: &str = "cf1c38e5-3621-4004-a7cb-879624dced7c";
const ROLE_MEMBER_USER: &str = "b79fbf4d-3ef9-4689-8143-76b194e85509";

const PLAN_P1: &str = "41781fb2-bc02-4b7c-bd55-b576c07bb09d";
const PLAN_P2: &str = "eec0eb4f-6444-4f95-aba0-50c24d67f998";

/// Portal fragments for the blades the summary links to.
const BLADE_OVERVIEW: &str = "#view/Microsoft_AAD_IAM/ActiveDirectoryMenuBlade/~/Overview";
const BLADE_ROLES: &str =
    "#view/Microsoft_AAD_IAM/ActiveDirectoryMenuBlade/~/RolesAndAdministrators";
const BLADE_LICENCES: &str = "#view/Microsoft_AAD_IAM/LicensesMenuBlade/~/Products";
const BLADE_PIM_ACTIVATE: &str =
    "#view/Microsoft_Azure_PIMCommon/ActivationMenuBlade/~/aadmigratedroles";

/// A well-known role's display name.
pub fn role_name(template: &str) -> Option<&'static str> {
    Some(match template {
        ROLE_GLOBAL_ADMIN => "Global Administrator",
        ROLE_PRIVILEGED_ROLE_ADMIN => "Privileged Role Administrator",
        ROLE_APP_ADMIN => "Application Administrator",
        ROLE_CLOUD_APP_ADMIN => "Cloud Application Administrator",
        ROLE_APP_DEVELOPER => "Application Developer",
        "f28a1f50-f6e7-4571-818b-6a12f2af6b6c" => "SharePoint Administrator",
        "29232cdf-9323-42fd-ade2-1d097af3e4de" => "Exchange Administrator",
        "fe930be7-5e62-47db-91af-98c3a49a38b1" => "User Administrator",
        "f2ef992c-3afb-46b9-b7cf-a126ee74c451" => "Global Reader",
        "194ae4cb-b126-40b2-bd5b-6091b380977d" => "Security Administrator",
        "4a5d8f65-41da-4de4-8968-e035b65339cf" => "Reports Reader",
        "5d6b6bb7-de71-4623-b4af-96380a352509" => "Security Reader",
        _ => return None,
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub enum LicenceTier {
    Free,
    P1,
    P2,
    /// The licences could not be read.
    Unknown,
}

impl LicenceTier {
    fn label(self) -> &'static str {
        match self {
            Self::Free => "Free",
            Self::P1 => "Entra ID P1",
            Self::P2 => "Entra ID P2",
            Self::Unknown => "unknown",
        }
    }
    fn premium(self) -> bool {
        matches!(self, Self::P1 | Self::P2)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub enum RoleSource {
    /// Active assignment, seen in the directory.
    Active,
    /// Only in the sign-in token's `wids` claim (the directory could not be read).
    Token,
    /// Eligible through Privileged Identity Management, not activated.
    Eligible,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct RoleHeld {
    pub template_id: String,
    pub name: String,
    pub source: RoleSource,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct Link {
    pub label: String,
    pub url: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub enum Severity {
    Info,
    Warning,
    Blocker,
}

/// A piece of advice shown to the admin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct Advice {
    pub id: String,
    pub severity: Severity,
    pub title: String,
    pub detail: String,
    pub link: Option<Link>,
}

/// Something the wizard can do in this tenant, or why not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct Capability {
    pub id: String,
    pub title: String,
    pub allowed: bool,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct SignedInUser {
    pub id: String,
    pub display_name: String,
    pub user_principal_name: String,
    pub mail: Option<String>,
}

/// What the tenant summary screen shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct TenantSummary {
    pub tenant_id: String,
    pub tenant_name: String,
    pub default_domain: String,
    pub verified_domains: Vec<String>,
    pub cloud_name: String,
    pub user: SignedInUser,
    pub roles: Vec<RoleHeld>,
    pub licence: LicenceTier,
    /// The subscription that provides the licence tier, e.g. `SPE_E3`.
    pub licence_source: Option<String>,
    pub capabilities: Vec<Capability>,
    pub advice: Vec<Advice>,
    pub links: Vec<Link>,
}

/// Everything read from the tenant, before interpretation.
#[derive(Clone, Debug)]
pub struct TenantFacts {
    pub organization: Organization,
    pub me: User,
    pub member_roles: Vec<DirectoryRole>,
    /// Active role template ids from the access token (a hint only).
    pub wids: Vec<String>,
    /// `None` when the licences could not be read.
    pub skus: Option<Vec<SubscribedSku>>,
    /// PIM-eligible role template ids, when they could be read (needs P2).
    pub eligible: Option<Vec<String>>,
}

/// Reads `wids` from an access token's payload without verifying it: a hint, never a decision
/// (Microsoft: clients must not rely on tokens issued for other APIs).
pub fn wids_hint(access_token: &str) -> Vec<String> {
    #[derive(Deserialize)]
    struct Claims {
        #[serde(default)]
        wids: Vec<String>,
    }
    access_token
        .split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p.trim_end_matches('='))
                .ok()
        })
        .and_then(|b| serde_json::from_slice::<Claims>(&b).ok())
        .map(|c| {
            c.wids
                .into_iter()
                .filter(|w| w != ROLE_MEMBER_USER)
                .collect()
        })
        .unwrap_or_default()
}

/// Reads the facts the summary needs. Licences and PIM eligibility are optional: a 403 there
/// becomes advice, not a failure.
pub async fn discover(graph: &GraphClient, wids: Vec<String>) -> Result<TenantFacts, GraphError> {
    let s = StepScopes::SignIn;
    let org_req = graph
        .get("/organization?$select=id,displayName,verifiedDomains")
        .scopes(s);
    let me_req = graph
        .get("/me?$select=id,displayName,userPrincipalName,mail")
        .scopes(s);
    let roles_req = graph.get("/me/transitiveMemberOf/microsoft.graph.directoryRole?$select=id,displayName,roleTemplateId").scopes(s).advanced();
    let skus_req = graph.get("/subscribedSkus?$select=skuId,skuPartNumber,capabilityStatus,prepaidUnits,servicePlans").scopes(s);
    let (orgs, me, member_roles, skus) = tokio::join!(
        org_req.list::<Organization>(),
        me_req.send_json::<User>(),
        roles_req.list::<DirectoryRole>(),
        skus_req.list::<SubscribedSku>(),
    );
    let organization = orgs?.into_iter().next().ok_or_else(|| GraphError::Decode {
        method: "GET".into(),
        path: "/organization".into(),
        detail: "no organization was returned".into(),
        request_id: None,
    })?;
    let me = me?;
    let member_roles = member_roles?;
    let skus = match skus {
        Ok(v) => Some(v),
        Err(e) if e.status() == Some(403) => None,
        Err(e) => return Err(e),
    };
    let eligible = if tier_of(skus.as_deref()).0 == LicenceTier::P2 {
        let path = format!(
            "/roleManagement/directory/roleEligibilityScheduleInstances?$filter=principalId eq '{}'&$select=roleDefinitionId",
            me.id
        );
        match graph.get(path).scopes(s).list::<RoleEligibility>().await {
            Ok(v) => Some(v.into_iter().map(|r| r.role_definition_id).collect()),
            Err(e) if matches!(e.status(), Some(400 | 403)) => None,
            Err(e) => return Err(e),
        }
    } else {
        None
    };
    Ok(TenantFacts {
        organization,
        me,
        member_roles,
        wids,
        skus,
        eligible,
    })
}

/// The licence tier from service plans (not SKU names: P1 is bundled in many SKUs).
fn tier_of(skus: Option<&[SubscribedSku]>) -> (LicenceTier, Option<String>) {
    let Some(skus) = skus else {
        return (LicenceTier::Unknown, None);
    };
    let mut best = (LicenceTier::Free, None);
    for sku in skus {
        let usable = matches!(
            sku.capability_status.as_deref(),
            Some("Enabled" | "Warning")
        ) && sku.prepaid_units.as_ref().is_some_and(|u| u.enabled > 0);
        if !usable {
            continue;
        }
        for plan in &sku.service_plans {
            if plan.provisioning_status.as_deref() != Some("Success") {
                continue;
            }
            let tier = match plan.service_plan_id.as_deref() {
                Some(PLAN_P2) => LicenceTier::P2,
                Some(PLAN_P1) => LicenceTier::P1,
                _ => continue,
            };
            let better = matches!(
                (best.0, tier),
                (LicenceTier::Free, _) | (LicenceTier::P1, LicenceTier::P2)
            );
            if better {
                best = (tier, sku.sku_part_number.clone());
            }
        }
    }
    best
}

fn advice(id: &str, severity: Severity, title: &str, detail: String, link: Option<Link>) -> Advice {
    Advice {
        id: id.into(),
        severity,
        title: title.into(),
        detail,
        link,
    }
}

/// Interprets the facts. Pure: the same facts always give the same summary.
pub fn summarize(facts: &TenantFacts, cloud: &Cloud) -> TenantSummary {
    let link = |label: &str, fragment: &str| Link {
        label: label.into(),
        url: cloud.portal_link(fragment),
    };
    let mut roles: Vec<RoleHeld> = vec![];
    let directory_readable = facts
        .member_roles
        .iter()
        .all(|r| r.role_template_id.is_some());
    for r in &facts.member_roles {
        if let Some(t) = &r.role_template_id {
            let name = r
                .display_name
                .clone()
                .or_else(|| role_name(t).map(str::to_string))
                .unwrap_or_else(|| t.clone());
            roles.push(RoleHeld {
                template_id: t.clone(),
                name,
                source: RoleSource::Active,
            });
        }
    }
    for w in &facts.wids {
        if !roles.iter().any(|r| &r.template_id == w) {
            roles.push(RoleHeld {
                template_id: w.clone(),
                name: role_name(w).map_or_else(|| format!("Role {w}"), str::to_string),
                source: RoleSource::Token,
            });
        }
    }
    for e in facts.eligible.iter().flatten() {
        if !roles.iter().any(|r| &r.template_id == e) {
            roles.push(RoleHeld {
                template_id: e.clone(),
                name: role_name(e).map_or_else(|| format!("Role {e}"), str::to_string),
                source: RoleSource::Eligible,
            });
        }
    }
    let active = |t: &str| {
        roles
            .iter()
            .any(|r| r.template_id == t && r.source != RoleSource::Eligible)
    };
    let ga = active(ROLE_GLOBAL_ADMIN);
    let manage_apps = ga || active(ROLE_APP_ADMIN) || active(ROLE_CLOUD_APP_ADMIN);
    let app_perms = ga || active(ROLE_PRIVILEGED_ROLE_ADMIN);
    let developer = active(ROLE_APP_DEVELOPER);
    let (licence, licence_source) = tier_of(facts.skus.as_deref());
    let tier = licence.label();

    let mut capabilities = vec![
        Capability {
            id: "register_apps".into(),
            title: "Register apps and create client secrets".into(),
            allowed: manage_apps || developer,
            detail: if manage_apps {
                "Your role can create and manage app registrations and their secrets.".into()
            } else if developer {
                "As Application Developer you can register apps you own, but not consent for the organisation.".into()
            } else {
                "Needs Cloud Application Administrator, Application Administrator or Global Administrator (or the 'Users can register applications' setting).".into()
            },
        },
        Capability {
            id: "enterprise_apps".into(),
            title: "Create enterprise apps for SAML and SCIM".into(),
            allowed: manage_apps,
            detail: if manage_apps {
                "Your role can create non-gallery enterprise apps and configure provisioning.".into()
            } else {
                "Needs Cloud Application Administrator or Application Administrator.".into()
            },
        },
        Capability {
            id: "delegated_consent".into(),
            title: "Grant admin consent for delegated permissions".into(),
            allowed: manage_apps,
            detail: if manage_apps {
                "You can consent for the whole organisation to the delegated permissions a provider needs.".into()
            } else {
                "Needs Cloud Application Administrator, Application Administrator or Global Administrator.".into()
            },
        },
        Capability {
            id: "application_permissions".into(),
            title: "Grant Microsoft Graph application permissions".into(),
            allowed: app_perms,
            detail: if app_perms {
                "You can grant application permissions (app roles) such as Directory.Read.All.".into()
            } else {
                "Needs Privileged Role Administrator or Global Administrator. The wizard will prepare an admin-consent link you can send to a colleague who has it.".into()
            },
        },
        Capability {
            id: "group_assignment".into(),
            title: "Assigned users and groups only (assign groups to apps)".into(),
            allowed: licence.premium(),
            detail: match licence {
                LicenceTier::P1 | LicenceTier::P2 => format!("This tenant has {tier}, so groups can be assigned to apps and synced."),
                LicenceTier::Free => "Assigned groups only needs Entra ID P1; this tenant is Free. You can still assign individual users, or sync all users.".into(),
                LicenceTier::Unknown => "Needs Entra ID P1 or P2; the tenant's licences could not be read.".into(),
            },
        },
        Capability {
            id: "scim_provisioning".into(),
            title: "Provision users to the service with SCIM".into(),
            allowed: manage_apps,
            detail: if licence.premium() {
                "Users and groups can be provisioned.".into()
            } else {
                "Users can be provisioned on the Free tier; provisioning groups needs Entra ID P1.".into()
            },
        },
        Capability {
            id: "provisioning_logs".into(),
            title: "Read provisioning logs".into(),
            allowed: licence.premium(),
            detail: if licence.premium() {
                "The wizard can show the provisioning log after a sync.".into()
            } else {
                "Provisioning logs need Entra ID P1 or P2; the wizard will show the job status instead.".into()
            },
        },
    ];
    if licence == LicenceTier::P2 {
        capabilities.push(Capability {
            id: "pim".into(),
            title: "Privileged Identity Management".into(),
            allowed: true,
            detail: "Roles can be made eligible and activated just in time.".into(),
        });
    }

    let mut out = vec![];
    if !manage_apps {
        out.push(advice(
            "no_app_role",
            Severity::Blocker,
            "Your account cannot create enterprise apps or grant consent",
            format!(
                "Signed in as {}, you hold none of Cloud Application Administrator, Application Administrator or Global Administrator. Ask for Cloud Application Administrator (the least privileged role that covers every step), or activate it in PIM, then sign in again.",
                facts.me.user_principal_name.as_deref().unwrap_or("this user")
            ),
            Some(link("Roles and administrators", BLADE_ROLES)),
        ));
    }
    if manage_apps && !app_perms {
        out.push(advice(
            "no_privileged_role",
            Severity::Warning,
            "Application permissions will need a colleague",
            "Providers that read your directory themselves need Microsoft Graph application permissions, which only a Privileged Role Administrator or Global Administrator can grant. The wizard will give you an admin-consent link to send them, and checks when it has been used.".into(),
            None,
        ));
    }
    let eligible: Vec<&RoleHeld> = roles
        .iter()
        .filter(|r| r.source == RoleSource::Eligible)
        .collect();
    if !eligible.is_empty() {
        let names: Vec<&str> = eligible.iter().map(|r| r.name.as_str()).collect();
        out.push(advice(
            "pim_eligible",
            Severity::Warning,
            "Eligible roles are not active",
            format!(
                "You are eligible for {} through Privileged Identity Management, but eligible roles do not count until you activate them. Activate the role, then sign in again so your new sign-in carries it.",
                names.join(", ")
            ),
            Some(link("Activate a role in PIM", BLADE_PIM_ACTIVATE)),
        ));
    } else if !manage_apps {
        out.push(advice(
            "pim_hint",
            Severity::Info,
            "Using Privileged Identity Management?",
            "If your administrator role is assigned as eligible in PIM, it is not active until you activate it. Activate it, then sign in again.".into(),
            Some(link("Activate a role in PIM", BLADE_PIM_ACTIVATE)),
        ));
    }
    if !directory_readable && !facts.wids.is_empty() {
        out.push(advice(
            "roles_from_token",
            Severity::Info,
            "Role names come from your sign-in token",
            "The directory did not return role details (the wizard lacks RoleManagement.Read.Directory consent), so roles were read from your token's wids claim.".into(),
            None,
        ));
    }
    if licence == LicenceTier::Unknown {
        out.push(advice(
            "licence_unknown",
            Severity::Warning,
            "The tenant's licences could not be read",
            "Reading subscriptions needs the LicenseAssignment.Read.All permission. Steps that depend on Entra ID P1 (group assignment) will be checked again when you reach them.".into(),
            Some(link("Licences", BLADE_LICENCES)),
        ));
    }

    let default_domain = facts
        .organization
        .verified_domains
        .iter()
        .find(|d| d.is_default)
        .or_else(|| facts.organization.verified_domains.first())
        .map(|d| d.name.clone())
        .unwrap_or_default();
    TenantSummary {
        tenant_id: facts.organization.id.clone(),
        tenant_name: facts
            .organization
            .display_name
            .clone()
            .unwrap_or_else(|| default_domain.clone()),
        default_domain,
        verified_domains: facts
            .organization
            .verified_domains
            .iter()
            .map(|d| d.name.clone())
            .collect(),
        cloud_name: cloud.name.clone(),
        user: SignedInUser {
            id: facts.me.id.clone(),
            display_name: facts.me.display_name.clone().unwrap_or_default(),
            user_principal_name: facts.me.user_principal_name.clone().unwrap_or_default(),
            mail: facts.me.mail.clone(),
        },
        roles,
        licence,
        licence_source,
        capabilities,
        advice: out,
        links: vec![
            link("Tenant overview", BLADE_OVERVIEW),
            link("Roles and administrators", BLADE_ROLES),
            link("Licences", BLADE_LICENCES),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::CloudChoice;
    use crate::graph::models::{LicenseUnitsDetail, ServicePlanInfo, VerifiedDomain};

    fn facts(roles: &[&str], plan: Option<&str>) -> TenantFacts {
        TenantFacts {
            organization: Organization {
                id: "t".into(),
                display_name: Some("Contoso".into()),
                verified_domains: vec![VerifiedDomain {
                    name: "contoso.com".into(),
                    is_default: true,
                    is_initial: false,
                }],
            },
            me: User {
                id: "u".into(),
                display_name: Some("Adele".into()),
                user_principal_name: Some("adele@contoso.com".into()),
                mail: None,
            },
            member_roles: roles
                .iter()
                .map(|r| DirectoryRole {
                    id: format!("o-{r}"),
                    display_name: role_name(r).map(str::to_string),
                    role_template_id: Some((*r).into()),
                })
                .collect(),
            wids: vec![],
            skus: Some(vec![SubscribedSku {
                sku_id: None,
                sku_part_number: Some("SKU".into()),
                capability_status: Some("Enabled".into()),
                prepaid_units: Some(LicenseUnitsDetail { enabled: 5 }),
                service_plans: plan
                    .map(|p| {
                        vec![ServicePlanInfo {
                            service_plan_id: Some(p.into()),
                            service_plan_name: None,
                            provisioning_status: Some("Success".into()),
                        }]
                    })
                    .unwrap_or_default(),
            }]),
            eligible: None,
        }
    }

    fn cloud() -> Cloud {
        Cloud::from_choice(&CloudChoice::Global).unwrap()
    }

    #[test]
    fn free_tenant_explains_group_assignment() {
        let s = summarize(&facts(&[ROLE_GLOBAL_ADMIN], None), &cloud());
        assert_eq!(s.licence, LicenceTier::Free);
        let g = s
            .capabilities
            .iter()
            .find(|c| c.id == "group_assignment")
            .unwrap();
        assert!(!g.allowed);
        assert!(g
            .detail
            .contains("Assigned groups only needs Entra ID P1; this tenant is Free"));
    }

    #[test]
    fn cloud_app_admin_without_pra_is_warned() {
        let s = summarize(&facts(&[ROLE_CLOUD_APP_ADMIN], Some(PLAN_P1)), &cloud());
        assert_eq!(s.licence, LicenceTier::P1);
        assert!(s.advice.iter().any(|a| a.id == "no_privileged_role"));
        assert!(
            !s.capabilities
                .iter()
                .find(|c| c.id == "application_permissions")
                .unwrap()
                .allowed
        );
    }

    #[test]
    fn no_role_is_a_blocker_with_pim_hint() {
        let s = summarize(&facts(&[], Some(PLAN_P2)), &cloud());
        assert_eq!(s.licence, LicenceTier::P2);
        assert!(s
            .advice
            .iter()
            .any(|a| a.id == "no_app_role" && a.severity == Severity::Blocker));
        assert!(s.advice.iter().any(|a| a.id == "pim_hint"));
    }

    #[test]
    fn eligible_roles_do_not_count() {
        let mut f = facts(&[ROLE_APP_ADMIN], Some(PLAN_P2));
        f.eligible = Some(vec![ROLE_PRIVILEGED_ROLE_ADMIN.into()]);
        let s = summarize(&f, &cloud());
        assert!(
            s.roles
                .iter()
                .any(|r| r.source == RoleSource::Eligible
                    && r.name == "Privileged Role Administrator")
        );
        assert!(
            !s.capabilities
                .iter()
                .find(|c| c.id == "application_permissions")
                .unwrap()
                .allowed
        );
        assert!(s.advice.iter().any(|a| a.id == "pim_eligible"));
    }

    #[test]
    fn wids_are_read_as_a_hint() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"wids":["62e90394-69f5-4237-9190-012177145e10","b79fbf4d-3ef9-4689-8143-76b194e85509"]}"#);
        assert_eq!(
            wids_hint(&format!("h.{payload}.s")),
            vec![ROLE_GLOBAL_ADMIN.to_string()]
        );
        assert!(wids_hint("not-a-jwt").is_empty());
    }
}
