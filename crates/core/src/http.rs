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
                let resp = oauth2::AsyncHttpClient::call(&self.0, copy).await?;
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
