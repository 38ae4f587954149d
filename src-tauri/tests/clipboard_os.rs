//! The real OS clipboard (X11 under Xvfb; `scripts/test.sh` runs these with `--ignored`), read
//! by an independent program, xclip: a copied secret is offered with the hint that tells
//! clipboard managers and history to leave it out, and it is gone once the app lets go.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use entra_setup_app::clipboard::SecretClipboard;
use entra_setup_core::SecretString;

fn xclip(args: &[&str]) -> String {
    let out = Command::new("xclip")
        .args(["-selection", "clipboard", "-o"])
        .args(args)
        .output()
        .expect("xclip is installed (scripts/setup.sh --test)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn set_by_someone_else(text: &str) {
    use std::io::Write;
    let mut child = Command::new("xclip")
        .args(["-selection", "clipboard", "-i"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    child.wait().unwrap();
}

#[test]
#[ignore = "needs an X display and xclip: scripts/test.sh runs it under Xvfb"]
fn a_copied_secret_is_hidden_from_clipboard_history_and_cleared_at_exit() {
    assert!(
        std::env::var_os("DISPLAY").is_some(),
        "run under xvfb-run (scripts/test.sh does)"
    );
    let clipboard = SecretClipboard::default();
    let secret = SecretString::from("Qw8~abcdefghijklmnopqrstuvwxyz0123456789".to_string());
    clipboard.copy(&secret).unwrap();
    assert_eq!(xclip(&[]), "Qw8~abcdefghijklmnopqrstuvwxyz0123456789");
    let targets = xclip(&["-t", "TARGETS"]);
    assert!(
        targets.lines().any(|t| t == "x-kde-passwordManagerHint"),
        "offered as a password to clipboard managers: {targets}"
    );
    assert_eq!(xclip(&["-t", "x-kde-passwordManagerHint"]), "secret");

    // At exit (or after a minute), a secret still on the clipboard is cleared...
    assert!(clipboard.clear_if_holding());
    assert_ne!(xclip(&[]), "Qw8~abcdefghijklmnopqrstuvwxyz0123456789");

    // ...but what the admin copied since is left alone, and a later copy has its own minute.
    clipboard.copy(&secret).unwrap();
    set_by_someone_else("a note the admin copied");
    std::thread::sleep(std::time::Duration::from_millis(200));
    clipboard.close();
    assert_eq!(xclip(&[]), "a note the admin copied");
    let second = SecretString::from("second-secret-value".to_string());
    clipboard.copy(&secret).unwrap();
    clipboard.copy(&second).unwrap();
    assert!(!clipboard.clear_if_still(&secret), "the first copy's timer");
    assert_eq!(xclip(&[]), "second-secret-value");
    assert!(clipboard.clear_if_still(&second));
    assert_ne!(xclip(&[]), "second-secret-value");
}
