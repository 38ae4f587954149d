//! SAML single sign-on against the simulated tenant with Entra's faults on: the app in SAML mode
//! before its Entity ID (the tenant restricts identifier URIs), a signing certificate that
//! shows up late and whose answer is lost, the live federation metadata, the hand-over files,
//! a re-run that changes nothing, Undo, and an Entity ID another app already holds. Every Graph
//! body is checked against Microsoft's CSDL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use entra_setup_core::checks::Status;
use entra_setup_core::provider;
use entra_setup_core::setup::flow::{self, SetupError};
use entra_setup_core::setup::plan::{Change, PlanError};
use entra_setup_core::setup::run::{SAML_CERT_PEM_FILE, SAML_METADATA_FILE};
use entra_setup_core::setup::{undo, Intent};
use entra_setup_sim::Faults;
use support::*;

fn saml_intent(name: &str, entity_id: &str) -> Intent {
    let mut raw = BTreeMap::new();
    raw.insert("name".to_string(), name.to_string());
    raw.insert("entity_id".to_string(), entity_id.to_string());
    raw.insert(
        "reply_url".to_string(),
        "https://files.contoso.com/saml/acs".to_string(),
    );
    raw.insert("relay_state".to_string(), "/home".to_string());
    raw.insert("groups".to_string(), "SecurityGroup".to_string());
    Intent::new(provider::find("saml").unwrap(), &raw, None).unwrap()
}

/// The setup the first test applies, re-runs and resumes.
fn acme_files() -> Intent {
    saml_intent("Acme Files", "https://files.contoso.com/saml/metadata")
}

#[tokio::test]
async fn a_saml_app_is_set_up_checked_live_handed_over_and_undone() {
    let sim = sim_as("adele@contoso.com").await;
    let (s, _) = admin_with(&sim, "contoso.com", false).await;
    sim.set_faults(Faults::realistic());
    let dir = data_dir("entra-setup-saml");
    let want = acme_files();
    let prepared = flow::prepare(&s, &dir, want, &[]).await.unwrap();
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
            "configureSaml",
            "setSamlUris",
            "addSigningCertificate",
            "preferSigningCertificate"
        ]
    );
    // SAML mode comes before the Entity ID: the simulated tenant refuses an https identifier
    // URI on an app that is not in SAML mode yet, as tenants enforcing secure URIs do.
    let uris = &prepared.plan.changes[3];
    assert!(uris.after.contains(&2), "{:?}", uris.after);
    let mut run = apply_run(&s, prepared).await;
    assert_answers_were_lost(&sim, &["/instantiate", "/addTokenSigningCertificate"]);
    let tenant = s.account.tenant_id.clone();
    {
        let d = sim.directory(&tenant).unwrap();
        let apps: Vec<_> = d
            .applications
            .iter()
            .filter(|a| a["uniqueName"] == "entra-setup-saml-acme-files")
            .collect();
        assert_eq!(
            apps.len(),
            1,
            "exactly one app, although instantiate's answer was lost"
        );
        let app = apps[0];
        assert_eq!(app["displayName"], "Acme Files");
        assert_eq!(
            app["identifierUris"],
            serde_json::json!(["https://files.contoso.com/saml/metadata"])
        );
        assert_eq!(
            app["web"]["redirectUris"],
            serde_json::json!(["https://files.contoso.com/saml/acs"])
        );
        assert_eq!(app["groupMembershipClaims"], "SecurityGroup");
        let sp = d
            .service_principals
            .iter()
            .find(|p| p["appId"] == app["appId"])
            .unwrap();
        assert_eq!(sp["preferredSingleSignOnMode"], "saml");
        assert_eq!(sp["samlSingleSignOnSettings"]["relayState"], "/home");
        assert_eq!(sp["appRoleAssignmentRequired"], false);
        assert_eq!(
            sp["notificationEmailAddresses"],
            serde_json::json!(["adele@contoso.com"])
        );
        // One certificate (the lost answer was reconciled, not repeated), and it is preferred.
        let keys: Vec<_> = d
            .signing_keys
            .iter()
            .filter(|k| k.sp_id == sp["id"].as_str().unwrap())
            .collect();
        assert_eq!(keys.len(), 1);
        assert_eq!(sp["preferredTokenSigningKeyThumbprint"], keys[0].thumbprint);
    }

    // The live test fetches the metadata URL and finds Entra's identifier, the sign-on URL and
    // the certificate Entra signs with.
    let checks = run.checks(&s).await;
    let meta = checks.iter().find(|c| c.id == "saml_metadata").unwrap();
    assert_eq!(meta.status, Status::Pass, "{meta:?}");

    // Done's values and files: fetched, never typed.
    let values = run.values(&s);
    let app_id = run.saml.as_ref().unwrap().app_id.clone();
    assert_eq!(
        values["saml_metadata_url"],
        format!(
            "{}/{tenant}/federationmetadata/2007-06/federationmetadata.xml?appid={app_id}",
            sim.base_url()
        )
    );
    assert_eq!(
        values["saml_idp_entity_id"],
        format!("https://sts.windows.net/{tenant}/")
    );
    let out = tempdir("saml-handover");
    let files = run.save_saml(&s, &out).await.unwrap();
    assert_eq!(files.len(), 3, "{files:?}");
    let xml = std::fs::read_to_string(out.join(SAML_METADATA_FILE)).unwrap();
    let parsed = entra_setup_core::saml::parse_idp_metadata(&xml).unwrap();
    assert_eq!(
        parsed.entity_id,
        format!("https://sts.windows.net/{tenant}/")
    );
    let pem = std::fs::read_to_string(out.join(SAML_CERT_PEM_FILE)).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
    let der = std::fs::read(out.join("saml-signing-certificate.cer")).unwrap();
    let (sha1, sha256) = entra_setup_core::saml::fingerprints(&der);
    assert_eq!(values["saml_cert_sha1"], sha1);
    assert_eq!(values["saml_cert_sha256"], sha256);
    assert_eq!(parsed.signing_certs.len(), 1);

    // A re-run finds everything in place.
    let again = flow::prepare(&s, &dir, acme_files(), &[]).await.unwrap();
    assert!(again.plan.is_empty(), "{:#?}", again.plan.changes);

    // A run that stopped after adding a certificate but before preferring it: the re-run
    // prefers that one instead of adding another.
    let sp_id = run.saml.as_ref().unwrap().sp_id.clone();
    let thumb = run
        .saml
        .as_ref()
        .unwrap()
        .cert
        .as_ref()
        .unwrap()
        .thumbprint
        .clone();
    s.graph
        .patch(format!("/servicePrincipals/{sp_id}"))
        .json(serde_json::json!({"preferredTokenSigningKeyThumbprint": null}))
        .scopes(entra_setup_core::auth::StepScopes::RegisterApp)
        .send()
        .await
        .unwrap();
    let resumed = flow::prepare(&s, &dir, acme_files(), &[]).await.unwrap();
    let kinds: Vec<&Change> = resumed.plan.changes.iter().map(|c| &c.change).collect();
    assert_eq!(
        kinds,
        [&Change::PreferSigningCertificate {
            thumbprint: Some(thumb.clone())
        }]
    );
    let resumed_run = apply_run(&s, resumed).await;
    assert_eq!(
        resumed_run
            .saml
            .as_ref()
            .unwrap()
            .cert
            .as_ref()
            .unwrap()
            .thumbprint,
        thumb
    );
    assert_eq!(
        sim.directory(&tenant)
            .unwrap()
            .signing_keys
            .iter()
            .filter(|k| k.sp_id == sp_id)
            .count(),
        1
    );

    // Undo deletes the app (never its SAML service principal alone, which Entra refuses) and the
    // certificate goes with it.
    let done = undo::undo(&s.graph, &run.prepared.journal, Arc::new(|_| {}))
        .await
        .unwrap();
    assert_eq!(done.len(), 1, "{done:?}");
    assert!(
        done[0].what.contains("single sign-on, signing certificate"),
        "{done:?}"
    );
    let d = sim.directory(&tenant).unwrap();
    assert!(!d
        .applications
        .iter()
        .any(|a| a["uniqueName"] == "entra-setup-saml-acme-files"));
    assert!(!d
        .service_principals
        .iter()
        .any(|p| p["appId"] == app_id.as_str()));
    drop(d);
    sim.set_faults(Faults::default());
    assert_graph_traffic_matches_csdl(&sim);
}

#[tokio::test]
async fn an_entity_id_another_app_holds_stops_the_plan_with_a_suffix_to_use() {
    let sim = sim_as("adele@contoso.com").await;
    let (s, _) = admin_with(&sim, "contoso.com", false).await;
    let dir = data_dir("entra-setup-saml-taken");
    let entity = "https://files.contoso.com/saml/metadata";
    let first = flow::prepare(&s, &dir, saml_intent("Acme Files", entity), &[])
        .await
        .unwrap();
    apply_run(&s, first).await;
    let tenant = s.account.tenant_id.clone();
    let before = sim.directory(&tenant).unwrap().applications.len();

    // A second site with the same Entity ID: refused before anything is written.
    let err = flow::prepare(&s, &dir, saml_intent("Acme Files EU", entity), &[])
        .await
        .err()
        .expect("refused");
    let SetupError::Plan(PlanError::EntityIdTaken {
        holder, suggestion, ..
    }) = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(holder, "Acme Files");
    assert!(
        suggestion.starts_with(&format!("{entity}/")),
        "{suggestion}"
    );
    let message = err.to_string();
    assert!(message.contains("\"Acme Files\""), "{message}");
    assert!(message.contains(suggestion.as_str()), "{message}");
    assert_eq!(sim.directory(&tenant).unwrap().applications.len(), before);

    // With the suggested suffix it goes through, on an app of its own.
    let second = flow::prepare(&s, &dir, saml_intent("Acme Files EU", suggestion), &[])
        .await
        .unwrap();
    assert!(second
        .plan
        .changes
        .iter()
        .any(|c| matches!(c.change, Change::InstantiateApp { .. })));
}

fn tempdir(label: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("{label}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[tokio::test]
async fn a_reply_url_another_app_has_is_warned_about() {
    let sim = sim_as("adele@contoso.com").await;
    let (s, _) = admin_with(&sim, "contoso.com", false).await;
    s.graph
        .post("/applications")
        .json(serde_json::json!({
            "displayName": "Old Files SSO",
            "web": {"redirectUris": ["https://files.contoso.com/saml/acs"]}
        }))
        .send()
        .await
        .unwrap();
    let dir = data_dir("entra-setup-saml-reply");
    let prepared = flow::prepare(&s, &dir, acme_files(), &[]).await.unwrap();
    assert!(
        prepared
            .plan
            .notes
            .iter()
            .any(|n| n.contains("https://files.contoso.com/saml/acs")
                && n.contains("\"Old Files SSO\"")),
        "{:?}",
        prepared.plan.notes
    );
    // After the apply the setup's own app has it too: that is not warned about.
    let run = apply_run(&s, prepared).await;
    let again = flow::prepare(&s, &dir, acme_files(), &[]).await.unwrap();
    assert_eq!(again.plan.notes.len(), 1, "{:?}", again.plan.notes);
    drop(run);
    assert_graph_traffic_matches_csdl(&sim);
}
