//! What the real Entra does that a kind simulator lets a client get away with, all at once
//! (`Faults::realistic`): new objects invisible to reads and lists, new apps, secrets and roles
//! late at the token endpoint, throttled live tests, removed secrets that keep working a little,
//! answers lost after the write was made, template apps whose roles have `"value": null`, and a
//! provisioning service that cannot reach this computer. Each test names the finding it covers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use entra_setup_core::checks::{self, SecretRetry, Status};
use entra_setup_core::provider;
use entra_setup_core::session::Session;
use entra_setup_core::setup::apply::ApplyOptions;
use entra_setup_core::setup::flow::{self, Prepared};
use entra_setup_core::setup::journal::SetupSource;
use entra_setup_core::setup::plan::PlanError;
use entra_setup_core::setup::{found, state, status, undo, Assignee, Intent, PrincipalKind};
use entra_setup_core::setup::{journal::Journal, ScimIntent};
use entra_setup_core::{ExposeSecret, SecretString};
use entra_setup_sim::scim_server::DEMO_SCIM_TOKEN;
use entra_setup_sim::{Faults, USER_ROLE};
use serde_json::Value;
use support::*;
use tokio_util::sync::CancellationToken;

const CONTOSO: &str = "b2d5c2a4-6f1e-4c8b-9a3d-1e2f3a4b5c6d";
const ENGINEERING: &str = "a1b2c3d4-1111-4a1a-9a1a-000000000001";

fn intent(provider_id: &str, key: &str, value: &str) -> Intent {
    let mut raw = BTreeMap::new();
    raw.insert(key.to_string(), value.to_string());
    Intent::new(provider::find(provider_id).unwrap(), &raw, None).unwrap()
}

fn options() -> ApplyOptions {
    ApplyOptions {
        instantiate_poll: Duration::from_millis(20),
        scim_token: Some(SecretString::from(DEMO_SCIM_TOKEN)),
        ..Default::default()
    }
}

fn fast_secret_retry() -> SecretRetry {
    SecretRetry {
        delay: Duration::from_millis(50),
        ..SecretRetry::default()
    }
}

async fn apply(s: &Session, p: &Prepared) -> entra_setup_core::setup::apply::Applied {
    let (on_event, _) = collector();
    flow::execute(s, p, &options(), on_event, &CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("applied: {e}\n{:#?}", e.partial))
}

fn app<'a>(d: &'a entra_setup_sim::DirectorySnapshot, unique: &str) -> &'a Value {
    d.applications
        .iter()
        .find(|a| a["uniqueName"] == unique)
        .unwrap_or_else(|| panic!("no app {unique}"))
}

fn count(values: &[Value], f: impl Fn(&Value) -> bool) -> usize {
    values.iter().filter(|v| f(v)).count()
}

/// Cloudflare's one delegated grant, or Pomerium's three application permissions, each once.
fn assert_one_of_each(d: &entra_setup_sim::DirectorySnapshot, sp: &str, provider_id: &str) {
    let grants = count(&d.grants, |g| g["clientId"] == sp);
    let roles: Vec<&str> = d
        .assignments
        .iter()
        .filter(|a| a["principalId"] == sp)
        .filter_map(|a| a["appRoleId"].as_str())
        .collect();
    if provider_id == "cloudflare" {
        assert_eq!((grants, roles.len()), (1, 0), "{:#?}", d.grants);
    } else {
        let mut unique = roles.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!((grants, roles.len(), unique.len()), (0, 3, 3), "{roles:?}");
    }
}

/// Cloudflare and Pomerium end to end with every realistic fault on: exactly one of each object
/// although the first answers to addPassword, the grant and the service principal were lost;
/// the live checks pass through throttling and a late app, secret and role; and a re-run seconds
/// later — from this computer or another — changes nothing and fails on nothing.
#[tokio::test]
async fn oidc_setups_survive_a_realistic_tenant_and_rerun_inside_the_replication_delay() {
    let sim = sim_as("adele@contoso.com").await;
    let (s, _) = admin_with(&sim, "contoso.com", false).await;
    sim.set_faults(Faults::realistic());
    let http = entra_setup_core::http::client();
    for (provider_id, key, value, unique) in [
        ("cloudflare", "team", "acme", "entra-setup-cloudflare-acme"),
        (
            "pomerium",
            "authenticate_url",
            "https://authenticate.corp.example.com",
            "entra-setup-pomerium-authenticate-corp-example-com",
        ),
    ] {
        let dir = data_dir("entra-setup-fidelity");
        let prepared = flow::prepare(&s, &dir, intent(provider_id, key, value), &[])
            .await
            .expect("planned");
        let applied = apply(&s, &prepared).await;
        let lost_grant = if provider_id == "cloudflare" {
            "/oauth2PermissionGrants"
        } else {
            "/appRoleAssignedTo"
        };
        assert_answers_were_lost(&sim, &["/addPassword", "/servicePrincipals", lost_grant]);
        let secret = applied.secret.as_ref().expect("a new secret");
        prepared
            .journal
            .handed_over(&prepared.plan.id, &secret.key_id, "saved to a file")
            .unwrap();

        // Exactly one app, service principal, grant and secret: a lost answer was reconciled by
        // reading state, never by sending the create again.
        let d = sim.directory(CONTOSO).unwrap();
        let a = app(&d, unique);
        let app_id = a["appId"].as_str().unwrap();
        assert_eq!(count(&d.applications, |x| x["uniqueName"] == unique), 1);
        assert_eq!(count(&d.service_principals, |x| x["appId"] == app_id), 1);
        let sp = applied.sp_id.clone().unwrap();
        assert_one_of_each(&d, &sp, provider_id);
        assert_eq!(
            a["passwordCredentials"].as_array().unwrap().len(),
            1,
            "the secret whose answer was lost is gone: {:#}",
            a["passwordCredentials"]
        );
        assert_eq!(
            a["passwordCredentials"][0]["keyId"], secret.key_id,
            "the one left is the one handed over"
        );

        // Live checks wait out throttling, the new app, the new secret and the new role.
        let disco = checks::discovery(&http, &s.cloud, &s.account.tenant_id).await;
        assert_eq!(disco.status, Status::Pass, "{disco:?}");
        let app_perms = provider_id == "pomerium";
        let results = checks::secret_and_consent(
            &http,
            &s.cloud,
            &s.account.token_endpoint,
            app_id,
            &secret.value,
            app_perms,
            &fast_secret_retry(),
        )
        .await;
        assert!(
            results.iter().all(|r| r.status == Status::Pass),
            "{results:#?}"
        );
        assert_eq!(results.len(), if app_perms { 2 } else { 1 });

        // Seconds later, from this computer: what the apply made may not be readable yet, and
        // the re-run waits for it rather than planning it again.
        let again = flow::prepare(&s, &dir, intent(provider_id, key, value), &[])
            .await
            .expect("re-planned");
        assert!(again.plan.is_empty(), "{:#?}", again.plan.changes);

        // ...and from another computer (no journal): that computer cannot tell the secret it
        // finds from one someone else added, so nothing is written until the admin adopts the
        // app (keeping the secret the provider uses); then, whatever it plans from a stale
        // read, it applies without failing and without a second object.
        sim.set_faults(Faults {
            replication_ms: 1500,
            ..Faults::realistic()
        });
        let elsewhere = data_dir("entra-setup-fidelity-other");
        let other = flow::prepare(&s, &elsewhere, intent(provider_id, key, value), &[])
            .await
            .expect("planned elsewhere");
        let (on_event, _) = collector();
        let refused = flow::execute(&s, &other, &options(), on_event, &CancellationToken::new())
            .await
            .expect_err("not adopted yet");
        assert!(
            matches!(
                refused.error,
                entra_setup_core::setup::apply::ApplyError::NotAdopted(_)
            ),
            "{}",
            refused.error
        );
        let keep = entra_setup_core::setup::custody::Adoption {
            keep: vec![secret.key_id.clone()],
        };
        let (on_event, _) = collector();
        let other = flow::prepare(&s, &elsewhere, intent(provider_id, key, value), &[])
            .await
            .expect("planned elsewhere");
        flow::execute(
            &s,
            &other,
            &ApplyOptions {
                adopt: Some(keep),
                ..options()
            },
            on_event,
            &CancellationToken::new(),
        )
        .await
        .unwrap_or_else(|e| panic!("adopted: {e}"));
        let d = sim.directory(CONTOSO).unwrap();
        assert_eq!(count(&d.applications, |x| x["uniqueName"] == unique), 1);
        assert_eq!(count(&d.service_principals, |x| x["appId"] == app_id), 1);
        assert_one_of_each(&d, &sp, provider_id);
        sim.set_faults(Faults::realistic());
        let _ = std::fs::remove_dir_all(dir);
        let _ = std::fs::remove_dir_all(elsewhere);
    }
    assert_graph_traffic_matches_csdl(&sim);
}

/// Finding: "SCIM assignments fail on a real tenant" — a template app's roles carry
/// `"value": null`; the wizard must assign its `User` role, not default access. Also: the first
/// answers to instantiate, the job create and an assignment are lost.
#[tokio::test]
async fn provisioning_assigns_the_template_apps_user_role_and_survives_lost_answers() {
    let sim = sim_as("megan@contoso.com").await;
    sim.set_local_scim_reachable(true);
    let (s, _) = admin_with(&sim, "contoso.com", true).await;
    sim.set_faults(Faults::realistic());
    let dir = data_dir("entra-setup-fidelity-scim");
    let mut raw = BTreeMap::new();
    raw.insert("service".to_string(), "Acme Files".to_string());
    let scim = ScimIntent::new(
        &sim.fake_scim_url(),
        true,
        None,
        false,
        vec![Assignee {
            id: ENGINEERING.into(),
            kind: PrincipalKind::Group,
            display_name: "Engineering".into(),
        }],
        true,
    )
    .unwrap();
    let want = || {
        Intent::new(provider::find("scim").unwrap(), &raw, None)
            .unwrap()
            .with_scim(scim.clone())
            .unwrap()
    };
    let prepared = flow::prepare(&s, &dir, want(), &[]).await.unwrap();
    let applied = apply(&s, &prepared).await;
    assert_answers_were_lost(
        &sim,
        &[
            "/instantiate",
            "/synchronization/jobs",
            "/appRoleAssignedTo",
        ],
    );
    let sc = applied.scim.unwrap();

    let d = sim.directory(CONTOSO).unwrap();
    let template_apps = count(&d.applications, |a| {
        a["applicationTemplateId"] == entra_setup_sim::NON_GALLERY_TEMPLATE
    });
    assert_eq!(
        template_apps, 1,
        "one provisioning app despite the lost answer"
    );
    let sp = d
        .service_principals
        .iter()
        .find(|x| x["id"] == sc.sp_id.as_str())
        .unwrap();
    assert!(
        sp["appRoles"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["value"].is_null()),
        "the simulator gives template apps Entra's value-null roles: {:#}",
        sp["appRoles"]
    );
    let assigned: Vec<&Value> = d
        .assignments
        .iter()
        .filter(|a| a["resourceId"] == sc.sp_id.as_str())
        .collect();
    assert_eq!(assigned.len(), 1, "{assigned:#?}");
    assert_eq!(assigned[0]["appRoleId"], USER_ROLE);
    assert_eq!(assigned[0]["principalId"], ENGINEERING);

    // The job runs.
    let job = sc.job_id.clone().unwrap();
    let mut provisioned = false;
    for _ in 0..100 {
        let st = entra_setup_core::provisioning::job_status(&s.graph, &sc.sp_id, &job)
            .await
            .unwrap();
        if st.last_cycle.is_some() {
            assert!(st.users > 0, "{st:?}");
            provisioned = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(provisioned, "the first cycle never finished");
    sim.set_faults(Faults::default());
    let listed: Vec<Value> = s
        .graph
        .get(format!(
            "/servicePrincipals/{}/synchronization/jobs",
            sc.sp_id
        ))
        .scopes(entra_setup_core::auth::StepScopes::Scim)
        .list()
        .await
        .unwrap();
    assert_eq!(
        listed.len(),
        1,
        "one job despite the lost answer: {listed:#?}"
    );

    // A re-run right away (no new token) is a no-op, although what the apply made is not
    // readable yet.
    sim.set_faults(Faults::realistic());
    let mut same = want();
    if let Some(x) = same.scim.as_mut() {
        x.new_token = false;
    }
    let again = flow::prepare(&s, &dir, same, &[]).await.unwrap();
    assert!(again.plan.is_empty(), "{:#?}", again.plan.changes);
    assert_graph_traffic_matches_csdl(&sim);
    let _ = std::fs::remove_dir_all(dir);
}

/// Finding: the loopback SCIM URL was accepted for real tenants. Entra's provisioning service
/// cannot reach this computer: the simulator refuses it as Entra would, and the wizard refuses
/// it before anything is written when the cloud is a real one.
#[tokio::test]
async fn a_scim_url_on_this_computer_is_unreachable_for_entra() {
    let sim = sim_as("megan@contoso.com").await;
    let (s, _) = admin_with(&sim, "contoso.com", true).await;
    let dir = data_dir("entra-setup-fidelity-local");
    let mut raw = BTreeMap::new();
    raw.insert("service".to_string(), "Local Files".to_string());
    let want = Intent::new(provider::find("scim").unwrap(), &raw, None)
        .unwrap()
        .with_scim(ScimIntent::new(&sim.fake_scim_url(), true, None, true, vec![], false).unwrap())
        .unwrap();
    let prepared = flow::prepare(&s, &dir, want.clone(), &[]).await.unwrap();
    let (on_event, _) = collector();
    let failed = flow::execute(
        &s,
        &prepared,
        &options(),
        on_event,
        &CancellationToken::new(),
    )
    .await
    .expect_err("Entra cannot reach a SCIM server on this computer");
    assert!(
        failed.error.to_string().contains("Unable to connect"),
        "{}",
        failed.error
    );

    // With a real cloud the wizard says so before anything is written.
    let global =
        entra_setup_core::cloud::Cloud::from_choice(&entra_setup_core::cloud::CloudChoice::Global)
            .unwrap();
    match flow::scim_reachable(&global, &want) {
        Err(PlanError::ScimUrlNotReachable { url }) => assert!(url.contains("127.0.0.1")),
        other => panic!("{other:?}"),
    }
    assert!(
        flow::scim_reachable(&s.cloud, &want).is_ok(),
        "the simulator is on this computer"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Finding: setups were found only in this computer's journals. From an empty data folder,
/// status finds the setups in the tenant by their tags and uniqueNames, says they have no local
/// journal, checks them, and undo removes what the tenant shows is the wizard's.
#[tokio::test]
async fn setups_are_found_checked_and_undone_from_the_tenant_alone() {
    let sim = sim_as("megan@contoso.com").await;
    sim.set_local_scim_reachable(true);
    let (s, _) = admin_with(&sim, "contoso.com", true).await;
    let dir = data_dir("entra-setup-fidelity-made");
    let cf = intent("cloudflare", "team", "acme");
    let prepared = flow::prepare(&s, &dir, cf.clone(), &[]).await.unwrap();
    let applied = apply(&s, &prepared).await;
    let key = applied.secret.unwrap().key_id;
    prepared
        .journal
        .handed_over(&prepared.plan.id, &key, "copied")
        .unwrap();

    // Another computer: nothing in its journals.
    let elsewhere = data_dir("entra-setup-fidelity-elsewhere");
    assert!(entra_setup_core::setup::journal::previous_setups(&elsewhere, CONTOSO).is_empty());
    let known = found::known(&s.graph, &elsewhere, CONTOSO).await.unwrap();
    assert_eq!(known.len(), 1, "{known:#?}");
    assert_eq!(known[0].provider_id, "cloudflare");
    assert_eq!(known[0].inputs["team"], "acme");
    assert_eq!(known[0].source, SetupSource::Tenant);
    // The same setup from the computer that made it is found in both places.
    let here = found::known(&s.graph, &dir, CONTOSO).await.unwrap();
    assert_eq!(here.len(), 1);
    assert_eq!(here[0].source, SetupSource::Both);
    let checked = Box::pin(status::check(&s, &elsewhere, &known[0], 30)).await;
    assert!(checked.error.is_none(), "{checked:#?}");
    assert_eq!(checked.secrets.len(), 1, "{checked:#?}");
    assert_eq!(checked.source, SetupSource::Tenant);

    // Undo without a journal: only the app carrying the wizard's tag and uniqueName.
    let pending = undo::tenant_pending(&s.graph, &cf).await.unwrap();
    assert_eq!(pending.len(), 1);
    let journal = Journal::open(&elsewhere, CONTOSO, &cf.unique_name());
    let done = undo::undo_from_tenant(&s.graph, &journal, &pending, std::sync::Arc::new(|_| {}))
        .await
        .unwrap();
    assert_eq!(done.len(), 1);
    let d = sim.directory(CONTOSO).unwrap();
    assert!(
        !d.applications
            .iter()
            .any(|a| a["uniqueName"] == "entra-setup-cloudflare-acme"),
        "the app is gone"
    );
    assert!(
        !d.service_principals
            .iter()
            .any(|x| x["id"] == applied.sp_id.clone().unwrap().as_str()),
        "and its enterprise app with it"
    );
    assert!(found::known(&s.graph, &elsewhere, CONTOSO)
        .await
        .unwrap()
        .is_empty());
    let st = state::read(&s.graph, &cf, &[]).await.unwrap();
    assert!(st.app().is_none() && st.apps.is_empty());
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(elsewhere);
}

/// Finding: `removePassword` took effect at once in the simulator. In Entra a retired secret
/// keeps getting tokens for a while (by the clock); the wizard's test that it stopped waits for
/// that.
#[tokio::test(start_paused = true)]
async fn a_removed_secret_stops_signing_in_only_after_a_while() {
    let sim = sim_as("adele@contoso.com").await;
    let (s, _) = admin_with(&sim, "contoso.com", false).await;
    let dir = data_dir("entra-setup-fidelity-remove");
    let prepared = flow::prepare(&s, &dir, intent("cloudflare", "team", "lag"), &[])
        .await
        .unwrap();
    let applied = apply(&s, &prepared).await;
    let secret = applied.secret.unwrap();
    sim.set_faults(Faults {
        removed_secret_lag_ms: 60_000,
        ..Default::default()
    });
    let app_id = applied.app_id.unwrap();
    s.graph
        .post(format!(
            "/applications/{}/removePassword",
            applied.app_object_id.unwrap()
        ))
        .json(serde_json::json!({"keyId": secret.key_id}))
        .scopes(entra_setup_core::auth::StepScopes::RegisterApp)
        .send()
        .await
        .unwrap();
    let http = entra_setup_core::http::client();
    let once = SecretRetry {
        budget: Duration::ZERO,
        delay: Duration::from_millis(1),
    };
    let mut outcomes = vec![];
    for wait in [0, 30, 29, 2] {
        tokio::time::sleep(Duration::from_secs(wait)).await;
        let r = checks::secret_and_consent(
            &http,
            &s.cloud,
            &s.account.token_endpoint,
            &app_id,
            &SecretString::from(secret.value.expose_secret().to_string()),
            false,
            &once,
        )
        .await;
        outcomes.push(r[0].status);
    }
    assert_eq!(
        outcomes,
        [Status::Pass, Status::Pass, Status::Pass, Status::Fail],
        "tokens for a minute after the removal, then refused"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Finding: throttling hit only Graph in the simulator. Every other request to the login
/// service (metadata, keys, tokens, device codes) is throttled here too, and sign-in waits it
/// out — by browser and by device code.
#[tokio::test]
async fn sign_in_waits_out_a_throttled_login_service() {
    for method in [
        entra_setup_core::auth::Method::Browser,
        entra_setup_core::auth::Method::DeviceCode,
    ] {
        let sim = sim_as("adele@contoso.com").await;
        sim.set_faults(Faults {
            login_throttle_every: 2,
            retry_after_secs: 1,
            ..Default::default()
        });
        let signed = sign_in(&sim, memory(), "contoso.com", method)
            .await
            .unwrap_or_else(|e| panic!("{method:?}: {e}"));
        assert_eq!(signed.session.account.tenant_id, CONTOSO);
    }
}
