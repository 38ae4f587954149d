//! Pre-flight: what the tenant allows and what its users look like, read before any plan:
//! the app-management policy (secret lifetime cap, secrets blocked), the admin's roles against
//! what the plan needs, the licence, and a sample of users (UPN ≠ mail, no mail, guests, users
//! over the groups-claim limit).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::StepScopes;
use crate::graph::{GraphClient, GraphError};
use crate::provider::{PermissionKind, Provider};
use crate::tenant::{
    Advice, Link, Severity, TenantSummary, ROLE_APP_ADMIN, ROLE_CLOUD_APP_ADMIN, ROLE_GLOBAL_ADMIN,
    ROLE_PRIVILEGED_ROLE_ADMIN,
};

/// What the signed-in admin may do, from active directory roles.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RoleFacts {
    pub can_manage_apps: bool,
    pub can_grant_delegated: bool,
    pub can_grant_app_roles: bool,
}

impl RoleFacts {
    pub fn from_summary(s: &TenantSummary) -> Self {
        let has = |t: &str| {
            s.roles
                .iter()
                .any(|r| r.template_id == t && r.source != crate::tenant::RoleSource::Eligible)
        };
        let manage = has(ROLE_GLOBAL_ADMIN) || has(ROLE_APP_ADMIN) || has(ROLE_CLOUD_APP_ADMIN);
        Self {
            can_manage_apps: manage,
            can_grant_delegated: manage,
            can_grant_app_roles: has(ROLE_GLOBAL_ADMIN) || has(ROLE_PRIVILEGED_ROLE_ADMIN),
        }
    }
}

/// The tenant's rules for client secrets (`/policies/defaultAppManagementPolicy`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct SecretPolicy {
    /// New client secrets are not allowed at all (`passwordAddition`).
    pub blocked: bool,
    /// The longest lifetime allowed, in days (`passwordLifetime`).
    pub max_lifetime_days: Option<u32>,
}

/// Users over this many groups get no `groups` claim in a JWT (overage, reference §12).
pub const JWT_GROUPS_LIMIT: u64 = 200;
/// How many users the sample reads.
pub const USER_SAMPLE: usize = 100;
/// How many of them get their group count checked.
pub const OVERAGE_SAMPLE: usize = 20;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct UserSample {
    pub sampled: u32,
    /// Users whose sign-in name differs from their email address.
    pub upn_differs_from_mail: Vec<String>,
    pub without_mail: Vec<String>,
    pub guests: Vec<String>,
    /// (user, group count) for users over the groups-claim limit.
    pub over_group_limit: Vec<(String, u32)>,
    /// Group counts could not be read (missing permission), so overage was not checked.
    pub group_counts_unknown: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct Preflight {
    pub policy: SecretPolicy,
    pub users: UserSample,
    pub advice: Vec<Advice>,
    /// False when something blocks the setup outright (see the blocker advice).
    pub can_proceed: bool,
}

fn days_of(duration: &str) -> Option<u32> {
    // ISO 8601 durations as the policy uses them: P90D, P1Y, P6M, P2W (and P1DT12H).
    let body = duration.strip_prefix('P')?;
    let date = body.split('T').next()?;
    let mut days = 0u32;
    let mut num = String::new();
    for c in date.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u32 = num.parse().ok()?;
        num.clear();
        days += match c {
            'Y' => n * 365,
            'M' => n * 30,
            'W' => n * 7,
            'D' => n,
            _ => return None,
        };
    }
    Some(days)
}

/// Reads the tenant's default app-management policy as it applies to new client secrets.
pub fn secret_policy(policy: &Value) -> SecretPolicy {
    let mut out = SecretPolicy::default();
    if policy["isEnabled"] == Value::Bool(false) {
        return out;
    }
    for r in policy["applicationRestrictions"]["passwordCredentials"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if r["state"] != "enabled" {
            continue;
        }
        match r["restrictionType"].as_str() {
            Some("passwordAddition") => out.blocked = true,
            Some("passwordLifetime") => {
                if let Some(d) = r["maxLifetime"].as_str().and_then(days_of) {
                    out.max_lifetime_days =
                        Some(out.max_lifetime_days.map_or(d, |m: u32| m.min(d)));
                }
            }
            _ => {}
        }
    }
    out
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct SampleUser {
    id: String,
    #[serde(default)]
    user_principal_name: Option<String>,
    #[serde(default)]
    mail: Option<String>,
    #[serde(default)]
    user_type: Option<String>,
}

/// Reads and interprets everything pre-flight needs.
pub async fn run(
    graph: &GraphClient,
    summary: &TenantSummary,
    provider: &Provider,
    portal: &(dyn Fn(&str) -> String + Sync),
) -> Result<Preflight, GraphError> {
    let s = StepScopes::RegisterApp;
    let policy_req = graph.get("/policies/defaultAppManagementPolicy").scopes(s);
    let users_req = graph
        .get(format!(
            "/users?$select=id,userPrincipalName,mail,userType&$top={USER_SAMPLE}"
        ))
        .scopes(s);
    let (policy, users) = tokio::join!(
        policy_req.send_json::<Value>(),
        users_req.send_json::<Value>()
    );
    let policy = secret_policy(&policy?);
    let users: Vec<SampleUser> =
        serde_json::from_value(users?["value"].clone()).unwrap_or_default();
    let mut sample = UserSample {
        sampled: u32::try_from(users.len()).unwrap_or(u32::MAX),
        ..Default::default()
    };
    for u in &users {
        let upn = u.user_principal_name.clone().unwrap_or_default();
        if u.user_type.as_deref() == Some("Guest") {
            sample.guests.push(upn.clone());
            continue;
        }
        match &u.mail {
            None => sample.without_mail.push(upn.clone()),
            Some(m) if !m.eq_ignore_ascii_case(&upn) => sample
                .upn_differs_from_mail
                .push(format!("{upn} (mail {m})")),
            _ => {}
        }
    }
    // Group counts for a few members, at most five requests at a time (only a sign-in app gets
    // a groups claim; provisioning sends memberships through SCIM instead).
    let members: Vec<&SampleUser> = users
        .iter()
        .filter(|u| u.user_type.as_deref() != Some("Guest"))
        .take(if provider.has_sign_in() {
            OVERAGE_SAMPLE
        } else {
            0
        })
        .collect();
    for chunk in members.chunks(5) {
        let counts = futures::future::join_all(chunk.iter().map(|u| async move {
            let n = graph
                .get(format!("/users/{}/transitiveMemberOf/$count", u.id))
                .header("ConsistencyLevel", "eventual")
                .scopes(s)
                .send_json::<Value>()
                .await;
            (u, n)
        }))
        .await;
        for (u, n) in counts {
            match n {
                Ok(v) => {
                    let n = v.as_u64().unwrap_or(0);
                    if n > JWT_GROUPS_LIMIT {
                        sample.over_group_limit.push((
                            u.user_principal_name.clone().unwrap_or_default(),
                            u32::try_from(n).unwrap_or(u32::MAX),
                        ));
                    }
                }
                Err(e) if matches!(e.status(), Some(400 | 403)) => {
                    sample.group_counts_unknown = true;
                    break;
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(interpret(summary, provider, policy, sample, portal))
}

/// Turns the facts into advice. Pure.
pub fn interpret(
    summary: &TenantSummary,
    provider: &Provider,
    policy: SecretPolicy,
    users: UserSample,
    portal: &(dyn Fn(&str) -> String + Sync),
) -> Preflight {
    let roles = RoleFacts::from_summary(summary);
    // A provisioning-only provider has no client secret and no tokens with claims.
    let sign_in = provider.has_sign_in();
    let mut advice = vec![];
    let mut can_proceed = true;
    let mut add =
        |id: &str, severity: Severity, title: &str, detail: String, link: Option<Link>| {
            advice.push(Advice {
                id: id.into(),
                severity,
                title: title.into(),
                detail,
                link,
            });
        };
    if !roles.can_manage_apps {
        can_proceed = false;
        add(
            "missing_role",
            Severity::Blocker,
            "Your roles cannot register apps",
            "Registering the app and granting consent needs Cloud Application Administrator, Application Administrator or Global Administrator, active (not only eligible in PIM). Activate or request the role, then sign in again.".into(),
            Some(Link { label: "Roles and administrators".into(), url: portal("#view/Microsoft_AAD_IAM/ActiveDirectoryMenuBlade/~/RolesAndAdministrators") }),
        );
    }
    let app_perms = provider.permission_names(PermissionKind::Application);
    if !app_perms.is_empty() && roles.can_manage_apps && !roles.can_grant_app_roles {
        add(
            "consent_needs_colleague",
            Severity::Warning,
            "A colleague must consent to the application permissions",
            format!(
                "{} needs the Microsoft Graph application permissions {}. Only a Privileged Role Administrator or Global Administrator can grant them: the wizard will give you a consent link to send, and checks when it has been used.",
                provider.name,
                app_perms.join(", ")
            ),
            None,
        );
    }
    if !sign_in {
        // Nothing below concerns provisioning except the mail advice, said the SCIM way.
    } else if policy.blocked {
        can_proceed = false;
        add(
            "secrets_blocked",
            Severity::Blocker,
            "The tenant's policy blocks client secrets",
            format!("The default app-management policy forbids adding client secrets (passwordAddition), and {} needs one. An administrator can exempt the app from the policy.", provider.name),
            Some(Link { label: "App management policies".into(), url: portal("#view/Microsoft_AAD_IAM/AppManagementPolicies.ReactView") }),
        );
    } else if let Some(max) = policy.max_lifetime_days {
        if max < provider.secret_lifetime_days() {
            add(
                "secret_lifetime_capped",
                Severity::Info,
                "Client secrets are capped by policy",
                format!("Your tenant allows client secrets for at most {max} days, so the secret will expire sooner than {}'s default of {} days. Plan to rotate it.", provider.name, provider.secret_lifetime_days()),
                None,
            );
        }
    }
    if !users.upn_differs_from_mail.is_empty() || !users.without_mail.is_empty() {
        let mut detail = String::new();
        if !users.upn_differs_from_mail.is_empty() {
            detail.push_str(&format!("{} of {} sampled users sign in with a name that is not their email address (e.g. {}). ", users.upn_differs_from_mail.len(), users.sampled, users.upn_differs_from_mail[0]));
        }
        if !users.without_mail.is_empty() {
            detail.push_str(&format!(
                "{} have no mail address (e.g. {}). ",
                users.without_mail.len(),
                users.without_mail[0]
            ));
        }
        // A generic profile's name ("Any SAML service") is not what the admin calls the service.
        let service = match provider.service_name.as_deref() {
            Some(n) if n.contains('{') => "the service".to_string(),
            Some(n) => n.to_string(),
            None => provider.name.clone(),
        };
        if provider.saml().is_some() {
            detail.push_str(&format!("Entra sends the sign-in name (user.userprincipalname) as the SAML NameID{}: check that {service} knows these users by it.", if provider.scim.is_some() { " and as the SCIM userName" } else { "" }));
        } else if sign_in {
            detail.push_str(&format!("{} matches users by email: the app includes the email claim, but check that these users' email addresses are what {} expects.", provider.name, provider.name));
        } else {
            detail.push_str(&format!("Entra sends the sign-in name as the SCIM userName and the mail address as the work email: check that {} matches users the way you expect (the Sync mode preview lists who is affected).", provider.name));
        }
        add(
            "upn_mail",
            Severity::Warning,
            "Some users' sign-in name is not their email",
            detail,
            None,
        );
    }
    if sign_in && !users.guests.is_empty() {
        add(
            "guests",
            Severity::Info,
            "Guests are in the tenant",
            format!("{} guest users were found (e.g. {}). Guests sign in with their home organisation's account; test with one if they will use {}.", users.guests.len(), users.guests[0], provider.name),
            None,
        );
    }
    if users.group_counts_unknown {
        add(
            "groups_overage_unknown",
            Severity::Info,
            "Group counts could not be checked",
            format!("The wizard could not read users' group memberships, so it cannot tell whether some users are in more than {JWT_GROUPS_LIMIT} groups (they would get no groups claim)."),
            None,
        );
    }
    if !users.over_group_limit.is_empty() {
        let (u, n) = &users.over_group_limit[0];
        add(
            "groups_overage",
            Severity::Warning,
            "Some users are in too many groups for the groups claim",
            format!("{u} is in {n} groups. Above {JWT_GROUPS_LIMIT}, Entra leaves the groups claim out of the token and the app must ask Graph instead, so group-based rules in {} can fail for these users. Consider emitting only the groups assigned to the app.", provider.name),
            None,
        );
    }
    Preflight {
        policy,
        users,
        advice,
        can_proceed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_policy() {
        let p = json!({"isEnabled": true, "applicationRestrictions": {"passwordCredentials": [
            {"restrictionType": "passwordLifetime", "maxLifetime": "P180D", "state": "enabled"},
            {"restrictionType": "passwordAddition", "maxLifetime": null, "state": "disabled"}]}});
        assert_eq!(
            secret_policy(&p),
            SecretPolicy {
                blocked: false,
                max_lifetime_days: Some(180)
            }
        );
        let p = json!({"isEnabled": true, "applicationRestrictions": {"passwordCredentials": [{"restrictionType": "passwordAddition", "state": "enabled"}]}});
        assert!(secret_policy(&p).blocked);
        assert_eq!(days_of("P1Y"), Some(365));
        assert_eq!(days_of("P2W"), Some(14));
        assert_eq!(
            secret_policy(&json!({"isEnabled": false})),
            SecretPolicy::default()
        );
    }
}
