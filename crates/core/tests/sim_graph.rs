//! The simulated Graph itself: full (unselected) shapes match Microsoft's CSDL, scopes are
//! enforced the way Graph enforces them, and incremental consent is required for new scopes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use entra_setup_core::auth::{self, AuthError, FollowRedirects, Method, SignInOptions, StepScopes};
use entra_setup_core::cloud::{Cloud, CloudChoice};
use entra_setup_core::session;
use entra_setup_core::ExposeSecret;
use support::*;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn every_simulated_endpoint_answers_in_graph_shapes() {
    let sim = sim_as("isaiah@northwindtraders.com").await;
    let (on_event, _) = recorder();
    let signed = session::sign_in(
        &ctx(memory()),
        &request(&sim, "northwindtraders.com", Method::Browser),
        on_event,
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    let g = &signed.session.graph;
    sim.clear_exchanges();
    for path in [
        "/organization",
        "/me",
        "/me/memberOf/microsoft.graph.directoryRole",
        "/me/transitiveMemberOf/microsoft.graph.directoryRole",
        "/subscribedSkus",
    ] {
        g.get(path)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
    }
    let me = signed.session.summary.user.id.clone();
    g.get(format!(
        "/roleManagement/directory/roleEligibilityScheduleInstances?$filter=principalId eq '{me}'"
    ))
    .send()
    .await
    .unwrap();
    // An unknown segment is Graph's 400 with the error shape.
    let err = g.get("/notAResource").send().await.err().unwrap();
    assert_eq!(err.status(), Some(400));
    assert_graph_traffic_matches_csdl(&sim);
}

async fn narrow_sign_in(sim: &entra_setup_sim::SimHandle, scopes: &[&str]) -> auth::TokenSet {
    let cloud = Cloud::from_choice(&CloudChoice::Custom {
        authority: sim.base_url().into(),
        graph: sim.base_url().into(),
    })
    .unwrap();
    let http = entra_setup_core::http::client();
    let mut all = vec![
        "openid".to_string(),
        "profile".into(),
        "offline_access".into(),
    ];
    all.extend(scopes.iter().map(|s| cloud.graph_scope(s)));
    let opts = SignInOptions {
        discovery_url: cloud.discovery_url("contoso.com"),
        tenant_label: "contoso.com".into(),
        cloud_name: cloud.name.clone(),
        client_id: auth::DEFAULT_CLIENT_ID.into(),
        scopes: all,
        method: Method::Browser,
        timeout: auth::DEFAULT_TIMEOUT,
        redirect_host: "127.0.0.1".into(),
        extra_params: vec![],
    };
    let (on_event, _) = recorder();
    auth::sign_in(
        &http,
        &opts,
        &FollowRedirects::new(http.clone()),
        on_event,
        &CancellationToken::new(),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn scopes_are_enforced_like_graph() {
    let sim = sim_as("adele@contoso.com").await;
    let tokens = narrow_sign_in(&sim, &["User.Read"]).await;
    let http = reqwest::Client::new();
    let call = |path: &str| {
        http.get(format!("{}/v1.0{path}", sim.base_url()))
            .bearer_auth(tokens.access_token.expose_secret())
            .send()
    };
    let skus = call("/subscribedSkus").await.unwrap();
    assert_eq!(skus.status(), 403);
    assert!(skus.headers().contains_key("request-id"));
    let body: serde_json::Value = skus.json().await.unwrap();
    assert_eq!(body["error"]["code"], "Authorization_RequestDenied");
    // With only User.Read, role objects come back as type + id, like Graph does.
    let roles: serde_json::Value = call("/me/transitiveMemberOf/microsoft.graph.directoryRole")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let first = &roles["value"][0];
    assert!(
        first["id"].is_string() && first.get("roleTemplateId").is_none(),
        "{roles}"
    );
    // A missing token is a 401.
    let anon = http
        .get(format!("{}/v1.0/me", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), 401);
}

#[tokio::test]
async fn a_step_needing_new_scopes_asks_for_consent() {
    let sim = sim_as("adele@contoso.com").await;
    let tokens = narrow_sign_in(&sim, StepScopes::SignIn.scopes()).await;
    let cloud = Cloud::from_choice(&CloudChoice::Custom {
        authority: sim.base_url().into(),
        graph: sim.base_url().into(),
    })
    .unwrap();
    let source = auth::TokenSource::new(
        entra_setup_core::http::client(),
        cloud,
        auth::DEFAULT_CLIENT_ID.into(),
        tokens.discovery.token_endpoint.clone(),
        tokens.refresh_token.clone(),
        None,
    );
    // Scopes already consented refresh silently.
    source
        .access_token(StepScopes::SignIn.scopes())
        .await
        .expect("consented scopes refresh");
    // A later step's scopes were never consented: the admin must sign in again.
    let err = source
        .access_token(StepScopes::Scim.scopes())
        .await
        .expect_err("needs consent");
    assert!(matches!(err, AuthError::ConsentRequired { .. }), "{err}");
}
