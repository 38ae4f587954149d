//! Re-runs against the simulated tenant: the secret's expiry is visible, a rotation adds a new
//! secret next to the old one (both work: no downtime), and retiring removes only the wizard's
//! old secret — after which it stops working and the new one still does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use entra_setup_core::checks::{self, SecretRetry, Status};
use entra_setup_core::provider;
use entra_setup_core::session::Session;
use entra_setup_core::setup::apply::{ApplyOptions, NewSecret};
use entra_setup_core::setup::flow::{self, RetireFailed};
use entra_setup_core::setup::plan::Change;
use entra_setup_core::setup::secrets::{self, RetireError, SecretHealth};
use entra_setup_core::setup::{journal, Intent};
use entra_setup_sim::{Faults, SimHandle};
use support::*;
use tokio_util::sync::CancellationToken;

fn pomerium() -> Intent {
    let mut raw = BTreeMap::new();
    raw.insert(
        "authenticate_url".to_string(),
        "https://authenticate.corp.example.com".to_string(),
    );
    Intent::new(provider::find("pomerium").unwrap(), &raw, None).unwrap()
}

async fn admin(sim: &SimHandle) -> Session {
    admin_with(sim, "contoso.com", false).await.0
}

/// Signs in to Entra as the app with `secret` (what the provider does), one attempt.
async fn secret_works(s: &Session, app_id: &str, secret: &NewSecret) -> bool {
    let http = entra_setup_core::http::client();
    let r = checks::secret_and_consent(
        &http,
        &s.cloud,
        &s.account.token_endpoint,
        app_id,
        &secret.value,
        false,
        &SecretRetry {
            budget: Duration::ZERO,
            delay: Duration::from_millis(10),
        },
    )
    .await;
    r[0].status == Status::Pass
}

fn data_dir() -> PathBuf {
    support::data_dir("entra-setup-rotation")
}

#[tokio::test]
async fn rotate_without_downtime_then_retire_the_old_secret() {
    let sim = sim_as("adele@contoso.com").await;
    let s = admin(&sim).await;
    let dir = data_dir();
    let (on_event, _) = collector();
    let first = flow::prepare(&s, &dir, pomerium(), &[]).await.unwrap();
    let applied = flow::execute(
        &s,
        &first,
        &ApplyOptions::default(),
        on_event.clone(),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    let app_id = applied.app_id.clone().unwrap();
    let old = applied.secret.unwrap();

    // A re-run shows the secret's expiry and plans nothing.
    let rerun = flow::prepare(&s, &dir, pomerium(), std::slice::from_ref(&old.key_id))
        .await
        .unwrap();
    assert!(rerun.plan.is_empty(), "{:#?}", rerun.plan.changes);
    let st = secrets::statuses(&rerun.state, chrono::Utc::now());
    assert_eq!(st.len(), 1);
    assert_eq!(st[0].key_id, old.key_id);
    assert_eq!(st[0].health, SecretHealth::Valid);
    assert!(
        (363..=365).contains(&st[0].days_left.unwrap()),
        "{:?}",
        st[0]
    );

    // Rotation with throttling and replication delays on: one new secret, next to the old one.
    sim.set_faults(Faults {
        latency_ms: 2,
        throttle_every: 3,
        retry_after_secs: 1,
        ..Default::default()
    });
    let rotate = flow::prepare(
        &s,
        &dir,
        pomerium().with_rotation(true),
        std::slice::from_ref(&old.key_id),
    )
    .await
    .unwrap();
    let kinds: Vec<&str> = rotate
        .plan
        .changes
        .iter()
        .map(|c| c.change.kind())
        .collect();
    assert_eq!(kinds, ["addPassword"], "only a secret is added");
    assert!(rotate.plan.changes[0]
        .title
        .contains("next to the current one"));
    assert!(
        rotate
            .plan
            .notes
            .iter()
            .any(|n| n.contains("without downtime")),
        "{:?}",
        rotate.plan.notes
    );
    let rotated = flow::execute(
        &s,
        &rotate,
        &ApplyOptions::default(),
        on_event.clone(),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    let new = rotated.secret.unwrap();
    assert_ne!(new.key_id, old.key_id);
    sim.set_faults(Faults::default());
    assert!(
        secret_works(&s, &app_id, &old).await,
        "the old secret still signs in"
    );
    assert!(
        secret_works(&s, &app_id, &new).await,
        "the new secret signs in"
    );

    // Retire: only the old wizard secret goes; one someone else added stays.
    let tenant = s.account.tenant_id.clone();
    sim.add_password(&tenant, &rotate.plan.unique_name, "Terraform pipeline");
    let (plan, _) = flow::retire_old_secrets(
        &s,
        &dir,
        &pomerium(),
        &new.key_id,
        on_event.clone(),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(plan.changes.len(), 1);
    assert!(
        matches!(&plan.changes[0].change, Change::RemovePassword { key_id, .. } if *key_id == old.key_id)
    );
    assert!(plan.notes[0].contains("not made by the wizard"));
    assert!(
        !secret_works(&s, &app_id, &old).await,
        "the retired secret no longer signs in"
    );
    assert!(
        secret_works(&s, &app_id, &new).await,
        "the new secret still does"
    );
    let names: Vec<String> = sim
        .directory(&tenant)
        .unwrap()
        .applications
        .iter()
        .find(|a| a["uniqueName"] == rotate.plan.unique_name.as_str())
        .unwrap()["passwordCredentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["keyId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names.len(),
        2,
        "the new secret and the pipeline's: {names:?}"
    );
    assert!(names.contains(&new.key_id));

    // Nothing left to retire; keeping a secret that is not there removes nothing.
    let again = flow::retire_old_secrets(
        &s,
        &dir,
        &pomerium(),
        &new.key_id,
        on_event.clone(),
        &CancellationToken::new(),
    )
    .await;
    assert!(matches!(
        again,
        Err(RetireFailed::Retire(RetireError::NothingToRetire))
    ));
    let wrong = flow::retire_old_secrets(
        &s,
        &dir,
        &pomerium(),
        "00000000-0000-0000-0000-000000000000",
        on_event,
        &CancellationToken::new(),
    )
    .await;
    assert!(matches!(
        wrong,
        Err(RetireFailed::Retire(RetireError::KeepNotFound { .. }))
    ));
    assert!(secret_works(&s, &app_id, &new).await);

    // The next run offers this setup again, with what the admin typed, from the journal.
    let previous = journal::previous_setups(&dir, &tenant);
    assert_eq!(previous.len(), 1, "{previous:?}");
    assert_eq!(previous[0].provider_id, "pomerium");
    assert_eq!(
        previous[0].display_name,
        "Pomerium (authenticate.corp.example.com)"
    );
    assert_eq!(
        previous[0]
            .inputs
            .get("authenticate_url")
            .map(String::as_str),
        Some("https://authenticate.corp.example.com")
    );
    assert_eq!(
        previous[0].inputs.len(),
        1,
        "no derived values: {:?}",
        previous[0].inputs
    );
    assert!(!previous[0].interrupted);
    assert!(journal::previous_setups(&dir, "another-tenant").is_empty());
    assert_graph_traffic_matches_csdl(&sim);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_secret_near_its_end_is_replaced_and_the_old_one_kept_until_retired() {
    let sim = sim_as("adele@contoso.com").await;
    let s = admin(&sim).await;
    let dir = data_dir();
    let (on_event, _) = collector();
    let first = flow::prepare(&s, &dir, pomerium(), &[]).await.unwrap();
    let applied = flow::execute(
        &s,
        &first,
        &ApplyOptions::default(),
        on_event,
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    let old = applied.secret.unwrap();
    // Ten days left: the re-run warns and plans a replacement without being asked.
    sim.set_password_end(
        &s.account.tenant_id,
        &old.key_id,
        chrono::Utc::now() + chrono::Duration::days(10),
    );
    let rerun = flow::prepare(&s, &dir, pomerium(), std::slice::from_ref(&old.key_id))
        .await
        .unwrap();
    let st = secrets::statuses(&rerun.state, chrono::Utc::now());
    assert_eq!(st[0].health, SecretHealth::ExpiresSoon);
    let kinds: Vec<&str> = rerun.plan.changes.iter().map(|c| c.change.kind()).collect();
    assert_eq!(kinds, ["addPassword"]);
    assert!(rerun.plan.changes[0]
        .title
        .contains("next to the current one"));
    let _ = std::fs::remove_dir_all(dir);
}
