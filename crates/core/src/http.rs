//! The one HTTP client configuration the wizard uses.

use std::time::Duration;

/// Builds the shared HTTP client: rustls, redirects off (following redirects from identity
/// endpoints opens the client to SSRF), bounded timeouts.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .user_agent(concat!("entra-setup/", env!("CARGO_PKG_VERSION")))
        .build()
        // Building only fails when the TLS backend cannot initialise; fall back to defaults.
        .unwrap_or_else(|_| reqwest::Client::new())
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

/// `ENTRA_SETUP_RETRY_MS`: the base of every wait between retries, for runs against the
/// simulated tenant (tests, the end-to-end run), which need not wait as long as Entra does: the
/// Graph backoff starts there, a new secret is retried every two bases, instantiate is polled
/// every base. Unset, the waits are Entra's. `Retry-After` is always honoured as given.
pub fn retry_base_override() -> Option<Duration> {
    std::env::var("ENTRA_SETUP_RETRY_MS")
        .ok()?
        .trim()
        .parse()
        .ok()
        .map(Duration::from_millis)
}

/// How often a call outside the Graph client (OpenID metadata, the token endpoint, an app-only
/// Graph read in a live test) is tried while the service throttles it.
pub const THROTTLED_TRIES: u32 = 6;

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
    let mut attempt = 0;
    loop {
        attempt += 1;
        let resp = build().send().await?;
        match wait_for(resp.status(), resp.headers(), attempt) {
            Some(w) if attempt < THROTTLED_TRIES => {
                tracing::info!(status = resp.status().as_u16(), wait = ?w, "throttled; retrying");
                tokio::time::sleep(w).await;
            }
            _ => return Ok(resp),
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
            let mut attempt = 0;
            loop {
                attempt += 1;
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
                match wait_for(resp.status(), resp.headers(), attempt) {
                    Some(w)
                        if attempt < THROTTLED_TRIES
                            && matches!(resp.status().as_u16(), 429 | 503) =>
                    {
                        tracing::info!(status = resp.status().as_u16(), wait = ?w, "token endpoint throttled; retrying");
                        tokio::time::sleep(w).await;
                    }
                    _ => return Ok(resp),
                }
            }
        })
    }
}
