//! Sign-in and tenant discovery against the simulated tenant, with faults on, and every Graph
//! body checked against Microsoft's CSDL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use entra_setup_core::auth::{AuthError, BrowserOpener, FollowRedirects, Method, SignInEvent};
use entra_setup_core::keychain::{self, UnavailableStore};
use entra_setup_core::session::{self, SessionError};
use entra_setup_core::tenant::{LicenceTier, RoleSource, Severity};
use entra_setup_sim::{Approval, Faults, SimConfig};
use support::*;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn browser_sign_in_shows_tenant_roles_and_licence() {
    let sim = sim_as("adele@contoso.com").await;
    let store = memory();
    let (on_event, events) = recorder();
    let signed = session::sign_in(
        &ctx(store.clone()),
        &request(&sim, "contoso.com", Method::Browser),
        on_event,
        &CancellationToken::new(),
    )
    .await
    .expect("sign-in succeeds");
    let s = &signed.session.summary;
    assert_eq!(s.tenant_name, "Contoso");
    assert_eq!(s.default_domain, "contoso.com");
    assert_eq!(s.verified_domains.len(), 2);
    assert_eq!(s.user.user_principal_name, "adele@contoso.com");
    assert_eq!(s.licence, LicenceTier::P1);
    assert_eq!(s.licence_source.as_deref(), Some("SPE_E3"));
    assert!(s
        .roles
        .iter()
        .any(|r| r.name == "Global Administrator" && r.source == RoleSource::Active));
    assert!(
        s.capabilities.iter().all(|c| c.id == "pim" || c.allowed),
        "{:#?}",
        s.capabilities
    );
    assert!(signed.notices.is_empty());
    let kinds: Vec<String> = events
        .lock()
        .unwrap()
        .iter()
        .map(|e| format!("{e:?}"))
        .collect();
    assert!(kinds[0].starts_with("TenantFound"), "{kinds:?}");
    assert!(
        kinds.iter().any(|k| k.starts_with("BrowserOpened")),
        "{kinds:?}"
    );
    // The refresh token is in the store under cloud + tenant + user, and only there.
    let key = keychain::refresh_token_key("custom-127.0.0.1", &s.tenant_id, &s.user.id);
    assert!(keychain::get(&store, &key).await.unwrap().is_some());
    assert_graph_traffic_matches_csdl(&sim);
}

#[tokio::test]
async fn sign_in_rides_out_throttling_and_outages() {
    let sim = sim_as("lee@fabrikam.onmicrosoft.com").await;
    sim.set_faults(Faults {
        latency_ms: 15,
        throttle_every: 2,
        retry_after_secs: 1,
        unavailable_every: 3,
        ..Default::default()
    });
    let signed = sign_in(&sim, memory(), "fabrikam.onmicrosoft.com", Method::Browser)
        .await
        .expect("sign-in succeeds despite 429s and 503s");
    let s = &signed.session.summary;
    assert_eq!(s.licence, LicenceTier::Free);
    let group = s
        .capabilities
        .iter()
        .find(|c| c.id == "group_assignment")
        .unwrap();
    assert!(!group.allowed);
    assert!(group
        .detail
        .contains("Assigned groups only needs Entra ID P1; this tenant is Free"));
    let x = sim.exchanges();
    assert!(x.iter().any(|e| e.status == 429), "a 429 was served");
    assert!(x.iter().any(|e| e.status == 503), "a 503 was served");
    // Every retried request got a fresh client-request-id.
    let ids: std::collections::HashSet<_> = x
        .iter()
        .filter_map(|e| e.client_request_id.clone())
        .collect();
    assert_eq!(ids.len(), x.len());
    assert_graph_traffic_matches_csdl(&sim);
}

#[tokio::test]
async fn graph_errors_carry_the_request_id() {
    let sim = sim_as("adele@contoso.com").await;
    sim.set_faults(Faults {
        not_found_first: vec![entra_setup_sim::NotFoundFault {
            path_prefix: "/me".into(),
            count: 10,
        }],
        ..Default::default()
    });
    let (on_event, _) = recorder();
    let err = match session::sign_in(
        &ctx(memory()),
        &request(&sim, "contoso.com", Method::Browser),
        on_event,
        &CancellationToken::new(),
    )
    .await
    {
        Err(SessionError::Graph(e)) => e,
        Err(e) => panic!("expected a Graph error, got {e}"),
        Ok(_) => panic!("expected a Graph error"),
    };
    let api = err.api().expect("an API error");
    assert_eq!(api.status, 404);
    assert_eq!(api.code, "Request_ResourceNotFound");
    let rid = api.request_id.clone().expect("request-id kept");
    assert!(err.to_string().contains(&rid), "{err}");
    assert!(sim.exchanges().iter().any(|e| e.request_id == rid));
}

#[tokio::test]
async fn device_code_sign_in_shows_the_code_then_completes() {
    let sim = sim_as("megan@contoso.com").await;
    let (on_event, events) = recorder();
    let signed = session::sign_in(
        &ctx(memory()),
        &request(&sim, "", Method::DeviceCode),
        on_event,
        &CancellationToken::new(),
    )
    .await
    .expect("device-code sign-in succeeds");
    assert_eq!(signed.session.summary.tenant_name, "Contoso");
    assert!(signed
        .session
        .summary
        .advice
        .iter()
        .any(|a| a.id == "no_privileged_role"));
    let events = events.lock().unwrap();
    let code = events
        .iter()
        .find_map(|e| match e {
            SignInEvent::DeviceCode {
                user_code,
                verification_uri,
                expires_at,
                ..
            } => Some((user_code.clone(), verification_uri.clone(), *expires_at)),
            _ => None,
        })
        .expect("the code was shown");
    assert_eq!(code.0.len(), 9);
    assert!(code.1.ends_with("/devicelogin"));
    assert!(code.2 > chrono::Utc::now() + chrono::Duration::minutes(14));
}

#[tokio::test]
async fn device_code_honours_slow_down() {
    let sim = sim_with(SimConfig {
        approval: Approval::Auto {
            upn: "adele@contoso.com".into(),
            device_polls: 2,
        },
        device_interval_secs: 1,
        faults: Faults {
            device_slow_down_once: true,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let (on_event, _) = recorder();
    session::sign_in(
        &ctx(memory()),
        &request(&sim, "contoso.com", Method::DeviceCode),
        on_event,
        &CancellationToken::new(),
    )
    .await
    .expect("sign-in succeeds after slow_down");
    let polls = sim.device_poll_times();
    assert!(polls.len() >= 3, "{polls:?}");
    // After slow_down the interval grows from 1 s to 6 s.
    let gap = polls[1] - polls[0];
    assert!(
        gap >= chrono::Duration::milliseconds(5900),
        "second poll came {gap:?} after the first"
    );
}

#[tokio::test]
async fn expired_device_code_says_so() {
    let sim = sim_with(SimConfig {
        device_code_lifetime_secs: 2,
        device_interval_secs: 1,
        ..Default::default()
    })
    .await;
    let err = sign_in(&sim, memory(), "contoso.com", Method::DeviceCode)
        .await
        .err()
        .expect("the code expires");
    assert!(
        matches!(err, SessionError::Auth(AuthError::DeviceCodeExpired)),
        "{err}"
    );
    assert!(err
        .to_string()
        .contains("expired before sign-in was completed"));
}

#[tokio::test]
async fn declined_device_code_says_so() {
    let sim = Arc::new(
        sim_with(SimConfig {
            device_interval_secs: 1,
            ..Default::default()
        })
        .await,
    );
    let sim2 = sim.clone();
    let on_event: Arc<dyn Fn(SignInEvent) + Send + Sync> = Arc::new(move |e| {
        if let SignInEvent::DeviceCode { user_code, .. } = e {
            sim2.decline_device_code(&user_code).unwrap();
        }
    });
    let err = session::sign_in(
        &ctx(memory()),
        &request(&sim, "contoso.com", Method::DeviceCode),
        on_event,
        &CancellationToken::new(),
    )
    .await
    .err()
    .expect("declined");
    assert!(
        matches!(err, SessionError::Auth(AuthError::DeviceCodeDeclined)),
        "{err}"
    );
}

#[tokio::test]
async fn consent_denied_in_the_browser_is_explained() {
    let sim = sim_as("adele@contoso.com").await;
    sim.set_faults(Faults {
        deny_consent: true,
        ..Default::default()
    });
    let err = sign_in(&sim, memory(), "contoso.com", Method::Browser)
        .await
        .err()
        .expect("denied");
    match &err {
        SessionError::Auth(AuthError::Denied { error, aadsts, .. }) => {
            assert_eq!(error, "access_denied");
            assert_eq!(*aadsts, Some(65004));
        }
        other => panic!("expected a denial, got {other}"),
    }
    assert!(
        err.to_string()
            .contains("consent to the wizard's permissions was declined"),
        "{err}"
    );
}

#[tokio::test]
async fn unknown_tenant_domain_is_reported_before_any_browser() {
    let sim = sim_as("adele@contoso.com").await;
    let (on_event, events) = recorder();
    let err = session::sign_in(
        &ctx(memory()),
        &request(&sim, "nosuchtenant.example", Method::Browser),
        on_event,
        &CancellationToken::new(),
    )
    .await
    .err()
    .expect("unknown");
    assert!(
        matches!(err, SessionError::Auth(AuthError::UnknownTenant { .. })),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("No Microsoft Entra tenant uses 'nosuchtenant.example'"),
        "{err}"
    );
    assert!(events.lock().unwrap().is_empty(), "no browser was opened");
}

#[tokio::test]
async fn malformed_tenant_id_is_rejected_without_network() {
    let sim = sim_as("adele@contoso.com").await;
    let err = sign_in(
        &sim,
        memory(),
        "b2d5c2a4-6f1e-4c8b-9a3d-1e2f3a4b5c6",
        Method::Browser,
    )
    .await
    .err()
    .expect("malformed");
    assert!(err.to_string().contains("malformed"), "{err}");
    assert!(sim.exchanges().is_empty());
}

/// Before the real browser answers, a local process (or a page that found the port) sends the
/// loopback listener a forged `state`, no `state`, and a request under another Host name; each
/// is refused while the sign-in goes on. Records what the listener answered them.
struct StrayRequestsFirst {
    http: reqwest::Client,
    real: FollowRedirects,
    answers: Arc<std::sync::Mutex<Vec<(u16, String)>>>,
}
impl BrowserOpener for StrayRequestsFirst {
    fn open(&self, url: String) -> entra_setup_core::auth::OpenFuture {
        let (http, answers) = (self.http.clone(), self.answers.clone());
        let real = self.real.open(url.clone());
        Box::pin(async move {
            let u = url::Url::parse(&url).unwrap();
            let redirect = u
                .query_pairs()
                .find(|(k, _)| k == "redirect_uri")
                .unwrap()
                .1
                .to_string();
            let port = url::Url::parse(&redirect).unwrap().port().unwrap();
            for (path, host) in [
                ("?code=stolen&state=forged", format!("127.0.0.1:{port}")),
                ("?code=stolen", format!("127.0.0.1:{port}")),
                ("?code=stolen&state=forged", format!("evil.example:{port}")),
            ] {
                let r = http
                    .get(format!("http://127.0.0.1:{port}/{path}"))
                    .header(reqwest::header::HOST, host)
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let text = r.text().await.unwrap_or_default();
                answers.lock().unwrap().push((status, text));
            }
            real.await
        })
    }
}

/// A browser tab the admin closed: nothing ever comes back.
struct ClosedTab;
impl BrowserOpener for ClosedTab {
    fn open(&self, _url: String) -> entra_setup_core::auth::OpenFuture {
        Box::pin(async { Ok(()) })
    }
}

#[tokio::test]
async fn stray_requests_to_the_loopback_do_not_end_the_sign_in() {
    let sim = sim_as("adele@contoso.com").await;
    let mut c = ctx(memory());
    let http = entra_setup_core::http::client();
    let answers = Arc::new(std::sync::Mutex::new(vec![]));
    c.opener = Arc::new(StrayRequestsFirst {
        http: http.clone(),
        real: FollowRedirects::new(http),
        answers: answers.clone(),
    });
    let signed = sign_in_with(&c, &sim, "contoso.com", Method::Browser)
        .await
        .expect("the real answer still signs in");
    assert_eq!(
        signed.session.account.user_principal_name,
        "adele@contoso.com"
    );
    let answers = answers.lock().unwrap().clone();
    assert_eq!(
        answers.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        [400, 400, 421],
        "{answers:?}"
    );
    assert!(answers[0].1.contains("still waiting"), "{}", answers[0].1);
}

#[tokio::test]
async fn closed_tab_times_out_with_advice() {
    let sim = sim_as("adele@contoso.com").await;
    let mut c = ctx(memory());
    c.opener = Arc::new(ClosedTab);
    c.timeout = Duration::from_millis(600);
    let err = sign_in_with(&c, &sim, "contoso.com", Method::Browser)
        .await
        .err()
        .expect("times out");
    assert!(
        matches!(err, SessionError::Auth(AuthError::TimedOut { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("If you closed the sign-in tab"));
}

#[tokio::test]
async fn sign_in_can_be_cancelled() {
    let sim = sim_as("adele@contoso.com").await;
    let mut c = ctx(memory());
    c.opener = Arc::new(ClosedTab);
    let cancel = CancellationToken::new();
    let cancel2 = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        cancel2.cancel();
    });
    let (on_event, _) = recorder();
    let err = session::sign_in(
        &c,
        &request(&sim, "contoso.com", Method::Browser),
        on_event,
        &cancel,
    )
    .await
    .err()
    .expect("cancelled");
    assert!(
        matches!(err, SessionError::Auth(AuthError::Cancelled)),
        "{err}"
    );
}

#[tokio::test]
async fn next_launch_resumes_silently_until_the_session_is_revoked() {
    let sim = sim_as("diego@contoso.com").await;
    let store = memory();
    let signed = sign_in(&sim, store.clone(), "contoso.com", Method::Browser)
        .await
        .unwrap();
    let record = signed.session.account.clone();
    drop(signed);
    // A new process: a new context over the same keychain.
    let resumed = session::resume(&ctx(store.clone()), &record)
        .await
        .expect("resumes");
    assert_eq!(
        resumed.summary.user.user_principal_name,
        "diego@contoso.com"
    );
    assert!(
        resumed
            .summary
            .capabilities
            .iter()
            .find(|c| c.id == "application_permissions")
            .unwrap()
            .allowed
    );
    // A saved record changed to send the refresh token elsewhere: a fresh sign-in, and nothing
    // reaches that host.
    let (elsewhere, requests, _) = request_counter().await;
    let mut tampered = record.clone();
    tampered.token_endpoint = format!("{elsewhere}/oauth2/v2.0/token");
    let err = session::resume(&ctx(store.clone()), &tampered)
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(err, SessionError::Auth(AuthError::SessionExpired { .. }))
            && err.to_string().contains("not on 127.0.0.1"),
        "{err}"
    );
    assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 0);
    sim.revoke_refresh_tokens();
    let err = session::resume(&ctx(store.clone()), &record)
        .await
        .err()
        .expect("revoked");
    assert!(
        matches!(err, SessionError::Auth(AuthError::SessionExpired { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("Sign in again"));
    session::sign_out(&ctx(store.clone()), &record, Some(&resumed))
        .await
        .unwrap();
    let err = session::resume(&ctx(store), &record)
        .await
        .err()
        .expect("signed out");
    assert!(err.to_string().contains("no saved sign-in"), "{err}");
}

#[tokio::test]
async fn a_rejected_access_token_is_refreshed_once() {
    let sim = sim_as("adele@contoso.com").await;
    let signed = sign_in(&sim, memory(), "contoso.com", Method::Browser)
        .await
        .unwrap();
    let graph = &signed.session.graph;
    sim.set_faults(Faults {
        unauthorized_next: 1,
        ..Default::default()
    });
    sim.clear_exchanges();
    let me: serde_json::Value = graph
        .get("/me?$select=id")
        .send_json()
        .await
        .expect("succeeds after one refresh");
    assert!(me["id"].is_string());
    assert_eq!(
        sim.exchanges().iter().map(|e| e.status).collect::<Vec<_>>(),
        vec![401, 200]
    );
    sim.set_faults(Faults {
        unauthorized_next: 5,
        ..Default::default()
    });
    let err = graph
        .get("/me?$select=id")
        .send()
        .await
        .err()
        .expect("a second 401 is not hidden");
    assert_eq!(err.status(), Some(401));
}

#[tokio::test]
async fn keychain_unavailable_still_signs_in_but_warns() {
    let sim = sim_as("adele@contoso.com").await;
    let store: Arc<dyn keychain::SecretStore> = Arc::new(UnavailableStore(
        "no Secret Service on the session bus".into(),
    ));
    let signed = sign_in(&sim, store, "contoso.com", Method::Browser)
        .await
        .expect("signed in anyway");
    let n = signed
        .notices
        .iter()
        .find(|n| n.id == "keychain_unavailable")
        .expect("a notice");
    assert_eq!(n.severity, Severity::Warning);
    assert!(
        n.detail.contains("no Secret Service on the session bus")
            && n.detail.contains("sign in again"),
        "{}",
        n.detail
    );
}

#[tokio::test]
async fn pim_eligible_roles_are_shown_but_do_not_count() {
    let sim = sim_as("isaiah@northwindtraders.com").await;
    let signed = sign_in(&sim, memory(), "northwindtraders.com", Method::Browser)
        .await
        .unwrap();
    let s = &signed.session.summary;
    assert_eq!(s.licence, LicenceTier::P2);
    assert!(s
        .roles
        .iter()
        .any(|r| r.name == "Privileged Role Administrator" && r.source == RoleSource::Eligible));
    assert!(s
        .roles
        .iter()
        .any(|r| r.name == "Application Administrator" && r.source == RoleSource::Active));
    assert!(s.advice.iter().any(|a| a.id == "pim_eligible"));
    assert_graph_traffic_matches_csdl(&sim);
}

/// Collects everything tracing writes, at every level.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_token_reaches_the_logs() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || sink.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let sim = sim_as("adele@contoso.com").await;
    let store = memory();
    let signed = sign_in(&sim, store.clone(), "contoso.com", Method::Browser)
        .await
        .unwrap();
    let s = &signed.session.summary;
    let key = keychain::refresh_token_key("custom-127.0.0.1", &s.tenant_id, &s.user.id);
    let refresh = keychain::get(&store, &key).await.unwrap().unwrap();
    let access = signed
        .session
        .tokens()
        .access_token(entra_setup_core::auth::StepScopes::SignIn.scopes())
        .await
        .unwrap();
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("signed in"), "the sign-in was logged: {logs}");
    use entra_setup_core::ExposeSecret;
    assert!(
        !logs.contains(refresh.expose_secret()),
        "refresh token in the logs"
    );
    assert!(
        !logs.contains(access.expose_secret()),
        "access token in the logs"
    );
    assert!(!logs.contains("eyJ"), "something JWT-shaped in the logs");
    // Debug output of the token set is redacted too.
    assert!(!format!("{:?}", signed.session.summary).contains("eyJ"));
}
