//! The one HTTP client configuration the wizard uses.

use std::time::Duration;

/// Builds the shared HTTP client: the OS trust store (bundled roots as fallback), the proxy the
/// environment names, redirects off (following redirects from identity endpoints opens the
/// client to SSRF), bounded timeouts.
pub fn client() -> reqwest::Client {
    let finish = |b: reqwest::ClientBuilder| {
        b.timeout(Duration::from_secs(60))
            .user_agent(concat!("entra-setup/", env!("CARGO_PKG_VERSION")))
            .build()
    };
    finish(builder(&[])).unwrap_or_else(|e| {
        // Building only fails when the TLS backend cannot initialise with the platform's
        // verifier: the same settings (no redirects, the proxy from the environment as
        // `Network` reads it) with reqwest's bundled roots. Never reqwest's defaults, which
        // follow redirects and read proxies on their own.
        tracing::warn!(error = %e, "the HTTP client could not use the OS trust store; using the bundled roots");
        finish(common()).unwrap_or_else(|e| {
            tracing::error!(error = %e, "no HTTP client could be built");
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .build()
                .unwrap_or_default()
        })
    })
}

/// What every client shares whatever its TLS: no redirects, a 10 s connect timeout, the proxy
/// from the environment as [`Network::from_env`] reads it.
fn common() -> reqwest::ClientBuilder {
    Network::from_env().apply(
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10)),
    )
}

/// The settings every client of the wizard shares — TLS verified by the platform's verifier
/// with `extra_roots` (PEM or DER certificates the admin trusted for one endpoint) and the
/// bundled roots added, [`Network::from_env`]'s proxy, no redirects, a 10 s connect timeout —
/// for the caller to finish (timeout, user agent, resolver overrides).
pub fn builder(
    extra_roots: &[rustls::pki_types::CertificateDer<'static>],
) -> reqwest::ClientBuilder {
    let b = common();
    match tls_config(extra_roots) {
        Ok(tls) => b.use_preconfigured_tls(tls),
        Err(e) => {
            // No verifier could be made from the platform (no system certificates at all):
            // the bundled roots, which reqwest has by itself, plus the extra roots.
            tracing::warn!(error = %e, "the OS trust store could not be read; using the bundled roots");
            extra_roots
                .iter()
                .fold(b, |b, der| match reqwest::Certificate::from_der(der) {
                    Ok(c) => b.add_root_certificate(c),
                    Err(_) => b,
                })
        }
    }
}

/// TLS for the wizard's clients: certificates checked by the OS (Windows' CryptoAPI, macOS's
/// Security framework, the system bundle elsewhere, which `SSL_CERT_FILE` / `SSL_CERT_DIR`
/// override), so a TLS-inspecting proxy whose root IT put in the OS store is trusted; the bundled
/// Mozilla roots and `extra_roots` are added on top, so a machine with an empty or broken store
/// still reaches Microsoft.
fn tls_config(
    extra_roots: &[rustls::pki_types::CertificateDer<'static>],
) -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let roots = webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .cloned()
        .chain(extra_roots.iter().cloned());
    let verifier =
        rustls_platform_verifier::Verifier::new_with_extra_roots(roots, provider.clone())?;
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(std::sync::Arc::new(verifier))
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tls)
}

/// Where the wizard's requests go on this network: the proxy from `HTTPS_PROXY` / `HTTP_PROXY` /
/// `ALL_PROXY` (upper or lower case), and the hosts `NO_PROXY` sends direct. Loopback (the
/// built-in demo tenant, a SCIM server on this machine) is always direct.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct Network {
    /// The proxy for https:// requests, as configured (credentials are not shown by
    /// [`Network::shown`]).
    pub https_proxy: Option<String>,
    /// The proxy for http:// requests.
    pub http_proxy: Option<String>,
    /// The `NO_PROXY` list as given, trimmed.
    pub no_proxy: String,
}

/// The hosts never sent through a proxy, whatever `NO_PROXY` says.
const ALWAYS_DIRECT: &str = "localhost,127.0.0.0/8,::1";

impl Network {
    /// Reads the proxy variables of this process's environment. Empty values count as unset;
    /// upper case wins over lower case, the scheme's own variable over `ALL_PROXY`.
    pub fn from_env() -> Network {
        let first = |names: &[&str]| {
            names
                .iter()
                .filter_map(|n| std::env::var(n).ok())
                .map(|v| v.trim().to_string())
                .find(|v| !v.is_empty())
        };
        let all = first(&["ALL_PROXY", "all_proxy"]);
        Network {
            https_proxy: first(&["HTTPS_PROXY", "https_proxy"]).or_else(|| all.clone()),
            http_proxy: first(&["HTTP_PROXY", "http_proxy"]).or(all),
            no_proxy: first(&["NO_PROXY", "no_proxy"]).unwrap_or_default(),
        }
    }

    /// The same settings with any `user:password@` in the proxy URLs replaced by `***@`, to
    /// show under Advanced.
    pub fn shown(&self) -> Network {
        let hide = |p: &Option<String>| {
            p.as_ref().map(|u| {
                // Written without a scheme (`user:pw@proxy:8080`), a proxy is http, as reqwest
                // reads it; parsed as it stands, `user:` would pass for a scheme and the
                // password for a path, and be shown.
                let full = if u.contains("://") {
                    u.clone()
                } else {
                    format!("http://{u}")
                };
                match url::Url::parse(&full) {
                    Ok(mut url) if !url.username().is_empty() || url.password().is_some() => {
                        let _ = url.set_username("***");
                        let _ = url.set_password(None);
                        url.to_string()
                    }
                    Ok(url) if url.host_str().is_some() => mask_proxy(u),
                    _ => "(not a URL; ignored)".to_string(),
                }
            })
        };
        Network {
            https_proxy: hide(&self.https_proxy),
            http_proxy: hide(&self.http_proxy),
            no_proxy: self.no_proxy.clone(),
        }
    }

    /// Sets `b`'s proxies to these (and only these: reqwest's own reading of the environment is
    /// turned off, so loopback always goes direct).
    pub fn apply(&self, b: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        let mut b = b.no_proxy();
        let direct = if self.no_proxy.is_empty() {
            ALWAYS_DIRECT.to_string()
        } else {
            format!("{},{ALWAYS_DIRECT}", self.no_proxy)
        };
        if let Some(p) = self
            .https_proxy
            .as_deref()
            .and_then(|u| reqwest::Proxy::https(u).ok())
        {
            b = b.proxy(p.no_proxy(reqwest::NoProxy::from_string(&direct)));
        }
        if let Some(p) = self
            .http_proxy
            .as_deref()
            .and_then(|u| reqwest::Proxy::http(u).ok())
        {
            b = b.proxy(p.no_proxy(reqwest::NoProxy::from_string(&direct)));
        }
        b
    }
}

/// The most the wizard reads of an identity-platform answer (OpenID metadata, signing keys,
/// tokens) or a provider's API: real ones are a few kilobytes.
pub const SMALL_BODY_LIMIT: usize = 1024 * 1024;

/// The most it reads of one Graph answer: a page of 999 service principals with their roles is
/// a few megabytes.
pub const GRAPH_BODY_LIMIT: usize = 32 * 1024 * 1024;

/// An answer that could not be read whole.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the answer is larger than {} KiB, which no real answer is; it was not read further", limit / 1024)]
    TooLarge { limit: usize },
    #[error("{0}")]
    Network(#[from] reqwest::Error),
}

/// Reads an answer's body, refusing one longer than `limit` bytes (by its Content-Length, or
/// while it streams in), so a broken or hostile server cannot make the wizard hold gigabytes.
pub async fn read_body(mut resp: reqwest::Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    if resp.content_length().is_some_and(|l| l > limit as u64) {
        return Err(BodyError::TooLarge { limit });
    }
    let mut bytes: Vec<u8> = vec![];
    while let Some(chunk) = resp.chunk().await? {
        if bytes.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// [`read_body`] as text (lossy UTF-8).
pub async fn read_text(resp: reqwest::Response, limit: usize) -> Result<String, BodyError> {
    read_body(resp, limit)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// A proxy setting as it may be shown: whatever stands before the last `@` of its address (a
/// user name and password, however oddly written) replaced by `***`, printable, shortened.
pub fn mask_proxy(v: &str) -> String {
    let (scheme, rest) = match v.find("://") {
        Some(i) => v.split_at(i + 3),
        None => ("", v),
    };
    let masked = match rest.rfind('@') {
        Some(at) => format!("{scheme}***{}", &rest[at..]),
        None => v.to_string(),
    };
    crate::redact::echo(&masked, 200)
}

/// Why a request never got an answer, in words an admin behind a proxy can act on: the whole
/// chain of causes (not just "error sending request"), what kind of failure it was (the name
/// could not be resolved, the connection was refused or timed out, TLS failed, the proxy asked
/// for credentials) and, when a proxy from the environment carried it, which variable named
/// that proxy and its address with any password masked.
pub fn describe_network_error(e: &reqwest::Error, url: &str) -> String {
    let mut chain = without_url(e);
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let text = s.to_string();
        if !chain.contains(&text) {
            chain.push_str(": ");
            chain.push_str(&text);
        }
        src = s.source();
    }
    let l = chain.to_ascii_lowercase();
    let proxy = proxy_for(url);
    let kind = if l.contains("407") || l.contains("proxy authentication") {
        "the proxy asks for a user name and password: put them in the proxy URL (http://user:password@proxy:port)"
    } else if l.contains("certificate") || l.contains("tls") || l.contains("handshake") {
        if proxy.is_some() {
            "TLS through the proxy failed: a proxy that inspects TLS needs its root certificate in the system's certificate store"
        } else {
            "TLS failed: the server's certificate is not trusted by this computer"
        }
    } else if l.contains("dns") || l.contains("resolve") || l.contains("lookup") {
        "the host name could not be resolved"
    } else if l.contains("timed out") || e.is_timeout() {
        "the connection timed out"
    } else if l.contains("refused") {
        "the connection was refused"
    } else {
        "the connection failed"
    };
    let via = match proxy {
        Some((var, shown)) => format!(" through the proxy in {var} ({shown})"),
        None => String::new(),
    };
    crate::redact::printable(&format!("{kind}{via} — {chain}"))
}

/// A reqwest error's text without the URL it names (which may carry a query with a secret).
pub(crate) fn without_url(e: &reqwest::Error) -> String {
    let s = e.to_string();
    match s.find(" for url (") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// The environment variable whose proxy a request to `url` goes through, and the proxy as
/// shown (password masked); none for this computer, which is always reached directly.
fn proxy_for(url: &str) -> Option<(&'static str, String)> {
    let u = url::Url::parse(url).ok()?;
    let loopback = match u.host()? {
        url::Host::Domain(d) => d == "localhost",
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    };
    if loopback {
        return None; // ALWAYS_DIRECT
    }
    let names: &[&'static str] = if u.scheme() == "https" {
        &["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]
    } else {
        &["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]
    };
    names.iter().find_map(|n| {
        let v = std::env::var(n).ok()?;
        let v = v.trim();
        (!v.is_empty()).then(|| (*n, mask_proxy(v)))
    })
}

/// The longest `Retry-After` waited out before giving up.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

/// How long a throttled or unavailable answer asks to wait: its `Retry-After` (seconds), or an
/// exponential backoff when it gives none. `None` when the answer is not one to wait out.
pub fn wait_for(
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    attempt: u32,
) -> Option<Duration> {
    if !matches!(status.as_u16(), 429 | 502 | 503 | 504) {
        return None;
    }
    let given = headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    match given {
        Some(w) if w > MAX_RETRY_AFTER => None,
        Some(w) => Some(w),
        None => Some(Duration::from_millis(500 * (1u64 << attempt.min(6)))),
    }
}

/// Sends an idempotent request (built afresh for each try), waiting out 429 and 5xx answers as
/// Graph's throttling guidance says: exactly `Retry-After` when given, else a growing backoff.
pub async fn send_idempotent(
    build: impl Fn() -> reqwest::RequestBuilder,
) -> reqwest::Result<reqwest::Response> {
    let mut patience = crate::wait::Patience::every(crate::wait::THROTTLED, Duration::ZERO);
    loop {
        let resp = build().send().await?;
        match wait_for(resp.status(), resp.headers(), patience.tries()) {
            Some(w) => {
                tracing::info!(status = resp.status().as_u16(), wait = ?w, "throttled; retrying");
                if !patience.again_after(w).await {
                    return Ok(resp);
                }
            }
            None => return Ok(resp),
        }
    }
}

/// An HTTP client for the `oauth2` crate that waits out a throttled token endpoint (429 or 503
/// with Retry-After) instead of failing: token requests are safe to repeat.
pub struct PatientClient(reqwest::Client);

/// Wraps `http` as a [`PatientClient`].
pub fn oauth_client(http: &reqwest::Client) -> PatientClient {
    PatientClient(http.clone())
}

impl PatientClient {
    /// Sends a token request and reads the answer with [`SMALL_BODY_LIMIT`].
    async fn send(
        &self,
        request: oauth2::HttpRequest,
    ) -> Result<oauth2::HttpResponse, oauth2::HttpClientError<reqwest::Error>> {
        let (parts, body) = request.into_parts();
        let resp = self
            .0
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .body(body)
            .send()
            .await
            .map_err(|e| oauth2::HttpClientError::Reqwest(Box::new(e)))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = read_body(resp, SMALL_BODY_LIMIT)
            .await
            .map_err(|e| match e {
                BodyError::Network(e) => oauth2::HttpClientError::Reqwest(Box::new(e)),
                e => oauth2::HttpClientError::Other(format!("the token endpoint's {e}")),
            })?;
        let mut out = oauth2::http::Response::builder().status(status);
        if let Some(h) = out.headers_mut() {
            *h = headers;
        }
        out.body(body).map_err(oauth2::HttpClientError::Http)
    }
}

type OauthFuture<'c> = std::pin::Pin<
    Box<
        dyn std::future::Future<
                Output = Result<oauth2::HttpResponse, oauth2::HttpClientError<reqwest::Error>>,
            > + Send
            + Sync
            + 'c,
    >,
>;

impl<'c> oauth2::AsyncHttpClient<'c> for PatientClient {
    type Error = oauth2::HttpClientError<reqwest::Error>;
    type Future = OauthFuture<'c>;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(async move {
            let mut patience = crate::wait::Patience::every(crate::wait::THROTTLED, Duration::ZERO);
            loop {
                let mut copy = oauth2::http::Request::builder()
                    .method(request.method().clone())
                    .uri(request.uri().clone());
                for (k, v) in request.headers() {
                    copy = copy.header(k, v);
                }
                let copy = copy
                    .body(request.body().clone())
                    .map_err(oauth2::HttpClientError::Http)?;
                let resp = self.send(copy).await?;
                match wait_for(resp.status(), resp.headers(), patience.tries()) {
                    Some(w) if matches!(resp.status().as_u16(), 429 | 503) => {
                        tracing::info!(status = resp.status().as_u16(), wait = ?w, "token endpoint throttled; retrying");
                        if !patience.again_after(w).await {
                            return Ok(resp);
                        }
                    }
                    _ => return Ok(resp),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Network;

    #[test]
    fn the_proxy_shown_never_holds_a_password() {
        for raw in [
            "user:s3cret@proxy.corp:8080",
            "http://user:s3cret@proxy.corp:8080",
            "socks5://user:s3cret@proxy.corp:1080",
            "s3cret@proxy.corp",
            "http:\t/user:s3cret@proxy.corp:8080",
        ] {
            let n = Network {
                https_proxy: Some(raw.into()),
                http_proxy: None,
                no_proxy: String::new(),
            };
            let shown = n.shown().https_proxy.unwrap();
            assert!(!shown.contains("s3cret"), "{raw} -> {shown}");
            assert!(shown.contains("proxy.corp"), "{raw} -> {shown}");
        }
    }
}
