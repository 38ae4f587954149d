//! A tenant the size of a real company (Tailspin Toys: 250 users, 120 groups, 120 registered
//! apps, 1,200 service principals), where every list Graph answers comes in pages of 100 and
//! the wizard must follow each `@odata.nextLink` to the end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use entra_setup_core::people::{self, PreviewRules};
use entra_setup_core::setup::flow;
use entra_setup_core::setup::{Assignee, PrincipalKind};
use serde_json::Value;
use support::*;

const TAILSPIN: &str = "e5a8f5d7-9c4b-4fbd-8d6a-4b5c6d7e8f90";
const ALL_STAFF: &str = "e5a8f5d7-1111-4000-8000-000000000001";

/// How many pages of `GET {prefix}…` the client read: the first, and one per `$skiptoken`.
fn pages_read(sim: &entra_setup_sim::SimHandle, prefix: &str) -> usize {
    sim.exchanges()
        .iter()
        .filter(|x| x.method == "GET" && x.path.starts_with(prefix) && x.status == 200)
        .count()
}

#[tokio::test]
async fn every_list_is_read_to_its_last_page() {
    let sim = sim_as("ben@tailspintoys.com").await;
    let (s, _) = admin_with(&sim, "tailspintoys.com", true).await;
    for (path, expected, pages) in [
        ("/users?$select=id,displayName", 250, 3),
        ("/groups?$select=id,displayName", 120, 2),
        ("/applications?$select=id,appId", 120, 2),
        ("/servicePrincipals?$select=id,appId", 1_200, 12),
        (
            "/groups/e5a8f5d7-1111-4000-8000-000000000001/members?$select=id",
            250,
            3,
        ),
    ] {
        sim.clear_exchanges();
        let all: Vec<Value> = s.graph.get(path).list().await.unwrap();
        assert_eq!(all.len(), expected, "{path}");
        let ids: std::collections::BTreeSet<&str> =
            all.iter().filter_map(|v| v["id"].as_str()).collect();
        assert_eq!(ids.len(), expected, "{path}: no object twice, none skipped");
        let prefix = path.split('?').next().unwrap();
        assert_eq!(pages_read(&sim, prefix), pages, "{path}");
    }
    assert_graph_traffic_matches_csdl(&sim);
}

#[tokio::test]
async fn certificate_bytes_come_only_from_a_single_object_asked_for_them() {
    let sim = sim_as("ben@tailspintoys.com").await;
    let (s, _) = admin_with(&sim, "tailspintoys.com", false).await;
    let listed: Vec<Value> = s
        .graph
        .get("/applications?$select=id,keyCredentials")
        .list()
        .await
        .unwrap();
    let with_certs: Vec<&Value> = listed
        .iter()
        .filter(|a| !a["keyCredentials"].as_array().unwrap().is_empty())
        .collect();
    assert_eq!(with_certs.len(), 12);
    assert!(
        with_certs
            .iter()
            .all(|a| a["keyCredentials"][0]["key"].is_null()),
        "a list never carries the certificate's bytes"
    );
    let id = with_certs[0]["id"].as_str().unwrap();
    let one: Value = s
        .graph
        .get(format!("/applications/{id}?$select=id,keyCredentials"))
        .send_json()
        .await
        .unwrap();
    assert!(one["keyCredentials"][0]["key"].is_string());
    let plain: Value = s
        .graph
        .get(format!("/applications/{id}"))
        .send_json()
        .await
        .unwrap();
    assert!(plain["keyCredentials"][0]["key"].is_null());
}

#[tokio::test]
async fn who_syncs_is_counted_over_every_page() {
    let sim = sim_as("ben@tailspintoys.com").await;
    let (s, _) = admin_with(&sim, "tailspintoys.com", true).await;
    let rules = PreviewRules::default();
    let all = people::preview(&s.graph, true, &[], &rules).await.unwrap();
    assert_eq!((all.users, all.groups), (250, 120));
    assert!(!all.truncated);
    let staff = Assignee {
        id: ALL_STAFF.into(),
        kind: PrincipalKind::Group,
        display_name: "All Staff".into(),
    };
    let assigned = people::preview(&s.graph, false, &[staff], &rules)
        .await
        .unwrap();
    assert_eq!(assigned.users, 250);
    // A name search asks for the first 20 of 249 matches (no group's name starts "Staff").
    let found = people::search(&s.graph, "Staff", true).await.unwrap();
    assert_eq!(found.len(), 20);
}

/// A setup in the large tenant: its Reply-URL and identifier lookups and its own-app search
/// read past the first page, a re-run finds everything it made among 1,200 service
/// principals, and Undo removes only what it made.
#[tokio::test]
async fn a_setup_in_a_large_tenant_reruns_as_a_no_op_and_undoes_cleanly() {
    let sim = sim_as("ben@tailspintoys.com").await;
    let (s, _) = admin_with(&sim, "tailspintoys.com", false).await;
    let dir = data_dir("entra-setup-large");
    let intent = || intent_for("cloudflare", &[("team", "tailspin")]);
    let prepared = flow::prepare(&s, &dir, intent(), &[]).await.unwrap();
    let journal = prepared.journal.clone();
    let run = apply_run(&s, prepared).await;
    let key_id = run.secret.as_ref().expect("a new secret").key_id.clone();
    let again = flow::prepare(&s, &dir, intent(), std::slice::from_ref(&key_id))
        .await
        .unwrap();
    assert!(again.plan.is_empty(), "{:#?}", again.plan.changes);
    let d = sim.directory(TAILSPIN).unwrap();
    assert_eq!(d.applications.len(), 121);
    assert_eq!(d.service_principals.len(), 1_201);
    let done = entra_setup_core::setup::undo::undo(&s.graph, &journal, std::sync::Arc::new(|_| {}))
        .await
        .unwrap();
    assert_eq!(done.len(), 1);
    let d = sim.directory(TAILSPIN).unwrap();
    assert_eq!(
        (d.applications.len(), d.service_principals.len()),
        (120, 1_200),
        "Undo removed the setup's app and service principal, and nothing of the tenant's own"
    );
    assert_graph_traffic_matches_csdl(&sim);
    let _ = std::fs::remove_dir_all(dir);
}
