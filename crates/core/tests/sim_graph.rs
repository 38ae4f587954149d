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
        let req = if path.contains("transitive") {
            g.get(path).advanced()
        } else {
            g.get(path)
        };
        req.send().await.unwrap_or_else(|e| panic!("{path}: {e}"));
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
            .header("ConsistencyLevel", "eventual")
            .send()
    };
    let skus = call("/subscribedSkus").await.unwrap();
    assert_eq!(skus.status(), 403);
    assert!(skus.headers().contains_key("request-id"));
    let body: serde_json::Value = skus.json().await.unwrap();
    assert_eq!(body["error"]["code"], "Authorization_RequestDenied");
    // With only User.Read, role objects come back as type + id, like Graph does.
    let roles: serde_json::Value =
        call("/me/transitiveMemberOf/microsoft.graph.directoryRole?$count=true")
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

/// The simulator refuses the queries Graph refuses (so the product cannot pass a test with a
/// query a real tenant answers with 400), and answers them with the advanced query parameters.
#[tokio::test]
async fn queries_follow_graphs_rules() {
    let sim = sim_as("adele@contoso.com").await;
    let (s, _) = admin_with(&sim, "contoso.com", false).await;
    let status =
        |r: Result<entra_setup_core::graph::Answer, entra_setup_core::graph::GraphError>| match r {
            Ok(a) => (a.status.as_u16(), String::new()),
            Err(e) => (e.status().unwrap_or(0), e.to_string()),
        };
    let by_reply =
        "/applications?$filter=web/redirectUris/any(x:x eq 'https://a.contoso.com/acs')&$select=id";
    let (code, said) = status(s.graph.get(by_reply).send().await);
    assert_eq!(
        code, 400,
        "a lambda on web/redirectUris is an advanced query"
    );
    assert!(
        said.contains("Request_UnsupportedQuery") && said.contains("ConsistencyLevel"),
        "{said}"
    );
    assert_eq!(status(s.graph.get(by_reply).advanced().send().await).0, 200);
    // Only the header, or only $count=true, is not enough.
    let (code, _) = status(s.graph.get(format!("{by_reply}&$count=true")).send().await);
    assert_eq!(code, 400);
    let (code, _) = status(
        s.graph
            .get(by_reply)
            .header("ConsistencyLevel", "eventual")
            .send()
            .await,
    );
    assert_eq!(code, 400);

    let (code, said) = status(
        s.graph
            .get("/users?$filter=accountEnabled ne true")
            .send()
            .await,
    );
    assert_eq!(code, 400, "ne is advanced: {said}");
    // An operator's name inside a quoted value is not the operator.
    assert_eq!(
        status(
            s.graph
                .get("/groups?$filter=displayName eq 'not ne endswith(x)'")
                .send()
                .await
        )
        .0,
        200
    );

    let groups: Vec<serde_json::Value> = s
        .graph
        .get("/groups?$select=id&$top=1")
        .list()
        .await
        .unwrap();
    let cast = format!(
        "/groups/{}/transitiveMembers/microsoft.graph.user?$select=id",
        groups[0]["id"].as_str().unwrap()
    );
    assert_eq!(
        status(s.graph.get(&cast).send().await).0,
        400,
        "a cast on transitive members is advanced"
    );
    assert_eq!(status(s.graph.get(&cast).advanced().send().await).0, 200);

    for top in ["1000", "0", "many"] {
        let (code, said) = status(s.graph.get(format!("/users?$top={top}")).send().await);
        assert_eq!(code, 400, "$top={top}");
        assert!(said.contains("between 1 and 999"), "{said}");
    }
    assert_eq!(status(s.graph.get("/users?$top=999").send().await).0, 200);
}

/// The simulator refuses, as it arrives, any request Graph's schema refuses: a body property
/// the type does not have, a value of the wrong shape, a required property left out, a query
/// option naming a property the type does not have, a `$filter` on a property the resource does
/// not support filtering by, and a path Graph does not have. Nothing is written.
#[tokio::test]
async fn requests_are_checked_against_graphs_schema_as_they_arrive() {
    let sim = sim_as("adele@contoso.com").await;
    let (s, _) = admin_with(&sim, "contoso.com", false).await;
    let count_apps = || async {
        let apps: Vec<serde_json::Value> = s
            .graph
            .get("/applications?$select=id")
            .list()
            .await
            .unwrap();
        apps.len()
    };
    let apps_before = count_apps().await;
    let refused =
        |r: Result<entra_setup_core::graph::Answer, entra_setup_core::graph::GraphError>| match r {
            Ok(a) => panic!("accepted with {}", a.status),
            Err(e) => {
                assert_eq!(e.status(), Some(400), "{e}");
                assert!(
                    e.api().is_some_and(|a| a.request_id.is_some()),
                    "Graph's error carries its request-id: {e}"
                );
                e.to_string()
            }
        };
    let said = refused(
        s.graph
            .post("/applications")
            .json(serde_json::json!({"displayName": "x", "redirectUris": ["https://x"]}))
            .once()
            .send()
            .await,
    );
    assert!(said.contains("has no property 'redirectUris'"), "{said}");
    let said = refused(
        s.graph
            .post("/applications")
            .json(serde_json::json!({"displayName": "x", "isFallbackPublicClient": "yes"}))
            .once()
            .send()
            .await,
    );
    assert!(said.contains("is not a valid Edm.Boolean"), "{said}");
    let said = refused(
        s.graph
            .post("/applications")
            .json(serde_json::json!({"notes": "no name"}))
            .once()
            .send()
            .await,
    );
    assert!(said.contains("'displayName' is missing"), "{said}");
    assert_eq!(
        count_apps().await,
        apps_before,
        "nothing refused was written"
    );

    let said = refused(
        s.graph
            .get("/applications?$select=id,displayNam")
            .send()
            .await,
    );
    assert!(
        said.contains(
            "Could not find a property named 'displayNam' on type 'microsoft.graph.application'"
        ),
        "{said}"
    );
    let said = refused(
        s.graph
            .get("/servicePrincipals?$filter=appRoles/any(r:r/valuee eq 'x')")
            .send()
            .await,
    );
    assert!(said.contains("'valuee'"), "{said}");
    let said = refused(
        s.graph
            .get("/oauth2PermissionGrants?$filter=scope eq 'User.Read'")
            .send()
            .await,
    );
    assert!(
        said.contains("Request_UnsupportedQuery")
            && said.contains("property 'scope' of resource 'oAuth2PermissionGrant'"),
        "{said}"
    );
    let said = refused(s.graph.get("/applicationz").send().await);
    assert!(
        said.contains("Resource not found for the segment"),
        "{said}"
    );

    // A member's own properties through a directoryObject collection, as Graph answers them.
    let groups: Vec<serde_json::Value> = s
        .graph
        .get("/groups?$select=id&$top=1")
        .list()
        .await
        .unwrap();
    let members = format!(
        "/groups/{}/members?$select=id,displayName,userPrincipalName",
        groups[0]["id"].as_str().unwrap()
    );
    assert!(s.graph.get(members).send().await.is_ok());
}
