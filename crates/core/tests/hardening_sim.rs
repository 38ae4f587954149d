//! What a hostile or misrouted answer cannot make the wizard do (issue 11): each test fails on
//! the code before its fix.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::atomic::Ordering;

use entra_setup_core::auth::StepScopes;
use entra_setup_sim::Faults;
use serde_json::Value;
use support::*;

#[tokio::test]
async fn a_next_link_to_another_host_is_not_followed_with_the_token() {
    let sim = sim_as("adele@contoso.com").await;
    let (elsewhere, requests, _) = request_counter().await;
    let (s, _) = admin_with(&sim, "contoso.com", true).await;
    sim.set_faults(Faults {
        next_link_base: elsewhere.clone(),
        ..Default::default()
    });
    let e = s
        .graph
        .get("/users?$select=id&$top=1")
        .scopes(StepScopes::SyncMode)
        .list::<Value>()
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("points outside Microsoft Graph"),
        "{e}"
    );
    assert_eq!(
        requests.load(Ordering::SeqCst),
        0,
        "nothing was sent to {elsewhere}"
    );
}
