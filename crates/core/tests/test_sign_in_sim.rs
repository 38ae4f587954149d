//! The test sign-in with its claim inspector against the simulated tenant: a SAML app and an
//! OpenID Connect app each sign a person in through a temporary loopback redirect URI that is
//! gone afterwards (also after a crash), the simulator's signed SAMLResponse verifies while a
//! tampered one, one for another request and one checked against the wrong certificate are
//! refused, and group overage is reported. Every Graph body is checked against the CSDL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use entra_setup_core::auth::FollowRedirects;
use entra_setup_core::saml::{self, ResponseError};
use entra_setup_core::setup::flow;
use entra_setup_core::setup::journal::Event;
use entra_setup_core::setup::Intent;
use entra_setup_sim::{Approval, Faults};
use support::*;
use tokio_util::sync::CancellationToken;

const ENTITY_ID: &str = "https://files.contoso.com/saml/metadata";
const REPLY_URL: &str = "https://files.contoso.com/saml/acs";

fn saml_intent() -> Intent {
    intent_for(
        "saml",
        &[
            ("name", "Acme Files"),
            ("entity_id", ENTITY_ID),
            ("reply_url", REPLY_URL),
            ("groups", "SecurityGroup"),
        ],
    )
}

fn reply_urls(sim: &entra_setup_sim::SimHandle, tenant: &str, unique: &str) -> serde_json::Value {
    let d = sim.directory(tenant).unwrap();
    let app = d
        .applications
        .iter()
        .find(|a| a["uniqueName"] == unique)
        .unwrap();
    app["web"]["redirectUris"].clone()
}

#[tokio::test]
async fn a_saml_test_sign_in_shows_the_claims_and_leaves_no_reply_url_behind() {
    let sim = sim_as("adele@contoso.com").await;
    let (s, _) = admin_with(&sim, "contoso.com", false).await;
    sim.set_faults(Faults::realistic());
    let dir = data_dir("entra-setup-test-sign-in");
    let prepared = flow::prepare(&s, &dir, saml_intent(), &[]).await.unwrap();
    let run = apply_run(&s, prepared).await;
    let tenant = s.account.tenant_id.clone();
    let unique = run.prepared.intent.template_unique_name();
    let http = entra_setup_core::http::client();
    let opener = FollowRedirects::new(http.clone());

    let report = run
        .test_sign_in(&s, &http, &opener, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(report.protocol, "SAML");
    assert_eq!(report.identity, "adele@contoso.com");
    assert_eq!(report.identity_source, "NameID (emailAddress format)");
    let claim = |short: &str| {
        report
            .claims
            .iter()
            .find(|c| c.short == short)
            .map(|c| c.values.clone())
            .unwrap_or_default()
    };
    assert_eq!(claim("tenantid"), [tenant.as_str()]);
    assert_eq!(claim("emailaddress"), ["adele@contoso.com"]);
    assert_eq!(claim("name"), ["adele@contoso.com"]);
    // Groups arrive as object ids; the inspector names them.
    let names: Vec<_> = report
        .groups
        .iter()
        .filter_map(|g| g.name.clone())
        .collect();
    assert!(!report.groups.is_empty(), "{report:#?}");
    assert_eq!(names.len(), report.groups.len(), "{report:#?}");
    assert!(report.overage.is_none());
    assert!(
        report.verified.contains("assertion signature verified"),
        "{}",
        report.verified
    );
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    // The temporary reply URL is gone, the service's own is kept, and the journal says so.
    assert_eq!(
        reply_urls(&sim, &tenant, &unique),
        serde_json::json!([REPLY_URL])
    );
    assert!(run
        .prepared
        .journal
        .temporary_redirects()
        .unwrap()
        .is_empty());

    // Someone with more groups than a SAML token carries: the inspector says what happened.
    sim.set_approval(Approval::Auto {
        upn: "patti@contoso.com".into(),
        device_polls: 1,
    });
    let report = run
        .test_sign_in(&s, &http, &opener, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(report.identity, "patti@contoso.com");
    assert!(report.groups.is_empty());
    assert!(
        report.overage.as_deref().unwrap().contains("150"),
        "{report:#?}"
    );

    // A crash between adding the temporary URL and removing it: the next time the setup is
    // opened, the journal's record removes it.
    let app_object_id = run.saml.as_ref().unwrap().app_object_id.clone();
    let leftover = "http://127.0.0.1:9/saml".to_string();
    run.prepared
        .journal
        .note(
            "test-sign-in-crashed",
            Event::TemporaryRedirect {
                app_object_id: app_object_id.clone(),
                platform: "web".into(),
                uri: leftover.clone(),
            },
        )
        .unwrap();
    s.graph
        .patch(format!("applications/{app_object_id}"))
        .json(serde_json::json!({"web": {"redirectUris": [REPLY_URL, leftover]}}))
        .send()
        .await
        .unwrap();
    let again = flow::prepare(&s, &dir, saml_intent(), &[]).await.unwrap();
    assert_eq!(
        reply_urls(&sim, &tenant, &unique),
        serde_json::json!([REPLY_URL])
    );
    assert!(again.journal.temporary_redirects().unwrap().is_empty());
    assert!(again.plan.changes.is_empty(), "{:?}", again.plan.changes);

    sim.set_faults(Faults::default());
    assert_graph_traffic_matches_csdl(&sim);
}

/// Asks the simulator's SAML endpoint for a response to the service's real reply URL (as the
/// service itself would), returning the request and the Base64 SAMLResponse.
async fn response_for(
    sim: &entra_setup_sim::SimHandle,
    tenant: &str,
) -> (saml::AuthnRequest, String) {
    let sso = format!("{}/{tenant}/saml2", sim.base_url());
    let request = saml::authn_request(ENTITY_ID, REPLY_URL, &sso, chrono::Utc::now());
    let url = saml::redirect_url(&sso, &request, "relay").unwrap();
    let page = reqwest::get(url).await.unwrap().text().await.unwrap();
    let b64 = saml_response_in(&page);
    (request, b64)
}

#[tokio::test]
async fn a_tampered_or_misdirected_saml_response_is_refused() {
    let sim = sim_as("adele@contoso.com").await;
    let (s, _) = admin_with(&sim, "contoso.com", false).await;
    let dir = data_dir("entra-setup-test-sign-in");
    let prepared = flow::prepare(&s, &dir, saml_intent(), &[]).await.unwrap();
    let run = apply_run(&s, prepared).await;
    let tenant = s.account.tenant_id.clone();
    let sp_id = run.saml.as_ref().unwrap().sp_id.clone();
    let cert = sim
        .directory(&tenant)
        .unwrap()
        .signing_keys
        .iter()
        .find(|k| k.sp_id == sp_id)
        .unwrap()
        .cert_der
        .clone();
    let idp = saml::idp_entity_id(&tenant);
    let (request, b64) = response_for(&sim, &tenant).await;
    let certificates = [cert];
    let expected = saml::Expected {
        request_id: &request.id,
        acs: REPLY_URL,
        audience: ENTITY_ID,
        idp_entity_id: &idp,
        certificates: &certificates,
        now: chrono::Utc::now(),
    };
    let ok = saml::verify_response(&b64, &expected).unwrap();
    assert_eq!(ok.name_id, "adele@contoso.com");
    assert_eq!(ok.signed_element, "Assertion");

    // The same response with another person's name in it: the digest no longer matches.
    let forged = forged_response(&b64);
    let err = saml::verify_xml(&forged, &expected).unwrap_err();
    assert!(matches!(err, ResponseError::Signature(_)), "{err}");

    // A valid response to another request (a replay) is refused before the signature matters.
    let other = saml::Expected {
        request_id: "_another",
        ..expected
    };
    assert!(matches!(
        saml::verify_response(&b64, &other).unwrap_err(),
        ResponseError::Mismatch("InResponseTo", ..)
    ));

    // Checked against a certificate that is not the app's: refused.
    let stranger = rcgen::generate_simple_self_signed(vec!["stranger".into()]).unwrap();
    let strangers = [stranger.cert.der().to_vec()];
    let wrong_cert = saml::Expected {
        request_id: &request.id,
        certificates: &strangers,
        ..expected
    };
    assert!(matches!(
        saml::verify_response(&b64, &wrong_cert).unwrap_err(),
        ResponseError::Signature(_)
    ));

    // Outside its validity window (a clock an hour and a half ahead): refused.
    let late = saml::Expected {
        now: chrono::Utc::now() + chrono::Duration::minutes(90),
        ..expected
    };
    assert!(matches!(
        saml::verify_response(&b64, &late).unwrap_err(),
        ResponseError::OutsideValidity(..)
    ));
}

#[tokio::test]
async fn an_oidc_test_sign_in_shows_the_id_token_claims() {
    let sim = sim_as("adele@contoso.com").await;
    let (s, _) = admin_with(&sim, "contoso.com", false).await;
    sim.set_faults(Faults::realistic());
    let want = intent_for(
        "oidc",
        &[
            ("name", "Team Wiki"),
            ("redirect_uris", "https://wiki.contoso.com/oidc/callback"),
            ("groups", "SecurityGroup"),
        ],
    );
    let dir = data_dir("entra-setup-test-sign-in");
    let prepared = flow::prepare(&s, &dir, want, &[]).await.unwrap();
    let run = apply_run(&s, prepared).await;
    let http = entra_setup_core::http::client();
    let opener = Arc::new(FollowRedirects::new(http.clone()));
    let report = run
        .test_sign_in(&s, &http, opener.as_ref(), &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(report.protocol, "OpenID Connect");
    assert_eq!(report.identity, "adele@contoso.com");
    assert_eq!(report.identity_source, "the email claim");
    let claim = |name: &str| {
        report
            .claims
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.values.clone())
    };
    assert_eq!(
        claim("preferred_username"),
        Some(vec!["adele@contoso.com".to_string()])
    );
    assert!(claim("oid").is_some());
    assert!(
        !report.groups.is_empty() && report.groups.iter().all(|g| g.name.is_some()),
        "{report:#?}"
    );
    // The temporary redirect URI (mobile and desktop platform) is gone; the service's stays.
    let tenant = s.account.tenant_id.clone();
    let d = sim.directory(&tenant).unwrap();
    let app = d
        .applications
        .iter()
        .find(|a| a["appId"] == run.app_id.as_str())
        .unwrap();
    let public = app["publicClient"]["redirectUris"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(public.is_empty(), "{public:?}");
    assert_eq!(
        app["web"]["redirectUris"],
        serde_json::json!(["https://wiki.contoso.com/oidc/callback"])
    );

    // Over the id token's 200 groups: the overage marker, explained.
    sim.set_approval(Approval::Auto {
        upn: "patti@contoso.com".into(),
        device_polls: 1,
    });
    let report = run
        .test_sign_in(&s, &http, opener.as_ref(), &CancellationToken::new())
        .await
        .unwrap();
    assert!(
        report.overage.as_deref().unwrap().contains("_claim_names"),
        "{report:#?}"
    );

    sim.set_faults(Faults::default());
    assert_graph_traffic_matches_csdl(&sim);
}

/// "Assignment required" is honoured: a user nobody assigned is refused (AADSTS50105) and the
/// test sign-in says so in Entra's words; once the user is assigned, the same test passes.
#[tokio::test]
async fn an_unassigned_user_is_refused_once_assignment_is_required() {
    let sim = sim_as("adele@contoso.com").await;
    let (s, _) = admin_with(&sim, "contoso.com", false).await;
    let dir = data_dir("entra-setup-test-sign-in-assigned");
    let prepared = flow::prepare(&s, &dir, saml_intent(), &[]).await.unwrap();
    let run = apply_run(&s, prepared).await;
    let sp_id = run.saml.as_ref().unwrap().sp_id.clone();
    s.graph
        .patch(format!("/servicePrincipals/{sp_id}"))
        .json(serde_json::json!({"appRoleAssignmentRequired": true}))
        .send()
        .await
        .unwrap();
    let http = entra_setup_core::http::client();
    let opener = FollowRedirects::new(http.clone());
    let refused = run
        .test_sign_in(&s, &http, &opener, &CancellationToken::new())
        .await
        .expect_err("Adele is not assigned");
    let said = refused.to_string();
    assert!(said.contains("AADSTS50105"), "{said}");
    assert!(
        said.contains("adele@contoso.com"),
        "names who was refused: {said}"
    );

    let adele = s.summary.user.id.clone();
    s.graph
        .post(format!("/servicePrincipals/{sp_id}/appRoleAssignedTo"))
        .json(serde_json::json!({"principalId": adele, "resourceId": sp_id, "appRoleId": entra_setup_sim::USER_ROLE}))
        .send()
        .await
        .unwrap();
    let report = run
        .test_sign_in(&s, &http, &opener, &CancellationToken::new())
        .await
        .expect("an assigned user signs in");
    assert_eq!(report.identity, "adele@contoso.com");
    assert_graph_traffic_matches_csdl(&sim);
}
