//! Who opens the authorization URL: the system browser in real use, or — for the demo tenant and
//! tests — the wizard itself, following the simulator's redirect straight to the loopback
//! listener, so that the very same code path completes without an external browser. It also
//! submits the self-posting form a SAML sign-in page answers with, as a browser's script does.

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
                    let body = crate::http::read_text(resp, crate::http::SMALL_BODY_LIMIT)
                        .await
                        .unwrap_or_default();
                    if let Some((action, fields)) = self_posting_form(&body) {
                        let target = reqwest::Url::parse(&next)
                            .and_then(|base| base.join(&action))
                            .map_err(|e| AuthError::Protocol(format!("bad form action: {e}")))?;
                        if !matches!(target.host_str(), Some("127.0.0.1" | "localhost")) {
                            return Err(AuthError::Protocol(format!(
                                "the sign-in page posts to {target}, not to this computer"
                            )));
                        }
                        http.post(target).form(&fields).send().await.map_err(|e| {
                            AuthError::Network {
                                what: "the test sign-in's answer".into(),
                                detail: e.to_string(),
                            }
                        })?;
                    }
                    return Ok(());
                }
                let body = crate::http::read_text(resp, crate::http::SMALL_BODY_LIMIT)
                    .await
                    .unwrap_or_default();
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

/// The action and hidden fields of a page's auto-submitting SAML form (Entra's "Working..."
/// page), if it has one.
fn self_posting_form(html: &str) -> Option<(String, Vec<(String, String)>)> {
    let tag = regex::Regex::new(r#"(?is)<(form|input)\b([^>]*)>"#).ok()?;
    let attr = regex::Regex::new(r#"(?s)([A-Za-z_:-]+)\s*=\s*"([^"]*)""#).ok()?;
    let attrs = |s: &str| -> Vec<(String, String)> {
        attr.captures_iter(s)
            .map(|c| (c[1].to_ascii_lowercase(), unescape(&c[2])))
            .collect()
    };
    let get =
        |a: &[(String, String)], k: &str| a.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let mut action = None;
    let mut fields = vec![];
    for c in tag.captures_iter(html) {
        let a = attrs(&c[2]);
        if c[1].eq_ignore_ascii_case("form") {
            if get(&a, "method").is_some_and(|m| m.eq_ignore_ascii_case("post")) {
                action = get(&a, "action");
            }
        } else if get(&a, "type").is_some_and(|t| t.eq_ignore_ascii_case("hidden")) {
            if let (Some(n), Some(v)) = (get(&a, "name"), get(&a, "value")) {
                fields.push((n, v));
            }
        }
    }
    let action = action?;
    fields
        .iter()
        .any(|(n, _)| n == "SAMLResponse")
        .then_some((action, fields))
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
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
