//! Zero-downtime rotation of a SAML app's signing certificate against the simulated tenant with
//! Entra's faults on: a re-run adds a new certificate next to the active one (Entra keeps
//! signing with the old one), the admin makes the new one active after handing it over, then
//! the old one goes with its keys and password credential — each step journaled, the test
//! sign-in proving which certificate signs. A rotation's certificate that never became active
//! is removed by Undo. Every Graph body is checked against the CSDL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use entra_setup_core::auth::FollowRedirects;
use entra_setup_core::checks::Status;
use entra_setup_core::setup::flow;
use entra_setup_core::setup::{undo, Intent};
use entra_setup_sim::Faults;
use support::*;
use tokio_util::sync::CancellationToken;

fn intent() -> Intent {
    intent_for(
        "saml",
        &[
            ("name", "Rotating Files"),
            ("entity_id", "https://rotate.contoso.com/saml"),
            ("reply_url", "https://rotate.contoso.com/saml/acs"),
        ],
    )
}

/// The service principal's signing thumbprints (by the simulator's key store), its preferred
/// one, and how many key and password credentials it holds.
fn sp_facts(
    sim: &entra_setup_sim::SimHandle,
    tenant: &str,
    sp_id: &str,
) -> (Vec<String>, String, usize, usize) {
    let d = sim.directory(tenant).unwrap();
    let sp = d
        .service_principals
        .iter()
        .find(|p| p["id"] == sp_id)
        .unwrap();
    let count = |p: &str| sp[p].as_array().map_or(0, Vec::len);
    (
        d.signing_keys
            .iter()
            .filter(|k| k.sp_id == sp_id)
            .map(|k| k.thumbprint.clone())
            .collect(),
        sp["preferredTokenSigningKeyThumbprint"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        count("keyCredentials"),
        count("passwordCredentials"),
    )
}

#[tokio::test]
async fn a_signing_certificate_rotates_without_downtime_and_undo_removes_an_unused_one() {
    let sim = sim_as("adele@contoso.com").await;
    let (s, _) = admin_with(&sim, "contoso.com", false).await;
    sim.set_faults(Faults::realistic());
    let tenant = s.account.tenant_id.clone();
    let dir = data_dir("entra-setup-saml-rotation");
    let http = entra_setup_core::http::client();
    let opener = FollowRedirects::new(http.clone());
    let first = apply_run(&s, flow::prepare(&s, &dir, intent(), &[]).await.unwrap()).await;
    let sp_id = first.saml.as_ref().unwrap().sp_id.clone();
    let old = first
        .saml
        .as_ref()
        .unwrap()
        .cert
        .clone()
        .unwrap()
        .thumbprint;
    let (keys, preferred, key_creds, passwords) = sp_facts(&sim, &tenant, &sp_id);
    assert_eq!((keys.len(), key_creds, passwords), (1, 2, 1));
    assert_eq!(preferred, old);

    // The rotation re-run adds a certificate and leaves the old one signing.
    let prepared = flow::prepare(&s, &dir, intent().with_rotation(true), &[])
        .await
        .unwrap();
    let kinds: Vec<&str> = prepared
        .plan
        .changes
        .iter()
        .map(|c| c.change.kind())
        .collect();
    assert_eq!(kinds, ["addSigningCertificate"]);
    assert!(prepared.plan.changes[0].reason.contains(&old));
    let mut run = apply_run(&s, prepared).await;
    let new = run
        .saml
        .as_ref()
        .unwrap()
        .pending
        .clone()
        .unwrap()
        .thumbprint;
    assert_ne!(new, old);
    assert_eq!(
        run.saml.as_ref().unwrap().cert.as_ref().unwrap().thumbprint,
        old
    );
    let (keys, preferred, key_creds, passwords) = sp_facts(&sim, &tenant, &sp_id);
    assert_eq!((keys.len(), key_creds, passwords), (2, 4, 2));
    assert_eq!(preferred, old, "Entra still signs with the old certificate");
    let report = run
        .test_sign_in(&s, &http, &opener, &CancellationToken::new())
        .await
        .unwrap();
    assert!(report.verified.contains(&old), "{}", report.verified);
    let view = run.done_view(&s, true, vec![]).await;
    // Done's lockout guard says it for SAML; the advice list does not repeat it.
    assert!(
        view.advice.iter().all(|a| a.id != "lockout"),
        "{:?}",
        view.advice
    );
    let saml = view.saml.unwrap();
    assert_eq!(saml.new_certificate.unwrap().thumbprint, new);
    assert!(saml.old_certificate.is_none());

    // Asking again adds no third certificate: the new one is waiting to be made active.
    let again = flow::prepare(&s, &dir, intent().with_rotation(true), &[])
        .await
        .unwrap();
    assert!(again.plan.changes.is_empty(), "{:?}", again.plan.changes);

    // The admin confirms the service has the new certificate: Entra signs with it.
    run.activate_certificate(&s).await.unwrap();
    let (_, preferred, ..) = sp_facts(&sim, &tenant, &sp_id);
    assert_eq!(preferred, new);
    let report = run
        .test_sign_in(&s, &http, &opener, &CancellationToken::new())
        .await
        .unwrap();
    assert!(report.verified.contains(&new), "{}", report.verified);
    let checks = run.checks(&s).await;
    let meta = checks.iter().find(|c| c.id == "saml_metadata").unwrap();
    assert_eq!(meta.status, Status::Pass, "{meta:?}");
    let saml = run.done_view(&s, true, vec![]).await.saml.unwrap();
    assert!(saml.new_certificate.is_none());
    assert_eq!(saml.old_certificate.unwrap().thumbprint, old);

    // Then the old one goes: its Sign and Verify keys and its password credential.
    run.retire_certificates(&s).await.unwrap();
    let (keys, preferred, key_creds, passwords) = sp_facts(&sim, &tenant, &sp_id);
    assert_eq!(keys, [new.as_str()]);
    assert_eq!(preferred, new);
    assert_eq!((key_creds, passwords), (2, 1));
    let saml = run.done_view(&s, true, vec![]).await.saml.unwrap();
    assert!(saml.old_certificate.is_none());
    assert_eq!(saml.retired_certificates, [old.as_str()]);
    let report = run
        .test_sign_in(&s, &http, &opener, &CancellationToken::new())
        .await
        .unwrap();
    assert!(report.verified.contains(&new));

    // A rotation from another computer (a journal that did not make the app), undone before
    // its certificate became active: the certificate goes, the active one stays.
    let elsewhere = data_dir("entra-setup-saml-rotation-elsewhere");
    let third = apply_run(
        &s,
        flow::prepare(&s, &elsewhere, intent().with_rotation(true), &[])
            .await
            .unwrap(),
    )
    .await;
    let unused = third
        .saml
        .as_ref()
        .unwrap()
        .pending
        .clone()
        .unwrap()
        .thumbprint;
    let done = undo::undo(&s.graph, &third.prepared.journal, Arc::new(|_| {}))
        .await
        .unwrap();
    assert_eq!(done.len(), 1, "{done:?}");
    assert!(done[0].what.contains(&unused), "{done:?}");
    let (keys, preferred, ..) = sp_facts(&sim, &tenant, &sp_id);
    assert_eq!(keys, [new.as_str()]);
    assert_eq!(preferred, new);

    sim.set_faults(Faults::default());
    assert_graph_traffic_matches_csdl(&sim);
}
