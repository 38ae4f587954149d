//! The shell under Tauri's mock runtime: commands through real IPC deserialisation and the ACL,
//! the generated TypeScript bindings, and the command list kept in step everywhere.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::invoke;

use std::path::{Path, PathBuf};

use tauri::test::mock_builder;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

#[test]
fn commands_answer_through_ipc_and_the_acl() {
    let home = std::env::temp_dir().join(format!("entra-setup-shell-{}", std::process::id()));
    // Keep the app's settings and logs out of the real profile.
    std::env::set_var("XDG_CONFIG_HOME", home.join("config"));
    std::env::set_var("XDG_DATA_HOME", home.join("data"));
    std::env::set_var("HOME", &home);
    let mut app = entra_setup_app::build_app(mock_builder())
        .build(tauri::generate_context!())
        .expect("app builds");
    // One event-loop turn runs the setup hook, which manages state and opens the main window.
    #[allow(deprecated)]
    app.run_iteration(|_, _| {});
    let webview = tauri::Manager::get_webview_window(&app, "main").expect("the main window exists");

    let info = invoke(&webview, "app_info", serde_json::json!({})).expect("app_info");
    assert_eq!(
        info["defaultClientId"],
        "14d82eec-204b-4c2f-b7e8-296a70dab67e"
    );
    assert!(info["demoUsers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u["upn"] == "adele@contoso.com"));

    let bad = invoke(&webview, "settings_set", serde_json::json!({"value": {"cloud": {"kind": "global"}, "tenant": "contoso..com", "method": "browser", "clientId": null}}))
        .expect_err("invalid tenant is refused");
    assert_eq!(bad["kind"], "invalid");
    assert_eq!(bad["detail"]["field"], "tenant");
    assert!(bad["detail"]["message"]
        .as_str()
        .unwrap()
        .contains("empty part"));

    let saved = invoke(&webview, "settings_set", serde_json::json!({"value": {"cloud": {"kind": "usGov"}, "tenant": "contoso.us", "method": "deviceCode", "clientId": null}}))
        .expect("valid settings save");
    assert_eq!(saved["cloud"]["kind"], "usGov");
    let read = invoke(&webview, "settings_get", serde_json::json!({})).unwrap();
    assert_eq!(read["tenant"], "contoso.us");

    let link = invoke(
        &webview,
        "open_link",
        serde_json::json!({"url": "https://evil.example/"}),
    )
    .expect_err("only Microsoft pages");
    assert_eq!(link["kind"], "invalid");

    // The ACL refuses what the window's capability does not grant: the dialog plugin is used
    // from Rust only and the clipboard only through the OS from Rust (a secret never passes
    // through the webview), so the webview calling them directly is refused, as is a command
    // nobody registered.
    for (cmd, body) in [
        ("plugin:clipboard-manager|read_text", serde_json::json!({})),
        (
            "plugin:clipboard-manager|write_text",
            serde_json::json!({"text": "x"}),
        ),
        ("plugin:dialog|save", serde_json::json!({"options": {}})),
        (
            "plugin:fs|read_file",
            serde_json::json!({"path": "/etc/passwd"}),
        ),
        ("no_such_command", serde_json::json!({})),
    ] {
        let refused = invoke(&webview, cmd, body).expect_err(cmd);
        let text = refused.to_string();
        assert!(
            text.contains("not allowed") || text.contains("not found"),
            "{cmd}: {text}"
        );
    }
    let dialog = invoke(
        &webview,
        "plugin:dialog|save",
        serde_json::json!({"options": {}}),
    )
    .unwrap_err()
    .to_string();
    assert!(
        dialog.contains("not allowed"),
        "the plugin exists but the window may not call it: {dialog}"
    );

    // The desktop's forms are checked by the same functions as the CLI's flags: a redirect
    // URI with a fragment gets the very message `entra-setup plan --input` prints.
    for uri in [
        "https://wiki.example.com/cb#frag",
        "https://*.example.com/cb",
        "https://u:p@wiki.example.com/cb",
        "http://[::1]:8080/cb",
    ] {
        let refused = invoke(
            &webview,
            "check_inputs",
            serde_json::json!({"providerId": "oidc", "inputs": {"name": "Wiki", "redirect_uris": uri}, "secretDays": null}),
        )
        .expect_err(uri);
        let want = format!(
            "{}.",
            entra_setup_core::values::redirect_uri(uri).unwrap_err()
        );
        assert_eq!(refused["kind"], "inputs", "{refused}");
        assert_eq!(refused["detail"]["errors"][0]["field"], "redirect_uris");
        assert_eq!(refused["detail"]["errors"][0]["message"], want.as_str());
    }

    let resume = invoke(&webview, "resume_session", serde_json::json!({})).unwrap();
    assert_eq!(resume["kind"], "nothing");
    invoke(&webview, "sign_out", serde_json::json!({}))
        .expect("signing out with no session is fine");
    let _ = std::fs::remove_dir_all(home);
}

#[test]
fn typescript_bindings_are_up_to_date() {
    let committed = root().join("../ui/src/ipc/bindings.ts");
    let fresh = std::env::temp_dir().join(format!("bindings-{}.ts", std::process::id()));
    entra_setup_app::export_bindings(&fresh).expect("bindings export");
    let fresh_text = std::fs::read_to_string(&fresh).unwrap();
    let _ = std::fs::remove_file(&fresh);
    if std::env::var_os("UPDATE_BINDINGS").is_some() {
        std::fs::write(&committed, &fresh_text).unwrap();
        return;
    }
    let old = std::fs::read_to_string(&committed).unwrap_or_default();
    assert!(old == fresh_text, "ui/src/ipc/bindings.ts is stale: run `UPDATE_BINDINGS=1 cargo test -p entra-setup-app --test shell` and commit it");
}

#[test]
fn every_command_is_registered_manifested_and_allowed() {
    let bindings = std::fs::read_to_string(root().join("../ui/src/ipc/bindings.ts")).unwrap();
    let capability: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("capabilities/main.json")).unwrap(),
    )
    .unwrap();
    let allowed: Vec<String> = capability["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p.as_str().map(str::to_string))
        .collect();
    for cmd in entra_setup_app::COMMANDS {
        assert!(
            bindings.contains(&format!("\"{cmd}\"")),
            "{cmd} is in build.rs but not registered with tauri-specta"
        );
        let permission = format!("allow-{}", cmd.replace('_', "-"));
        assert!(
            allowed.contains(&permission),
            "{cmd} is not allowed in capabilities/main.json"
        );
    }
    // Every invoke in the generated commands object names a command; count the distinct names.
    let registered: std::collections::BTreeSet<&str> = bindings
        .split("__TAURI_INVOKE")
        .skip(2)
        .filter_map(|rest| {
            rest.split_once("(\"")
                .and_then(|(_, r)| r.split_once('"'))
                .map(|(name, _)| name)
        })
        .collect();
    let registered = registered.len();
    assert_eq!(
        registered,
        entra_setup_app::COMMANDS.len(),
        "a registered command is missing from build.rs"
    );
    assert_eq!(
        allowed.iter().filter(|p| p.starts_with("allow-")).count(),
        entra_setup_app::COMMANDS.len()
    );
}
