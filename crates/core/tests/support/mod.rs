//! Shared helpers for the core's integration tests against the simulated tenant.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod peers;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use entra_setup_core::auth::{FollowRedirects, Method, SignInEvent};
use entra_setup_core::cloud::CloudChoice;
use entra_setup_core::graph::RetryPolicy;
use entra_setup_core::keychain::{MemoryStore, SecretStore};
use entra_setup_core::session::{Context, SignInRequest};
use entra_setup_sim::{Approval, SimConfig, SimHandle};

pub async fn sim_as(upn: &str) -> SimHandle {
    sim_with(SimConfig {
        approval: Approval::Auto {
            upn: upn.into(),
            device_polls: 1,
        },
        device_interval_secs: 1,
        ..Default::default()
    })
    .await
}

pub async fn sim_with(config: SimConfig) -> SimHandle {
    let sim = entra_setup_sim::start(config)
        .await
        .expect("the simulator starts");
    assert!(
        sim.checks_schema(),
        "every simulator-backed test checks requests against Graph's schema as they arrive"
    );
    sim
}

/// Short pauses between tries for a simulator that answers at once; the budgets stay Entra's
/// (they are durations, which no test shortens).
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        ..Default::default()
    }
}

pub fn ctx(store: Arc<dyn SecretStore>) -> Context {
    ctx_with(store, fast_retry())
}

pub fn ctx_with(store: Arc<dyn SecretStore>, retry: RetryPolicy) -> Context {
    let http = entra_setup_core::http::client();
    let mut c = Context::new(http.clone(), store, Arc::new(FollowRedirects::new(http)));
    c.retry = retry;
    c
}

pub fn memory() -> Arc<dyn SecretStore> {
    Arc::new(MemoryStore::default())
}

pub fn request(sim: &SimHandle, tenant: &str, method: Method) -> SignInRequest {
    SignInRequest {
        cloud: CloudChoice::Custom {
            authority: sim.base_url().into(),
            graph: sim.base_url().into(),
        },
        tenant: tenant.into(),
        method,
        client_id: None,
    }
}

/// Collects sign-in events for later assertions.
/// A callback that records what it is given, and the record.
pub type Collector<T> = (Arc<dyn Fn(T) + Send + Sync>, Arc<Mutex<Vec<T>>>);

pub fn collector<T: Send + 'static>() -> Collector<T> {
    let all = Arc::new(Mutex::new(vec![]));
    let a = all.clone();
    (Arc::new(move |e| a.lock().unwrap().push(e)), all)
}

/// Collects sign-in events for later assertions.
pub fn recorder() -> Collector<SignInEvent> {
    collector()
}

/// Checks every Graph request body the core sent and every successful response the simulator
/// gave against Microsoft's Graph v1.0 CSDL, and fails listing every violation.
pub fn assert_graph_traffic_matches_csdl(sim: &SimHandle) {
    assert!(!sim.exchanges().is_empty(), "no Graph traffic was recorded");
    let violations = sim.schema_violations();
    assert!(
        violations.is_empty(),
        "Graph traffic violates the CSDL:\n{}",
        violations.join("\n")
    );
}

/// Signs in with a given context, ignoring progress events.
pub async fn sign_in_with(
    c: &Context,
    sim: &SimHandle,
    tenant: &str,
    method: Method,
) -> Result<entra_setup_core::session::SignedIn, entra_setup_core::session::SessionError> {
    let (on_event, _) = recorder();
    let cancel = tokio_util::sync::CancellationToken::new();
    entra_setup_core::session::sign_in(c, &request(sim, tenant, method), on_event, &cancel).await
}

/// Signs in with the default test context over `store`, ignoring progress events.
pub async fn sign_in(
    sim: &SimHandle,
    store: Arc<dyn SecretStore>,
    tenant: &str,
    method: Method,
) -> Result<entra_setup_core::session::SignedIn, entra_setup_core::session::SessionError> {
    sign_in_with(&ctx(store), sim, tenant, method).await
}

/// Signs in as the simulator's admin to `tenant` and consents to the permissions of the setup
/// steps (with provisioning when `provisions`). Also says whether more consent was asked for.
pub async fn admin_with(
    sim: &SimHandle,
    tenant: &str,
    provisions: bool,
) -> (entra_setup_core::session::Session, bool) {
    admin_in(&ctx(memory()), sim, tenant, provisions).await
}

/// [`admin_with`] in a given context (e.g. the product's own retry policy).
pub async fn admin_in(
    c: &Context,
    sim: &SimHandle,
    tenant: &str,
    provisions: bool,
) -> (entra_setup_core::session::Session, bool) {
    let signed = sign_in_with(c, sim, tenant, Method::Browser)
        .await
        .expect("signed in");
    let (on_event, _) = recorder();
    let asked = entra_setup_core::session::ensure_scopes(
        c,
        &signed.session,
        entra_setup_core::auth::StepScopes::setup(provisions),
        Method::Browser,
        on_event,
        &tokio_util::sync::CancellationToken::new(),
    )
    .await
    .expect("consented to the setup permissions");
    (signed.session, asked)
}

/// A fresh directory for journals, named after the test file.
pub fn data_dir(label: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("{label}-{}", uuid::Uuid::new_v4()))
}

/// A setup of `provider` with these inputs.
pub fn intent_for(provider: &str, inputs: &[(&str, &str)]) -> entra_setup_core::setup::Intent {
    let raw: std::collections::BTreeMap<String, String> = inputs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    entra_setup_core::setup::Intent::new(
        entra_setup_core::provider::find(provider).unwrap(),
        &raw,
        None,
    )
    .unwrap()
}

/// Applies a prepared setup as one run; it must go through.
pub async fn apply_run(
    s: &entra_setup_core::session::Session,
    prepared: entra_setup_core::setup::flow::Prepared,
) -> entra_setup_core::setup::run::Run {
    let (run, failure) = apply_with(
        s,
        prepared,
        &entra_setup_core::setup::apply::ApplyOptions::default(),
    )
    .await;
    assert!(failure.is_none(), "{failure:?}");
    run
}

/// Applies a prepared setup as one run with these options: the run and how it stopped, if it did.
pub async fn apply_with(
    s: &entra_setup_core::session::Session,
    prepared: entra_setup_core::setup::flow::Prepared,
    options: &entra_setup_core::setup::apply::ApplyOptions,
) -> (
    entra_setup_core::setup::run::Run,
    Option<entra_setup_core::setup::apply::ApplyError>,
) {
    let (collect, _) = collector();
    entra_setup_core::setup::run::Run::apply(
        s,
        prepared,
        options,
        collect,
        &tokio_util::sync::CancellationToken::new(),
    )
    .await
}

/// The SAMLResponse in the self-posting form of a SAML sign-in page.
pub fn saml_response_in(page: &str) -> String {
    let re = regex::Regex::new(r#"name="SAMLResponse" value="([^"]+)""#).unwrap();
    re.captures(page).expect(page)[1].to_string()
}

/// A Base64 SAMLResponse decoded, with Adele's NameID changed to Lee's after signing.
pub fn forged_response(b64: &str) -> String {
    use base64::Engine;
    let xml = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
    )
    .unwrap();
    let forged = xml.replace(">adele@contoso.com</NameID>", ">lee@contoso.com</NameID>");
    assert_ne!(forged, xml, "the response names Adele");
    forged
}

/// A server that counts the requests it gets and how many carried an Authorization header.
pub async fn request_counter() -> (
    String,
    Arc<std::sync::atomic::AtomicUsize>,
    Arc<std::sync::atomic::AtomicUsize>,
) {
    let (all, with_auth) = (
        Arc::new(std::sync::atomic::AtomicUsize::new(0)),
        Arc::new(std::sync::atomic::AtomicUsize::new(0)),
    );
    let (a, w) = (all.clone(), with_auth.clone());
    let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
        let (a, w) = (a.clone(), w.clone());
        async move {
            a.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if headers.contains_key(axum::http::header::AUTHORIZATION) {
                w.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            "{}"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, all, with_auth)
}

/// Fails unless each of these "write done, answer lost" faults fired, so that a test claiming
/// "exactly one object although the answer was lost" really had an answer lost.
pub fn assert_answers_were_lost(sim: &SimHandle, path_suffixes: &[&str]) {
    let faults = sim.faults();
    for suffix in path_suffixes {
        let lost = faults
            .lose_responses
            .iter()
            .find(|l| l.path_suffix == *suffix)
            .unwrap_or_else(|| panic!("no lost-answer fault for {suffix}"));
        assert_eq!(
            lost.count, 0,
            "the answer to POST …{suffix} was never lost: the test did not exercise it"
        );
    }
}
