//! The verifier's HTTP side: one exchange at a time, recorded without credentials.

use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use serde_json::Value;

use super::{Exchange, ScimAuth, LIST_RESPONSE};

pub(super) struct Http {
    client: reqwest::Client,
    base: String,
}

pub(super) fn ms(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

pub(super) fn error_chain(e: &reqwest::Error) -> String {
    let mut out = crate::http::without_url(e);
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}

/// Which credentials a request carries.
#[derive(Clone, Copy)]
pub(super) enum Cred<'a> {
    Real(&'a ScimAuth),
    None,
    Wrong,
}

impl Http {
    pub(super) fn new(client: reqwest::Client, base: &str) -> Self {
        Self {
            client,
            base: base.to_string(),
        }
    }

    pub(super) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        cred: Cred<'_>,
    ) -> (Exchange, Option<Value>) {
        let url = format!("{}{}", self.base, path);
        let mut req = self
            .client
            .request(method.clone(), &url)
            .header("Accept", "application/scim+json");
        // What an endpoint echoing the request could hand back: never shown.
        let mut secrets: Vec<String> = vec![];
        let auth = match cred {
            Cred::Real(ScimAuth::Bearer(t)) => {
                secrets.push(t.expose_secret().to_string());
                req = req.bearer_auth(t.expose_secret());
                "bearer <redacted>".to_string()
            }
            Cred::Real(ScimAuth::Basic { user, password }) => {
                req = req.basic_auth(user, Some(password.expose_secret()));
                secrets.push(password.expose_secret().to_string());
                secrets.push(base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    format!("{user}:{}", password.expose_secret()),
                ));
                "basic <redacted>".to_string()
            }
            Cred::None => "none".to_string(),
            Cred::Wrong => {
                req = req.bearer_auth(format!(
                    "entra-setup-wrong-token-{}",
                    uuid::Uuid::new_v4().simple()
                ));
                "wrong bearer token".to_string()
            }
        };
        if let Some(b) = &body {
            req = req
                .header("Content-Type", "application/scim+json")
                .body(b.to_string());
        }
        let started = Instant::now();
        let mut x = Exchange {
            method: method.to_string(),
            url,
            auth,
            request_body: body,
            status: None,
            content_type: None,
            location: None,
            response_body: None,
            error: None,
            millis: 0,
        };
        match req.send().await {
            Ok(resp) => {
                x.status = Some(resp.status().as_u16());
                x.content_type = resp
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .map(|v| clean(v, &secrets));
                x.location = resp
                    .headers()
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .map(|v| clean(v, &secrets));
                let text = read_capped(resp).await;
                x.millis = ms(started.elapsed());
                let parsed = serde_json::from_str::<Value>(&text).ok();
                let mut shown = clean(&text, &secrets);
                if shown.len() > 4096 {
                    let mut cut = 4096;
                    while !shown.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    shown.truncate(cut);
                    shown.push('…');
                }
                x.response_body = (!shown.is_empty()).then_some(shown);
                (x, parsed)
            }
            Err(e) => {
                x.millis = ms(started.elapsed());
                x.error = Some(error_chain(&e));
                (x, None)
            }
        }
    }
}

/// The most of an answer the verifier reads: a SCIM answer is kilobytes; an endpoint streaming
/// without end is cut here.
const BODY_LIMIT: usize = 1024 * 1024;

/// Reads an answer's body up to [`BODY_LIMIT`] (lossy UTF-8).
async fn read_capped(mut resp: reqwest::Response) -> String {
    let mut bytes: Vec<u8> = vec![];
    while let Ok(Some(chunk)) = resp.chunk().await {
        let room = BODY_LIMIT.saturating_sub(bytes.len());
        bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if bytes.len() >= BODY_LIMIT {
            break;
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Text from the endpoint as it may be shown (terminal, webview, JSON report, files): the
/// credential it was sent, and anything else that looks like one, masked; control characters
/// (an ANSI sequence that clears the screen and draws a fake PASS) replaced, lines kept.
pub(super) fn clean(text: &str, secrets: &[String]) -> String {
    let sent: Vec<&str> = secrets.iter().map(String::as_str).collect();
    crate::redact::printable_without(text, &sent)
}

pub(super) fn status_of(x: &Exchange) -> u16 {
    x.status.unwrap_or(0)
}

pub(super) fn is_list_response(v: &Option<Value>) -> bool {
    v.as_ref().is_some_and(|v| {
        v["schemas"]
            .as_array()
            .is_some_and(|s| s.iter().any(|x| x == LIST_RESPONSE))
    })
}

pub(super) fn total_results(v: &Option<Value>) -> Option<u64> {
    v.as_ref().and_then(|v| v["totalResults"].as_u64())
}

/// Describes a failed exchange in plain words.
pub(super) fn describe(x: &Exchange) -> String {
    match (x.status, &x.error) {
        (_, Some(e)) => format!("{} {} did not get an answer: {e}", x.method, x.url),
        (Some(s), _) if (300..400).contains(&s) => format!(
            "{} {} was redirected ({s}) to {}",
            x.method,
            x.url,
            x.location.as_deref().unwrap_or("nowhere")
        ),
        (Some(s), _) => format!(
            "{} {} answered HTTP {s}{}",
            x.method,
            x.url,
            x.response_body
                .as_deref()
                .map(|b| format!(": {}", b.chars().take(300).collect::<String>()))
                .unwrap_or_default()
        ),
        (None, None) => format!("{} {} gave no answer", x.method, x.url),
    }
}

pub(super) fn split_url(url: &str) -> (String, bool) {
    let aad_opt = url.contains("aadOptscim062020");
    let base = url
        .split('?')
        .next()
        .unwrap_or(url)
        .trim_end_matches('/')
        .to_string();
    (base, aad_opt)
}

/// The verifier's HTTP client could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the trusted certificate is not a PEM certificate: {0}")]
    NotPem(String),
    #[error("the HTTP client could not start: {0}")]
    Build(reqwest::Error),
}

pub(super) fn build_client(
    trusted: Option<&[u8]>,
    timeout: Duration,
    resolve: &[(String, std::net::SocketAddr)],
) -> Result<reqwest::Client, ClientError> {
    use rustls::pki_types::pem::PemObject;
    let extra = match trusted {
        Some(pem) => vec![rustls::pki_types::CertificateDer::from_pem_slice(pem)
            .map_err(|e| ClientError::NotPem(e.to_string()))?],
        None => vec![],
    };
    let mut b = crate::http::builder(&extra)
        .timeout(timeout)
        .user_agent(concat!(
            "entra-setup-scim-verifier/",
            env!("CARGO_PKG_VERSION")
        ));
    for (name, addr) in resolve {
        b = b.resolve(name, *addr);
    }
    b.build().map_err(ClientError::Build)
}

pub(super) fn looks_like_tls_error(e: &str) -> bool {
    let l = e.to_ascii_lowercase();
    l.contains("certificate")
        || l.contains("unknownissuer")
        || l.contains("tls")
        || l.contains("handshake")
}

pub(super) fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
