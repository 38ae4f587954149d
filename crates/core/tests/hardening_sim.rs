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

/// Adele's tenant and a planned Cloudflare setup, its journal in a fresh directory.
async fn cloudflare_planned(
    label: &str,
) -> (
    entra_setup_sim::SimHandle,
    entra_setup_core::session::Session,
    std::path::PathBuf,
    entra_setup_core::setup::flow::Prepared,
) {
    let sim = sim_as("adele@contoso.com").await;
    let (s, _) = admin_with(&sim, "contoso.com", false).await;
    let dir = data_dir(label);
    let prepared = entra_setup_core::setup::flow::prepare(
        &s,
        &dir,
        intent_for("cloudflare", &[("team", "acme")]),
        &[],
    )
    .await
    .unwrap();
    (sim, s, dir, prepared)
}

/// Item 5: a journal that names someone else's app (edited, or copied from another setup) does
/// not make Undo delete it; Undo stops before changing anything and says why.
#[tokio::test]
async fn undo_deletes_only_apps_that_carry_the_wizards_tag() {
    use entra_setup_core::setup::undo;
    let (sim, s, dir, prepared) = cloudflare_planned("entra-setup-hardening-undo").await;
    let tenant = s.account.tenant_id.clone();
    let journal = prepared.journal.clone();
    let run = apply_run(&s, prepared).await;
    let ours = run.app_object_id.clone();
    // An app of the tenant's own, made by someone else.
    let payroll: Value = s
        .graph
        .post("/applications")
        .json(serde_json::json!({"displayName": "Payroll"}))
        .scopes(StepScopes::RegisterApp)
        .send_json()
        .await
        .unwrap();
    let theirs = payroll["id"].as_str().unwrap().to_string();
    let before = sim.directory(&tenant).unwrap();

    // Someone swaps the wizard's app for theirs in the journal.
    let text = std::fs::read_to_string(journal.path()).unwrap();
    assert!(text.contains(&ours));
    std::fs::write(journal.path(), text.replace(&ours, &theirs)).unwrap();
    let e = undo::undo(&s.graph, &journal, std::sync::Arc::new(|_| {}))
        .await
        .unwrap_err();
    let message = e.to_string();
    assert!(
        message.contains("does not carry Entra Setup's tag")
            && message.contains("Nothing was deleted"),
        "{message}"
    );
    let after = sim.directory(&tenant).unwrap();
    assert_eq!(after.applications.len(), before.applications.len());
    assert!(after
        .applications
        .iter()
        .any(|a| a["id"] == theirs.as_str()));

    // With the journal as the apply wrote it, Undo deletes the wizard's app.
    std::fs::write(journal.path(), text).unwrap();
    undo::undo(&s.graph, &journal, std::sync::Arc::new(|_| {}))
        .await
        .unwrap();
    let after = sim.directory(&tenant).unwrap();
    assert!(!after.applications.iter().any(|a| a["id"] == ours.as_str()));
    assert!(after
        .applications
        .iter()
        .any(|a| a["id"] == theirs.as_str()));
    let _ = std::fs::remove_dir_all(dir);
}

/// Item 5: while one Entra Setup (the desktop app or the CLI) applies to or undoes in a
/// tenant, another is told so and changes nothing.
#[tokio::test]
async fn a_second_apply_or_undo_in_the_same_tenant_waits_its_turn() {
    use entra_setup_core::setup::{flow, undo};
    let (sim, s, dir, prepared) = cloudflare_planned("entra-setup-hardening-lock").await;
    let tenant = s.account.tenant_id.clone();
    let journal = prepared.journal.clone();
    let before = sim.directory(&tenant).unwrap().applications.len();

    // The other program holds the tenant's lock (file locks are per open file, so this
    // process's own second handle is refused as another process's would be).
    let held = journal.lock_tenant().unwrap();
    let (_, failure) = apply_with(
        &s,
        prepared,
        &entra_setup_core::setup::apply::ApplyOptions::default(),
    )
    .await;
    let message = failure.expect("refused").to_string();
    assert!(message.contains("Another Entra Setup"), "{message}");
    assert!(message.contains("nothing was changed"), "{message}");
    assert_eq!(sim.directory(&tenant).unwrap().applications.len(), before);
    drop(held);

    // Its turn: the apply goes through; an Undo started meanwhile is refused the same way.
    let prepared = flow::prepare(&s, &dir, intent_for("cloudflare", &[("team", "acme")]), &[])
        .await
        .unwrap();
    apply_run(&s, prepared).await;
    assert_eq!(
        sim.directory(&tenant).unwrap().applications.len(),
        before + 1
    );
    let held = journal.lock_tenant().unwrap();
    let e = undo::undo(&s.graph, &journal, std::sync::Arc::new(|_| {}))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("Another Entra Setup"), "{e}");
    assert_eq!(
        sim.directory(&tenant).unwrap().applications.len(),
        before + 1
    );
    drop(held);
    undo::undo(&s.graph, &journal, std::sync::Arc::new(|_| {}))
        .await
        .unwrap();
    assert_eq!(sim.directory(&tenant).unwrap().applications.len(), before);
    let _ = std::fs::remove_dir_all(dir);
}

/// A browser the admin never finishes in: the page opens and nothing comes back.
struct AdminWalkedAway;

impl entra_setup_core::auth::BrowserOpener for AdminWalkedAway {
    fn open(&self, _url: String) -> entra_setup_core::auth::OpenFuture {
        Box::pin(async { Ok(()) })
    }
}

/// Item 6: asking for more consent holds no lock on the session (Sign out and the other steps
/// go on) and ends as soon as it is cancelled, instead of after the five-minute wait.
#[tokio::test]
async fn a_consent_in_the_browser_is_cancellable_and_holds_no_session_lock() {
    use entra_setup_core::auth::{AuthError, Method};
    use entra_setup_core::session::{self, SessionError};
    let sim = sim_as("adele@contoso.com").await;
    let mut c = ctx(memory());
    let signed = sign_in_with(&c, &sim, "contoso.com", Method::Browser)
        .await
        .unwrap();
    c.opener = std::sync::Arc::new(AdminWalkedAway);
    c.timeout = std::time::Duration::from_secs(300);
    let sessions = std::sync::Arc::new(tokio::sync::Mutex::new(Some(signed.session)));
    let handle = sessions.lock().await.as_ref().unwrap().consent_handle();
    let cancel = tokio_util::sync::CancellationToken::new();
    let (on_event, _) = recorder();
    let waiting = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            session::ensure_consent(
                &c,
                &handle,
                StepScopes::setup(true),
                Method::Browser,
                on_event,
                &cancel,
            )
            .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "waiting for the browser");
    // Sign out meanwhile: the session is free to take.
    let taken = tokio::time::timeout(std::time::Duration::from_secs(1), sessions.lock())
        .await
        .expect("the session is not locked during the consent")
        .take();
    assert!(taken.is_some());
    cancel.cancel();
    let ended = tokio::time::timeout(std::time::Duration::from_secs(2), waiting)
        .await
        .expect("Cancel ends the wait at once")
        .unwrap();
    assert!(
        matches!(ended, Err(SessionError::Auth(AuthError::Cancelled))),
        "{:?}",
        ended.err().map(|e| e.to_string())
    );
}
