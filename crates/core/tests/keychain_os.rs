//! The real OS keychain. On Linux this needs a running Secret Service (gnome-keyring in a D-Bus
//! session); scripts/test.sh runs these inside `dbus-run-session` with an unlocked keyring:
//!   cargo test -p entra-setup-core --test keychain_os -- --ignored
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use entra_setup_core::auth::Method;
use entra_setup_core::keychain::{self, OsKeychain, SecretStore};
use entra_setup_core::session;
use entra_setup_core::{ExposeSecret, SecretString};
use support::*;

fn store() -> Arc<dyn SecretStore> {
    Arc::new(OsKeychain::with_service(&format!(
        "entra-setup-test-{}",
        std::process::id()
    )))
}

#[tokio::test]
#[ignore = "needs a Secret Service: run by scripts/test.sh inside dbus-run-session"]
async fn secrets_round_trip_through_the_os_keychain() {
    let s = store();
    keychain::set(
        &s,
        "round-trip",
        SecretString::from("correct horse battery staple"),
    )
    .await
    .expect("the keychain accepts a secret");
    let back = keychain::get(&s, "round-trip")
        .await
        .unwrap()
        .expect("and returns it");
    assert_eq!(back.expose_secret(), "correct horse battery staple");
    keychain::delete(&s, "round-trip").await.unwrap();
    assert!(
        keychain::get(&s, "round-trip").await.unwrap().is_none(),
        "deleted"
    );
    keychain::delete(&s, "round-trip")
        .await
        .expect("deleting a missing entry is fine");

    // A refresh token longer than a Windows credential holds goes through the same parts on
    // every OS, and comes back whole.
    let long = format!("0.AXoA{}", "Ab9-_".repeat(1400));
    keychain::set(&s, "long", SecretString::from(long.clone()))
        .await
        .unwrap();
    let back = keychain::get(&s, "long").await.unwrap().unwrap();
    assert_eq!(back.expose_secret(), long);
    keychain::delete(&s, "long").await.unwrap();
    assert!(keychain::get(&s, "long").await.unwrap().is_none());
}

#[tokio::test]
#[ignore = "needs a Secret Service: run by scripts/test.sh inside dbus-run-session"]
async fn a_sign_in_survives_a_restart_through_the_keychain_and_sign_out_removes_it() {
    let sim = sim_as("adele@contoso.com").await;
    let s = store();
    let signed = sign_in(&sim, s.clone(), "contoso.com", Method::Browser)
        .await
        .expect("signed in");
    assert!(
        signed.notices.is_empty(),
        "the keychain saved the sign-in: {:?}",
        signed.notices
    );
    let record = signed.session.account.clone();
    drop(signed);
    let resumed = session::resume(&ctx(s.clone()), &record)
        .await
        .expect("resumed from the OS keychain");
    assert_eq!(resumed.summary.tenant_name, "Contoso");
    session::sign_out(&ctx(s.clone()), &record, Some(&resumed))
        .await
        .unwrap();
    assert!(
        session::resume(&ctx(s), &record).await.is_err(),
        "signed out: nothing left to resume"
    );
}

#[tokio::test]
#[ignore = "needs no Secret Service at all: run by scripts/test.sh outside any D-Bus session"]
async fn without_a_secret_service_the_message_says_what_is_missing() {
    let s = store();
    let err = keychain::set(&s, "x", SecretString::from("y"))
        .await
        .expect_err("no keychain to write to");
    let text = err.to_string();
    assert!(text.contains("The OS keychain is not available"), "{text}");
    assert!(text.contains("Secret Service"), "{text}");
    // And sign-in still works, with a warning instead of a saved session.
    let sim = sim_as("adele@contoso.com").await;
    let signed = sign_in(&sim, s, "contoso.com", Method::Browser)
        .await
        .expect("signed in anyway");
    assert!(signed
        .notices
        .iter()
        .any(|n| n.id == "keychain_unavailable"));
}
