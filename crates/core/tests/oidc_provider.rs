//! The wizard's OAuth client against an OpenID Provider we did not write: panva's certified
//! `oidc-provider` from npm (tests/oidc/provider.mjs), with PKCE enforced, loopback redirects on
//! any port, refresh tokens and the device flow. Needs `node` and `npm ci` at the repository root.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use entra_setup_core::auth::{
    self, AuthError, BrowserOpener, Method, OpenFuture, SignInEvent, SignInOptions, StepScopes,
    TokenSource,
};
use entra_setup_core::cloud::{Cloud, CloudChoice};
use entra_setup_core::ExposeSecret;
use support::recorder;
use tokio_util::sync::CancellationToken;

const CLIENT_ID: &str = "entra-setup-test";
const GRAPH: &str = "https://graph.example.test";

struct Provider {
    child: Child,
    issuer: String,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_provider() -> Provider {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut child = Command::new("node")
        .arg("tests/oidc/provider.mjs")
        .arg("0")
        .current_dir(&root)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("node runs (install Node.js and run `npm ci` at the repository root)");
    let stdout = child.stdout.take().unwrap();
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    // Keep draining: the provider logs notices to stdout and must not hit a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    let issuer = line
        .trim()
        .strip_prefix("READY ")
        .unwrap_or_else(|| panic!("provider did not start: {line}"))
        .to_string();
    Provider { child, issuer }
}

/// A browser stand-in: follows every redirect with a cookie jar, as a browser does, through the
/// provider's login and consent interactions and on to the wizard's loopback listener.
struct CookieBrowser(reqwest::Client);

impl CookieBrowser {
    fn new() -> Self {
        Self(
            reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::limited(20))
                .build()
                .unwrap(),
        )
    }
}

impl BrowserOpener for CookieBrowser {
    fn open(&self, url: String) -> OpenFuture {
        let http = self.0.clone();
        Box::pin(async move {
            http.get(url).send().await.map_err(|e| {
                let mut detail = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    detail = format!("{detail}: {s}");
                    source = s.source();
                }
                AuthError::Browser(detail)
            })?;
            Ok(())
        })
    }
}

fn options(issuer: &str, method: Method, extra: Vec<(String, String)>) -> SignInOptions {
    let mut scopes: Vec<String> = auth::OIDC_SCOPES.iter().map(|s| (*s).to_string()).collect();
    scopes.extend(
        StepScopes::SignIn
            .scopes()
            .iter()
            .map(|s| format!("{GRAPH}/{s}")),
    );
    SignInOptions {
        discovery_url: format!("{issuer}/.well-known/openid-configuration"),
        tenant_label: "the test provider".into(),
        cloud_name: "test".into(),
        client_id: CLIENT_ID.into(),
        scopes,
        method,
        timeout: std::time::Duration::from_secs(30),
        redirect_host: "127.0.0.1".into(),
        extra_params: extra,
    }
}

#[tokio::test]
async fn auth_code_with_pkce_then_refresh() {
    let p = start_provider();
    let http = entra_setup_core::http::client();
    let (on_event, events) = recorder();
    // OpenID Connect Core §11: a standard provider issues a refresh token for offline_access only
    // with prompt=consent (Microsoft does not require it).
    let opts = options(
        &p.issuer,
        Method::Browser,
        vec![("prompt".into(), "consent".into())],
    );
    let tokens = auth::sign_in(
        &http,
        &opts,
        &CookieBrowser::new(),
        on_event,
        &CancellationToken::new(),
    )
    .await
    .expect("sign-in against oidc-provider succeeds");
    // The id token was verified against the provider's JWKS, audience, issuer and nonce.
    assert_eq!(tokens.id.oid, "admin");
    assert_eq!(
        tokens.id.preferred_username.as_deref(),
        Some("admin@example.test")
    );
    assert!(!tokens.access_token.expose_secret().is_empty());
    let refresh = tokens
        .refresh_token
        .clone()
        .expect("offline_access gives a refresh token");
    assert!(events
        .lock()
        .unwrap()
        .iter()
        .any(|e| matches!(e, SignInEvent::BrowserOpened { .. })));

    // The refresh path of TokenSource, against the same provider.
    let cloud = Cloud::from_choice(&CloudChoice::Custom {
        authority: p.issuer.clone(),
        graph: GRAPH.into(),
    })
    .unwrap();
    let source = TokenSource::new(
        http.clone(),
        cloud,
        CLIENT_ID.into(),
        tokens.discovery.token_endpoint.clone(),
        Some(refresh),
        None,
    );
    let fresh = source
        .access_token(StepScopes::SignIn.scopes())
        .await
        .expect("refresh works");
    assert_ne!(fresh.expose_secret(), tokens.access_token.expose_secret());
}

#[tokio::test]
async fn the_provider_really_enforces_pkce() {
    let p = start_provider();
    // Without a code_challenge the provider refuses: the passing test above is proof we send one.
    let resp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/auth?client_id={CLIENT_ID}&response_type=code&scope=openid&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2F&state=x", p.issuer))
        .send()
        .await
        .unwrap();
    let location = resp
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    assert!(
        location.contains("error=invalid_request") && location.contains("PKCE"),
        "{location}"
    );
}

#[tokio::test]
async fn a_refusal_at_the_provider_is_reported_as_denied() {
    let p = start_provider();
    let http = entra_setup_core::http::client();
    let (on_event, _) = recorder();
    let opts = options(
        &p.issuer,
        Method::Browser,
        vec![("login_hint".into(), "deny".into())],
    );
    let err = auth::sign_in(
        &http,
        &opts,
        &CookieBrowser::new(),
        on_event,
        &CancellationToken::new(),
    )
    .await
    .expect_err("denied");
    assert!(
        matches!(&err, AuthError::Denied { error, .. } if error == "access_denied"),
        "{err}"
    );
}

#[tokio::test]
async fn device_code_flow() {
    let p = start_provider();
    let http = entra_setup_core::http::client();
    let issuer = p.issuer.clone();
    // A person entering the code on the provider's device page (with its CSRF field) and consenting.
    let on_event: Arc<dyn Fn(SignInEvent) + Send + Sync> = Arc::new(move |e| {
        if let SignInEvent::DeviceCode {
            user_code,
            verification_uri,
            ..
        } = e
        {
            let issuer = issuer.clone();
            tokio::spawn(async move {
                assert!(verification_uri.starts_with(&issuer));
                let browser = CookieBrowser::new().0;
                let xsrf_of = |page: &str| {
                    page.split("name=\"xsrf\" value=\"")
                        .nth(1)
                        .and_then(|r| r.split('"').next())
                        .expect("the device page has an xsrf field")
                        .to_string()
                };
                let page = browser
                    .get(format!("{issuer}/device"))
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                // Enter the code, then confirm it on the provider's second page.
                let confirm = browser
                    .post(format!("{issuer}/device"))
                    .form(&[
                        ("xsrf", xsrf_of(&page).as_str()),
                        ("user_code", user_code.as_str()),
                    ])
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                assert!(
                    confirm.contains("name=\"confirm\""),
                    "the provider asks to confirm the code"
                );
                let done = browser
                    .post(format!("{issuer}/device"))
                    .form(&[
                        ("xsrf", xsrf_of(&confirm).as_str()),
                        ("user_code", user_code.as_str()),
                        ("confirm", "yes"),
                    ])
                    .send()
                    .await
                    .unwrap();
                assert!(
                    done.status().is_success(),
                    "device confirmation answered {}",
                    done.status()
                );
            });
        }
    });
    let tokens = auth::sign_in(
        &http,
        &options(&p.issuer, Method::DeviceCode, vec![]),
        &CookieBrowser::new(),
        on_event,
        &CancellationToken::new(),
    )
    .await
    .expect("device-code sign-in against oidc-provider succeeds");
    assert_eq!(tokens.id.oid, "admin");
    assert!(tokens.refresh_token.is_some());
}
