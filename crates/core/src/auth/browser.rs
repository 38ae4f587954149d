//! Who opens the authorization URL: the system browser in real use, or — for the demo tenant and
//! tests — the wizard itself, following the simulator's redirect straight to the loopback
//! listener, so that the very same code path completes without an external browser.

use std::future::Future;
use std::pin::Pin;

use super::AuthError;

pub type OpenFuture = Pin<Box<dyn Future<Output = Result<(), AuthError>> + Send>>;

/// Opens an authorization URL for the user.
pub trait BrowserOpener: Send + Sync {
    fn open(&self, url: String) -> OpenFuture;
}

/// The default browser of the OS.
pub struct SystemBrowser;

impl BrowserOpener for SystemBrowser {
    fn open(&self, url: String) -> OpenFuture {
        Box::pin(async move {
            tokio::task::spawn_blocking(move || webbrowser::open(&url))
                .await
                .map_err(|e| AuthError::Browser(e.to_string()))?
                .map_err(|e| AuthError::Browser(e.to_string()))
        })
    }
}

/// Fetches the authorization URL and follows its redirects itself (at most a few, and only to
/// the same identity host or the loopback listener). The simulated tenant answers with a
/// redirect carrying the code when it is set to approve automatically.
pub struct FollowRedirects {
    http: reqwest::Client,
}

impl FollowRedirects {
    pub fn new(http: reqwest::Client) -> Self {
        Self { http }
    }
}

impl BrowserOpener for FollowRedirects {
    fn open(&self, url: String) -> OpenFuture {
        let http = self.http.clone();
        Box::pin(async move {
            let mut next = url;
            for _ in 0..5 {
                let resp = http
                    .get(&next)
                    .send()
                    .await
                    .map_err(|e| AuthError::Network {
                        what: "the sign-in page".into(),
                        detail: e.to_string(),
                    })?;
                let status = resp.status();
                if status.is_redirection() {
                    let location = resp
                        .headers()
                        .get(reqwest::header::LOCATION)
                        .and_then(|v| v.to_str().ok())
                        .ok_or_else(|| {
                            AuthError::Protocol("a redirect without a Location header".into())
                        })?;
                    next = reqwest::Url::parse(&next)
                        .and_then(|base| base.join(location))
                        .map_err(|e| AuthError::Protocol(format!("bad redirect: {e}")))?
                        .to_string();
                    continue;
                }
                if status.is_success() {
                    return Ok(());
                }
                let body = resp.text().await.unwrap_or_default();
                let text = strip_tags(&body);
                return Err(AuthError::Protocol(format!(
                    "the sign-in page answered HTTP {status}: {}",
                    text.trim()
                )));
            }
            Err(AuthError::Protocol(
                "too many redirects on the sign-in page".into(),
            ))
        })
    }
}

fn strip_tags(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}
