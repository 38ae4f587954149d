//! The SCIM verifier against two independently written SCIM servers (scim2-server from PyPI,
//! SCIMMY from npm) and against broken servers these tests build: no auth, 404 on the probe, the
//! wrong content type, case-sensitive PATCH ops, string `active` refused, no 409, a redirect to a
//! login page, and self-signed TLS.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use entra_setup_core::scim::{self, ScimAuth, ScimReport, ScimStatus, ScimTarget, VerifyOptions};
use entra_setup_core::SecretString;
use entra_setup_sim::scim_server::{self, ScimFaults};
use serde_json::Value;

use support::peers::{free_port, scim2_server, scimmy_server, TOKEN};

fn target(url: &str) -> ScimTarget {
    ScimTarget {
        url: url.to_string(),
        auth: ScimAuth::Bearer(SecretString::from(TOKEN)),
        trusted_cert: None,
    }
}

fn check_of<'a>(r: &'a ScimReport, id: &str) -> &'a scim::ScimCheck {
    r.checks
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no check {id}: {r:#?}"))
}

fn assert_no_token_in(r: &ScimReport) {
    let text = serde_json::to_string(r).unwrap();
    assert!(!text.contains(TOKEN), "the token leaked into the report");
}

#[tokio::test]
async fn scim2_server_from_pypi_refuses_entras_group_body_so_it_is_not_ready() {
    let s = scim2_server();
    let r = scim::verify(
        &target(&s.url),
        &VerifyOptions {
            write_tests: true,
            timeout: None,
            ..Default::default()
        },
    )
    .await;
    for id in [
        "test_connection_probe",
        "auth_required",
        "groups_probe",
        "create_user",
        "get_user",
        "uniqueness",
        "delete",
    ] {
        assert_eq!(
            check_of(&r, id).status,
            ScimStatus::Pass,
            "{id}: {:#?}",
            check_of(&r, id)
        );
    }
    assert_eq!(
        check_of(&r, "https").status,
        ScimStatus::Warn,
        "http on loopback is a warning"
    );
    // scim2-server refuses the legacy schema Entra lists when it creates a group ("Unknown
    // extension schemas"), so Entra's group provisioning would fail: not ready, and the only
    // failure is that one.
    let members = check_of(&r, "group_members");
    assert_eq!(members.status, ScimStatus::Fail, "{members:#?}");
    assert!(
        members.detail.contains("ADSCIM/2.0/Group") && members.detail.contains("400"),
        "{members:?}"
    );
    let failed: Vec<&str> = r
        .checks
        .iter()
        .filter(|c| c.status == ScimStatus::Fail)
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(failed, ["group_members"], "{:#?}", r.checks);
    assert!(!r.ready, "{}", r.verdict);
    assert_no_token_in(&r);
}

#[tokio::test]
async fn scimmy_from_npm_is_checked_the_same_way() {
    let s = scimmy_server();
    let r = scim::verify(
        &target(&s.url),
        &VerifyOptions {
            write_tests: true,
            timeout: None,
            ..Default::default()
        },
    )
    .await;
    for id in [
        "test_connection_probe",
        "auth_required",
        "content_type",
        "create_user",
        "get_user",
        "uniqueness",
        "delete",
    ] {
        assert_eq!(
            check_of(&r, id).status,
            ScimStatus::Pass,
            "{id}: {:#?}",
            check_of(&r, id)
        );
    }
    assert_no_token_in(&r);
    assert!(
        r.ready,
        "{:#?}",
        r.checks
            .iter()
            .filter(|c| c.status == ScimStatus::Fail)
            .collect::<Vec<_>>()
    );
    // It refuses `active` as the string "False" (Entra's default dialect) but takes the
    // aadOptscim062020 dialect, tried from PATCH to member removal.
    assert!(r.use_aad_opt_flag);
    assert_eq!(check_of(&r, "patch_entra_default").status, ScimStatus::Warn);
    assert_eq!(check_of(&r, "patch_aadopt").status, ScimStatus::Pass);
    assert_eq!(check_of(&r, "group_members").status, ScimStatus::Pass);
    assert_eq!(
        r.tenant_url.as_deref(),
        Some(format!("{}?aadOptscim062020", s.url).as_str())
    );
}

async fn serve(f: ScimFaults) -> scim_server::RunningScim {
    scim_server::serve(TOKEN, f).await.unwrap()
}

async fn run(f: ScimFaults, write: bool) -> ScimReport {
    let s = serve(f).await;
    let r = scim::verify(
        &target(&s.url),
        &VerifyOptions {
            write_tests: write,
            timeout: None,
            ..Default::default()
        },
    )
    .await;
    // Whatever failed, the test user and group are gone afterwards.
    assert!(
        s.service.users().is_empty() && s.service.groups().is_empty(),
        "left behind: {:?} {:?}",
        s.service.users(),
        s.service.groups()
    );
    r
}

#[tokio::test]
async fn a_healthy_fake_passes_everything_that_matters() {
    let r = run(ScimFaults::default(), true).await;
    assert!(
        r.ready,
        "{:#?}",
        r.checks
            .iter()
            .filter(|c| c.status == ScimStatus::Fail)
            .collect::<Vec<_>>()
    );
    assert!(!r.use_aad_opt_flag);
}

#[tokio::test]
async fn no_auth_is_a_failure() {
    let r = run(
        ScimFaults {
            no_auth: true,
            ..Default::default()
        },
        false,
    )
    .await;
    let c = check_of(&r, "auth_required");
    assert_eq!(c.status, ScimStatus::Fail);
    assert!(c.entra_impact.contains("Anyone"), "{c:?}");
    assert!(!r.ready);
}

#[tokio::test]
async fn a_404_probe_fails_test_connection_and_says_why() {
    let r = run(
        ScimFaults {
            probe_404: true,
            ..Default::default()
        },
        true,
    )
    .await;
    let c = check_of(&r, "test_connection_probe");
    assert_eq!(c.status, ScimStatus::Fail);
    assert!(
        c.detail.contains("SCIM path") && c.entra_impact.contains("Test Connection fails"),
        "{c:?}"
    );
    assert_eq!(check_of(&r, "create_user").status, ScimStatus::Skipped);
    assert!(
        c.exchanges[0].url.contains("filter=userName%20eq%20%22"),
        "exactly Entra's probe: {:?}",
        c.exchanges[0].url
    );
}

#[tokio::test]
async fn the_wrong_content_type_is_reported() {
    let r = run(
        ScimFaults {
            content_type: Some("application/json".into()),
            ..Default::default()
        },
        false,
    )
    .await;
    assert_eq!(check_of(&r, "content_type").status, ScimStatus::Warn);
    let r = run(
        ScimFaults {
            content_type: Some("text/html".into()),
            ..Default::default()
        },
        false,
    )
    .await;
    assert_eq!(check_of(&r, "content_type").status, ScimStatus::Fail);
}

#[tokio::test]
async fn case_sensitive_patch_ops_recommend_the_aad_opt_flag() {
    let r = run(
        ScimFaults {
            lowercase_ops_only: true,
            ..Default::default()
        },
        true,
    )
    .await;
    let c = check_of(&r, "patch_entra_default");
    assert_eq!(c.status, ScimStatus::Warn, "the flag handles it: {c:?}");
    assert!(
        c.entra_impact
            .contains("Handled by the aadOptscim062020 flag"),
        "{c:?}"
    );
    assert_eq!(check_of(&r, "patch_aadopt").status, ScimStatus::Pass);
    assert!(r.use_aad_opt_flag);
    assert!(
        r.ready,
        "ready once the tenant URL carries the flag: {}",
        r.verdict
    );
    assert!(
        r.tenant_url
            .as_deref()
            .is_some_and(|u| u.ends_with("?aadOptscim062020")),
        "{:?}",
        r.tenant_url
    );
    let members = check_of(&r, "group_members");
    assert_eq!(
        members.status,
        ScimStatus::Pass,
        "members are then changed with lower-case ops: {members:?}"
    );
    assert!(
        members.exchanges.iter().any(|x| x
            .request_body
            .as_ref()
            .is_some_and(|b| b["Operations"][0]["path"]
                .as_str()
                .is_some_and(|p| p.starts_with("members[value eq")))),
        "the flag's own removal format was tried: {members:#?}"
    );
}

#[tokio::test]
async fn the_flag_is_not_recommended_when_its_own_member_removal_fails() {
    // PATCH only works in the flag's dialect, but the flag's member removal is refused: the
    // flag would not save this server, so it is not ready.
    let r = run(
        ScimFaults {
            lowercase_ops_only: true,
            reject_path_filter_removal: true,
            ..Default::default()
        },
        true,
    )
    .await;
    let c = check_of(&r, "group_members");
    assert_eq!(c.status, ScimStatus::Fail, "{c:#?}");
    assert!(!r.ready, "{}", r.verdict);
}

#[tokio::test]
async fn default_member_removal_refused_recommends_the_flag_only_after_its_round_worked() {
    let r = run(
        ScimFaults {
            reject_value_list_removal: true,
            ..Default::default()
        },
        true,
    )
    .await;
    let c = check_of(&r, "group_members");
    assert_eq!(c.status, ScimStatus::Warn, "{c:#?}");
    assert!(c.detail.contains("worked from start to end"), "{c:?}");
    assert!(r.ready && r.use_aad_opt_flag, "{}", r.verdict);
    // ...and with neither removal working, no flag and not ready.
    let r = run(
        ScimFaults {
            reject_value_list_removal: true,
            reject_path_filter_removal: true,
            ..Default::default()
        },
        true,
    )
    .await;
    assert_eq!(check_of(&r, "group_members").status, ScimStatus::Fail);
    assert!(!r.ready && !r.use_aad_opt_flag, "{}", r.verdict);
}

#[tokio::test]
async fn groups_are_created_with_entras_own_body_and_a_server_refusing_it_is_not_ready() {
    let r = run(
        ScimFaults {
            reject_unknown_schemas: true,
            ..Default::default()
        },
        true,
    )
    .await;
    let c = check_of(&r, "group_members");
    assert_eq!(c.status, ScimStatus::Fail, "{c:#?}");
    assert!(
        c.detail
            .contains("http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"),
        "{c:?}"
    );
    let sent = c.exchanges[0].request_body.clone().unwrap();
    assert_eq!(
        sent["schemas"],
        serde_json::json!([
            "urn:ietf:params:scim:schemas:core:2.0:Group",
            "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
        ])
    );
    assert_eq!(sent["meta"]["resourceType"], "Group");
    assert!(!r.ready);
}

#[tokio::test]
async fn a_flag_in_the_url_without_write_checks_is_not_taken_on_trust() {
    let s = serve(ScimFaults::default()).await;
    let r = scim::verify(
        &target(&format!("{}?aadOptscim062020", s.url)),
        &VerifyOptions::default(),
    )
    .await;
    assert_eq!(check_of(&r, "aadopt_untested").status, ScimStatus::Warn);
}

#[tokio::test]
async fn nothing_listening_is_reported_as_such_with_no_tenant_url() {
    let port = free_port();
    let r = scim::verify(
        &target(&format!("http://127.0.0.1:{port}/scim/v2")),
        &VerifyOptions::default(),
    )
    .await;
    let c = check_of(&r, "reachable");
    assert_eq!(c.status, ScimStatus::Fail);
    assert!(c.detail.contains("Connection refused"), "{c:?}");
    assert!(
        !r.checks.iter().any(|c| c.id == "test_connection_probe"),
        "no verdict on answers that never came: {:#?}",
        r.checks
    );
    assert_eq!(r.tenant_url, None);
    assert!(!r.ready);
}

#[tokio::test]
async fn an_endpoint_that_never_answers_times_out_with_no_tenant_url() {
    // Accepts connections, never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = vec![];
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    let r = scim::verify(
        &target(&format!("http://127.0.0.1:{port}/scim/v2")),
        &VerifyOptions {
            write_tests: false,
            timeout: Some(std::time::Duration::from_millis(500)),
            ..Default::default()
        },
    )
    .await;
    let c = check_of(&r, "reachable");
    assert!(c.detail.contains("timed out"), "{c:?}");
    assert_eq!(r.tenant_url, None);
}

#[tokio::test]
async fn string_active_rejected_is_caught() {
    let r = run(
        ScimFaults {
            reject_string_active: true,
            ..Default::default()
        },
        true,
    )
    .await;
    let c = check_of(&r, "patch_entra_default");
    assert!(c.entra_impact.contains("disable fails"), "{c:?}");
    // A boolean `active` is what the aadOptscim062020 format sends, so the flag fixes it.
    assert_eq!(c.status, ScimStatus::Warn, "{c:?}");
    assert!(r
        .tenant_url
        .as_deref()
        .is_some_and(|u| u.ends_with("?aadOptscim062020")));
}

#[tokio::test]
async fn with_neither_patch_format_working_the_endpoint_is_not_ready() {
    let r = run(
        ScimFaults {
            reject_string_active: true,
            lowercase_ops_only: true,
            reject_no_path_replace: true,
            ..Default::default()
        },
        true,
    )
    .await;
    assert_eq!(check_of(&r, "patch_entra_default").status, ScimStatus::Fail);
    assert_eq!(check_of(&r, "patch_aadopt").status, ScimStatus::Fail);
    assert!(!r.use_aad_opt_flag && !r.ready, "{}", r.verdict);
    assert!(
        r.verdict.contains("patch_entra_default") && r.verdict.contains("patch_aadopt"),
        "{}",
        r.verdict
    );
}

#[tokio::test]
async fn a_flag_already_in_the_url_tests_the_aadopt_format_only() {
    let s = serve(ScimFaults {
        lowercase_ops_only: true,
        ..Default::default()
    })
    .await;
    let url = s.url.clone();
    let r = scim::verify(
        &target(&format!("{url}?aadOptscim062020")),
        &VerifyOptions {
            write_tests: true,
            timeout: None,
            ..Default::default()
        },
    )
    .await;
    assert!(
        r.ready,
        "{:#?}",
        r.checks
            .iter()
            .filter(|c| c.status == ScimStatus::Fail)
            .collect::<Vec<_>>()
    );
    assert_eq!(check_of(&r, "patch_entra_default").status, ScimStatus::Warn);
    assert_eq!(check_of(&r, "group_members").status, ScimStatus::Pass);
    assert_eq!(r.tenant_url, Some(format!("{url}?aadOptscim062020")));
}

#[tokio::test]
async fn duplicates_accepted_are_caught_and_cleaned_up() {
    let s = serve(ScimFaults {
        allow_duplicates: true,
        ..Default::default()
    })
    .await;
    let url = s.url.clone();
    let r = scim::verify(
        &target(&url),
        &VerifyOptions {
            write_tests: true,
            timeout: None,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(check_of(&r, "uniqueness").status, ScimStatus::Fail);
    // Nothing is left behind: the test user, its duplicate and the group were removed.
    let left: Value = reqwest::Client::new()
        .get(format!("{url}/Users"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(left["totalResults"], 0, "{left}");
    let groups: Value = reqwest::Client::new()
        .get(format!("{url}/Groups"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(groups["totalResults"], 0);
}

#[tokio::test]
async fn a_redirect_to_a_login_page_is_named() {
    let r = run(
        ScimFaults {
            redirect_to_login: true,
            ..Default::default()
        },
        false,
    )
    .await;
    let c = check_of(&r, "no_redirects");
    assert_eq!(c.status, ScimStatus::Fail);
    assert!(
        c.detail.contains("https://login.example.invalid/signin")
            && c.detail.contains("login page"),
        "{c:?}"
    );
}

#[tokio::test]
async fn plain_http_elsewhere_fails_before_any_credential_is_sent() {
    // A server on this computer under a name that is not loopback (the HTTP client's resolver
    // maps it here): the verifier must not send it the token, or anything at all.
    let (url, requests, with_auth) = support::request_counter().await;
    let addr: std::net::SocketAddr = url.trim_start_matches("http://").parse().unwrap();
    let r = scim::verify(
        &target(&format!("http://scim.example.com:{}/scim/v2", addr.port())),
        &VerifyOptions {
            resolve: vec![("scim.example.com".into(), addr)],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(check_of(&r, "https").status, ScimStatus::Fail);
    assert_eq!(r.checks.len(), 1, "nothing was sent: {:#?}", r.checks);
    assert_eq!(r.tenant_url, None);
    assert_eq!(with_auth.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test]
async fn self_signed_tls_fails_unless_explicitly_trusted() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_pem = cert.cert.pem();
    let key_pem = cert.signing_key.serialize_pem();
    let config = axum_server::tls_rustls::RustlsConfig::from_pem(
        cert_pem.clone().into_bytes(),
        key_pem.into_bytes(),
    )
    .await
    .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let service = scim_server::ScimService::new(TOKEN, ScimFaults::default());
    let router = axum::Router::new().nest("/scim", service.router());
    tokio::spawn(async move {
        axum_server::from_tcp_rustls(listener, config)
            .unwrap()
            .serve(router.into_make_service())
            .await
    });
    let url = format!("https://localhost:{port}/scim");
    let r = scim::verify(&target(&url), &VerifyOptions::default()).await;
    let c = check_of(&r, "tls");
    assert_eq!(c.status, ScimStatus::Fail, "{c:?}");
    assert!(c.detail.contains("self-signed"), "{c:?}");
    assert!(!r.ready);
    // Another certificate trusted (the wrong one, or last year's): TLS fails and says so,
    // rather than passing and blaming /Users.
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let mut wrong = target(&url);
    wrong.trusted_cert = Some(other.cert.pem().into_bytes());
    let r = scim::verify(&wrong, &VerifyOptions::default()).await;
    let c = check_of(&r, "tls");
    assert_eq!(c.status, ScimStatus::Fail, "{c:?}");
    assert!(
        c.detail.contains("even with the certificate you trusted"),
        "{c:?}"
    );
    assert!(
        r.checks.iter().all(|c| c.id != "test_connection_probe"),
        "nothing is blamed on /Users: {:#?}",
        r.checks
    );
    assert!(!r.ready);
    let mut trusted = target(&url);
    trusted.trusted_cert = Some(cert_pem.into_bytes());
    let r = scim::verify(&trusted, &VerifyOptions::default()).await;
    assert_eq!(check_of(&r, "tls").status, ScimStatus::Warn);
    assert_eq!(
        check_of(&r, "test_connection_probe").status,
        ScimStatus::Pass
    );
}

#[tokio::test]
async fn basic_credentials_are_verified_but_flagged() {
    let s = scim2_server();
    let t = ScimTarget {
        url: s.url.clone(),
        auth: ScimAuth::Basic {
            user: "admin".into(),
            password: SecretString::from("pw"),
        },
        trusted_cert: None,
    };
    let r = scim::verify(&t, &VerifyOptions::default()).await;
    assert_eq!(check_of(&r, "bearer_token").status, ScimStatus::Fail);
    assert!(check_of(&r, "bearer_token")
        .entra_impact
        .contains("only sends a bearer token"));
}

#[tokio::test]
async fn a_hostile_endpoint_cannot_echo_the_token_or_draw_on_the_terminal() {
    // Every answer: 400 with the request's Authorization header echoed, an ANSI sequence that
    // clears the screen, and a fake verdict.
    let app = axum::Router::new().fallback(|headers: axum::http::HeaderMap| async move {
        let auth = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        (
            axum::http::StatusCode::BAD_REQUEST,
            format!(
                "{{\"detail\":\"you sent {auth} and {}\u{1b}[2J\u{1b}[H PASS all checks\"}}",
                auth.trim_start_matches("Bearer ")
            ),
        )
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/scim/v2", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let r = scim::verify(&target(&url), &VerifyOptions::default()).await;
    let all = serde_json::to_string(&r).unwrap();
    assert!(!all.contains(TOKEN), "the token came back in the report");
    // JSON escapes a raw ESC as \u001b: neither form may be there.
    assert!(
        !all.contains('\u{1b}') && !all.contains("\\u001b"),
        "a control character reached the report: {all}"
    );
    assert!(all.contains("<redacted>"), "{all}");
}
