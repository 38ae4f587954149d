//! Entra's lag in time, met with the product's real budgets. The simulator lags by the clock
//! (new objects, grants, assignments, secrets, apps at the token endpoint, redirect URIs and
//! Reply URLs at the login endpoints) and the product waits by the clock; both run on tokio's
//! paused clock, which the test controls, so a minute of lag costs no wall time. Nothing here
//! shortens a budget: the session uses the product's own retry policy.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use entra_setup_core::auth::FollowRedirects;
use entra_setup_core::checks::{self, SecretRetry, Status};
use entra_setup_core::graph::RetryPolicy;
use entra_setup_core::session::Session;
use entra_setup_core::setup::apply::{ApplyEvent, ApplyOptions};
use entra_setup_core::setup::flow;
use entra_setup_core::setup::Intent;
use entra_setup_sim::{Faults, SimHandle};
use support::*;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A bad but ordinary day for Entra: new objects replicate in a minute, a new secret takes a
/// minute and a half at the token endpoint.
fn bad_day() -> Faults {
    Faults {
        latency_ms: 5,
        replication_ms: 60_000,
        secret_lag_ms: 90_000,
        token_app_lag_ms: 60_000,
        token_role_lag_ms: 60_000,
        redirect_uri_lag_ms: 60_000,
        ..Default::default()
    }
}

/// Signs in with the product's own retry policy (no environment override: the clock is paused,
/// so its pauses of seconds cost nothing).
async fn admin(sim: &SimHandle, provisions: bool) -> Session {
    assert!(
        std::env::var_os("ENTRA_SETUP_RETRY_MS").is_none(),
        "these tests run the shipped waits"
    );
    let c = ctx_with(memory(), RetryPolicy::default());
    admin_in(&c, sim, "contoso.com", provisions).await.0
}

fn options() -> ApplyOptions {
    ApplyOptions::default()
}

/// Prepares and applies `intent` on a bad day; returns the run and the virtual time it took.
async fn apply_on(
    sim: &SimHandle,
    s: &Session,
    intent: Intent,
    faults: Faults,
) -> (entra_setup_core::setup::run::Run, Duration) {
    apply_in(&data_dir("entra-setup-clock"), sim, s, intent, faults).await
}

async fn apply_in(
    dir: &std::path::Path,
    sim: &SimHandle,
    s: &Session,
    intent: Intent,
    faults: Faults,
) -> (entra_setup_core::setup::run::Run, Duration) {
    let faults_lag = faults.replication_ms > 0;
    sim.set_faults(faults);
    let started = Instant::now();
    let prepared = flow::prepare(s, dir, intent, &[]).await.expect("planned");
    let (collect, events) = collector();
    let (run, failure) = entra_setup_core::setup::run::Run::apply(
        s,
        prepared,
        &options(),
        collect,
        &CancellationToken::new(),
    )
    .await;
    assert!(failure.is_none(), "stopped: {failure:?}");
    // While it waited, each waiting step said what for and for how long at most.
    let waits: Vec<String> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            ApplyEvent::Waiting { message, .. } => Some(message.clone()),
            _ => None,
        })
        .collect();
    if faults_lag {
        assert!(
            waits
                .iter()
                .any(|w| w.starts_with("Waiting for Entra") && w.ends_with("— up to 5 min")),
            "{waits:?}"
        );
    }
    (run, started.elapsed())
}

#[tokio::test(start_paused = true)]
async fn a_generic_oidc_setup_waits_out_a_minute_of_lag_and_its_secret_works_after_ninety_seconds()
{
    let sim = sim_as("adele@contoso.com").await;
    let s = admin(&sim, false).await;
    let intent = intent_for(
        "oidc",
        &[
            ("name", "Clockwork"),
            ("redirect_uris", "https://clockwork.contoso.com/callback"),
        ],
    );
    // The apply itself takes two to three minutes of waiting out the object lag; the secret
    // lags four minutes at the token endpoint, so the live test still meets it.
    let slow_secret = Faults {
        secret_lag_ms: 240_000,
        ..bad_day()
    };
    let (run, took) = apply_on(&sim, &s, intent, slow_secret).await;
    assert!(
        took >= Duration::from_secs(60),
        "the lag was waited out, not skipped: {took:?}"
    );
    assert!(took < Duration::from_secs(5 * 60), "{took:?}");
    let secret = run.secret.as_ref().expect("a new secret");
    let started = Instant::now();
    let results = checks::secret_and_consent(
        &entra_setup_core::http::client(),
        &s.cloud,
        &s.account.token_endpoint,
        &run.app_id,
        &secret.value,
        false,
        &SecretRetry::default(),
    )
    .await;
    assert_eq!(results[0].status, Status::Pass, "{results:?}");
    assert!(
        results[0].detail.contains("attempts over"),
        "the secret needed time: {}",
        results[0].detail
    );
    assert!(started.elapsed() < SecretRetry::default().budget);
    assert_graph_traffic_matches_csdl(&sim);
}

#[tokio::test(start_paused = true)]
async fn pomerium_assigns_its_app_roles_through_a_minute_of_lag() {
    let sim = sim_as("adele@contoso.com").await;
    let s = admin(&sim, false).await;
    let intent = intent_for(
        "pomerium",
        &[("authenticate_url", "https://auth.clock.contoso.com")],
    );
    let (run, took) = apply_on(&sim, &s, intent, bad_day()).await;
    assert!(took >= Duration::from_secs(60), "{took:?}");
    let tenant = s.account.tenant_id.clone();
    let sp_id = run.sp_id.clone().unwrap();
    let roles = sim
        .directory(&tenant)
        .unwrap()
        .assignments
        .iter()
        .filter(|a| a["principalId"] == sp_id.as_str())
        .count();
    assert_eq!(roles, 3, "Pomerium's three Graph application permissions");
    // The app-only token gets those roles only after a minute too: the live test waits.
    let results = checks::secret_and_consent(
        &entra_setup_core::http::client(),
        &s.cloud,
        &s.account.token_endpoint,
        &run.app_id,
        &run.secret.as_ref().unwrap().value,
        true,
        &SecretRetry::default(),
    )
    .await;
    assert!(
        results.iter().all(|r| r.status == Status::Pass) && results.len() == 2,
        "{results:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_saml_setup_and_its_test_sign_in_wait_for_the_reply_url() {
    let sim = sim_as("adele@contoso.com").await;
    let s = admin(&sim, false).await;
    let intent = intent_for(
        "saml",
        &[
            ("name", "Clockwork Files"),
            ("entity_id", "https://files.clock.contoso.com/saml"),
            ("reply_url", "https://files.clock.contoso.com/saml/acs"),
        ],
    );
    let (run, took) = apply_on(&sim, &s, intent, bad_day()).await;
    assert!(took >= Duration::from_secs(60), "{took:?}");
    // The test sign-in adds a temporary Reply URL, which the login endpoint refuses for a
    // minute (AADSTS50011): it waits for it instead of failing at once.
    let http = entra_setup_core::http::client();
    let opener = FollowRedirects::new(http.clone());
    let started = Instant::now();
    let report = run
        .test_sign_in(&s, &http, &opener, &CancellationToken::new())
        .await
        .expect("signed in once Entra knew the Reply URL");
    assert!(
        started.elapsed() >= Duration::from_secs(55),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(report.protocol, "SAML");
    assert!(!report.identity.is_empty());
}

/// What a budget is for: a lag longer than Entra's documented few minutes stops the apply with
/// the replication error, after the budget and not after a count of tries.
#[tokio::test(start_paused = true)]
async fn a_lag_longer_than_the_budget_stops_after_the_budget() {
    let sim = sim_as("adele@contoso.com").await;
    let s = admin(&sim, false).await;
    sim.set_faults(Faults {
        replication_ms: 20 * 60_000,
        ..Default::default()
    });
    let dir = data_dir("entra-setup-clock");
    let prepared = flow::prepare(
        &s,
        &dir,
        intent_for("cloudflare", &[("team", "slowpoke")]),
        &[],
    )
    .await
    .unwrap();
    let started = Instant::now();
    let (_, failure) = apply_with(&s, prepared, &options()).await;
    let took = started.elapsed();
    let failure = failure.expect("a twenty-minute lag is more than the budget");
    let said = failure.to_string();
    assert!(
        said.contains("replicating") || said.contains("does not reference a valid application"),
        "says why, in Graph's words: {said}"
    );
    let budget = RetryPolicy::default().replication_budget;
    assert!(took >= budget, "{took:?}");
    assert!(took < budget * 2, "{took:?}");
}

/// Throttling is a rate: a tenant that throttles every seventh request (Retry-After 1 s) is
/// waited out — the whole client pauses, not only the request that was refused — and an
/// immediate re-run passes too.
#[tokio::test(start_paused = true)]
async fn a_tenant_throttling_every_seventh_request_is_waited_out_by_every_request() {
    let sim = sim_as("adele@contoso.com").await;
    let s = admin(&sim, false).await;
    let faults = Faults {
        latency_ms: 5,
        throttle_every: 7,
        retry_after_secs: 1,
        ..Default::default()
    };
    let intent = || {
        intent_for(
            "pomerium",
            &[("authenticate_url", "https://auth.busy.contoso.com")],
        )
    };
    let dir = data_dir("entra-setup-clock");
    apply_in(&dir, &sim, &s, intent(), faults).await;
    let again = flow::prepare(&s, &dir, intent(), &[])
        .await
        .expect("an immediate re-run plans despite the throttling");
    // It found every object the first run made (the secret's value went nowhere, so it is
    // the one thing to redo).
    let kinds: Vec<&str> = again.plan.changes.iter().map(|c| c.change.kind()).collect();
    assert!(
        kinds
            .iter()
            .all(|k| ["removePassword", "addPassword"].contains(k)),
        "{kinds:?}"
    );
    let exchanges = sim.exchanges();
    let throttled: Vec<u64> = exchanges
        .iter()
        .filter(|x| x.status == 429)
        .map(|x| x.at_ms)
        .collect();
    assert!(
        throttled.len() >= 5,
        "{} throttled answers",
        throttled.len()
    );
    // After each 429, nothing new reaches the tenant until its Retry-After has passed (the
    // requests already on their way, within the simulator's latency, aside).
    for t in &throttled {
        let early: Vec<&str> = exchanges
            .iter()
            .filter(|x| x.at_ms > t + 50 && x.at_ms < t + 1000)
            .map(|x| x.path.as_str())
            .collect();
        assert!(
            early.is_empty(),
            "sent during the pause after {t} ms: {early:?}"
        );
    }
}

/// Lost answers on the idempotent writes too (reference §12: "a write can succeed while its
/// response is lost"), twice in a row each, in a tenant that throttles with a Retry-After of
/// half a minute: the upsert PATCH of the app, and the DELETE of Undo. Each is re-sent, and
/// the second answer (204, or 404 for what the lost one already deleted) is taken for what it
/// means; nothing is made twice and Undo leaves nothing behind.
#[tokio::test(start_paused = true)]
async fn lost_answers_on_patch_and_delete_are_re_sent_safely() {
    use entra_setup_sim::LostResponse;
    let sim = sim_as("adele@contoso.com").await;
    let s = admin(&sim, false).await;
    let tenant = s.account.tenant_id.clone();
    let apps_before = sim.directory(&tenant).unwrap().applications.len();
    let lose = |method: &str| LostResponse {
        method: method.into(),
        path_suffix: String::new(),
        count: 2,
    };
    let faults = Faults {
        latency_ms: 5,
        throttle_every: 6,
        retry_after_secs: 30,
        lose_responses: vec![lose("PATCH"), lose("DELETE")],
        ..Default::default()
    };
    let dir = data_dir("entra-setup-clock");
    let (run, took) = apply_in(
        &dir,
        &sim,
        &s,
        intent_for(
            "pomerium",
            &[("authenticate_url", "https://auth.lost.contoso.com")],
        ),
        faults.clone(),
    )
    .await;
    assert!(
        took >= Duration::from_secs(30),
        "Retry-After was honoured: {took:?}"
    );
    let d = sim.directory(&tenant).unwrap();
    assert_eq!(d.applications.len(), apps_before + 1, "one app, not two");
    drop(d);
    let lost = sim
        .exchanges()
        .iter()
        .filter(|x| x.status == 504 && x.method == "PATCH")
        .count();
    assert!(lost >= 1, "a PATCH answer was lost");
    sim.set_faults(faults);
    entra_setup_core::setup::undo::undo(
        &s.graph,
        &run.prepared.journal,
        std::sync::Arc::new(|_| {}),
    )
    .await
    .expect("undone despite the lost answers");
    assert_eq!(
        sim.directory(&tenant).unwrap().applications.len(),
        apps_before
    );
    assert!(sim
        .exchanges()
        .iter()
        .any(|x| x.status == 504 && x.method == "DELETE"));
    assert!(run.prepared.journal.created().unwrap().is_empty());
}

/// The answers to removePassword and to the credentials PATCH (retiring a SAML certificate) are
/// lost twice each, in a tenant that throttles with Retry-After 30 s: the wizard re-sends, a
/// removal Entra already made is taken as done, and exactly the old credentials go.
#[tokio::test(start_paused = true)]
async fn lost_answers_on_remove_password_and_the_credentials_patch_are_re_sent_safely() {
    use entra_setup_sim::LostResponse;
    let sim = sim_as("adele@contoso.com").await;
    let s = admin(&sim, false).await;
    let tenant = s.account.tenant_id.clone();
    let busy = |method: &str, suffix: &str| Faults {
        latency_ms: 5,
        throttle_every: 4,
        retry_after_secs: 30,
        lose_responses: vec![LostResponse {
            method: method.into(),
            path_suffix: suffix.into(),
            count: 2,
        }],
        ..Default::default()
    };
    let answers = |method: &str, suffix: &str| -> Vec<u16> {
        sim.exchanges()
            .iter()
            .filter(|x| x.method == method && x.path.ends_with(suffix) && x.status != 429)
            .map(|x| x.status)
            .collect()
    };

    // A client secret: set up, rotated, and the old one retired while answers are lost.
    let intent = || {
        intent_for(
            "pomerium",
            &[("authenticate_url", "https://auth.retire.contoso.com")],
        )
    };
    let dir = data_dir("entra-setup-clock");
    let (first, _) = apply_in(&dir, &sim, &s, intent(), Faults::default()).await;
    let old = first.secret.as_ref().unwrap().key_id.clone();
    let rotate = flow::prepare(
        &s,
        &dir,
        intent().with_rotation(true),
        std::slice::from_ref(&old),
    )
    .await
    .unwrap();
    let (quiet, _) = collector();
    let new = flow::execute(
        &s,
        &rotate,
        &options(),
        quiet.clone(),
        &CancellationToken::new(),
    )
    .await
    .unwrap()
    .secret
    .unwrap()
    .key_id;
    sim.set_faults(busy("POST", "/removePassword"));
    sim.clear_exchanges();
    let started = Instant::now();
    let (plan, _) =
        flow::retire_old_secrets(&s, &dir, &intent(), &new, quiet, &CancellationToken::new())
            .await
            .expect("retired despite the lost answers");
    assert_eq!(plan.changes.len(), 1);
    let statuses = answers("POST", "/removePassword");
    assert_eq!(
        statuses,
        [504, 404],
        "the removal's answer was lost; the re-sent one found the secret already gone, and \
         that is done"
    );
    let app = sim
        .directory(&tenant)
        .unwrap()
        .applications
        .into_iter()
        .find(|a| a["uniqueName"] == rotate.plan.unique_name.as_str())
        .unwrap();
    let keys: Vec<&str> = app["passwordCredentials"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["keyId"].as_str())
        .collect();
    assert_eq!(keys, [new.as_str()], "only the old secret went");
    let throttled = sim.exchanges().iter().any(|x| x.status == 429);
    assert!(throttled, "the tenant throttled the retirement too");
    assert!(
        started.elapsed() >= Duration::from_secs(30),
        "each Retry-After of 30 s was honoured"
    );

    // A SAML certificate: rotated, made active, and the old one retired while the answers to
    // the credentials PATCH are lost.
    let saml = || {
        intent_for(
            "saml",
            &[
                ("name", "Lost Answers"),
                ("entity_id", "https://lost.contoso.com/saml"),
                ("reply_url", "https://lost.contoso.com/saml/acs"),
            ],
        )
    };
    let dir = data_dir("entra-setup-clock");
    let (first, _) = apply_in(&dir, &sim, &s, saml(), Faults::default()).await;
    let sp_id = first.saml.as_ref().unwrap().sp_id.clone();
    let old_cert = first
        .saml
        .as_ref()
        .unwrap()
        .cert
        .clone()
        .unwrap()
        .thumbprint;
    let prepared = flow::prepare(&s, &dir, saml().with_rotation(true), &[])
        .await
        .unwrap();
    let mut run = apply_run(&s, prepared).await;
    run.activate_certificate(&s).await.unwrap();
    sim.set_faults(busy("PATCH", &format!("/servicePrincipals/{sp_id}")));
    sim.clear_exchanges();
    run.retire_certificates(&s)
        .await
        .expect("retired despite the lost answers");
    let statuses = answers("PATCH", &format!("/servicePrincipals/{sp_id}"));
    assert_eq!(statuses, [504, 504, 204], "lost twice, then answered");
    let d = sim.directory(&tenant).unwrap();
    let left: Vec<&str> = d
        .signing_keys
        .iter()
        .filter(|k| k.sp_id == sp_id)
        .map(|k| k.thumbprint.as_str())
        .collect();
    assert_eq!(left.len(), 1);
    assert_ne!(
        left[0], old_cert,
        "the old certificate went, the new one stayed"
    );
    let sp = d
        .service_principals
        .iter()
        .find(|p| p["id"] == sp_id.as_str())
        .unwrap();
    assert_eq!(
        (
            sp["keyCredentials"].as_array().unwrap().len(),
            sp["passwordCredentials"].as_array().unwrap().len()
        ),
        (2, 1),
        "the new certificate's Sign and Verify keys and its password"
    );
}

/// Retiring a secret this computer kept a copy of: Entra keeps accepting a removed secret for a
/// minute and a half, and the live tests try the copy until Entra refuses it, then say so,
/// with how long it took. Without a copy, nothing claims the old secret is dead.
#[tokio::test(start_paused = true)]
async fn retire_says_when_the_old_secret_really_stopped_working() {
    use entra_setup_core::setup::run::{HandOver, Run};
    let sim = sim_as("adele@contoso.com").await;
    let s = admin(&sim, false).await;
    let intent = |host: &str| {
        let url = format!("https://{host}.contoso.com");
        intent_for("pomerium", &[("authenticate_url", url.as_str())])
    };
    let rotated = |store: Option<std::sync::Arc<dyn entra_setup_core::keychain::SecretStore>>,
                   host: &'static str| {
        let (sim, s) = (&sim, &s);
        async move {
            let dir = data_dir("entra-setup-clock");
            let (mut first, _) = apply_in(&dir, sim, s, intent(host), Faults::default()).await;
            if let Some(store) = &store {
                first.keep(store).await.unwrap();
            }
            let old = first.secret.as_ref().unwrap().key_id.clone();
            let prepared = flow::prepare(s, &dir, intent(host).with_rotation(true), &[old])
                .await
                .unwrap();
            let (quiet, _) = collector();
            let (mut run, failure) =
                Run::apply(s, prepared, &options(), quiet, &CancellationToken::new()).await;
            assert!(failure.is_none(), "{failure:?}");
            run.handed_over(HandOver::Copied);
            let checks = run.checks(s).await;
            assert!(
                checks.iter().all(|c| c.status == Status::Pass),
                "{checks:?}"
            );
            (run, dir)
        }
    };

    let store = memory();
    let (mut run, dir) = rotated(Some(store.clone()), "kept").await;
    sim.set_faults(Faults {
        removed_secret_lag_ms: 90_000,
        ..Default::default()
    });
    run.retire(&s, &dir, &store).await.unwrap();
    assert!(run.retire_offer().unwrap().tested);
    let started = Instant::now();
    let checks = run.checks(&s).await;
    let took = started.elapsed();
    let retired = checks.iter().find(|c| c.id == "retired_secret").unwrap();
    assert_eq!(retired.status, Status::Pass, "{retired:?}");
    assert!(
        retired.detail.contains("refused it") && retired.detail.contains("s after it was removed"),
        "{}",
        retired.detail
    );
    assert!(
        took >= Duration::from_secs(85) && took < entra_setup_core::wait::REMOVED_CREDENTIAL,
        "waited for Entra to stop accepting it: {took:?}"
    );

    // No copy on this computer: the retirement is done, and no test claims more.
    sim.set_faults(Faults::default());
    let (mut run, dir) = rotated(None, "not-kept").await;
    run.retire(&s, &dir, &memory()).await.unwrap();
    assert!(!run.retire_offer().unwrap().tested);
    assert!(run
        .checks(&s)
        .await
        .iter()
        .all(|c| c.id != "retired_secret"));
}
