//! The vendors' own apps against the simulated tenant: Firezone's two apps and Twingate's
//! sign-in app appear only when an administrator consents through the vendor's console (late,
//! as replication makes them); the wizard waits for them, checks their consent, says what is
//! missing, revoked or went to another tenant, assigns Firezone's groups to the right app and
//! undoes only what it set. Twingate's gallery app is found in the gallery by name, instantiated
//! (a 404 that created the app adopted), provisions with its own synchronization template into
//! SCIMMY (npm), and a missing template is said plainly. Every Graph body checked against the
//! CSDL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use entra_setup_core::people::{self, PreviewRules};
use entra_setup_core::session::Session;
use entra_setup_core::setup::apply::ApplyOptions;
use entra_setup_core::setup::flow::{self, SetupError};
use entra_setup_core::setup::plan::PlanError;
use entra_setup_core::setup::vendor::{self, ConsentStatus};
use entra_setup_core::setup::{
    undo, Assignee, DirectorySyncIntent, Intent, PrincipalKind, ScimIntent,
};
use entra_setup_core::SecretString;
use entra_setup_sim::{Faults, SimHandle};
use serde_json::{json, Value};
use support::*;

const CONTOSO: &str = "b2d5c2a4-6f1e-4c8b-9a3d-1e2f3a4b5c6d";
const FABRIKAM: &str = "c3e6d3b5-7a2f-4d9c-8b4e-2f3a4b5c6d7e";
const ENGINEERING: &str = "a1b2c3d4-1111-4a1a-9a1a-000000000001";
const SALES: &str = "a1b2c3d4-1111-4a1a-9a1a-000000000002";

fn group(id: &str, name: &str) -> Assignee {
    Assignee {
        id: id.into(),
        kind: PrincipalKind::Group,
        display_name: name.into(),
    }
}

async fn admin(sim: &SimHandle, tenant: &str) -> Session {
    admin_with(sim, tenant, true).await.0
}

fn firezone(sync_all: bool, assign: Vec<Assignee>) -> Intent {
    let mut i = intent_for("firezone", &[])
        .with_directory_sync(DirectorySyncIntent::new(sync_all, assign).unwrap())
        .unwrap();
    i.tenant_id = CONTOSO.into();
    i
}

/// The service principal named `name` that another tenant owns (a vendor's app).
fn vendor_sp(sim: &SimHandle, tenant: &str, name: &str) -> Option<Value> {
    sim.directory(tenant)
        .unwrap()
        .service_principals
        .into_iter()
        .find(|sp| sp["displayName"] == name && sp["appOwnerOrganizationId"] != tenant)
}

fn assigned_to(sim: &SimHandle, tenant: &str, sp: &Value) -> Vec<String> {
    sim.directory(tenant)
        .unwrap()
        .assignments
        .iter()
        .filter(|a| a["resourceId"] == sp["id"])
        .map(|a| {
            a["principalDisplayName"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

#[tokio::test]
async fn firezone_is_waited_for_then_its_groups_go_on_the_authentication_app() {
    let sim = sim_as("megan@contoso.com").await;
    sim.set_faults(Faults {
        vendor_app_late_ms: 400,
        ..Default::default()
    });
    let s = admin(&sim, "contoso.com").await;
    let dir = data_dir("entra-setup-vendor");
    let intent = firezone(false, vec![group(ENGINEERING, "Engineering")]);

    // Before anyone connected Firezone: nothing to assign to, and the reason says where to go.
    let Err(SetupError::Plan(PlanError::VendorAppMissing { app, .. })) =
        flow::prepare(&s, &dir, intent.clone(), &[]).await
    else {
        panic!("a plan without Firezone's apps")
    };
    assert_eq!(app, "Firezone Authentication");

    // Megan (Cloud Application Administrator) cannot grant Firezone's application permissions.
    let refused = sim
        .consent_to_vendor("firezone", CONTOSO, "megan@contoso.com")
        .await
        .unwrap_err();
    assert!(refused.contains("AADSTS90094"), "{refused}");
    assert!(vendor_sp(&sim, CONTOSO, "Firezone Authentication").is_none());

    // Diego (Privileged Role Administrator) goes through Firezone's console; the apps show up
    // late, and the wait sees them arrive.
    sim.consent_to_vendor("firezone", CONTOSO, "diego@contoso.com")
        .await
        .unwrap();
    let (seen, checks) = collector::<Vec<ConsentStatus>>();
    let on_check = move |c: &[vendor::VendorConsent]| seen(c.iter().map(|x| x.status).collect());
    let consents = vendor::wait_for_consent(
        &s.graph,
        &intent,
        Duration::from_secs(10),
        Duration::from_millis(100),
        &on_check,
    )
    .await
    .unwrap();
    assert!(vendor::complete(&consents), "{consents:?}");
    let checks = checks.lock().unwrap().clone();
    assert!(
        checks[0].contains(&ConsentStatus::Missing),
        "the first check came before replication: {checks:?}"
    );
    let sync = consents.iter().find(|c| c.app == "sync").unwrap();
    assert_eq!(
        sync.granted,
        [
            "Directory.Read.All (application)",
            "User.Read.All (application)",
            "Application.Read.All (application)"
        ]
    );

    // The plan: assignment required and Engineering, both on Firezone Authentication.
    let prepared = flow::prepare(&s, &dir, intent.clone(), &[]).await.unwrap();
    let kinds: Vec<(&str, &str)> = prepared
        .plan
        .changes
        .iter()
        .map(|c| (c.app.as_str(), c.change.kind()))
        .collect();
    assert_eq!(
        kinds,
        [("auth", "requireAssignment"), ("auth", "assignToApp")]
    );
    assert!(prepared
        .plan
        .notes
        .iter()
        .any(|n| n.contains("Groups go on Firezone Authentication")));
    // Megan could not have consented herself, and the plan says so.
    assert!(prepared
        .plan
        .notes
        .iter()
        .any(|n| n
            .contains("only a Global Administrator or Privileged Role Administrator can grant")));
    apply_run(&s, prepared).await;
    let auth = vendor_sp(&sim, CONTOSO, "Firezone Authentication").unwrap();
    let sync_sp = vendor_sp(&sim, CONTOSO, "Firezone Directory Sync").unwrap();
    assert_eq!(auth["appRoleAssignmentRequired"], true);
    assert_eq!(assigned_to(&sim, CONTOSO, &auth), ["Engineering"]);
    assert!(assigned_to(&sim, CONTOSO, &sync_sp).is_empty());

    // Who syncs, the way Firezone counts: Diego is in Platform Team inside Engineering.
    let preview = people::preview(
        &s.graph,
        false,
        &[group(ENGINEERING, "Engineering")],
        &PreviewRules::of(&intent.provider),
    )
    .await
    .unwrap();
    let names: Vec<&str> = preview
        .sample
        .iter()
        .map(|u| u.display_name.as_str())
        .collect();
    assert!(names.contains(&"Diego Siciliani"), "{names:?}");
    assert!(preview.nested_only.is_empty());
    // Entra's own SCIM counts direct members only.
    let scim_way = people::preview(
        &s.graph,
        false,
        &[group(ENGINEERING, "Engineering")],
        &PreviewRules::default(),
    )
    .await
    .unwrap();
    assert_eq!(scim_way.nested_only.len(), 1);

    // A re-run finds everything as chosen.
    let again = flow::prepare(&s, &dir, intent.clone(), &[]).await.unwrap();
    assert!(again.plan.changes.is_empty(), "{:?}", again.plan.changes);

    // Undo takes back the assignment and the setting, and leaves Firezone's apps and consent.
    let undone = undo::undo(&s.graph, &again.journal, std::sync::Arc::new(|_| {}))
        .await
        .unwrap();
    assert_eq!(undone.len(), 2, "{undone:?}");
    let auth = vendor_sp(&sim, CONTOSO, "Firezone Authentication").unwrap();
    assert_eq!(auth["appRoleAssignmentRequired"], false);
    assert!(assigned_to(&sim, CONTOSO, &auth).is_empty());
    assert!(vendor_sp(&sim, CONTOSO, "Firezone Directory Sync").is_some());
    let after = vendor::check(&s.graph, &intent).await.unwrap();
    assert!(vendor::complete(&after), "{after:?}");
    assert_graph_traffic_matches_csdl(&sim);
}

#[tokio::test]
async fn missing_revoked_disabled_and_misplaced_consent_is_said_in_plain_words() {
    let sim = sim_as("megan@contoso.com").await;
    let s = admin(&sim, "contoso.com").await;
    let intent = firezone(true, vec![]);

    // Consent given in another tenant (the browser was signed in to Fabrikam).
    sim.consent_to_vendor("firezone", FABRIKAM, "lee@fabrikam.onmicrosoft.com")
        .await
        .unwrap();
    let c = vendor::check(&s.graph, &intent).await.unwrap();
    assert!(c.iter().all(|x| x.status == ConsentStatus::Missing));
    assert!(c[0].message.contains("another tenant"), "{}", c[0].message);

    // Consent here, then revoked in the portal: the app stays but holds nothing.
    sim.consent_to_vendor("firezone", CONTOSO, "adele@contoso.com")
        .await
        .unwrap();
    sim.revoke_vendor_consent(CONTOSO, "Firezone Directory Sync", false);
    let c = vendor::check(&s.graph, &intent).await.unwrap();
    let sync = c.iter().find(|x| x.app == "sync").unwrap();
    assert_eq!(sync.status, ConsentStatus::Incomplete);
    assert_eq!(sync.missing.len(), 3);
    assert!(
        sync.message.contains("Unauthorized") && sync.message.contains("Verify Now"),
        "{}",
        sync.message
    );
    assert_eq!(
        c.iter().find(|x| x.app == "auth").unwrap().status,
        ConsentStatus::Complete
    );

    // A disabled app is said as such.
    let auth = vendor_sp(&sim, CONTOSO, "Firezone Authentication").unwrap();
    s.graph
        .patch(format!(
            "/servicePrincipals/{}",
            auth["id"].as_str().unwrap()
        ))
        .json(json!({"accountEnabled": false}))
        .send()
        .await
        .unwrap();
    let c = vendor::check(&s.graph, &intent).await.unwrap();
    assert_eq!(c[0].status, ConsentStatus::Disabled);
    assert!(c[0].message.contains("Enabled for users to sign in"));

    // An app of this tenant with the vendor's name is not the vendor's.
    sim.revoke_vendor_consent(CONTOSO, "Firezone Directory Sync", true);
    s.graph
        .post("/applications")
        .json(json!({"displayName": "Firezone Directory Sync"}))
        .send()
        .await
        .unwrap();
    let c = vendor::check(&s.graph, &intent).await.unwrap();
    assert_eq!(
        c.iter().find(|x| x.app == "sync").unwrap().status,
        ConsentStatus::Missing
    );

    // Groups on the Directory Sync app are warned about in the plan.
    sim.consent_to_vendor("firezone", CONTOSO, "adele@contoso.com")
        .await
        .unwrap();
    let sync_sp = vendor_sp(&sim, CONTOSO, "Firezone Directory Sync").unwrap();
    let sp_id = sync_sp["id"].as_str().unwrap();
    s.graph
        .post(format!("/servicePrincipals/{sp_id}/appRoleAssignedTo"))
        .json(json!({"principalId": SALES, "resourceId": sp_id, "appRoleId": "00000000-0000-0000-0000-000000000000"}))
        .send()
        .await
        .unwrap();
    let prepared = flow::prepare(&s, &data_dir("entra-setup-vendor"), intent, &[])
        .await
        .unwrap();
    assert!(
        prepared
            .plan
            .notes
            .iter()
            .any(|n| n.contains("Groups are assigned to \"Firezone Directory Sync\" (Sales)")),
        "{:?}",
        prepared.plan.notes
    );
    // "All groups" changes nothing in the tenant.
    assert!(prepared.plan.changes.is_empty());
    assert_graph_traffic_matches_csdl(&sim);
}

fn twingate(url: &str, assign: Vec<Assignee>) -> Intent {
    let mut i = intent_for("twingate", &[])
        .with_scim(ScimIntent::new(url, true, None, false, assign, true).unwrap())
        .unwrap();
    i.tenant_id = CONTOSO.into();
    i
}

fn gallery_apps(sim: &SimHandle) -> Vec<Value> {
    sim.directory(CONTOSO)
        .unwrap()
        .applications
        .into_iter()
        .filter(|a| {
            a["applicationTemplateId"] != Value::Null
                && a["applicationTemplateId"] != entra_setup_sim::NON_GALLERY_TEMPLATE
        })
        .collect()
}

#[tokio::test]
async fn twingate_provisions_through_its_gallery_app_into_scimmy() {
    let scimmy = peers::scimmy_server();
    let sim = sim_as("megan@contoso.com").await;
    sim.set_local_scim_reachable(true);
    sim.set_faults(Faults {
        instantiate_not_found_once: true,
        vendor_app_late_ms: 200,
        ..Default::default()
    });
    let s = admin(&sim, "contoso.com").await;
    let dir = data_dir("entra-setup-vendor");
    let intent = twingate(&scimmy.url, vec![group(SALES, "Sales")]);

    // Twingate's own sign-in app is checked, not required for provisioning.
    let c = vendor::check(&s.graph, &intent).await.unwrap();
    assert_eq!(c[0].status, ConsentStatus::Missing);
    sim.consent_to_vendor("twingate", CONTOSO, "adele@contoso.com")
        .await
        .unwrap();

    let prepared = flow::prepare(&s, &dir, intent.clone(), &[]).await.unwrap();
    let gallery_id = prepared.intent.gallery_templates["provisioning"].clone();
    assert_eq!(gallery_id, entra_setup_sim::vendors::GALLERY[0].id);
    let kinds: Vec<&str> = prepared
        .plan
        .changes
        .iter()
        .map(|c| c.change.kind())
        .collect();
    assert_eq!(
        kinds,
        [
            "instantiateApp",
            "tagApp",
            "createSyncJob",
            "assignToApp",
            "validateScimCredentials",
            "saveScimSecrets",
            "startSyncJob"
        ]
    );
    let options = ApplyOptions {
        scim_token: Some(SecretString::from(peers::TOKEN.to_string())),
        instantiate_poll: Duration::from_millis(20),
        ..Default::default()
    };
    let (run, failure) = apply_with(&s, prepared, &options).await;
    assert!(
        failure.is_none(),
        "{failure:?} {:#?}",
        sim.exchanges()
            .iter()
            .map(|e| format!("{} {} {}", e.method, e.path, e.status))
            .collect::<Vec<_>>()
    );
    // One gallery app (the instantiate that answered 404 was adopted), with Twingate's own job.
    let apps = gallery_apps(&sim);
    assert_eq!(apps.len(), 1, "{apps:?}");
    assert_eq!(apps[0]["applicationTemplateId"], gallery_id.as_str());
    let scim = run.scim.clone().unwrap();
    let job = scim.job_id.clone().unwrap();
    // Made from the template the gallery app offered (its id is whatever Entra gives it).
    assert!(job.starts_with("gallerysync-7c1e-placeholder."), "{job}");

    // The first cycle reaches SCIMMY: Sales' enabled members arrive.
    let mut users = vec![];
    for _ in 0..100 {
        let r: Value = reqwest::Client::new()
            .get(format!("{}/Users", scimmy.url))
            .bearer_auth(peers::TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        users = r["Resources"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter_map(|u| u["userName"].as_str().map(str::to_string))
            .collect();
        if !users.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(users.iter().any(|u| u == "alex@contoso.com"), "{users:?}");

    // Alex has no mail: named, with Twingate's reason.
    let preview = people::preview(
        &s.graph,
        false,
        &[group(SALES, "Sales")],
        &PreviewRules::of(&intent.provider),
    )
    .await
    .unwrap();
    let no_mail = preview.warnings.iter().find(|w| w.id == "no_mail").unwrap();
    assert!(
        no_mail.detail.starts_with("Alex Wilber") && no_mail.detail.contains("Help Center"),
        "{}",
        no_mail.detail
    );

    // Undo deletes the gallery app the wizard made; Twingate's own app stays.
    undo::undo(&s.graph, &run.prepared.journal, std::sync::Arc::new(|_| {}))
        .await
        .unwrap();
    assert!(gallery_apps(&sim).is_empty());
    assert!(vendor_sp(&sim, CONTOSO, "Twingate").is_some());
    assert_graph_traffic_matches_csdl(&sim);
}

#[tokio::test]
async fn a_gallery_app_without_its_synchronization_template_is_said_plainly() {
    let sim = sim_as("megan@contoso.com").await;
    sim.set_local_scim_reachable(true);
    sim.set_faults(Faults {
        gallery_sync_template_missing: true,
        ..Default::default()
    });
    let s = admin(&sim, "contoso.com").await;
    let intent = twingate(&sim.fake_scim_url(), vec![group(SALES, "Sales")]);
    let prepared = flow::prepare(&s, &data_dir("entra-setup-vendor"), intent, &[])
        .await
        .unwrap();
    let options = ApplyOptions {
        scim_token: Some(SecretString::from(
            entra_setup_sim::scim_server::DEMO_SCIM_TOKEN.to_string(),
        )),
        ..Default::default()
    };
    let (_, failure) = apply_with(&s, prepared, &options).await;
    let message = failure.unwrap().to_string();
    assert!(
        message.contains("offers no provisioning template (it offers: none)")
            && message.contains("gallery"),
        "{message}"
    );
    // Never the non-gallery template on a gallery app.
    assert!(sim
        .exchanges()
        .iter()
        .all(|e| !(e.path.ends_with("/synchronization/jobs") && e.method == "POST")));
}

/// The gallery app's template is the one the app itself offers (whatever its id), never a
/// name the profile or the wizard made up; when the gallery offers several, the wizard asks
/// (the profile must name one) and makes no job.
#[tokio::test]
async fn the_gallery_apps_own_synchronization_template_is_used_and_several_are_asked_about() {
    let options = || ApplyOptions {
        scim_token: Some(SecretString::from(
            entra_setup_sim::scim_server::DEMO_SCIM_TOKEN.to_string(),
        )),
        ..Default::default()
    };
    for several in [false, true] {
        let sim = sim_as("megan@contoso.com").await;
        sim.set_local_scim_reachable(true);
        sim.set_faults(Faults {
            gallery_sync_templates_several: several,
            ..Default::default()
        });
        let s = admin(&sim, "contoso.com").await;
        let intent = twingate(&sim.fake_scim_url(), vec![group(SALES, "Sales")]);
        let prepared = flow::prepare(&s, &data_dir("entra-setup-vendor"), intent, &[])
            .await
            .unwrap();
        assert!(
            prepared
                .plan
                .changes
                .iter()
                .any(|c| c.title == "Create the provisioning job (the gallery app's own template)"),
            "{:#?}",
            prepared.plan.changes
        );
        let (run, failure) = apply_with(&s, prepared, &options()).await;
        let jobs_made = sim
            .exchanges()
            .iter()
            .filter(|e| e.path.ends_with("/synchronization/jobs") && e.method == "POST")
            .count();
        if several {
            let message = failure.unwrap().to_string();
            assert!(
                message.contains("offers several provisioning templates (gallerysync-7c1e-placeholder, gallerysync-7c1e-placeholder-v2)")
                    && message.contains("job_template"),
                "{message}"
            );
            assert_eq!(jobs_made, 0);
        } else {
            assert!(failure.is_none(), "{failure:?}");
            let sp = run.scim.as_ref().unwrap().sp_id.clone();
            let jobs: Vec<serde_json::Value> = s
                .graph
                .get(format!("/servicePrincipals/{sp}/synchronization/jobs"))
                .list()
                .await
                .unwrap();
            assert_eq!(jobs.len(), 1);
            assert_eq!(jobs[0]["templateId"], "gallerysync-7c1e-placeholder");
        }
    }
}

/// Trust item 2: a vendor app found by its display name is the vendor's only when exactly one
/// app of another organisation carries that name; the wizard reports what it holds beyond the
/// profile's list, with its owner tenant and publisher.
#[tokio::test]
async fn a_lookalike_vendor_app_is_refused_and_extra_permissions_are_reported() {
    let sim = sim_as("adele@contoso.com").await;
    let s = admin(&sim, "contoso.com").await;
    let intent = firezone(true, vec![]);
    sim.consent_to_vendor("firezone", CONTOSO, "adele@contoso.com")
        .await
        .unwrap();
    // The admin (or someone) also grants the sync app a permission Firezone does not declare.
    let sync = vendor_sp(&sim, CONTOSO, "Firezone Directory Sync").unwrap();
    let graph = sim
        .directory(CONTOSO)
        .unwrap()
        .service_principals
        .into_iter()
        .find(|sp| sp["appId"] == "00000003-0000-0000-c000-000000000000")
        .unwrap();
    let role = graph["appRoles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["value"] == "Group.Read.All")
        .unwrap()["id"]
        .clone();
    s.graph
        .post(format!(
            "/servicePrincipals/{}/appRoleAssignedTo",
            graph["id"].as_str().unwrap()
        ))
        .json(json!({"principalId": sync["id"], "resourceId": graph["id"], "appRoleId": role}))
        .scopes(entra_setup_core::auth::StepScopes::Consent)
        .send()
        .await
        .unwrap();
    let c = vendor::check(&s.graph, &intent).await.unwrap();
    let sync_c = c.iter().find(|x| x.app == "sync").unwrap();
    assert_eq!(sync_c.extra, ["Group.Read.All (application)"], "{sync_c:?}");
    assert!(sync_c.owner_tenant.as_deref().is_some_and(|t| t != CONTOSO));

    // Another organisation's app with the same name: refused, not guessed.
    sim.add_lookalike_service_principal(CONTOSO, "Firezone Authentication", FABRIKAM)
        .unwrap();
    let e = vendor::check(&s.graph, &intent)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not guess") && e.contains(FABRIKAM), "{e}");
}
