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
        message.contains("not this setup's") && message.contains("Nothing was changed"),
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

/// Item 6: asking for more consent ends as soon as it is cancelled, instead of after the
/// five-minute wait. (That it holds no lock on the desktop's session is tested on the shell's
/// own lock: `src-tauri/src/state.rs`.)
#[tokio::test]
async fn a_consent_in_the_browser_ends_as_soon_as_it_is_cancelled() {
    use entra_setup_core::auth::{AuthError, Method};
    use entra_setup_core::session::{self, SessionError};
    let sim = sim_as("adele@contoso.com").await;
    let mut c = ctx(memory());
    let signed = sign_in_with(&c, &sim, "contoso.com", Method::Browser)
        .await
        .unwrap();
    c.opener = std::sync::Arc::new(AdminWalkedAway);
    c.timeout = std::time::Duration::from_secs(300);
    let handle = signed.session.consent_handle();
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

/// Trust item 1: a member registers the app the wizard will look for first — the wizard's
/// uniqueName and tags, his own redirect URI, secret and federated credential, and himself as
/// owner. The wizard finds it, lists exactly those, and grants nothing, adds no secret and
/// changes nothing until the admin adopts it; adopting removes what the admin did not keep,
/// each journaled, and Undo puts the owner and the redirect URI back.
#[tokio::test]
async fn an_app_a_member_registered_first_is_never_silently_adopted() {
    use entra_setup_core::setup::apply::ApplyError;
    use entra_setup_core::setup::custody::{Adoption, CredentialKind};
    use entra_setup_core::setup::{flow, undo};
    let sim = sim_as("adele@contoso.com").await;
    let (s, _) = admin_with(&sim, "contoso.com", false).await;
    let tenant = s.account.tenant_id.clone();
    let intent = intent_for(
        "pomerium",
        &[("authenticate_url", "https://authenticate.acme.example")],
    );
    let unique = intent.unique_name();
    // Alex, an ordinary member, predicts the name and registers it first.
    let (squat, _) = sim
        .register_app_as(
            &tenant,
            "alex@contoso.com",
            serde_json::json!({
                "displayName": "Pomerium",
                "uniqueName": unique,
                "tags": ["entra-setup", "entra-setup:pomerium"],
                "web": {"redirectUris": [
                    "https://authenticate.acme.example/oauth2/callback",
                    "https://harvest.alex.example/callback"
                ]},
            }),
        )
        .unwrap();
    let alex_secret = sim.add_password(&tenant, &unique, "alex's secret").unwrap();
    sim.add_federated_credential(
        &tenant,
        &squat,
        "https://token.actions.githubusercontent.com",
        "repo:alex/x:ref:refs/heads/main",
    )
    .unwrap();
    let dir = data_dir("entra-setup-squat");
    let prepared = flow::prepare(&s, &dir, intent.clone(), &[]).await.unwrap();
    assert_eq!(prepared.foreign.len(), 1, "{:?}", prepared.foreign);
    let f = prepared.foreign[0].clone();
    assert!(!f.known_here);
    assert_eq!(f.app_object_id, squat);
    assert!(
        f.owners
            .iter()
            .any(|o| o.user_principal_name.as_deref() == Some("alex@contoso.com")),
        "{:?}",
        f.owners
    );
    assert!(f
        .credentials
        .iter()
        .any(|c| c.kind == CredentialKind::Secret && c.id == alex_secret));
    assert!(f
        .credentials
        .iter()
        .any(|c| c.kind == CredentialKind::Federated));
    assert_eq!(f.redirect_uris, ["https://harvest.alex.example/callback"]);

    // Apply without adopting: refused before any write, with the facts.
    let before = sim.directory(&tenant).unwrap();
    sim.clear_exchanges();
    let (_, failure) = apply_with(&s, prepared, &Default::default()).await;
    let Some(ApplyError::NotAdopted(n)) = failure else {
        panic!("expected a refusal, got {failure:?}");
    };
    let message = n.to_string();
    assert!(
        message.contains("alex@contoso.com")
            && message.contains("harvest.alex.example")
            && message.contains("--adopt"),
        "{message}"
    );
    let writes: Vec<_> = sim
        .exchanges()
        .into_iter()
        .filter(|x| x.method != "GET")
        .collect();
    assert!(writes.is_empty(), "nothing written: {writes:?}");
    let after = sim.directory(&tenant).unwrap();
    assert_eq!(
        after.grants.len(),
        before.grants.len(),
        "no consent granted"
    );
    assert_eq!(
        after.assignments.len(),
        before.assignments.len(),
        "no application permission"
    );

    // Adopt, keeping nothing: Alex's owner, secret, federated credential and redirect URI go.
    let prepared = flow::prepare(&s, &dir, intent.clone(), &[]).await.unwrap();
    let options = entra_setup_core::setup::apply::ApplyOptions {
        adopt: Some(Adoption { keep: vec![] }),
        ..Default::default()
    };
    let (run, failure) = apply_with(&s, prepared, &options).await;
    assert!(failure.is_none(), "{failure:?}");
    let app = sim
        .directory(&tenant)
        .unwrap()
        .applications
        .into_iter()
        .find(|a| a["id"] == squat.as_str())
        .unwrap();
    let owners = sim.owners(&tenant, &squat);
    assert!(
        !owners
            .iter()
            .any(|o| Some(o.as_str()) == f.owners.first().map(|x| x.id.as_str())),
        "{owners:?}"
    );
    let keys: Vec<&str> = app["passwordCredentials"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["keyId"].as_str())
        .collect();
    assert!(!keys.contains(&alex_secret.as_str()), "{keys:?}");
    assert!(
        !app["web"]["redirectUris"].to_string().contains("harvest"),
        "{}",
        app["web"]
    );
    assert_eq!(
        run.app_object_id, squat,
        "the adopted app is the one set up"
    );

    // A re-run knows the app now: nothing foreign is left.
    let again = flow::prepare(
        &s,
        &dir,
        intent,
        &[run
            .secret
            .as_ref()
            .map(|x| x.key_id.clone())
            .unwrap_or_default()],
    )
    .await
    .unwrap();
    assert!(again.foreign.is_empty(), "{:?}", again.foreign);

    // Undo puts Alex back as owner and his redirect URI back (a removed secret cannot return),
    // and removes what the wizard added; the adopted app itself stays.
    undo::undo(&s.graph, &again.journal, std::sync::Arc::new(|_| {}))
        .await
        .unwrap();
    assert!(sim
        .owners(&tenant, &squat)
        .iter()
        .any(|o| Some(o.as_str()) == f.owners.first().map(|x| x.id.as_str())));
    let app = sim
        .directory(&tenant)
        .unwrap()
        .applications
        .into_iter()
        .find(|a| a["id"] == squat.as_str())
        .unwrap();
    assert!(
        app["web"]["redirectUris"].to_string().contains("harvest"),
        "{}",
        app["web"]
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Trust item 1: adopting may keep what the admin chose (here Alex's redirect URI), and the
/// choice is remembered: the next run does not ask again.
#[tokio::test]
async fn adopting_keeps_what_the_admin_chose() {
    use entra_setup_core::setup::custody::Adoption;
    use entra_setup_core::setup::flow;
    let sim = sim_as("adele@contoso.com").await;
    let (s, _) = admin_with(&sim, "contoso.com", false).await;
    let tenant = s.account.tenant_id.clone();
    let intent = intent_for("cloudflare", &[("team", "squatted")]);
    let (squat, _) = sim
        .register_app_as(
            &tenant,
            "alex@contoso.com",
            serde_json::json!({
                "displayName": "Cloudflare",
                "uniqueName": intent.unique_name(),
                "tags": ["entra-setup", "entra-setup:cloudflare"],
                "web": {"redirectUris": ["https://squatted.cloudflareaccess.com/cdn-cgi/access/callback", "https://kept.example/cb"]},
            }),
        )
        .unwrap();
    let dir = data_dir("entra-setup-adopt-keep");
    let prepared = flow::prepare(&s, &dir, intent.clone(), &[]).await.unwrap();
    let alex = prepared.foreign[0].owners[0].id.clone();
    let options = entra_setup_core::setup::apply::ApplyOptions {
        adopt: Some(Adoption {
            keep: vec!["https://kept.example/cb".into()],
        }),
        ..Default::default()
    };
    let (run, failure) = apply_with(&s, prepared, &options).await;
    assert!(failure.is_none(), "{failure:?}");
    let app = sim
        .directory(&tenant)
        .unwrap()
        .applications
        .into_iter()
        .find(|a| a["id"] == squat.as_str())
        .unwrap();
    assert!(app["web"]["redirectUris"]
        .to_string()
        .contains("kept.example"));
    assert!(!sim.owners(&tenant, &squat).contains(&alex));
    let held: Vec<String> = run.secret.iter().map(|x| x.key_id.clone()).collect();
    let again = flow::prepare(&s, &dir, intent, &held).await.unwrap();
    assert!(again.foreign.is_empty(), "{:?}", again.foreign);
    // Keeping an id the app does not have is refused, nothing changed.
    let _ = std::fs::remove_dir_all(dir);
}

/// Trust item 3: the journal is untrusted input to Undo. A line someone added — turning off
/// "assignment required" on another app, deleting another app's service principal or an
/// assignment that is not the setup's, widening a consent grant, an id that is not an id —
/// stops Undo before it changes anything, naming the record; the real journal still undoes.
#[tokio::test]
async fn undo_acts_only_on_this_setups_objects() {
    use entra_setup_core::setup::undo;
    let (sim, s, dir, prepared) = cloudflare_planned("entra-setup-undo-foreign").await;
    let tenant = s.account.tenant_id.clone();
    let journal = prepared.journal.clone();
    let _run = apply_run(&s, prepared).await;
    // Someone else's app with its service principal and a grant.
    let (_, other_app_id) = sim
        .register_app_as(
            &tenant,
            "alex@contoso.com",
            serde_json::json!({"displayName": "Payroll"}),
        )
        .unwrap();
    let other_sp = sim
        .directory(&tenant)
        .unwrap()
        .service_principals
        .into_iter()
        .find(|sp| sp["appId"] == other_app_id.as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let text = std::fs::read_to_string(journal.path()).unwrap();
    let grant_line = text
        .lines()
        .find(|l| l.contains("\"grant\""))
        .map(str::to_string);
    let line = |event: serde_json::Value| {
        format!(
            "{}\n",
            serde_json::json!({"at": "2026-12-07T10:00:00Z", "planId": "p-x", "seq": 9, "event": event})
        )
    };
    let cases: Vec<(String, &str)> = vec![
        (
            line(
                serde_json::json!({"done": {"kind": "setAssignmentRequired", "created": "assignmentRequirement", "id": other_sp, "previous": "true"}}),
            ),
            "not one of this provider's vendor apps",
        ),
        (
            line(
                serde_json::json!({"done": {"kind": "createServicePrincipal", "created": "servicePrincipal", "id": other_sp, "previous": null}}),
            ),
            "not of this setup's app",
        ),
        (
            line(
                serde_json::json!({"done": {"kind": "x", "created": "servicePrincipal", "id": "../../users/x", "previous": null}}),
            ),
            "is not an id of the kind it names",
        ),
    ];
    let before = sim.directory(&tenant).unwrap();
    for (extra, says) in &cases {
        std::fs::write(journal.path(), format!("{text}{extra}")).unwrap();
        sim.clear_exchanges();
        let e = undo::undo(&s.graph, &journal, std::sync::Arc::new(|_| {}))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(says) && e.contains("Nothing was changed") && e.contains("record "),
            "{says}: {e}"
        );
        let writes: Vec<_> = sim
            .exchanges()
            .into_iter()
            .filter(|x| x.method != "GET")
            .collect();
        assert!(writes.is_empty(), "{says}: {writes:?}");
    }
    // A grant "restored" to more than it has now would widen it.
    if let Some(g) = grant_line {
        let mut v: serde_json::Value = serde_json::from_str(&g).unwrap();
        v["event"]["done"]["previous"] = serde_json::json!("openid Directory.ReadWrite.All");
        let widened = text.replace(&g, &v.to_string());
        std::fs::write(journal.path(), &widened).unwrap();
        let e = undo::undo(&s.graph, &journal, std::sync::Arc::new(|_| {}))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("would widen the consent grant"), "{e}");
    }
    let after = sim.directory(&tenant).unwrap();
    assert_eq!(
        after.service_principals.len(),
        before.service_principals.len()
    );
    assert_eq!(after.grants, before.grants);
    std::fs::write(journal.path(), &text).unwrap();
    undo::undo(&s.graph, &journal, std::sync::Arc::new(|_| {}))
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

/// Trust item 5: a lost addPassword answer leaves no orphan. The secret a lost answer made can
/// show up after the retry made the recorded one (replication); the next run recognises the
/// late copy by the name the journal recorded, does not mistake it for someone else's, and
/// removes it.
#[tokio::test]
async fn a_late_copy_of_a_secret_from_a_lost_answer_is_removed() {
    use entra_setup_core::setup::plan::Change;
    let (sim, s, dir, prepared) = cloudflare_planned("entra-setup-late-secret").await;
    let tenant = s.account.tenant_id.clone();
    let unique = prepared.plan.unique_name.clone();
    let intent = prepared.intent.clone();
    let run = apply_run(&s, prepared).await;
    let secret = run.secret.as_ref().unwrap();
    let (key_id, name) = (secret.key_id.clone(), secret.display_name.clone());
    // The copy the lost answer made appears now, under the same name.
    let late = sim.add_password(&tenant, &unique, &name).unwrap();
    let again =
        entra_setup_core::setup::flow::prepare(&s, &dir, intent, std::slice::from_ref(&key_id))
            .await
            .unwrap();
    assert!(
        again.foreign.is_empty(),
        "not someone else's: {:?}",
        again.foreign
    );
    assert!(
        again
            .plan
            .changes
            .iter()
            .any(|c| matches!(&c.change, Change::RemovePassword { key_id, .. } if *key_id == late)),
        "{:#?}",
        again.plan.changes
    );
    assert!(
        !again
            .plan
            .changes
            .iter()
            .any(|c| matches!(&c.change, Change::RemovePassword { key_id: k, .. } if *k == key_id)),
        "the recorded secret stays"
    );
    let _ = std::fs::remove_dir_all(dir);
}
