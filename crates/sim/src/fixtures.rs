//! The tenants the simulator serves: a Free, a P1 and a P2 tenant, each with admins holding
//! different directory roles, so every branch of the wizard's licence and role advice can be seen;
//! and a large P1 tenant (Tailspin Toys: 250 users, 120 groups, 120 registered apps, 1,200
//! service principals) where every list Graph answers takes more than one page.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub const ROLE_GLOBAL_ADMIN: &str = "62e90394-69f5-4237-9190-012177145e10";
pub const ROLE_PRIVILEGED_ROLE_ADMIN: &str = "e8611ab8-c189-46e8-94e1-60213ab1f814";
pub const ROLE_APP_ADMIN: &str = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3";
pub const ROLE_CLOUD_APP_ADMIN: &str = "158c047a-c907-4556-b7ef-446551a6b5f7";
pub const ROLE_APP_DEVELOPER: &str = "cf1c38e5-3621-4004-a7cb-879624dced7c";
/// Every member user carries this template id in `wids`; it is not a directoryRole object.
pub const ROLE_MEMBER_USER: &str = "b79fbf4d-3ef9-4689-8143-76b194e85509";

const PLAN_AAD_PREMIUM: &str = "41781fb2-bc02-4b7c-bd55-b576c07bb09d";
const PLAN_AAD_PREMIUM_P2: &str = "eec0eb4f-6444-4f95-aba0-50c24d67f998";

fn role_name(template: &str) -> (&'static str, &'static str) {
    match template {
        ROLE_GLOBAL_ADMIN => ("Global Administrator", "Can manage all aspects of Microsoft Entra ID and Microsoft services that use Microsoft Entra identities."),
        ROLE_PRIVILEGED_ROLE_ADMIN => ("Privileged Role Administrator", "Can manage role assignments in Microsoft Entra ID, and all aspects of Privileged Identity Management."),
        ROLE_APP_ADMIN => ("Application Administrator", "Can create and manage all aspects of app registrations and enterprise apps."),
        ROLE_CLOUD_APP_ADMIN => ("Cloud Application Administrator", "Can create and manage all aspects of app registrations and enterprise apps except App Proxy."),
        ROLE_APP_DEVELOPER => ("Application Developer", "Can create application registrations independent of the 'Users can register applications' setting."),
        _ => ("Directory role", ""),
    }
}

#[derive(Clone, Debug)]
pub struct User {
    pub id: String,
    pub display_name: String,
    pub given_name: String,
    pub surname: String,
    pub upn: String,
    pub mail: Option<String>,
    pub job_title: String,
    /// Role template ids the user holds actively.
    pub active_roles: Vec<&'static str>,
    /// Role template ids the user is only eligible for (PIM): not in tokens or memberOf.
    pub eligible_roles: Vec<&'static str>,
    pub account_enabled: bool,
    pub user_type: &'static str,
    /// Memberships beyond the fixture groups (to model users over the groups-claim limit).
    pub extra_groups: u32,
}

impl User {
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "displayName": self.display_name,
            "givenName": self.given_name,
            "surname": self.surname,
            "userPrincipalName": self.upn,
            "mail": self.mail,
            "jobTitle": self.job_title,
            "accountEnabled": self.account_enabled,
            "userType": self.user_type,
            "businessPhones": [],
        })
    }
}

#[derive(Clone, Debug)]
pub struct Domain {
    pub name: String,
    pub is_default: bool,
    pub is_initial: bool,
}

#[derive(Clone, Debug)]
pub struct Tenant {
    pub id: String,
    pub display_name: String,
    pub domains: Vec<Domain>,
    pub users: Vec<User>,
    pub skus: Vec<Value>,
    pub licence: &'static str,
    pub created: &'static str,
    /// (id, displayName, securityEnabled, direct member ids)
    pub groups: Vec<(String, String, bool, Vec<String>)>,
    /// The tenant's default app-management policy, as Graph returns it.
    pub policy: Value,
    /// Apps members registered (each with its service principal), and enterprise apps of other
    /// publishers, beyond those the tests make: what a tenant of a few hundred people holds.
    pub bulk: Bulk,
}

/// How many apps of each kind a tenant holds from the start.
#[derive(Clone, Copy, Debug, Default)]
pub struct Bulk {
    pub registered_apps: u32,
    pub vendor_apps: u32,
}

/// A fixture tenant as tests and the demo picker see it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FixtureTenant {
    pub id: String,
    pub display_name: String,
    pub default_domain: String,
    pub initial_domain: String,
    pub licence: String,
    pub users: Vec<String>,
}

/// One sign-in choice of the demo: a user in a fixture tenant, described in plain words.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct DemoUser {
    pub tenant_id: String,
    pub tenant_name: String,
    pub tenant_domain: String,
    pub upn: String,
    pub display_name: String,
    pub description: String,
}

impl Tenant {
    pub fn summary(&self) -> FixtureTenant {
        FixtureTenant {
            id: self.id.clone(),
            display_name: self.display_name.clone(),
            default_domain: self.default_domain().to_string(),
            initial_domain: self
                .domains
                .iter()
                .find(|d| d.is_initial)
                .map(|d| d.name.clone())
                .unwrap_or_default(),
            licence: self.licence.to_string(),
            users: self.users.iter().map(|u| u.upn.clone()).collect(),
        }
    }

    pub fn default_domain(&self) -> &str {
        self.domains
            .iter()
            .find(|d| d.is_default)
            .map(|d| d.name.as_str())
            .unwrap_or_default()
    }

    pub fn matches(&self, tenant: &str) -> bool {
        self.id.eq_ignore_ascii_case(tenant)
            || self
                .domains
                .iter()
                .any(|d| d.name.eq_ignore_ascii_case(tenant))
    }

    pub fn user_by_upn(&self, upn: &str) -> Option<&User> {
        self.users.iter().find(|u| u.upn.eq_ignore_ascii_case(upn))
    }

    pub fn user_by_id(&self, id: &str) -> Option<&User> {
        self.users.iter().find(|u| u.id.eq_ignore_ascii_case(id))
    }

    pub fn has_p2(&self) -> bool {
        self.licence == "P2"
    }

    pub fn organization_json(&self) -> Value {
        json!({
            "id": self.id,
            "displayName": self.display_name,
            "tenantType": "AAD",
            "countryLetterCode": "US",
            "createdDateTime": self.created,
            "businessPhones": [],
            "technicalNotificationMails": [format!("admin@{}", self.default_domain())],
            "verifiedDomains": self.domains.iter().map(|d| json!({
                "capabilities": if d.is_initial { "Email, OfficeCommunicationsOnline" } else { "Email" },
                "isDefault": d.is_default,
                "isInitial": d.is_initial,
                "name": d.name,
                "type": "Managed",
            })).collect::<Vec<_>>(),
        })
    }

    /// The activated directory role objects (one per template any user holds actively).
    pub fn directory_role_json(&self, template: &str) -> Value {
        let (name, description) = role_name(template);
        json!({
            "id": role_object_id(&self.id, template),
            "displayName": name,
            "description": description,
            "roleTemplateId": template,
        })
    }
}

/// A stable object id for a directory role in a tenant, derived from both ids.
fn role_object_id(tenant_id: &str, template: &str) -> String {
    // Keep the template's shape but make it tenant-specific: swap in the tenant's first block.
    format!("{}{}", &tenant_id[..8], &template[8..])
}

fn sku(
    tenant_id: &str,
    part: &str,
    sku_id: &str,
    units: i32,
    consumed: i32,
    plans: &[(&str, &str)],
) -> Value {
    json!({
        "id": format!("{tenant_id}_{sku_id}"),
        "accountId": tenant_id,
        "accountName": "Simulated",
        "appliesTo": "User",
        "capabilityStatus": "Enabled",
        "consumedUnits": consumed,
        "prepaidUnits": {"enabled": units, "suspended": 0, "warning": 0, "lockedOut": 0},
        "servicePlans": plans.iter().map(|(id, name)| json!({
            "servicePlanId": id, "servicePlanName": name, "provisioningStatus": "Success", "appliesTo": "User"
        })).collect::<Vec<_>>(),
        "skuId": sku_id,
        "skuPartNumber": part,
        "subscriptionIds": [],
    })
}

#[allow(clippy::too_many_arguments)]
fn user(
    id: &str,
    name: &str,
    upn: &str,
    mail: Option<&str>,
    title: &str,
    active: &[&'static str],
    eligible: &[&'static str],
) -> User {
    let (given, surname) = name.split_once(' ').unwrap_or((name, ""));
    User {
        id: id.to_string(),
        display_name: name.to_string(),
        given_name: given.to_string(),
        surname: surname.to_string(),
        upn: upn.to_string(),
        mail: mail.map(str::to_string),
        job_title: title.to_string(),
        active_roles: active.to_vec(),
        eligible_roles: eligible.to_vec(),
        account_enabled: true,
        user_type: "Member",
        extra_groups: 0,
    }
}

fn guest(id: &str, name: &str, home_mail: &str, tenant_domain: &str) -> User {
    let mut u = user(
        id,
        name,
        &format!("{}#EXT#@{tenant_domain}", home_mail.replace('@', "_")),
        Some(home_mail),
        "Partner",
        &[],
        &[],
    );
    u.user_type = "Guest";
    u
}

fn group(
    id: &str,
    name: &str,
    security: bool,
    members: &[&str],
) -> (String, String, bool, Vec<String>) {
    (
        id.to_string(),
        name.to_string(),
        security,
        members.iter().map(|m| (*m).to_string()).collect(),
    )
}

/// A default app-management policy; `max_lifetime` (ISO 8601) caps client secrets when given.
fn policy(max_lifetime: Option<&str>) -> Value {
    let restrictions = match max_lifetime {
        Some(life) => json!([{
            "restrictionType": "passwordLifetime",
            "maxLifetime": life,
            "state": "enabled",
            "restrictForAppsCreatedAfterDateTime": "2020-01-01T00:00:00Z",
        }]),
        None => json!([]),
    };
    json!({
        "id": "00000000-0000-0000-0000-000000000000",
        "displayName": "Default app management tenant policy",
        "description": "Default tenant policy that enforces app management restrictions on applications and service principals.",
        "isEnabled": max_lifetime.is_some(),
        "applicationRestrictions": {"passwordCredentials": restrictions, "keyCredentials": []},
        "servicePrincipalRestrictions": {"passwordCredentials": [], "keyCredentials": []},
    })
}

pub fn tenants() -> Vec<Tenant> {
    let contoso = "b2d5c2a4-6f1e-4c8b-9a3d-1e2f3a4b5c6d";
    let fabrikam = "c3e6d3b5-7a2f-4d9c-8b4e-2f3a4b5c6d7e";
    let northwind = "d4f7e4c6-8b3a-4eac-9c5f-3a4b5c6d7e8f";
    vec![
        Tenant {
            id: contoso.into(),
            display_name: "Contoso".into(),
            domains: vec![
                Domain {
                    name: "contoso.onmicrosoft.com".into(),
                    is_default: false,
                    is_initial: true,
                },
                Domain {
                    name: "contoso.com".into(),
                    is_default: true,
                    is_initial: false,
                },
            ],
            users: vec![
                user(
                    "0b5e8a1c-2d3f-4a5b-8c6d-7e8f9a0b1c2d",
                    "Adele Vance",
                    "adele@contoso.com",
                    Some("adele@contoso.com"),
                    "IT Director",
                    &[ROLE_GLOBAL_ADMIN],
                    &[],
                ),
                user(
                    "1c6f9b2d-3e4a-4b6c-9d7e-8f9a0b1c2d3e",
                    "Megan Bowen",
                    "megan@contoso.com",
                    Some("megan.bowen@contoso.com"),
                    "Identity Engineer",
                    &[ROLE_CLOUD_APP_ADMIN],
                    &[],
                ),
                user(
                    "2d7a0c3e-4f5b-4c7d-8e8f-9a0b1c2d3e4f",
                    "Alex Wilber",
                    "alex@contoso.com",
                    None,
                    "Helpdesk",
                    &[],
                    &[],
                ),
                user(
                    "3e8b1d4f-5a6c-4d8e-9f9a-0b1c2d3e4f5a",
                    "Diego Siciliani",
                    "diego@contoso.com",
                    Some("diego@contoso.com"),
                    "Security Admin",
                    &[ROLE_PRIVILEGED_ROLE_ADMIN, ROLE_CLOUD_APP_ADMIN],
                    &[],
                ),
                {
                    let mut u = user(
                        "4f9c2e5a-0b1c-4d2e-8f3a-4b5c6d7e8f90",
                        "Patti Fernandez",
                        "patti@contoso.com",
                        Some("patti@contoso.com"),
                        "President",
                        &[],
                        &[],
                    );
                    u.extra_groups = 240;
                    u
                },
                guest(
                    "5a0d3f6b-1c2d-4e3f-9a4b-5c6d7e8f9a01",
                    "Ravi Partner",
                    "ravi@fabrikam.com",
                    "contoso.onmicrosoft.com",
                ),
                {
                    let mut u = user(
                        "6b1e4a7c-2d3e-4f5a-8b6c-7d8e9f0a1b2c",
                        "Lynne Robbins",
                        "lynne@contoso.com",
                        Some("lynne@contoso.com"),
                        "Former Sales Lead",
                        &[],
                        &[],
                    );
                    u.account_enabled = false;
                    u
                },
            ],
            skus: vec![sku(
                contoso,
                "SPE_E3",
                "05e9a617-0261-4cee-bb44-138d3ef5d965",
                25,
                4,
                &[
                    (PLAN_AAD_PREMIUM, "AAD_PREMIUM"),
                    (
                        "efb87545-963c-4e0d-99df-69c6916d9eb0",
                        "EXCHANGE_S_ENTERPRISE",
                    ),
                    (
                        "5dbe027f-2339-4123-9542-606e4d348a72",
                        "SHAREPOINTENTERPRISE",
                    ),
                ],
            )],
            licence: "P1",
            created: "2019-03-14T09:21:00Z",
            groups: vec![
                group(
                    "a1b2c3d4-1111-4a1a-9a1a-000000000001",
                    "Engineering",
                    true,
                    &[
                        "0b5e8a1c-2d3f-4a5b-8c6d-7e8f9a0b1c2d",
                        "1c6f9b2d-3e4a-4b6c-9d7e-8f9a0b1c2d3e",
                        "a1b2c3d4-1111-4a1a-9a1a-000000000003",
                    ],
                ),
                group(
                    "a1b2c3d4-1111-4a1a-9a1a-000000000002",
                    "Sales",
                    true,
                    &[
                        "2d7a0c3e-4f5b-4c7d-8e8f-9a0b1c2d3e4f",
                        "4f9c2e5a-0b1c-4d2e-8f3a-4b5c6d7e8f90",
                        "5a0d3f6b-1c2d-4e3f-9a4b-5c6d7e8f9a01",
                        "6b1e4a7c-2d3e-4f5a-8b6c-7d8e9f0a1b2c",
                    ],
                ),
                group(
                    "a1b2c3d4-1111-4a1a-9a1a-000000000003",
                    "Platform Team",
                    true,
                    &["3e8b1d4f-5a6c-4d8e-9f9a-0b1c2d3e4f5a"],
                ),
                group(
                    "a1b2c3d4-1111-4a1a-9a1a-000000000004",
                    "All Company",
                    false,
                    &[
                        "0b5e8a1c-2d3f-4a5b-8c6d-7e8f9a0b1c2d",
                        "1c6f9b2d-3e4a-4b6c-9d7e-8f9a0b1c2d3e",
                        "2d7a0c3e-4f5b-4c7d-8e8f-9a0b1c2d3e4f",
                        "3e8b1d4f-5a6c-4d8e-9f9a-0b1c2d3e4f5a",
                    ],
                ),
            ],
            policy: policy(None),
            bulk: Bulk::default(),
        },
        Tenant {
            id: fabrikam.into(),
            display_name: "Fabrikam".into(),
            domains: vec![Domain {
                name: "fabrikam.onmicrosoft.com".into(),
                is_default: true,
                is_initial: true,
            }],
            users: vec![
                user(
                    "4f9c2e5a-6b7d-4e9f-8a0b-1c2d3e4f5a6b",
                    "Lee Gu",
                    "lee@fabrikam.onmicrosoft.com",
                    Some("lee@fabrikam.onmicrosoft.com"),
                    "Founder",
                    &[ROLE_GLOBAL_ADMIN],
                    &[],
                ),
                user(
                    "5a0d3f6b-7c8e-4f0a-9b1c-2d3e4f5a6b7c",
                    "Nestor Wilke",
                    "nestor@fabrikam.onmicrosoft.com",
                    Some("nestor.wilke@fabrikam.com"),
                    "Developer",
                    &[ROLE_APP_DEVELOPER],
                    &[],
                ),
            ],
            skus: vec![sku(
                fabrikam,
                "FLOW_FREE",
                "f30db892-07e9-47e9-837c-80727f46fd3d",
                10000,
                2,
                &[("50e68c76-46c6-4674-81f9-75456511b170", "FLOW_P2_VIRAL")],
            )],
            licence: "Free",
            created: "2023-06-01T12:00:00Z",
            groups: vec![group(
                "b2c3d4e5-2222-4b2b-8b2b-000000000001",
                "Everyone",
                true,
                &[
                    "4f9c2e5a-6b7d-4e9f-8a0b-1c2d3e4f5a6b",
                    "5a0d3f6b-7c8e-4f0a-9b1c-2d3e4f5a6b7c",
                ],
            )],
            policy: policy(Some("P180D")),
            bulk: Bulk::default(),
        },
        Tenant {
            id: northwind.into(),
            display_name: "Northwind Traders".into(),
            domains: vec![
                Domain {
                    name: "northwind.onmicrosoft.com".into(),
                    is_default: false,
                    is_initial: true,
                },
                Domain {
                    name: "northwindtraders.com".into(),
                    is_default: true,
                    is_initial: false,
                },
            ],
            users: vec![
                user(
                    "6b1e4a7c-8d9f-4a1b-8c2d-3e4f5a6b7c8d",
                    "Isaiah Langer",
                    "isaiah@northwindtraders.com",
                    Some("isaiah@northwindtraders.com"),
                    "Cloud Architect",
                    &[ROLE_APP_ADMIN],
                    &[ROLE_PRIVILEGED_ROLE_ADMIN],
                ),
                user(
                    "7c2f5b8d-9e0a-4b2c-9d3e-4f5a6b7c8d9e",
                    "Johanna Lorenz",
                    "johanna@northwindtraders.com",
                    Some("johanna@northwindtraders.com"),
                    "CISO",
                    &[ROLE_GLOBAL_ADMIN],
                    &[],
                ),
            ],
            skus: vec![sku(
                northwind,
                "AAD_PREMIUM_P2",
                "84a661c4-e949-4bd2-a560-ed7766fcaf2b",
                50,
                12,
                &[
                    (PLAN_AAD_PREMIUM, "AAD_PREMIUM"),
                    (PLAN_AAD_PREMIUM_P2, "AAD_PREMIUM_P2"),
                ],
            )],
            licence: "P2",
            created: "2021-11-02T08:00:00Z",
            groups: vec![group(
                "c3d4e5f6-3333-4c3c-9c3c-000000000001",
                "Cloud Ops",
                true,
                &[
                    "6b1e4a7c-8d9f-4a1b-8c2d-3e4f5a6b7c8d",
                    "7c2f5b8d-9e0a-4b2c-9d3e-4f5a6b7c8d9e",
                ],
            )],
            policy: policy(None),
            bulk: Bulk::default(),
        },
        tailspin(),
    ]
}

/// Tailspin Toys: a P1 tenant the size of a real company, so every list the wizard reads
/// (users, groups, group members, apps, service principals) comes in more than one page.
/// Ben Walters is its Global Administrator; "All Staff" holds all 250 users.
fn tailspin() -> Tenant {
    let id = "e5a8f5d7-9c4b-4fbd-8d6a-4b5c6d7e8f90";
    let admin = "e5a8f5d7-0000-4000-8000-000000000001";
    let mut users = vec![user(
        admin,
        "Ben Walters",
        "ben@tailspintoys.com",
        Some("ben@tailspintoys.com"),
        "IT Manager",
        &[ROLE_GLOBAL_ADMIN],
        &[],
    )];
    for i in 2..=250u32 {
        users.push(user(
            &format!("e5a8f5d7-0000-4000-8000-{i:012}"),
            &format!("Staff Member{i:03}"),
            &format!("staff{i:03}@tailspintoys.com"),
            Some(&format!("staff{i:03}@tailspintoys.com")),
            "Staff",
            &[],
            &[],
        ));
    }
    let everyone: Vec<String> = users.iter().map(|u| u.id.clone()).collect();
    let mut groups = vec![(
        "e5a8f5d7-1111-4000-8000-000000000001".to_string(),
        "All Staff".to_string(),
        true,
        everyone.clone(),
    )];
    for g in 2..=120usize {
        // Teams of five, in turn.
        let members = everyone
            .iter()
            .skip((g * 5) % 250)
            .take(5)
            .cloned()
            .collect();
        groups.push((
            format!("e5a8f5d7-1111-4000-8000-{g:012}"),
            format!("Team {g:03}"),
            g % 7 != 0,
            members,
        ));
    }
    Tenant {
        id: id.into(),
        display_name: "Tailspin Toys".into(),
        domains: vec![
            Domain {
                name: "tailspintoys.onmicrosoft.com".into(),
                is_default: false,
                is_initial: true,
            },
            Domain {
                name: "tailspintoys.com".into(),
                is_default: true,
                is_initial: false,
            },
        ],
        users,
        skus: vec![sku(
            id,
            "AAD_PREMIUM",
            "078d2b04-f1bd-4111-bbd4-b4b1b354cef4",
            300,
            250,
            &[(PLAN_AAD_PREMIUM, "AAD_PREMIUM")],
        )],
        licence: "P1",
        created: "2016-05-20T10:00:00Z",
        groups,
        policy: policy(None),
        bulk: Bulk {
            registered_apps: 120,
            vendor_apps: 1_079,
        },
    }
}

/// The sign-ins the demo offers, in the order it lists them.
pub fn demo_users() -> Vec<DemoUser> {
    let all = tenants();
    let pick = [
        ("adele@contoso.com", "Global Administrator in a tenant with Entra ID P1: every step can be done in-flow."),
        ("megan@contoso.com", "Cloud Application Administrator in a tenant with Entra ID P1: application permissions need a colleague's consent."),
        ("lee@fabrikam.onmicrosoft.com", "Global Administrator in a Free tenant: group assignment is not available."),
        ("isaiah@northwindtraders.com", "Application Administrator in a tenant with Entra ID P2, eligible for Privileged Role Administrator through PIM."),
    ];
    pick.iter()
        .filter_map(|(upn, description)| {
            let t = all.iter().find(|t| t.user_by_upn(upn).is_some())?;
            let u = t.user_by_upn(upn)?;
            Some(DemoUser {
                tenant_id: t.id.clone(),
                tenant_name: t.display_name.clone(),
                tenant_domain: t.default_domain().to_string(),
                upn: u.upn.clone(),
                display_name: u.display_name.clone(),
                description: (*description).to_string(),
            })
        })
        .collect()
}
