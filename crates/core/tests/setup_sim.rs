//! Registering Cloudflare and Pomerium against the simulated tenant, with faults on: full apply,
//! re-apply is a no-op, crash and resume, undo, consent through a colleague, live checks, bad
//! inputs — every Graph body checked against Microsoft's CSDL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use entra_setup_core::auth::{Method, StepScopes};
use entra_setup_core::checks::{self, SecretRetry, Status};
use entra_setup_core::provider;
use entra_setup_core::session::{self, Session};
use entra_setup_core::setup::apply::{ApplyEvent, ApplyOptions};
use entra_setup_core::setup::flow::{self, SetupError};
use entra_setup_core::setup::plan::{Change, PlanError};
use entra_setup_core::setup::{undo, Intent};
use entra_setup_core::ExposeSecret;
use entra_setup_sim::{Faults, SimHandle};
use support::*;
use tokio_util::sync::CancellationToken;

fn data_dir() -> PathBuf {
    support::data_dir("entra-setup-test")
}

fn intent(provider_id: &str, key: &str, value: &str) -> Intent {
    let mut raw = BTreeMap::new();
    raw.insert(key.to_string(), value.to_string());
    Intent::new(provider::find(provider_id).unwrap(), &raw, None).unwrap()
}

/// Signs in and grants the wizard the permissions of the setup steps.
async fn admin(sim: &SimHandle, tenant: &str) -> Session {
    let (session, asked) = admin_with(sim, tenant, false).await;
    assert!(
        asked,
        "the sign-in scopes alone do not cover the setup steps"
    );
    session
}

fn events() -> Collector<ApplyEvent> {
    collector()
}

fn apps_named(sim: &SimHandle, tenant_id: &str, unique: &str) -> usize {
    sim.directory(tenant_id)
        .unwrap()
        .applications
        .iter()
        .filter(|a| a["uniqueName"] == unique)
        .count()
}

fn fast_secret_retry() -> SecretRetry {
    SecretRetry {
        delay: Duration::from_millis(50),
        ..SecretRetry::default()
    }
}

/// On tokio's paused clock: the simulator's lags (a minute for objects, ninety seconds for the
/// secret) cost no wall time.
#[tokio::test(start_paused = true)]
async fn cloudflare_end_to_end_with_faults_then_reapply_is_a_no_op() {
    let sim = sim_as("adele@contoso.com").await;
    let s = admin(&sim, "contoso.com").await;
    sim.set_faults(Faults {
        latency_ms: 5,
        throttle_every: 4,
        retry_after_secs: 1,
        unavailable_every: 7,
        replication_ms: 60_000,
        secret_lag_ms: 90_000,
        ..Default::default()
    });
    let dir = data_dir();
    let prepared = flow::prepare(&s, &dir, intent("cloudflare", "team", "acme"), &[])
        .await
        .expect("planned");
    let kinds: Vec<&str> = prepared
        .plan
        .changes
        .iter()
        .map(|c| c.change.kind())
        .collect();
    assert_eq!(
        kinds,
        [
            "upsertApplication",
            "createServicePrincipal",
            "addPassword",
            "grantDelegated"
        ]
    );
    assert!(
        prepared.preflight.advice.iter().any(|a| a.id == "upn_mail"),
        "Contoso has users whose UPN is not their mail"
    );
    assert!(
        prepared
            .preflight
            .advice
            .iter()
            .any(|a| a.id == "groups_overage"),
        "Patti is in 240 groups: {:#?}",
        prepared.preflight.users
    );
    let (on_event, seen) = events();
    let applied = flow::execute(
        &s,
        &prepared,
        &ApplyOptions::default(),
        on_event,
        &CancellationToken::new(),
    )
    .await
    .expect("applied");
    assert!(seen
        .lock()
        .unwrap()
        .iter()
        .any(|e| matches!(e, ApplyEvent::Finished { changes: 4 })));
    let secret = applied.secret.as_ref().expect("a new secret");
    assert!(secret.value.expose_secret().len() >= 16);
    let tenant = s.account.tenant_id.clone();
    assert_eq!(apps_named(&sim, &tenant, "entra-setup-cloudflare-acme"), 1);

    // The tenant now has what Cloudflare's guide asks for.
    let d = sim.directory(&tenant).unwrap();
    let app = d
        .applications
        .iter()
        .find(|a| a["uniqueName"] == "entra-setup-cloudflare-acme")
        .unwrap();
    assert_eq!(
        app["web"]["redirectUris"][0],
        "https://acme.cloudflareaccess.com/cdn-cgi/access/callback"
    );
    assert_eq!(app["groupMembershipClaims"], "SecurityGroup");
    assert_eq!(
        app["requiredResourceAccess"][0]["resourceAccess"]
            .as_array()
            .unwrap()
            .len(),
        7
    );
    let grant = d
        .grants
        .iter()
        .find(|g| g["clientId"] == applied.sp_id.clone().unwrap().as_str())
        .unwrap();
    assert_eq!(
        grant["scope"],
        "email offline_access openid profile User.Read Directory.Read.All GroupMember.Read.All"
    );

    // Live checks: discovery, and the secret works once it has replicated.
    sim.set_faults(Faults::default());
    let http = entra_setup_core::http::client();
    let disco = checks::discovery(&http, &s.cloud, &tenant).await;
    assert_eq!(disco.status, Status::Pass, "{disco:?}");
    let results = checks::secret_and_consent(
        &http,
        &s.cloud,
        &s.account.token_endpoint,
        applied.app_id.as_deref().unwrap(),
        &secret.value,
        false,
        &fast_secret_retry(),
    )
    .await;
    assert_eq!(results[0].status, Status::Pass, "{results:?}");
    assert!(
        results[0].detail.contains("attempts"),
        "the first tries hit replication: {}",
        results[0].detail
    );

    // Re-applying changes nothing (this process still holds the secret).
    let again = flow::prepare(
        &s,
        &dir,
        intent("cloudflare", "team", "acme"),
        std::slice::from_ref(&secret.key_id),
    )
    .await
    .unwrap();
    assert!(again.plan.is_empty(), "{:#?}", again.plan.changes);
    assert_eq!(apps_named(&sim, &tenant, "entra-setup-cloudflare-acme"), 1);
    assert_graph_traffic_matches_csdl(&sim);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn pomerium_as_global_admin_grants_application_permissions() {
    let sim = sim_as("adele@contoso.com").await;
    let s = admin(&sim, "contoso.com").await;
    let dir = data_dir();
    let prepared = flow::prepare(
        &s,
        &dir,
        intent(
            "pomerium",
            "authenticate_url",
            "https://authenticate.corp.example.com",
        ),
        &[],
    )
    .await
    .unwrap();
    let roles: Vec<String> = prepared
        .plan
        .changes
        .iter()
        .filter_map(|c| match &c.change {
            Change::GrantAppRole { name, .. } => Some(name.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        roles,
        ["Directory.Read.All", "Group.Read.All", "User.Read.All"]
    );
    let (on_event, _) = events();
    let applied = flow::execute(
        &s,
        &prepared,
        &ApplyOptions::default(),
        on_event,
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    let app = sim
        .directory(&s.account.tenant_id)
        .unwrap()
        .applications
        .into_iter()
        .find(|a| a["uniqueName"] == prepared.plan.unique_name)
        .unwrap();
    assert_eq!(
        app["web"]["redirectUris"][0],
        "https://authenticate.corp.example.com/oauth2/callback"
    );
    assert_eq!(app["optionalClaims"]["idToken"][0]["name"], "groups");
    let http = entra_setup_core::http::client();
    let results = checks::secret_and_consent(
        &http,
        &s.cloud,
        &s.account.token_endpoint,
        applied.app_id.as_deref().unwrap(),
        &applied.secret.unwrap().value,
        true,
        &fast_secret_retry(),
    )
    .await;
    assert!(
        results.iter().all(|r| r.status == Status::Pass),
        "{results:#?}"
    );
    assert_eq!(results[1].id, "app_consent");
    assert_graph_traffic_matches_csdl(&sim);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn without_privileged_role_a_colleague_consents_through_a_link() {
    let sim = sim_as("megan@contoso.com").await;
    let s = admin(&sim, "contoso.com").await;
    let dir = data_dir();
    let prepared = flow::prepare(
        &s,
        &dir,
        intent("pomerium", "authenticate_url", "https://auth.contoso.com"),
        &[],
    )
    .await
    .unwrap();
    assert!(prepared
        .preflight
        .advice
        .iter()
        .any(|a| a.id == "consent_needs_colleague"));
    let last = prepared.plan.changes.last().unwrap();
    assert!(
        matches!(&last.change, Change::RequestAdminConsent { roles, .. } if roles.len() == 3),
        "{last:?}"
    );
    let (on_event, seen) = events();
    let applied = flow::execute(
        &s,
        &prepared,
        &ApplyOptions::default(),
        on_event,
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    let url = applied
        .consent_url
        .clone()
        .expect("consent is pending, with a link");
    assert!(
        url.contains("/v2.0/adminconsent?client_id=") && url.contains(".default"),
        "{url}"
    );
    assert!(seen
        .lock()
        .unwrap()
        .iter()
        .any(|e| matches!(e, ApplyEvent::WaitingForConsent { .. })));

    // Someone had granted the app one more delegated permission for the whole organisation:
    // the plan says the consent link will revoke it, and it does (as Entra does).
    let grants: Vec<serde_json::Value> = s
        .graph
        .get(format!(
            "/oauth2PermissionGrants?$filter=clientId eq '{}' and consentType eq 'AllPrincipals'",
            applied.sp_id.clone().unwrap()
        ))
        .list()
        .await
        .unwrap();
    match grants.first() {
        Some(grant) => s
            .graph
            .patch(format!("/oauth2PermissionGrants/{}", grant["id"].as_str().unwrap()))
            .json(serde_json::json!({"scope": format!("{} Group.Read.All", grant["scope"].as_str().unwrap())}))
            .send()
            .await
            .unwrap(),
        None => {
            let graph_sp: serde_json::Value = s
                .graph
                .get("/servicePrincipals(appId='00000003-0000-0000-c000-000000000000')?$select=id")
                .send_json()
                .await
                .unwrap();
            s.graph
                .post("/oauth2PermissionGrants")
                .json(serde_json::json!({
                    "clientId": applied.sp_id.clone().unwrap(),
                    "consentType": "AllPrincipals",
                    "resourceId": graph_sp["id"],
                    "scope": "Group.Read.All",
                }))
                .send()
                .await
                .unwrap()
        }
    };
    let warned = flow::prepare(
        &s,
        &dir,
        intent("pomerium", "authenticate_url", "https://auth.contoso.com"),
        &[applied.secret.as_ref().unwrap().key_id.clone()],
    )
    .await
    .unwrap();
    assert!(
        warned
            .plan
            .notes
            .iter()
            .any(|n| n.contains("revokes") && n.contains("(Group.Read.All)")),
        "{:#?}",
        warned.plan.notes
    );

    // A Global Administrator opens the link.
    sim.set_consent_approver(Some("adele@contoso.com"));
    let resp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(&url)
        .send()
        .await
        .unwrap();
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with("https://auth.contoso.com/oauth2/callback?admin_consent=True"),
        "{location}"
    );

    // The wizard sees it.
    let again = flow::prepare(
        &s,
        &dir,
        intent("pomerium", "authenticate_url", "https://auth.contoso.com"),
        &[applied.secret.as_ref().unwrap().key_id.clone()],
    )
    .await
    .unwrap();
    assert!(
        again.plan.is_empty(),
        "consent was given: {:#?}",
        again.plan.changes
    );
    let after: Vec<serde_json::Value> = s
        .graph
        .get(format!(
            "/oauth2PermissionGrants?$filter=clientId eq '{}' and consentType eq 'AllPrincipals'",
            applied.sp_id.clone().unwrap()
        ))
        .list()
        .await
        .unwrap();
    assert!(
        after.iter().all(|g| !g["scope"]
            .as_str()
            .unwrap_or_default()
            .contains("Group.Read.All")),
        "tenant-wide consent revoked what it did not ask for: {after:?}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn an_interrupted_apply_resumes_without_duplicates() {
    let sim = sim_as("adele@contoso.com").await;
    let s = admin(&sim, "contoso.com").await;
    let dir = data_dir();
    // The network to the grants endpoint is lost mid-apply.
    sim.set_faults(Faults {
        fail_path_prefix: "/oauth2PermissionGrants".into(),
        ..Default::default()
    });
    let prepared = flow::prepare(&s, &dir, intent("cloudflare", "team", "crash"), &[])
        .await
        .unwrap();
    let (on_event, _) = events();
    let failed = flow::execute(
        &s,
        &prepared,
        &ApplyOptions::default(),
        on_event,
        &CancellationToken::new(),
    )
    .await
    .expect_err("the grant step fails");
    assert!(failed.to_string().contains("Step 4"), "{failed}");
    assert!(prepared.journal.interrupted().unwrap());
    // The process dies here: the new secret in memory is lost with it.
    drop(failed);
    sim.set_faults(Faults::default());
    let resumed = flow::prepare(&s, &dir, intent("cloudflare", "team", "crash"), &[])
        .await
        .unwrap();
    let kinds: Vec<&str> = resumed
        .plan
        .changes
        .iter()
        .map(|c| c.change.kind())
        .collect();
    assert_eq!(
        kinds,
        ["removePassword", "addPassword", "grantDelegated"],
        "only what is missing, and the lost secret replaced"
    );
    let (on_event, _) = events();
    let applied = flow::execute(
        &s,
        &resumed,
        &ApplyOptions::default(),
        on_event,
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    let tenant = s.account.tenant_id.clone();
    assert_eq!(apps_named(&sim, &tenant, "entra-setup-cloudflare-crash"), 1);
    let app = sim
        .directory(&tenant)
        .unwrap()
        .applications
        .into_iter()
        .find(|a| a["uniqueName"] == "entra-setup-cloudflare-crash")
        .unwrap();
    assert_eq!(
        app["passwordCredentials"].as_array().unwrap().len(),
        1,
        "the lost secret was removed"
    );
    resumed
        .journal
        .handed_over(&resumed.plan.id, &applied.secret.unwrap().key_id, "copied")
        .unwrap();
    assert!(
        flow::prepare(&s, &dir, intent("cloudflare", "team", "crash"), &[])
            .await
            .unwrap()
            .plan
            .is_empty()
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_crash_right_after_creating_the_app_creates_no_second_app() {
    let sim = sim_as("adele@contoso.com").await;
    let s = admin(&sim, "contoso.com").await;
    let dir = data_dir();
    sim.set_faults(Faults {
        latency_ms: 50,
        ..Default::default()
    });
    let prepared = flow::prepare(&s, &dir, intent("cloudflare", "team", "kill"), &[])
        .await
        .unwrap();
    let cancel = CancellationToken::new();
    let c2 = cancel.clone();
    // Kill the apply as soon as the app exists.
    let on_event: Arc<dyn Fn(ApplyEvent) + Send + Sync> = Arc::new(move |e| {
        if matches!(e, ApplyEvent::Done { seq: 0, .. }) {
            c2.cancel();
        }
    });
    let r = flow::execute(&s, &prepared, &ApplyOptions::default(), on_event, &cancel).await;
    assert!(r.is_err(), "the apply was cut short");
    let resumed = flow::prepare(&s, &dir, intent("cloudflare", "team", "kill"), &[])
        .await
        .unwrap();
    assert!(!resumed
        .plan
        .changes
        .iter()
        .any(|c| matches!(c.change, Change::UpsertApplication { creates: true, .. })));
    let (on_event, _) = events();
    flow::execute(
        &s,
        &resumed,
        &ApplyOptions::default(),
        on_event,
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(
        apps_named(&sim, &s.account.tenant_id, "entra-setup-cloudflare-kill"),
        1
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn undo_removes_only_what_the_wizard_created() {
    let sim = sim_as("adele@contoso.com").await;
    let s = admin(&sim, "contoso.com").await;
    let dir = data_dir();
    let tenant = s.account.tenant_id.clone();
    let before = sim.directory(&tenant).unwrap();
    let prepared = flow::prepare(
        &s,
        &dir,
        intent("pomerium", "authenticate_url", "https://auth.undo.example"),
        &[],
    )
    .await
    .unwrap();
    let (on_event, _) = events();
    flow::execute(
        &s,
        &prepared,
        &ApplyOptions::default(),
        on_event,
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(
        sim.directory(&tenant).unwrap().applications.len(),
        before.applications.len() + 1
    );
    let done = undo::undo(&s.graph, &prepared.journal, Arc::new(|_| {}))
        .await
        .unwrap();
    assert_eq!(done.len(), 1);
    let after = sim.directory(&tenant).unwrap();
    assert_eq!(after.applications.len(), before.applications.len());
    assert_eq!(
        after.service_principals.len(),
        before.service_principals.len(),
        "the Microsoft Graph service principal is untouched"
    );
    assert_eq!(after.assignments.len(), before.assignments.len());
    assert!(
        prepared.journal.created().unwrap().is_empty(),
        "nothing left to undo"
    );
    assert!(
        entra_setup_core::setup::journal::previous_setups(&dir, &s.account.tenant_id).is_empty(),
        "an undone setup is not offered for a re-run"
    );
    assert_graph_traffic_matches_csdl(&sim);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn bad_inputs_and_blocked_tenants_are_explained() {
    let mut raw = BTreeMap::new();
    raw.insert("team".to_string(), "acme team".to_string());
    let e = Intent::new(provider::find("cloudflare").unwrap(), &raw, None).unwrap_err();
    assert!(e[0].message.contains("no spaces"), "{}", e[0].message);
    let mut raw = BTreeMap::new();
    raw.insert(
        "authenticate_url".to_string(),
        "http://authenticate.corp.example.com".to_string(),
    );
    let e = Intent::new(provider::find("pomerium").unwrap(), &raw, None).unwrap_err();
    assert!(
        e[0].message.contains("Plain http:// is not allowed"),
        "{}",
        e[0].message
    );

    // A policy that forbids secrets.
    let sim = sim_as("adele@contoso.com").await;
    let s = admin(&sim, "contoso.com").await;
    sim.set_faults(Faults {
        block_password_addition: true,
        ..Default::default()
    });
    let err = flow::prepare(&s, &data_dir(), intent("cloudflare", "team", "acme"), &[])
        .await
        .err()
        .expect("blocked");
    assert!(
        matches!(err, SetupError::Plan(PlanError::SecretsBlocked { .. })),
        "{err}"
    );
    assert!(
        err.to_string().contains("blocks new client secrets"),
        "{err}"
    );

    // A policy that caps the lifetime (Fabrikam allows 180 days).
    let sim = sim_as("lee@fabrikam.onmicrosoft.com").await;
    let s = admin(&sim, "fabrikam.onmicrosoft.com").await;
    let p = flow::prepare(&s, &data_dir(), intent("cloudflare", "team", "fab"), &[])
        .await
        .unwrap();
    assert!(p.plan.notes[0].contains("180 days"), "{:?}", p.plan.notes);
    assert!(p.plan.changes.iter().any(|c| matches!(
        c.change,
        Change::AddPassword {
            lifetime_days: 180,
            ..
        }
    )));

    // Missing role: an Application Developer cannot consent.
    let sim = sim_as("nestor@fabrikam.onmicrosoft.com").await;
    let c = ctx(memory());
    let signed = sign_in_with(&c, &sim, "fabrikam.onmicrosoft.com", Method::Browser)
        .await
        .unwrap();
    let (on_event, _) = recorder();
    session::ensure_scopes(
        &c,
        &signed.session,
        &[StepScopes::RegisterApp, StepScopes::Consent],
        Method::Browser,
        on_event,
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    let err = flow::prepare(
        &signed.session,
        &data_dir(),
        intent("cloudflare", "team", "dev"),
        &[],
    )
    .await
    .err()
    .expect("missing role");
    assert!(
        matches!(err, SetupError::Plan(PlanError::MissingRole)),
        "{err}"
    );
    assert!(
        err.to_string().contains("Cloud Application Administrator"),
        "{err}"
    );
}

/// The generic OpenID Connect provider: two redirect URIs from one input, the groups claim the
/// admin chose, the four delegated permissions consented, and Done's values (issuer, discovery
/// URL, client id, secret) — against a realistic tenant, every body checked against the CSDL.
#[tokio::test]
async fn a_generic_oidc_service_with_two_redirect_uris_and_a_groups_claim() {
    let sim = sim_as("adele@contoso.com").await;
    let s = admin(&sim, "contoso.com").await;
    sim.set_faults(Faults::realistic());
    let mut raw = BTreeMap::new();
    raw.insert("name".to_string(), "Team Wiki".to_string());
    raw.insert(
        "redirect_uris".to_string(),
        "https://wiki.contoso.com/oidc/callback, http://localhost:8080/oidc/callback".to_string(),
    );
    raw.insert("groups".to_string(), "ApplicationGroup".to_string());
    let want = Intent::new(provider::find("oidc").unwrap(), &raw, None).unwrap();
    assert_eq!(want.unique_name(), "entra-setup-oidc-team-wiki");
    let dir = data_dir();
    let prepared = flow::prepare(&s, &dir, want, &[]).await.unwrap();
    let (on_event, _) = events();
    let applied = flow::execute(
        &s,
        &prepared,
        &ApplyOptions::default(),
        on_event,
        &CancellationToken::new(),
    )
    .await
    .expect("applied");
    let tenant = s.account.tenant_id.clone();
    let d = sim.directory(&tenant).unwrap();
    let app = d
        .applications
        .iter()
        .find(|a| a["uniqueName"] == "entra-setup-oidc-team-wiki")
        .unwrap();
    assert_eq!(app["displayName"], "Team Wiki");
    assert_eq!(
        app["web"]["redirectUris"],
        serde_json::json!([
            "https://wiki.contoso.com/oidc/callback",
            "http://localhost:8080/oidc/callback"
        ])
    );
    assert_eq!(app["groupMembershipClaims"], "ApplicationGroup");
    let id_token: Vec<&str> = app["optionalClaims"]["idToken"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(id_token, ["email", "groups"]);
    let sp = applied.sp_id.clone().unwrap();
    let grant = d
        .grants
        .iter()
        .find(|g| g["clientId"] == sp.as_str())
        .unwrap();
    assert_eq!(grant["scope"], "openid profile email User.Read");

    // Done's values: the issuer and discovery URL of this tenant, the client id, the secret.
    let secret = applied.secret.as_ref().unwrap();
    let values = entra_setup_core::outputs::values(
        &s.cloud,
        &tenant,
        applied.app_id.as_deref().unwrap(),
        &prepared.plan.display_name,
        &prepared.intent.inputs,
        Some(secret.end),
    );
    let body = entra_setup_core::outputs::render_with_secret(
        &prepared.intent.provider,
        "oidc_settings",
        &values,
        &secret.value,
    )
    .unwrap();
    let settings: serde_json::Value = serde_json::from_str(body.expose_secret()).unwrap();
    assert_eq!(
        settings["issuer"],
        format!("{}/{tenant}/v2.0", sim.base_url())
    );
    assert_eq!(settings["discovery_url"], s.cloud.discovery_url(&tenant));
    assert_eq!(settings["client_id"], applied.app_id.clone().unwrap());
    assert_eq!(settings["client_secret"], secret.value.expose_secret());
    let http = entra_setup_core::http::client();
    let disco = checks::discovery(&http, &s.cloud, &tenant).await;
    assert_eq!(disco.status, Status::Pass, "{disco:?}");
    let r = checks::secret_and_consent(
        &http,
        &s.cloud,
        &s.account.token_endpoint,
        applied.app_id.as_deref().unwrap(),
        &secret.value,
        false,
        &fast_secret_retry(),
    )
    .await;
    assert_eq!(r[0].status, Status::Pass, "{r:?}");

    // Without a groups choice there is no groups claim at all.
    raw.remove("groups");
    raw.insert("name".to_string(), "Plain Tool".to_string());
    let plain = Intent::new(provider::find("oidc").unwrap(), &raw, None).unwrap();
    let body = plain.desired_app(&[]);
    assert!(body.get("groupMembershipClaims").is_none(), "{body:#}");
    assert_eq!(
        body["optionalClaims"]["idToken"],
        serde_json::json!([{"name": "email", "essential": false}])
    );
    sim.set_faults(Faults::default());
    assert_graph_traffic_matches_csdl(&sim);
}

/// Pomerium's policy names groups by object ID: the admin names them (by display name or ID),
/// the setup looks them up, and the policy output carries one `claim/groups` line per group.
/// A name the tenant does not have is refused on its field; with no groups the policy output
/// does not apply and is left out.
#[tokio::test]
async fn pomerium_policy_groups_are_looked_up_and_written_by_object_id() {
    let sim = sim_as("adele@contoso.com").await;
    let s = admin(&sim, "contoso.com").await;
    let dir = data_dir();
    let pomerium = |groups: &str| {
        let mut raw = BTreeMap::new();
        raw.insert(
            "authenticate_url".to_string(),
            "https://authenticate.groups.example".to_string(),
        );
        raw.insert("policy_groups".to_string(), groups.to_string());
        Intent::new(provider::find("pomerium").unwrap(), &raw, None).unwrap()
    };
    let p = flow::prepare(
        &s,
        &dir,
        pomerium("Engineering, a1b2c3d4-1111-4a1a-9a1a-000000000002"),
        &[],
    )
    .await
    .unwrap();
    let values = entra_setup_core::outputs::values(
        &s.cloud,
        &s.account.tenant_id,
        "client-id",
        &p.plan.display_name,
        &p.intent.inputs,
        None,
    );
    let policy = entra_setup_core::outputs::render_all(&p.intent.provider, &values)
        .into_iter()
        .find(|o| o.id == "pomerium_policy")
        .expect("the policy output applies");
    let lines: Vec<&str> = policy
        .text
        .lines()
        .filter(|l| l.contains("claim/groups"))
        .collect();
    assert_eq!(
        lines,
        [
            r#"            - claim/groups: "a1b2c3d4-1111-4a1a-9a1a-000000000001""#,
            r#"            - claim/groups: "a1b2c3d4-1111-4a1a-9a1a-000000000002""#,
        ]
    );
    // The journal keeps what the admin typed, not the looked-up IDs.
    assert!(!p.intent.entered_inputs().contains_key("policy_groups_ids"));

    match flow::prepare(&s, &dir, pomerium("Engineering, Nobody's Group"), &[]).await {
        Err(SetupError::Inputs(errors)) => {
            assert_eq!(errors.len(), 1);
            assert_eq!(errors[0].field, "policy_groups");
            assert!(
                errors[0]
                    .message
                    .contains("No security group is called \"Nobody's Group\""),
                "{errors:?}"
            );
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("an unknown group was accepted"),
    }

    let none = flow::prepare(
        &s,
        &dir,
        intent(
            "pomerium",
            "authenticate_url",
            "https://authenticate.groups.example",
        ),
        &[],
    )
    .await
    .unwrap();
    let values = entra_setup_core::outputs::values(
        &s.cloud,
        &s.account.tenant_id,
        "client-id",
        &none.plan.display_name,
        &none.intent.inputs,
        None,
    );
    let ids: Vec<String> = entra_setup_core::outputs::render_all(&none.intent.provider, &values)
        .into_iter()
        .map(|o| o.id)
        .collect();
    assert_eq!(ids, ["pomerium_yaml"]);
    assert_graph_traffic_matches_csdl(&sim);
    let _ = std::fs::remove_dir_all(dir);
}

/// Cloudflare's optional switches are choices with defaults: left alone they give PKCE on,
/// Policy Sync off and the email claim; a value that is not offered is refused with the
/// choices; what is chosen lands in the API body and the Terraform block.
#[tokio::test]
async fn cloudflare_choices_have_defaults_and_reach_its_settings() {
    let cf = provider::find("cloudflare").unwrap();
    let mut raw = BTreeMap::new();
    raw.insert("team".to_string(), "acme".to_string());
    let i = Intent::new(cf.clone(), &raw, None).unwrap();
    assert_eq!(i.inputs["pkce"], "true");
    assert_eq!(i.inputs["policy_sync"], "false");
    assert_eq!(i.inputs["email_claim"], "email");

    raw.insert("email_claim".to_string(), "mail".to_string());
    let e = Intent::new(cf.clone(), &raw, None).unwrap_err();
    assert_eq!(e[0].field, "email_claim");
    assert!(e[0].message.contains("preferred_username"), "{e:?}");

    raw.insert("email_claim".to_string(), "preferred_username".to_string());
    raw.insert("pkce".to_string(), "false".to_string());
    let i = Intent::new(cf.clone(), &raw, None).unwrap();
    let values = entra_setup_core::outputs::values(
        &entra_setup_core::cloud::Cloud::from_choice(&entra_setup_core::cloud::CloudChoice::Global)
            .unwrap(),
        "tenant",
        "client",
        "Cloudflare Access (acme)",
        &i.inputs,
        None,
    );
    let body = entra_setup_core::outputs::render_with_secret(
        &cf,
        "api_body",
        &values,
        &entra_setup_core::SecretString::from("s3cret".to_string()),
    )
    .unwrap();
    let v: serde_json::Value =
        serde_json::from_str(entra_setup_core::ExposeSecret::expose_secret(&body)).unwrap();
    assert_eq!(v["config"]["pkce_enabled"], false);
    assert_eq!(v["config"]["conditional_access_enabled"], false);
    assert_eq!(v["config"]["email_claim_name"], "preferred_username");
    assert_eq!(v["config"]["support_groups"], true);
    let tf = entra_setup_core::outputs::render_all(&cf, &values)
        .into_iter()
        .find(|o| o.id == "terraform")
        .unwrap();
    assert!(
        tf.text.contains("pkce_enabled               = false"),
        "{}",
        tf.text
    );
}
