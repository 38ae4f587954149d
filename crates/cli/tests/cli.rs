//! The CLI end to end, headless: against the simulated tenant (device-code sign-in approved by
//! the simulator) and a local fake of Cloudflare's API that checks what it receives.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, put};
use axum::{Json, Router};
use entra_setup_sim::{Approval, Faults, SimConfig, SimHandle};
use serde_json::{json, Value};

/// The simulated tenant as hard as Entra: every realistic fault on (throttling, replication
/// delays on reads and lists, late apps, secrets and roles at the token endpoint, lost answers
/// to creates). The provider's SCIM server runs on this computer, which only this stand-in
/// for Entra can reach.
async fn sim(upn: &str) -> SimHandle {
    let sim = entra_setup_sim::start(SimConfig {
        approval: Approval::Auto {
            upn: upn.into(),
            device_polls: 1,
        },
        device_interval_secs: 1,
        local_scim_reachable: true,
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(
        sim.checks_schema(),
        "requests are checked against Graph's schema as they arrive"
    );
    sim.set_faults(Faults::realistic());
    sim
}

/// Every request the CLI sent and every answer the simulator gave, checked after the fact
/// against Graph's schema too.
fn assert_traffic_matches_csdl(sim: &SimHandle) {
    assert!(!sim.exchanges().is_empty(), "no Graph traffic was recorded");
    let violations = sim.schema_violations();
    assert!(
        violations.is_empty(),
        "Graph traffic violates the CSDL:\n{}",
        violations.join("\n")
    );
}

/// A fresh folder for one test. Random, not a timestamp: tests run in parallel, and two with the
/// same clock reading once shared a data folder (one found the other's tenant lock).
fn temp() -> PathBuf {
    let d = std::env::temp_dir().join(format!("entra-setup-cli-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir(&d).unwrap();
    d
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn cli(sim: &SimHandle, data: &Path, args: &[&str]) -> Run {
    let base = sim.base_url().to_string();
    let mut all: Vec<String> = args.iter().map(|s| (*s).to_string()).collect();
    if !matches!(args.first(), Some(&"providers")) {
        all.extend(
            [
                "--authority",
                &base,
                "--graph",
                &base,
                "--device-code",
                "--no-keychain",
                "--tenant",
                "contoso.com",
            ]
            .map(String::from),
        );
    }
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_entra-setup"))
        .args(&all)
        .env("ENTRA_SETUP_DATA_DIR", data)
        .env("ENTRA_SETUP_RETRY_MS", "25")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

/// What the fake Cloudflare API received.
#[derive(Default)]
struct Fake {
    bodies: Mutex<Vec<(String, Value)>>,
    idps: Mutex<Vec<Value>>,
}

const TOKEN: &str = "cf-test-token-0123456789abcdef";
const ACCOUNT: &str = "023e105f4ecef8ad9ca31a8372d0c353";

fn authorised(h: &HeaderMap) -> bool {
    h.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {TOKEN}"))
}

fn denied() -> (StatusCode, Json<Value>) {
    (
        StatusCode::FORBIDDEN,
        Json(
            json!({"success": false, "errors": [{"code": 10000, "message": "Authentication error"}], "result": null}),
        ),
    )
}

/// Cloudflare's API refuses an Entra ID identity provider without its documented fields.
fn well_formed(body: &Value) -> Result<(), (StatusCode, Json<Value>)> {
    let c = &body["config"];
    let ok = body["type"] == "azureAD"
        && ["client_id", "client_secret", "directory_id"]
            .iter()
            .all(|k| c[*k].as_str().is_some_and(|v| !v.is_empty()));
    if ok {
        Ok(())
    } else {
        Err((
            StatusCode::BAD_REQUEST,
            Json(
                json!({"success": false, "errors": [{"code": 12000, "message": "invalid identity provider"}], "result": null}),
            ),
        ))
    }
}

async fn fake_cloudflare() -> (String, Arc<Fake>) {
    let fake = Arc::new(Fake::default());
    let app = Router::new()
        .route(
            "/client/v4/accounts/{account}/access/identity_providers",
            get(|State(f): State<Arc<Fake>>, UrlPath(account): UrlPath<String>, h: HeaderMap| async move {
                if !authorised(&h) || account != ACCOUNT {
                    return denied();
                }
                (StatusCode::OK, Json(json!({"success": true, "errors": [], "result": f.idps.lock().unwrap().clone()})))
            })
            .post(|State(f): State<Arc<Fake>>, h: HeaderMap, Json(body): Json<Value>| async move {
                if !authorised(&h) {
                    return denied();
                }
                if let Err(e) = well_formed(&body) {
                    return e;
                }
                f.bodies.lock().unwrap().push(("POST".into(), body.clone()));
                let mut idp = body.clone();
                idp["id"] = json!("f174e90a-fafe-4643-bbbc-4a0ed4fc8415");
                f.idps.lock().unwrap().push(idp.clone());
                (StatusCode::OK, Json(json!({"success": true, "errors": [], "result": idp})))
            }),
        )
        .route(
            "/client/v4/accounts/{account}/access/identity_providers/{id}",
            put(|State(f): State<Arc<Fake>>, h: HeaderMap, UrlPath((_, id)): UrlPath<(String, String)>, Json(body): Json<Value>| async move {
                if !authorised(&h) {
                    return denied();
                }
                if let Err(e) = well_formed(&body) {
                    return e;
                }
                f.bodies.lock().unwrap().push(("PUT".into(), body.clone()));
                let mut idp = body;
                idp["id"] = json!(id);
                (StatusCode::OK, Json(json!({"success": true, "errors": [], "result": idp})))
            }),
        )
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/client/v4", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, fake)
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_apply_push_and_undo_cloudflare() {
    let sim = sim("adele@contoso.com").await;
    let data = temp();
    let r = cli(
        &sim,
        &data,
        &[
            "plan",
            "--provider",
            "cloudflare",
            "--input",
            "team=acme",
            "--json",
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("To sign in, open") && r.stderr.contains("/devicelogin"),
        "device code on stderr: {}",
        r.stderr
    );
    let plan: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(plan["plan"]["changes"].as_array().unwrap().len(), 4);

    // Without --yes and without a terminal, nothing happens.
    let out = temp();
    let r = cli(
        &sim,
        &data,
        &[
            "apply",
            "--provider",
            "cloudflare",
            "--input",
            "team=acme",
            "--output-dir",
            out.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(r.code, 7, "{}", r.stderr);
    // Without saying where the secret goes, nothing happens either.
    let r = cli(
        &sim,
        &data,
        &[
            "apply",
            "--provider",
            "cloudflare",
            "--input",
            "team=acme",
            "--yes",
        ],
    )
    .await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("shown only once"), "{}", r.stderr);

    let (api, fake) = fake_cloudflare().await;
    let token_file = out.join("token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let r = cli(
        &sim,
        &data,
        &[
            "apply",
            "--provider",
            "cloudflare",
            "--input",
            "team=acme",
            "--yes",
            "--json",
            "--output-dir",
            out.to_str().unwrap(),
            "--push",
            "--push-input",
            &format!("account_id={ACCOUNT}"),
            "--push-token-file",
            token_file.to_str().unwrap(),
            "--push-api",
            &api,
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{}\n{}", r.stderr, r.stdout);
    let result: Value = serde_json::from_str(&r.stdout).unwrap();
    let app_id = result["result"]["appId"].as_str().unwrap().to_string();
    // Cloudflare received exactly its documented body.
    let bodies = fake.bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1);
    let (method, body) = &bodies[0];
    assert_eq!(method, "POST");
    assert_eq!(body["type"], "azureAD");
    assert_eq!(body["config"]["client_id"], app_id.as_str());
    assert_eq!(
        body["config"]["directory_id"],
        "b2d5c2a4-6f1e-4c8b-9a3d-1e2f3a4b5c6d"
    );
    assert_eq!(body["config"]["support_groups"], true);
    let secret = body["config"]["client_secret"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(secret.len() >= 16);
    // The secret is in the hand-over file, readable by the owner only, and nowhere else.
    let api_body = std::fs::read_to_string(out.join("api_body.json")).unwrap();
    assert!(api_body.contains(&secret));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(out.join("api_body.json"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
    }
    assert!(
        !r.stderr.contains(&secret) && !r.stdout.contains(&secret),
        "the secret was printed"
    );
    let journal_dir = data.join("journal");
    for entry in walk(&journal_dir) {
        assert!(
            !std::fs::read_to_string(&entry).unwrap().contains(&secret),
            "the secret is in the journal"
        );
    }
    let checks = result["result"]["checks"].as_array().unwrap();
    assert_checks_pass(checks, &["oidc_discovery", "client_secret"]);
    assert!(std::fs::read_to_string(out.join("cloudflare-entra-id.tf"))
        .unwrap()
        .contains(&app_id));

    // Re-applying changes nothing.
    let r = cli(
        &sim,
        &data,
        &[
            "apply",
            "--provider",
            "cloudflare",
            "--input",
            "team=acme",
            "--yes",
            "--json",
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("No changes"), "{}", r.stderr);

    // Undo removes the app.
    let r = cli(
        &sim,
        &data,
        &[
            "undo",
            "--provider",
            "cloudflare",
            "--input",
            "team=acme",
            "--yes",
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let tenant = "b2d5c2a4-6f1e-4c8b-9a3d-1e2f3a4b5c6d";
    assert!(!sim
        .directory(tenant)
        .unwrap()
        .applications
        .iter()
        .any(|a| a["appId"] == app_id.as_str()));
    assert_traffic_matches_csdl(&sim);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_and_pending_consent_have_their_exit_codes() {
    let sim = sim("megan@contoso.com").await;
    let data = temp();
    let r = cli(
        &sim,
        &data,
        &[
            "plan",
            "--provider",
            "cloudflare",
            "--input",
            "team=acme corp",
        ],
    )
    .await;
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no spaces"), "{}", r.stderr);
    let r = cli(&sim, &data, &["plan", "--provider", "nope"]).await;
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("Known providers: cloudflare, file-transfer, file-transfer-oauth, firezone, oidc, pomerium, saml, scim, twingate"),
        "{}",
        r.stderr
    );
    let out = temp();
    let apply = [
        "apply",
        "--provider",
        "pomerium",
        "--input",
        "authenticate_url=https://auth.contoso.com",
        "--yes",
        "--output-dir",
        out.to_str().unwrap(),
        "--json",
    ];
    // The desktop app is applying to the same tenant: the command waits its turn, changing
    // nothing (exit 12).
    let tenant_dir = data
        .join("journal")
        .join("b2d5c2a4-6f1e-4c8b-9a3d-1e2f3a4b5c6d");
    let before = sim
        .directory("b2d5c2a4-6f1e-4c8b-9a3d-1e2f3a4b5c6d")
        .unwrap();
    let held = entra_setup_core::files::TenantLock::acquire(&tenant_dir).unwrap();
    let r = cli(&sim, &data, &apply).await;
    assert_eq!(r.code, 12, "{}", r.stderr);
    assert!(
        r.stderr.contains("Another Entra Setup") && r.stderr.contains("nothing was changed"),
        "{}",
        r.stderr
    );
    let after = sim
        .directory("b2d5c2a4-6f1e-4c8b-9a3d-1e2f3a4b5c6d")
        .unwrap();
    assert_eq!(after.applications.len(), before.applications.len());
    drop(held);
    let r = cli(&sim, &data, &apply).await;
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert!(
        r.stderr.contains("/v2.0/adminconsent?client_id="),
        "{}",
        r.stderr
    );
    let yaml = std::fs::read_to_string(out.join("pomerium-entra-id.yaml")).unwrap();
    assert!(
        yaml.contains("idp_provider: \"azure\"")
            && yaml.contains("/b2d5c2a4-6f1e-4c8b-9a3d-1e2f3a4b5c6d/v2.0\""),
        "{yaml}"
    );
}

async fn run_plain(args: &[&str]) -> Run {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_entra-setup"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

#[tokio::test]
async fn verify_scim_reports_readiness_with_exit_codes_and_never_prints_the_token() {
    use entra_setup_sim::scim_server::{self, ScimFaults};
    let token = "cli-scim-token-5d1e";
    let server = scim_server::serve(token, ScimFaults::default())
        .await
        .unwrap();
    let dir = temp();
    let good = dir.join("token");
    std::fs::write(&good, format!("{token}\n")).unwrap();

    let r = run_plain(&[
        "verify-scim",
        "--url",
        &server.url,
        "--token-file",
        good.to_str().unwrap(),
        "--write-tests",
    ])
    .await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("pass  test_connection_probe"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("pass  delete"), "{}", r.stdout);
    // A token file saved by an editor with a byte-order mark and Windows line endings: the
    // mark is not part of the token, so the endpoint accepts it.
    let bom = dir.join("bom-token");
    std::fs::write(&bom, format!("\u{feff}{token}\r\n")).unwrap();
    let r = run_plain(&[
        "verify-scim",
        "--url",
        &server.url,
        "--token-file",
        bom.to_str().unwrap(),
    ])
    .await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains(&format!("Tenant URL to enter in Entra: {}", server.url)),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains(token) && !r.stderr.contains(token));
    assert!(
        server.service.users().is_empty(),
        "the test user was removed"
    );

    let r = run_plain(&[
        "verify-scim",
        "--url",
        &server.url,
        "--token-file",
        good.to_str().unwrap(),
        "--json",
    ])
    .await;
    assert_eq!(r.code, 0);
    let report: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(report["ready"], true);
    assert!(report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["id"] == "latency"));
    assert!(
        !report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == "create_user"),
        "no writes without --write-tests"
    );

    let wrong = dir.join("wrong");
    std::fs::write(&wrong, "not-the-token").unwrap();
    let r = run_plain(&[
        "verify-scim",
        "--url",
        &server.url,
        "--token-file",
        wrong.to_str().unwrap(),
    ])
    .await;
    assert_eq!(r.code, 8, "{}", r.stdout);
    assert!(
        r.stdout.contains("FAIL  test_connection_probe")
            && r.stdout.contains("The token was refused"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("Not ready for Entra"), "{}", r.stdout);

    let empty = dir.join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let r = run_plain(&[
        "verify-scim",
        "--url",
        &server.url,
        "--token-file",
        empty.to_str().unwrap(),
    ])
    .await;
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("holds no bearer token"), "{}", r.stderr);

    let r = run_plain(&["verify-scim", "--url", &server.url]).await;
    assert_eq!(r.code, 2, "a credential is required");
}

#[tokio::test]
async fn rotate_then_retire_the_old_secret_from_the_command_line() {
    let sim = sim("adele@contoso.com").await;
    let data = temp();
    let out = temp();
    let (api, fake) = fake_cloudflare().await;
    let token_file = data.join("cf-token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let account = format!("account_id={ACCOUNT}");
    let apply = |extra: &'static [&'static str]| {
        let mut args = vec![
            "apply",
            "--provider",
            "cloudflare",
            "--input",
            "team=acme",
            "--yes",
            "--skip-checks",
            "--json",
            "--push",
            "--push-input",
            &account,
            "--push-token-file",
            token_file.to_str().unwrap(),
            "--push-api",
            &api,
            "--output-dir",
        ];
        args.push(out.to_str().unwrap());
        args.extend_from_slice(extra);
        args.into_iter().map(String::from).collect::<Vec<_>>()
    };
    // The secret in the file apply saved, which is the one it was given.
    let saved_secret = || {
        let body: Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("api_body.json")).unwrap())
                .unwrap();
        body["config"]["client_secret"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let run = |args: Vec<String>| {
        let sim = &sim;
        let data = &data;
        async move {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            cli(sim, data, &refs).await
        }
    };
    let first = run(apply(&[])).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    let first: Value = serde_json::from_str(&first.stdout).unwrap();
    let old_key = first["result"]["secret"]["keyId"]
        .as_str()
        .unwrap()
        .to_string();
    let old_secret = saved_secret();

    // A re-run lists the secret with its expiry and changes nothing.
    let plan = run([
        "plan",
        "--provider",
        "cloudflare",
        "--input",
        "team=acme",
        "--json",
    ]
    .map(String::from)
    .to_vec())
    .await;
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert!(
        plan.stderr.contains("Client secrets on the app") && plan.stderr.contains(&old_key),
        "{}",
        plan.stderr
    );
    let v: Value = serde_json::from_str(&plan.stdout).unwrap();
    assert_eq!(v["plan"]["changes"].as_array().unwrap().len(), 0);
    assert_eq!(v["secrets"][0]["keyId"], old_key.as_str());
    assert_eq!(v["secrets"][0]["health"], "valid");

    // Rotation: a new secret, the old one still listed as working, and the command to retire it.
    let rotated = run(apply(&["--rotate-secret"])).await;
    assert_eq!(rotated.code, 0, "{}", rotated.stderr);
    let v: Value = serde_json::from_str(&rotated.stdout).unwrap();
    let new_key = v["result"]["secret"]["keyId"].as_str().unwrap().to_string();
    assert_ne!(new_key, old_key);
    assert!(
        rotated.stderr.contains(&format!(
            "retire-secrets --provider cloudflare --keep {new_key}"
        )),
        "{}",
        rotated.stderr
    );
    assert!(v["result"]["oldSecrets"][0]
        .as_str()
        .unwrap()
        .contains(&old_key));
    // The push after the rotation carried the new secret: Cloudflare's identity provider was
    // updated in place with it, not with the old one.
    let new_secret = saved_secret();
    assert_ne!(new_secret, old_secret);
    let bodies = fake.bodies.lock().unwrap().clone();
    assert_eq!(
        bodies.iter().map(|(m, _)| m.as_str()).collect::<Vec<_>>(),
        ["POST", "PUT"],
        "created once, then updated"
    );
    assert_eq!(bodies[0].1["config"]["client_secret"], old_secret.as_str());
    assert_eq!(bodies[1].1["config"]["client_secret"], new_secret.as_str());

    // Retiring asks first; a key that is not on the app is refused; then only the old one goes.
    let retire = |keep: &str, yes: bool| {
        let mut a = vec![
            "retire-secrets",
            "--provider",
            "cloudflare",
            "--input",
            "team=acme",
            "--json",
            "--keep",
            keep,
        ];
        if yes {
            a.push("--yes");
        }
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let r = run(retire(&new_key, false)).await;
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert!(r.stderr.contains("Retire the old secret"), "{}", r.stderr);
    let r = run(retire("00000000-0000-0000-0000-000000000000", true)).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("No secret with key id 00000000-0000-0000-0000-000000000000"),
        "{}",
        r.stderr
    );
    let r = run(retire(&new_key, true)).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["retired"], json!([old_key]));
    // Without a keychain copy of the old secret, nothing claims it stopped working already.
    assert!(v["retiredSecretTest"].is_null());
    assert!(
        r.stderr
            .contains("Entra can keep accepting a removed secret for a few minutes"),
        "{}",
        r.stderr
    );
    let keys: Vec<String> = sim
        .directory(
            &sim.tenants()
                .into_iter()
                .find(|t| t.default_domain == "contoso.com")
                .unwrap()
                .id,
        )
        .into_iter()
        .flat_map(|d| d.applications)
        .filter(|a| a["uniqueName"] == "entra-setup-cloudflare-acme")
        .flat_map(|a| {
            a["passwordCredentials"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|c| c["keyId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(keys, std::slice::from_ref(&new_key));
    let r = run(retire(&new_key, true)).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("Nothing to retire"), "{}", r.stderr);
    assert_traffic_matches_csdl(&sim);
}

#[tokio::test]
async fn provision_a_scim_service_from_the_command_line() {
    let sim = sim("adele@contoso.com").await;
    let data = temp();
    let token_file = data.join("scim-token.txt");
    std::fs::write(
        &token_file,
        format!("{}\n", entra_setup_sim::scim_server::DEMO_SCIM_TOKEN),
    )
    .unwrap();
    let url = sim.fake_scim_url();
    let base = [
        "apply",
        "--provider",
        "scim",
        "--input",
        "service=Acme Files",
        "--yes",
    ];
    let with = |extra: &[&str]| {
        let mut a: Vec<String> = base.iter().map(|s| (*s).to_string()).collect();
        a.extend(extra.iter().map(|s| (*s).to_string()));
        a
    };
    let run = |args: Vec<String>| {
        let (sim, data) = (&sim, &data);
        async move {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            cli(sim, data, &refs).await
        }
    };
    // A provisioning-only provider without an endpoint, a name nobody has, a plain-http URL.
    let r = run(with(&[])).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("give --scim-url"), "{}", r.stderr);
    let token = token_file.to_str().unwrap();
    let r = run(with(&[
        "--scim-url",
        &url,
        "--scim-token-file",
        token,
        "--assign",
        "Nobody Here",
    ]))
    .await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("No user or group is called \"Nobody Here\""),
        "{}",
        r.stderr
    );
    let r = run(with(&[
        "--scim-url",
        "http://scim.example.com/v2",
        "--scim-token-file",
        token,
        "--sync-all",
    ]))
    .await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("--scim-url:") && r.stderr.contains("uses plain http"),
        "{}",
        r.stderr
    );
    let r = run(with(&["--scim-url", &url, "--scim-token-file", token])).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("give --assign WHO"), "{}", r.stderr);
    // A token copied with its "Bearer " prefix: Entra would send "Bearer Bearer …".
    let bearer = data.join("bearer-token");
    std::fs::write(&bearer, "Bearer abc123\n").unwrap();
    let r = run(with(&[
        "--scim-url",
        &url,
        "--scim-token-file",
        bearer.to_str().unwrap(),
        "--sync-all",
    ]))
    .await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("without \"Bearer \""), "{}", r.stderr);

    // Assign a group by name and a user by sign-in name; Entra's Test Connection runs, the job starts.
    let r = run(with(&[
        "--scim-url",
        &url,
        "--scim-token-file",
        token,
        "--assign",
        "Engineering",
        "--assign",
        "alex@contoso.com",
        "--scim-token-expires",
        "2031-01-31",
        "--json",
    ]))
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        !r.stdout
            .contains(entra_setup_sim::scim_server::DEMO_SCIM_TOKEN)
            && !r
                .stderr
                .contains(entra_setup_sim::scim_server::DEMO_SCIM_TOKEN),
        "the token is never printed"
    );
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let kinds: Vec<&str> = v["plan"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["change"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "instantiateApp",
            "tagApp",
            "createSyncJob",
            "assignToApp",
            "assignToApp",
            "validateScimCredentials",
            "saveScimSecrets",
            "startSyncJob"
        ]
    );
    assert!(v["result"]["scim"]["jobId"].is_string(), "{}", v["result"]);
    let checks = v["result"]["checks"].as_array().unwrap();
    assert_eq!(
        checks.len(),
        1,
        "no OpenID check for a provisioning-only provider: {checks:?}"
    );
    assert_eq!(checks[0]["status"], "pass");
    assert!(
        r.stderr.contains("The SCIM token expires on 2031-01-31"),
        "{}",
        r.stderr
    );
    assert!(
        !r.stderr.contains("password administrator"),
        "no sign-in advice: {}",
        r.stderr
    );
    // The provider's endpoint receives Entra's users once the first cycle has run.
    let mut provisioned = 0;
    for _ in 0..100 {
        provisioned = sim.fake_scim().users().len();
        if provisioned > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(provisioned > 0, "nobody was provisioned");

    // Re-running without the token keeps what Entra saved: nothing to change.
    let r = run(with(&[
        "--scim-url",
        &url,
        "--assign",
        "Engineering",
        "--assign",
        "alex@contoso.com",
        "--scim-token-expires",
        "2031-01-31",
        "--json",
    ]))
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("No changes"), "{}", r.stderr);
    assert_traffic_matches_csdl(&sim);
}

#[tokio::test]
async fn status_reports_expiry_drift_and_provisioning_with_an_exit_code() {
    let sim = sim("adele@contoso.com").await;
    let data = temp();
    let out = temp();
    let run = |args: Vec<&str>| {
        let (sim, data) = (&sim, &data);
        let args: Vec<String> = args.into_iter().map(String::from).collect();
        async move {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            cli(sim, data, &refs).await
        }
    };
    let r = run(vec!["status"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("Nothing to check"), "{}", r.stderr);

    let out_dir = out.to_str().unwrap();
    let r = run(vec![
        "apply",
        "--provider",
        "pomerium",
        "--input",
        "authenticate_url=https://auth.contoso.com",
        "--yes",
        "--skip-checks",
        "--output-dir",
        out_dir,
        "--json",
    ])
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let applied: Value = serde_json::from_str(&r.stdout).unwrap();
    let key = applied["result"]["secret"]["keyId"]
        .as_str()
        .unwrap()
        .to_string();
    let token_file = data.join("scim-token.txt");
    std::fs::write(&token_file, entra_setup_sim::scim_server::DEMO_SCIM_TOKEN).unwrap();
    let url = sim.fake_scim_url();
    let r = run(vec![
        "apply",
        "--provider",
        "scim",
        "--input",
        "service=Acme Files",
        "--yes",
        "--scim-url",
        &url,
        "--scim-token-file",
        token_file.to_str().unwrap(),
        "--assign",
        "Engineering",
        "--scim-token-expires",
        "2031-01-31",
    ])
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);

    // All is well: both setups, the secret's expiry, no drift, the job running.
    let r = run(vec!["status", "--json"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let setups = v["setups"].as_array().unwrap();
    assert_eq!(setups.len(), 2, "{setups:#?}");
    let pom = setups.iter().find(|s| s["provider"] == "pomerium").unwrap();
    assert_eq!(pom["secrets"][0]["keyId"], key.as_str());
    assert_eq!(pom["drift"], json!([]));
    assert_eq!(pom["attention"], json!([]));
    let scim = setups.iter().find(|s| s["provider"] == "scim").unwrap();
    assert!(scim["scim"]["status"]["headline"].is_string(), "{scim:#}");
    assert_eq!(scim["scim"]["tokenExpires"], "2031-01-31");
    assert!(
        r.stderr.contains("OK: nothing needs attention."),
        "{}",
        r.stderr
    );

    // The secret now ends in ten days: attention, exit 9, and the plan that would replace it.
    let tenant = v["tenantId"].as_str().unwrap();
    assert!(sim.set_password_end(
        tenant,
        &key,
        chrono::Utc::now() + chrono::Duration::days(10)
    ));
    let r = run(vec!["status", "--json"]).await;
    assert_eq!(r.code, 9, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("ATTENTION: The client secret expires in 9 days")
            || r.stderr
                .contains("ATTENTION: The client secret expires in 10 days"),
        "{}",
        r.stderr
    );
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let pom = v["setups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["provider"] == "pomerium")
        .unwrap()
        .clone();
    assert!(
        pom["drift"][0]
            .as_str()
            .unwrap()
            .starts_with("Add a new client secret"),
        "{pom:#}"
    );
    assert_eq!(pom["secrets"][0]["health"], "expiresSoon");
    // Status changed nothing.
    let creds = sim
        .directory(tenant)
        .unwrap()
        .applications
        .iter()
        .find(|a| a["uniqueName"] == "entra-setup-pomerium-auth-contoso-com")
        .unwrap()["passwordCredentials"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(creds, 1);

    // Another computer (an empty data folder): status finds both setups in the tenant by their
    // tags and uniqueNames and says they have no journal here; undo removes what the tenant
    // shows is the wizard's.
    let elsewhere = temp();
    let r = cli(&sim, &elsewhere, &["status", "--json"]).await;
    assert_eq!(
        r.code, 9,
        "the expiring secret still needs attention: {}",
        r.stderr
    );
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let found: Vec<(&str, &str)> = v["setups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["provider"].as_str().unwrap(),
                s["source"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found.iter().all(|(_, source)| *source == "tenant"),
        "{found:?}"
    );
    assert!(
        r.stderr
            .matches("found in the tenant; no journal on this computer")
            .count()
            == 2,
        "{}",
        r.stderr
    );
    let r = cli(
        &sim,
        &elsewhere,
        &[
            "undo",
            "--provider",
            "scim",
            "--input",
            "service=Acme Files",
            "--yes",
            "--json",
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("No journal for"), "{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["source"], "tenant");
    assert_eq!(v["undone"].as_array().unwrap().len(), 1);
    assert!(
        !sim.directory(tenant)
            .unwrap()
            .applications
            .iter()
            .any(|a| a["uniqueName"] == "entra-setup-scim-acme-files"),
        "the provisioning app is gone"
    );
    // Nothing of the wizard's is left for that setup: a second undo says so, exit 0.
    let r = cli(
        &sim,
        &elsewhere,
        &[
            "undo",
            "--provider",
            "scim",
            "--input",
            "service=Acme Files",
            "--yes",
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("Nothing to undo"), "{}", r.stderr);
}

/// Every finding of "the CLI misleads on bad input": each gets exit 2 (or the exit code of what
/// really happened) and a message naming the real problem, before anything is signed in to or
/// written; `--json` prints a JSON error object.
#[tokio::test]
async fn bad_arguments_are_refused_with_the_real_reason_and_exit_code() {
    let dir = temp();
    let token = dir.join("token");
    std::fs::write(&token, "t0k3n-for-the-test").unwrap();
    let a_file = dir.join("a-file");
    std::fs::write(&a_file, "not a folder").unwrap();
    let token = token.to_str().unwrap();
    let a_file = a_file.to_str().unwrap();
    let dir_path = dir.to_str().unwrap();
    let dead = format!(
        "http://127.0.0.1:{}/scim/v2",
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    );
    let long_team = format!("team={}", "a".repeat(64));
    let offline = ["--no-keychain", "--device-code"];
    let cases: Vec<(Vec<&str>, u8, &str)> = vec![
        (
            vec![
                "retire-secrets",
                "--provider",
                "cloudflare",
                "--input",
                "team=acme",
                "--keep",
                "not-a-guid",
                "--yes",
            ],
            2,
            "is not a secret's key id",
        ),
        (
            vec![
                "plan",
                "--provider",
                "cloudflare",
                "--input",
                "team=acme",
                "--authority",
                "https://x/?a=1",
                "--graph",
                "https://g",
            ],
            2,
            "?query",
        ),
        (
            vec![
                "plan",
                "--provider",
                "cloudflare",
                "--input",
                "team=acme",
                "--authority",
                "https://login.example:99999",
                "--graph",
                "https://g.example",
            ],
            2,
            "port outside 1–65535",
        ),
        (
            vec![
                "plan",
                "--provider",
                "cloudflare",
                "--input",
                "team=acme",
                "--authority",
                "https://lоgin.microsoftonline.com",
                "--graph",
                "https://g.example",
            ],
            2,
            "internationalised host name",
        ),
        (
            vec![
                "verify-scim",
                "--url",
                "ftp://scim.example.com/v2",
                "--token-file",
                token,
            ],
            2,
            "uses ftp://",
        ),
        (
            vec![
                "verify-scim",
                "--url",
                "scim.example.com/v2",
                "--token-file",
                token,
            ],
            2,
            "has no scheme",
        ),
        (
            vec!["verify-scim", "--url", &dead, "--token-file", token],
            8,
            "Connection refused",
        ),
        // Token files: a device (an endless one) is refused without being read.
        (
            vec!["verify-scim", "--url", &dead, "--token-file", "/dev/zero"],
            2,
            "is not a regular file (a device)",
        ),
        (
            vec![
                "verify-scim",
                "--url",
                &dead,
                "--token-file",
                token,
                "--trust-cert",
                dir_path,
            ],
            2,
            "is not a regular file",
        ),
        (
            vec![
                "plan",
                "--provider",
                "cloudflare",
                "--input",
                "team=acme",
                "--input",
                "team=other",
            ],
            2,
            "--input team is given twice",
        ),
        (
            vec![
                "plan",
                "--provider",
                "cloudflare",
                "--input",
                "team=acme",
                "--input",
                "colour=blue",
            ],
            2,
            "'colour' is not an input here; the inputs are: team",
        ),
        (
            vec!["plan", "--provider", "cloudflare", "--input", &long_team],
            2,
            "at most 63 characters",
        ),
        (
            vec!["plan", "--provider", "cloudflare", "--input", "team=-acme-"],
            2,
            "starts and ends with a letter or digit",
        ),
        (
            vec![
                "undo",
                "--provider",
                "cloudflare",
                "--input",
                "team=acme",
                "--rotate-secret",
            ],
            2,
            "unexpected argument '--rotate-secret'",
        ),
        (
            vec![
                "undo",
                "--provider",
                "cloudflare",
                "--input",
                "team=acme",
                "--scim-url",
                "https://x.example",
            ],
            2,
            "unexpected argument '--scim-url'",
        ),
        (
            vec![
                "apply",
                "--provider",
                "cloudflare",
                "--input",
                "team=acme",
                "--keep-secret",
                "--no-keychain",
            ],
            2,
            "cannot be used with",
        ),
        (
            vec![
                "apply",
                "--provider",
                "cloudflare",
                "--input",
                "team=acme",
                "--push-input",
                "account_id=x",
            ],
            2,
            "--push",
        ),
        (
            vec![
                "apply",
                "--provider",
                "cloudflare",
                "--input",
                "team=acme",
                "--output-dir",
                a_file,
            ],
            2,
            "is a file, not a folder",
        ),
        (
            vec![
                "apply",
                "--provider",
                "cloudflare",
                "--input",
                "team=acme",
                "--push",
                "--push-api",
                "ftp://api.example",
            ],
            2,
            "--push-api:",
        ),
        (vec!["status", "--warn-days=-1"], 2, "not in 0..=3650"),
        (
            vec![
                "status",
                "--tenant",
                "contoso.com",
                "--tenant",
                "fabrikam.com",
            ],
            2,
            "cannot be used multiple times",
        ),
    ];
    for (args, code, says) in &cases {
        let mut all = args.clone();
        if !matches!(all[0], "verify-scim") && !all.contains(&"--no-keychain") {
            all.extend(offline);
        }
        let r = run_plain(&all).await;
        assert_eq!(
            r.code,
            i32::from(*code),
            "{args:?}\nstdout: {}\nstderr: {}",
            r.stdout,
            r.stderr
        );
        assert!(
            r.stderr.contains(says) || r.stdout.contains(says),
            "{args:?} should say {says:?}:\n{}{}",
            r.stdout,
            r.stderr
        );
    }
    // A dead endpoint offers no tenant URL to enter.
    let r = run_plain(&["verify-scim", "--url", &dead, "--token-file", token]).await;
    assert!(
        !r.stdout.contains("Tenant URL to enter") && r.stdout.contains("No tenant URL"),
        "{}",
        r.stdout
    );
    // With --json, a failure is a JSON object on stdout, for usage errors too.
    for args in [
        vec!["plan", "--provider", "nope", "--json", "--no-keychain"],
        vec![
            "undo",
            "--provider",
            "cloudflare",
            "--rotate-secret",
            "--json",
        ],
    ] {
        let r = run_plain(&args).await;
        assert_eq!(r.code, 2, "{}", r.stderr);
        let v: Value = serde_json::from_str(r.stdout.trim())
            .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {}", r.stdout));
        assert_eq!(v["error"]["exitCode"], 2);
        assert_eq!(v["error"]["kind"], "usage");
        assert!(v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
}

/// The generic OpenID Connect provider from the command line, and a provider profile of the
/// admin's own read from a folder (`--providers-dir`) and used end to end.
#[tokio::test]
async fn a_generic_oidc_service_and_a_profile_of_my_own_from_the_command_line() {
    let sim = sim("adele@contoso.com").await;
    let data = temp();
    let out = temp();
    let r = cli(
        &sim,
        &data,
        &[
            "apply",
            "--provider",
            "oidc",
            "--input",
            "name=Team Wiki",
            "--input",
            "redirect_uris=https://wiki.contoso.com/oidc/callback,http://localhost:3000/cb",
            "--yes",
            "--json",
            "--output-dir",
            out.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let settings: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("oidc-settings.json")).unwrap())
            .unwrap();
    assert_eq!(settings["client_id"], v["result"]["appId"]);
    assert!(settings["issuer"]
        .as_str()
        .unwrap()
        .ends_with("/b2d5c2a4-6f1e-4c8b-9a3d-1e2f3a4b5c6d/v2.0"));
    assert!(settings["discovery_url"]
        .as_str()
        .unwrap()
        .ends_with("/.well-known/openid-configuration"));
    let checks = v["result"]["checks"].as_array().unwrap();
    assert_checks_pass(checks, &["oidc_discovery", "client_secret"]);

    // An admin's own profile, in a folder of theirs: the worked example of the README's
    // "Adding a service", exactly as written there.
    let mine = temp();
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let start = readme
        .find("Save it as `grafana.toml`:")
        .expect("the README's worked example");
    let body = &readme[start..];
    let body = &body[body.find("```toml\n").unwrap() + 8..];
    let profile = body[..body.find("\n```").unwrap() + 1].to_string();
    std::fs::write(mine.join("grafana.toml"), &profile).unwrap();
    let dir = mine.to_str().unwrap();
    let r = run_plain(&["providers", "--providers-dir", dir]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("grafana — Grafana") && r.stdout.contains("grafana.toml"),
        "{}",
        r.stdout
    );
    let out2 = temp();
    let r = cli(
        &sim,
        &data,
        &[
            "apply",
            "--providers-dir",
            dir,
            "--provider",
            "grafana",
            "--input",
            "url=https://grafana.example.com",
            "--yes",
            "--output-dir",
            out2.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let ini = std::fs::read_to_string(out2.join("grafana-azuread.ini")).unwrap();
    assert!(
        ini.contains("[auth.azuread]")
            && ini.contains("client_secret = ")
            && !ini.contains("{client_secret}")
            && ini.contains("/b2d5c2a4-6f1e-4c8b-9a3d-1e2f3a4b5c6d/oauth2/v2.0/token"),
        "{ini}"
    );
    let tenant = "b2d5c2a4-6f1e-4c8b-9a3d-1e2f3a4b5c6d";
    let app = sim
        .directory(tenant)
        .unwrap()
        .applications
        .into_iter()
        .find(|a| a["displayName"] == "Grafana (grafana.example.com)")
        .expect("the app of the admin's own profile");
    assert_eq!(
        app["web"]["redirectUris"][0],
        "https://grafana.example.com/login/azuread"
    );

    // A broken profile of theirs is refused with its file and line.
    std::fs::write(
        mine.join("grafana.toml"),
        profile.replace("source = \"registration\"", "source = \"registry\""),
    )
    .unwrap();
    let r = run_plain(&["providers", "--providers-dir", dir]).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("grafana.toml:") && r.stderr.contains("unknown variant"),
        "{}",
        r.stderr
    );
    assert_traffic_matches_csdl(&sim);
}

/// A SAML service from the command line: the metadata XML and the certificate land in the
/// output folder, the metadata URL is printed, and the run is not called done (exit 10) until
/// the admin confirms a password administrator; the file-transfer service gets SAML and SCIM
/// on one enterprise app.
#[tokio::test]
async fn a_saml_service_and_the_file_transfer_service_from_the_command_line() {
    let sim = sim("adele@contoso.com").await;
    let data = temp();
    let out = temp();
    let args = [
        "apply",
        "--provider",
        "saml",
        "--input",
        "name=Acme Files",
        "--input",
        "entity_id=https://files.contoso.com/saml/metadata",
        "--input",
        "reply_url=https://files.contoso.com/saml/acs",
        "--assign",
        "alex@contoso.com",
        "--yes",
        "--output-dir",
        out.to_str().unwrap(),
    ];
    let r = cli(&sim, &data, &args).await;
    assert_eq!(r.code, 10, "{}", r.stderr);
    assert!(
        r.stderr.contains("--confirm-password-admin"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("PASS The app's federation metadata"),
        "{}",
        r.stderr
    );
    let url = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("App Federation Metadata URL: "))
        .expect("the metadata URL is printed")
        .to_string();
    assert!(
        url.contains("/federationmetadata/2007-06/federationmetadata.xml?appid="),
        "{url}"
    );
    let xml = std::fs::read_to_string(out.join("federation-metadata.xml")).unwrap();
    assert!(xml.contains("entityID=\"https://sts.windows.net/"), "{xml}");
    let pem = std::fs::read_to_string(out.join("saml-signing-certificate.pem")).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    let settings = std::fs::read_to_string(out.join("saml-settings.txt")).unwrap();
    assert!(
        settings.contains(&format!("App Federation Metadata URL: {url}")),
        "{settings}"
    );
    // Only the assigned user may sign in.
    let tenant = "b2d5c2a4-6f1e-4c8b-9a3d-1e2f3a4b5c6d";
    let d = sim.directory(tenant).unwrap();
    let sp = d
        .service_principals
        .iter()
        .find(|s| s["preferredSingleSignOnMode"] == "saml")
        .unwrap();
    assert_eq!(sp["appRoleAssignmentRequired"], true);
    let assigned: Vec<_> = d
        .assignments
        .iter()
        .filter(|a| a["resourceId"] == sp["id"])
        .collect();
    assert_eq!(assigned.len(), 1, "{assigned:?}");
    drop(d);

    // Confirmed: nothing left to change, exit 0, the hand-over again.
    let mut confirmed: Vec<&str> = args.to_vec();
    confirmed.push("--confirm-password-admin");
    let r = cli(&sim, &data, &confirmed).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains(&url), "{}", r.stdout);

    // Certificate rotation: a new certificate next to the active one, made active once the
    // service has it, then the old one removed.
    let mut rotate = confirmed.clone();
    rotate.push("--rotate-certificate");
    let r = cli(&sim, &data, &rotate).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let new = r
        .stderr
        .split("A new signing certificate was added next to the active one: ")
        .nth(1)
        .expect(&r.stderr)[..40]
        .to_string();
    let new_pem = std::fs::read_to_string(out.join("saml-signing-certificate-new.pem")).unwrap();
    assert!(new_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    let preferred = |sim: &entra_setup_sim::SimHandle| {
        let d = sim.directory(tenant).unwrap();
        let sp = d
            .service_principals
            .iter()
            .find(|s| s["preferredSingleSignOnMode"] == "saml")
            .unwrap();
        let keys = d
            .signing_keys
            .iter()
            .filter(|k| k.sp_id == sp["id"].as_str().unwrap())
            .count();
        (
            sp["preferredTokenSigningKeyThumbprint"]
                .as_str()
                .unwrap()
                .to_string(),
            keys,
        )
    };
    let (active, keys) = preferred(&sim);
    assert_ne!(active, new, "Entra still signs with the old certificate");
    assert_eq!(keys, 2);
    let which = [
        "--provider",
        "saml",
        "--input",
        "name=Acme Files",
        "--input",
        "entity_id=https://files.contoso.com/saml/metadata",
        "--input",
        "reply_url=https://files.contoso.com/saml/acs",
        "--yes",
    ];
    let bad = cli(
        &sim,
        &data,
        &[
            &["activate-certificate", "--thumbprint", "not-hex"][..],
            &which[..],
        ]
        .concat(),
    )
    .await;
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("is not a SHA-1 thumbprint"),
        "{}",
        bad.stderr
    );
    let r = cli(
        &sim,
        &data,
        &[
            &["activate-certificate", "--thumbprint", new.as_str()][..],
            &which[..],
        ]
        .concat(),
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(preferred(&sim), (new.clone(), 2));
    let r = cli(
        &sim,
        &data,
        &[&["retire-certificates"][..], &which[..]].concat(),
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains(&format!("Removed 1 old certificate(s): {active}.")),
        "{}",
        r.stderr
    );
    assert_eq!(preferred(&sim), (new.clone(), 1));

    // The service's own SP metadata instead of typed URLs (made by pysaml2, a peer library).
    let md = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../core/tests/data/sp-metadata/pysaml2.xml"
    );
    let r = cli(
        &sim,
        &data,
        &[
            "plan",
            "--provider",
            "saml",
            "--input",
            "name=Team Wiki",
            "--sp-metadata",
            md,
            "--json",
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("From the metadata: Entity ID https://wiki.example.org/shibboleth, Reply URL https://wiki.example.org/Shibboleth.sso/SAML2/POST"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("left out, Entra answers by HTTP-POST only"),
        "{}",
        r.stderr
    );
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let uris = v["plan"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["change"]["kind"] == "setSamlUris")
        .unwrap();
    assert_eq!(
        uris["change"]["body"]["web"]["logoutUrl"],
        "https://wiki.example.org/Shibboleth.sso/SLO/Redirect"
    );
    let r = cli(
        &sim,
        &data,
        &[
            "plan",
            "--provider",
            "saml",
            "--input",
            "name=Team Wiki",
            "--input",
            "entity_id=https://other.example.org/sp",
            "--sp-metadata",
            md,
        ],
    )
    .await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--input entity_id=https://other.example.org/sp differs from the metadata's https://wiki.example.org/shibboleth"), "{}", r.stderr);
    let idp = out.join("federation-metadata.xml");
    let r = cli(
        &sim,
        &data,
        &[
            "plan",
            "--provider",
            "saml",
            "--input",
            "name=Team Wiki",
            "--sp-metadata",
            idp.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("identity provider's metadata"),
        "{}",
        r.stderr
    );

    // status: the certificate and its expiry, nothing needing attention.
    let r = cli(&sim, &data, &["status", "--json"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("SAML certificate ") && r.stderr.contains("(signing)"),
        "{}",
        r.stderr
    );
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let setup = &v["setups"][0];
    assert_eq!(setup["provider"], "saml");
    assert_eq!(setup["certificates"][0]["preferred"], true);
    assert_eq!(setup["attention"], serde_json::json!([]));

    // The file-transfer service: SAML and SCIM on the same enterprise app.
    let token_file = data.join("scim-token.txt");
    std::fs::write(&token_file, entra_setup_sim::scim_server::DEMO_SCIM_TOKEN).unwrap();
    let scim_url = sim.fake_scim_url();
    let r = cli(
        &sim,
        &data,
        &[
            "apply",
            "--provider",
            "file-transfer",
            "--input",
            "subdomain=acme",
            "--input",
            "entity_id=https://acme.files.contoso.com/saml/metadata",
            "--input",
            "reply_url=https://acme.files.contoso.com/saml/acs",
            "--scim-url",
            &scim_url,
            "--scim-token-file",
            token_file.to_str().unwrap(),
            "--scim-token-expires",
            &(chrono::Utc::now().date_naive() + chrono::Duration::days(365)).to_string(),
            "--assign",
            "Engineering",
            "--confirm-password-admin",
            "--yes",
            "--json",
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let d = sim.directory(tenant).unwrap();
    let apps: Vec<_> = d
        .applications
        .iter()
        .filter(|a| a["uniqueName"] == "entra-setup-file-transfer-acme")
        .collect();
    assert_eq!(apps.len(), 1, "one app for SAML and SCIM");
    let sp = d
        .service_principals
        .iter()
        .find(|s| s["appId"] == apps[0]["appId"])
        .unwrap();
    assert_eq!(sp["preferredSingleSignOnMode"], "saml");
    assert_eq!(sp["samlSingleSignOnSettings"]["relayState"], "acme");
    assert_eq!(sp["appRoleAssignmentRequired"], true);
    assert_eq!(v["result"]["scim"]["servicePrincipalId"], sp["id"]);
    assert!(v["result"]["saml"]["metadataUrl"]
        .as_str()
        .unwrap()
        .ends_with(apps[0]["appId"].as_str().unwrap()));
    assert_traffic_matches_csdl(&sim);
}

/// The vendor's apps of `tenant` named `name` (service principals another tenant owns).
fn vendor_sp(sim: &SimHandle, tenant: &str, name: &str) -> Option<Value> {
    sim.directory(tenant)
        .unwrap()
        .service_principals
        .into_iter()
        .find(|sp| sp["displayName"] == name && sp["appOwnerOrganizationId"] != tenant)
}

const CONTOSO_ID: &str = "b2d5c2a4-6f1e-4c8b-9a3d-1e2f3a4b5c6d";

#[tokio::test]
async fn firezone_and_twingate_from_the_command_line() {
    let sim = sim("adele@contoso.com").await;
    let data = temp();
    let run = |args: &[&str]| {
        let args: Vec<String> = args.iter().map(|s| (*s).to_string()).collect();
        let (sim, data) = (&sim, &data);
        async move {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            cli(sim, data, &refs).await
        }
    };
    let help = run_plain(&["apply", "--help"]).await;
    assert!(
        help.stdout.contains("--wait-for-consent <SECONDS>"),
        "{}",
        help.stdout
    );
    let help = run_plain(&["--help"]).await;
    assert!(
        help.stdout.contains(" 11  the vendor's own app"),
        "{}",
        help.stdout
    );

    // Firezone: a sync mode is needed, SCIM is not Firezone's way.
    let r = run(&["apply", "--provider", "firezone", "--yes"]).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--assign GROUP"), "{}", r.stderr);
    let r = run(&[
        "apply",
        "--provider",
        "firezone",
        "--scim-url",
        "https://x.example.com/scim",
        "--sync-all",
        "--yes",
    ])
    .await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("leave out --scim-url"), "{}", r.stderr);
    // Before anyone connected Firezone: exit 11, saying where to connect it.
    let r = run(&[
        "apply",
        "--provider",
        "firezone",
        "--assign",
        "Engineering",
        "--yes",
    ])
    .await;
    assert_eq!(r.code, 11, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("\"Firezone Authentication\" is not in this tenant yet")
            && r.stderr.contains("Settings → Directory Sync"),
        "{}",
        r.stderr
    );
    // Connected while the CLI waits (the apps appear late, as replication makes them).
    let consent = async {
        tokio::time::sleep(std::time::Duration::from_millis(800)).await;
        sim.consent_to_vendor("firezone", CONTOSO_ID, "adele@contoso.com")
            .await
            .unwrap();
    };
    let (r, ()) = tokio::join!(
        run(&[
            "apply",
            "--provider",
            "firezone",
            "--assign",
            "Engineering",
            "--yes",
            "--wait-for-consent",
            "60",
            "--json"
        ]),
        consent
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("Waiting up to 60s"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("PASS \"Firezone Directory Sync\": present and consented."),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("choose \"Assigned groups only\"") && r.stderr.contains("Sync Now"),
        "{}",
        r.stderr
    );
    let out: Value = serde_json::from_str(r.stdout.lines().last().unwrap()).unwrap();
    let checks = out["result"]["checks"].as_array().unwrap();
    assert_checks_pass(
        checks,
        &[
            "vendor_consent_auth",
            "vendor_consent_sync",
            "vendor_assignments",
        ],
    );
    assert!(checks.iter().any(|c| c["id"] == "vendor_assignments"));
    let auth = vendor_sp(&sim, CONTOSO_ID, "Firezone Authentication").unwrap();
    assert_eq!(auth["appRoleAssignmentRequired"], true);
    let on_auth: Vec<Value> = sim
        .directory(CONTOSO_ID)
        .unwrap()
        .assignments
        .into_iter()
        .filter(|a| a["resourceId"] == auth["id"])
        .collect();
    assert_eq!(on_auth.len(), 1);
    assert_eq!(on_auth[0]["principalDisplayName"], "Engineering");

    // status repeats the checks: all well, then the consent revoked.
    let r = run(&["status"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    sim.revoke_vendor_consent(CONTOSO_ID, "Firezone Directory Sync", false);
    let r = run(&["status"]).await;
    assert_eq!(r.code, 9, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("its consent lacks Directory.Read.All (application)"),
        "{}",
        r.stderr
    );

    // Undo takes back the assignment and the setting; Firezone's apps stay.
    let r = run(&["undo", "--provider", "firezone", "--yes"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let auth = vendor_sp(&sim, CONTOSO_ID, "Firezone Authentication").unwrap();
    assert_eq!(auth["appRoleAssignmentRequired"], false);
    assert!(vendor_sp(&sim, CONTOSO_ID, "Firezone Directory Sync").is_some());

    // Twingate: its gallery app provisions even before its sign-in app is connected, and the
    // exit code says the sign-in is not connected yet.
    let token_file = data.join("twingate-token.txt");
    std::fs::write(&token_file, entra_setup_sim::scim_server::DEMO_SCIM_TOKEN).unwrap();
    let url = sim.fake_scim_url();
    let out_dir = data.join("twingate-out");
    let twingate = |extra: &[&str]| {
        let mut a = vec![
            "apply",
            "--provider",
            "twingate",
            "--scim-url",
            url.as_str(),
            "--scim-token-file",
            token_file.to_str().unwrap(),
            "--yes",
        ];
        a.extend_from_slice(extra);
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let args = twingate(&[
        "--assign",
        "Sales",
        "--output-dir",
        out_dir.to_str().unwrap(),
    ]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = run(&refs).await;
    assert_eq!(r.code, 11, "{}", r.stderr);
    assert!(
        r.stderr
            .contains(&format!("Tenant ID for Twingate's console: {CONTOSO_ID}"))
            && r.stderr.contains("\"Twingate\" is not in this tenant yet"),
        "{}",
        r.stderr
    );
    let gallery: Vec<Value> = sim
        .directory(CONTOSO_ID)
        .unwrap()
        .applications
        .into_iter()
        .filter(|a| a["applicationTemplateId"] == entra_setup_sim::vendors::GALLERY[0].id)
        .collect();
    assert_eq!(gallery.len(), 1, "{gallery:#?}");
    assert!(
        std::fs::read_to_string(out_dir.join("twingate_connect.txt"))
            .unwrap()
            .contains(CONTOSO_ID)
    );
    sim.consent_to_vendor("twingate", CONTOSO_ID, "adele@contoso.com")
        .await
        .unwrap();
    let args = twingate(&["--assign", "Sales", "--wait-for-consent", "30"]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = run(&refs).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("PASS \"Twingate\": present and consented."),
        "{}",
        r.stderr
    );
    assert_traffic_matches_csdl(&sim);
}

/// Trust: an app a member registered first under the wizard's name stops `apply` with exit 13
/// before any write, naming who else holds it and how to adopt; `--adopt` takes it over. A
/// damaged journal stops `undo` (exit 12) instead of reading as "no journal".
#[tokio::test]
async fn an_app_someone_else_holds_exits_13_until_adopted_and_a_damaged_journal_stops_undo() {
    const CONTOSO: &str = "b2d5c2a4-6f1e-4c8b-9a3d-1e2f3a4b5c6d";
    let sim = sim("adele@contoso.com").await;
    let data = temp();
    let out = temp();
    sim.register_app_as(
        CONTOSO,
        "alex@contoso.com",
        json!({
            "displayName": "Pomerium",
            "uniqueName": "entra-setup-pomerium-auth-squat-example",
            "tags": ["entra-setup", "entra-setup:pomerium"],
            "web": {"redirectUris": ["https://auth.squat.example/oauth2/callback", "https://harvest.alex.example/cb"]},
        }),
    )
    .unwrap();
    sim.add_password(CONTOSO, "entra-setup-pomerium-auth-squat-example", "alex's")
        .unwrap();
    let apply = |extra: &[&str]| {
        let mut a = vec![
            "apply",
            "--provider",
            "pomerium",
            "--input",
            "authenticate_url=https://auth.squat.example",
            "--yes",
            "--wait-consent",
            "0",
            "--output-dir",
            out.to_str().unwrap(),
        ];
        a.extend_from_slice(extra);
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let before = sim.directory(CONTOSO).unwrap();
    let args = apply(&[]);
    let r = cli(
        &sim,
        &data,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .await;
    assert_eq!(r.code, 13, "{}", r.stderr);
    for says in [
        "alex@contoso.com",
        "alex's",
        "https://harvest.alex.example/cb",
        "--adopt",
        "Nothing was changed",
    ] {
        assert!(r.stderr.contains(says), "{says}: {}", r.stderr);
    }
    let after = sim.directory(CONTOSO).unwrap();
    assert_eq!(after.grants, before.grants);
    assert_eq!(after.assignments, before.assignments);
    assert_eq!(after.applications, before.applications, "nothing written");
    assert!(
        std::fs::read_dir(&out).unwrap().next().is_none(),
        "no file written"
    );

    // A mistyped id to keep: refused before anything is removed.
    let args = apply(&["--adopt", "--adopt-keep", "not-an-id\u{1b}[2J"]);
    let r = cli(
        &sim,
        &data,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("--adopt-keep")
            && r.stderr.contains("'not-an-id")
            && !r.stderr.contains('\u{1b}'),
        "{}",
        r.stderr
    );
    assert_eq!(
        sim.directory(CONTOSO).unwrap().applications,
        before.applications
    );

    let args = apply(&["--adopt"]);
    let r = cli(
        &sim,
        &data,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .await;
    assert!(r.code == 0 || r.code == 5, "{}", r.stderr);
    let app = sim
        .directory(CONTOSO)
        .unwrap()
        .applications
        .into_iter()
        .find(|a| a["uniqueName"] == "entra-setup-pomerium-auth-squat-example")
        .unwrap();
    assert!(!app.to_string().contains("harvest.alex.example"), "{app}");
    assert!(!app["passwordCredentials"].to_string().contains("alex's"));

    // The journal damaged in the middle: undo names it and exits 12, never "no journal".
    let journal = walk(&data.join("journal"))
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .unwrap();
    let good = std::fs::read(&journal).unwrap();
    let first_line = good.iter().position(|b| *b == b'\n').unwrap() + 1;
    let undo = [
        "undo",
        "--provider",
        "pomerium",
        "--input",
        "authenticate_url=https://auth.squat.example",
        "--yes",
    ];
    // Each kind of damage: a garbage line with a NUL, random bytes, and a folder where the
    // journal should be (a last line cut short is a write torn by a crash, and is skipped). Each stops undo with the file named; the tenant is
    // never undone from its tags as if there were no journal.
    let mut random = good[..first_line].to_vec();
    random.extend((0u8..=255).rev().cycle().take(700).map(|b| b ^ 0x5a));
    let mut garbage = good[..first_line].to_vec();
    garbage.extend_from_slice(b"garbage\x00\n");
    garbage.extend_from_slice(&good[first_line..]);
    for (damage, bytes) in [
        ("garbage", Some(garbage)),
        ("random", Some(random)),
        ("folder", None),
    ] {
        let _ = std::fs::remove_file(&journal);
        match &bytes {
            Some(b) => std::fs::write(&journal, b).unwrap(),
            None => std::fs::create_dir(&journal).unwrap(),
        }
        let r = cli(&sim, &data, &undo).await;
        assert_eq!(r.code, 12, "{damage}: {}", r.stderr);
        assert!(
            r.stderr
                .contains(journal.file_name().unwrap().to_str().unwrap()),
            "{damage}: the journal is named: {}",
            r.stderr
        );
        assert!(!r.stderr.contains("No journal"), "{damage}: {}", r.stderr);
        if damage == "garbage" {
            assert!(r.stderr.contains("damaged at line 2"), "{}", r.stderr);
        }
        if bytes.is_none() {
            std::fs::remove_dir(&journal).unwrap();
        }
    }
    std::fs::write(&journal, &good).unwrap();
}

/// Every live check passed, and the ones the setup must have ran (an empty or shortened list
/// does not pass for "all passed").
fn assert_checks_pass(checks: &[Value], must_run: &[&str]) {
    let ran: Vec<&str> = checks.iter().filter_map(|c| c["id"].as_str()).collect();
    for id in must_run {
        assert!(ran.contains(id), "the {id} check did not run: {ran:?}");
    }
    assert!(checks.iter().all(|c| c["status"] == "pass"), "{checks:#?}");
}
