//! Updates against a local update server: a correctly signed release is downloaded, verified
//! and offered; a tampered download is refused with a message and nothing waits to be
//! installed; with the check turned off in settings the server is never asked.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::invoke;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use base64::Engine;
use tauri::test::mock_builder;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

struct Server {
    port: u16,
    tampered: Arc<AtomicBool>,
    requests: Arc<AtomicUsize>,
    /// The version and notes `latest.json` announces.
    version: Arc<std::sync::Mutex<(String, String)>>,
}

/// Serves `/latest.json` announcing 9.9.9 with `signature` (of the genuine artifact), and the
/// artifact at `/entra-setup.tar.gz`: the genuine bytes, or altered ones once `tampered` is set.
fn update_server(genuine: Vec<u8>, signature: String) -> Server {
    let tampered = Arc::new(AtomicBool::new(false));
    let requests = Arc::new(AtomicUsize::new(0));
    let version = Arc::new(std::sync::Mutex::new((
        "9.9.9".to_string(),
        "Faster SCIM checks.".to_string(),
    )));
    let announced = version.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let (t, r) = (tampered.clone(), requests.clone());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::from_std(listener).unwrap();
            while let Ok((s, _)) = l.accept().await {
                r.fetch_add(1, Ordering::SeqCst);
                let mut s = BufReader::new(s);
                let mut first = String::new();
                s.read_line(&mut first).await.unwrap();
                loop {
                    let mut line = String::new();
                    if s.read_line(&mut line).await.unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                }
                let path = first.split_whitespace().nth(1).unwrap_or("").to_string();
                let (ctype, body) = if path.starts_with("/latest.json") {
                    let (v, notes) = announced.lock().unwrap().clone();
                    let manifest = serde_json::json!({
                        "version": v,
                        "notes": notes,
                        "pub_date": "2026-12-01T10:00:00Z",
                        "platforms": {
                            "linux-x86_64": {
                                "signature": signature,
                                "url": format!("http://127.0.0.1:{port}/entra-setup.tar.gz"),
                            },
                            "windows-x86_64": {
                                "signature": signature,
                                "url": format!("http://127.0.0.1:{port}/entra-setup.tar.gz"),
                            },
                            "darwin-aarch64": {
                                "signature": signature,
                                "url": format!("http://127.0.0.1:{port}/entra-setup.tar.gz"),
                            },
                        }
                    });
                    ("application/json", manifest.to_string().into_bytes())
                } else if t.load(Ordering::SeqCst) {
                    let mut bad = genuine.clone();
                    bad[10] ^= 0x01; // one bit flipped on the way
                    ("application/octet-stream", bad)
                } else {
                    ("application/octet-stream", genuine.clone())
                };
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let mut s = s.into_inner();
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(&body).await;
                let _ = s.shutdown().await;
            }
        });
    });
    Server {
        port,
        tampered,
        requests,
        version,
    }
}

#[test]
fn a_signed_update_is_offered_a_tampered_one_refused_and_none_checked_when_turned_off() {
    let home = std::env::temp_dir().join(format!("entra-setup-updater-{}", std::process::id()));
    std::env::set_var("XDG_CONFIG_HOME", home.join("config"));
    std::env::set_var("XDG_DATA_HOME", home.join("data"));
    std::env::set_var("HOME", &home);

    // A release key made for this test, and a release artifact signed with it as `tauri signer
    // sign` does (minisign, base64 of the .sig file).
    let kp = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
    let pubkey = b64(&kp.pk.to_box().unwrap().to_string());
    let genuine: Vec<u8> = (0..64 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    let sig = minisign::sign(
        Some(&kp.pk),
        &kp.sk,
        std::io::Cursor::new(&genuine),
        Some("timestamp:1764583200\tfile:entra-setup.tar.gz\tversion:9.9.9"),
        Some("signature from tauri secret key"),
    )
    .unwrap();
    let server = update_server(genuine, b64(&sig.to_string()));

    let mut ctx = tauri::generate_context!();
    ctx.config_mut().plugins.0.insert(
        "updater".into(),
        serde_json::json!({
            "pubkey": pubkey,
            "endpoints": [format!("http://127.0.0.1:{}/latest.json", server.port)],
            // The local server speaks plain http; the shipped configuration only https.
            "dangerousInsecureTransportProtocol": true,
        }),
    );
    let mut app = entra_setup_app::build_app(mock_builder())
        .build(ctx)
        .expect("app builds");
    #[allow(deprecated)]
    app.run_iteration(|_, _| {});
    let webview = tauri::Manager::get_webview_window(&app, "main").expect("the main window");

    // 1. Signed correctly: offered, with the version and notes for the banner.
    let status = invoke(&webview, "check_for_update", serde_json::json!({})).unwrap();
    assert_eq!(status["kind"], "ready", "{status}");
    assert_eq!(status["version"], "9.9.9");
    assert_eq!(status["currentVersion"], env!("CARGO_PKG_VERSION"));
    assert_eq!(status["notes"], "Faster SCIM checks.");

    // 1b. Release notes are the server's text: a terminal escape or a bidi override in them
    // never reaches the banner.
    *server.version.lock().unwrap() = (
        "9.9.9".into(),
        "Faster\u{1b}[2J SCIM \u{202e}checks.".into(),
    );
    let status = invoke(&webview, "check_for_update", serde_json::json!({})).unwrap();
    let notes = status["notes"].as_str().unwrap();
    assert!(
        !notes.contains('\u{1b}') && !notes.contains('\u{202e}'),
        "{notes:?}"
    );

    // 1c. An older release, however well signed, is never offered (no rollback), nor
    // downloaded.
    *server.version.lock().unwrap() = ("0.0.1".into(), "Old.".into());
    let asked = server.requests.load(Ordering::SeqCst);
    let status = invoke(&webview, "check_for_update", serde_json::json!({})).unwrap();
    assert_eq!(status["kind"], "upToDate", "{status}");
    assert_eq!(
        server.requests.load(Ordering::SeqCst),
        asked + 1,
        "only latest.json was asked for"
    );
    *server.version.lock().unwrap() = ("9.9.9".into(), "Faster SCIM checks.".into());

    // 2. The same release with its download altered: refused, and nothing waits to install.
    server.tampered.store(true, Ordering::SeqCst);
    let status = invoke(&webview, "check_for_update", serde_json::json!({})).unwrap();
    assert_eq!(status["kind"], "refused", "{status}");
    assert_eq!(status["version"], "9.9.9");
    let message = status["message"].as_str().unwrap();
    assert!(
        message.contains("does not carry Entra Setup's release signature")
            && message.contains("nothing was installed"),
        "{message}"
    );
    let err = invoke(&webview, "restart_to_update", serde_json::json!({})).unwrap_err();
    assert!(
        err.to_string().contains("no verified update is waiting"),
        "{err}"
    );

    // 3. Turned off in settings: the server is not asked at all.
    let mut settings = invoke(&webview, "settings_get", serde_json::json!({})).unwrap();
    assert_eq!(settings["checkUpdates"], true, "on unless turned off");
    settings["checkUpdates"] = false.into();
    invoke(
        &webview,
        "settings_set",
        serde_json::json!({ "value": settings }),
    )
    .unwrap();
    let asked = server.requests.load(Ordering::SeqCst);
    let status = invoke(&webview, "check_for_update", serde_json::json!({})).unwrap();
    assert_eq!(status["kind"], "off");
    assert_eq!(server.requests.load(Ordering::SeqCst), asked);
    let _ = std::fs::remove_dir_all(&home);
}
