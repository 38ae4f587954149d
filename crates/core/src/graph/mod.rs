//! A small typed Microsoft Graph client: one builder per call, `.send()`, and the retry rules
//! Graph needs — `Retry-After` on 429/503/504, bounded exponential backoff with jitter, one token
//! refresh on 401, caller-chosen retries for replication delays, and a `client-request-id` on
//! every request.

mod error;
pub mod models;
pub mod permissions;

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use serde_json::Value;

use error::ErrorBody;
pub use error::{ApiError, GraphError};

use crate::auth::{StepScopes, TokenSource};
use crate::cloud::Cloud;

/// How Graph calls are retried. Pauses follow reference §12: 1, 2, 4 … s, capped at 30 s, with
/// jitter; `Retry-After` is honoured. The budgets are durations ([`crate::wait`]), which
/// `ENTRA_SETUP_RETRY_MS` does not shorten.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Tries of a request whose connection failed.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// A `Retry-After` longer than this is treated as a failure rather than waited out.
    pub max_retry_after: Duration,
    /// How long a write may take to show in reads and to be accepted as a reference (reference
    /// §12: seconds to a few minutes): what a request retried for replication, and
    /// [`GraphClient::poll_replication`], wait by the clock before believing a thing absent.
    pub replication_budget: Duration,
    /// How long a throttled or unavailable tenant is waited out, by the clock.
    pub throttle_budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        let base = crate::wait::pause_override();
        Self {
            max_attempts: 8,
            base_delay: base.unwrap_or(Duration::from_secs(1)),
            max_delay: base.map_or(Duration::from_secs(30), |b| b * 10),
            max_retry_after: Duration::from_secs(300),
            replication_budget: crate::wait::REPLICATION,
            throttle_budget: crate::wait::THROTTLED,
        }
    }
}

impl RetryPolicy {
    fn backoff(&self, attempt: u32) -> Duration {
        crate::wait::backoff(self.base_delay, self.max_delay, attempt)
    }

    /// A wait of `budget` with this policy's pauses.
    pub fn patience(&self, budget: Duration) -> crate::wait::Patience {
        crate::wait::Patience::backoff(budget, self.base_delay, self.max_delay)
    }
}

/// A tenant that said "slow down": one 429 (or 503) pauses every request of the client — its
/// parallel reads included — until the tenant's `Retry-After` has passed, and each throttled
/// answer in a row pauses longer (backoff with jitter), so the wizard stops adding to the load
/// instead of keeping the tenant throttled.
#[derive(Debug, Default)]
struct Throttle {
    state: std::sync::Mutex<ThrottleState>,
}

#[derive(Debug, Default)]
struct ThrottleState {
    until: Option<tokio::time::Instant>,
    in_a_row: u32,
}

impl Throttle {
    fn lock(&self) -> std::sync::MutexGuard<'_, ThrottleState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits while the tenant asked for a pause, then a little more (jitter), so the requests
    /// that waited do not all arrive at once.
    async fn wait(&self, retry: &RetryPolicy) {
        loop {
            let until = self.lock().until;
            match until {
                Some(u) if u > tokio::time::Instant::now() => {
                    tokio::time::sleep_until(u).await;
                    let jitter = retry
                        .base_delay
                        .mul_f64(rand::thread_rng().gen_range(0.0..=0.25));
                    tokio::time::sleep(jitter).await;
                }
                _ => return,
            }
        }
    }

    /// A throttled answer: pauses every request for its `Retry-After` or, throttled again, for
    /// longer. Returns the pause.
    fn throttled(&self, retry_after: Option<Duration>, retry: &RetryPolicy) -> Duration {
        let mut s = self.lock();
        s.in_a_row += 1;
        let pause = retry
            .backoff(s.in_a_row)
            .max(retry_after.unwrap_or_default());
        let until = tokio::time::Instant::now() + pause;
        s.until = Some(s.until.map_or(until, |u| u.max(until)));
        pause
    }

    /// An answer that was not throttled: the next throttled one starts from the shortest pause.
    fn calm(&self) {
        self.lock().in_a_row = 0;
    }
}

/// A Graph client for one signed-in admin.
#[derive(Clone)]
pub struct GraphClient {
    http: reqwest::Client,
    base: String,
    tokens: Arc<TokenSource>,
    retry: RetryPolicy,
    throttle: Arc<Throttle>,
}

/// Decides whether an error is a documented replication delay worth retrying.
pub type RetryIf = fn(&ApiError) -> bool;

/// One Graph call being built.
pub struct Request<'a> {
    client: &'a GraphClient,
    method: Method,
    path: String,
    body: Option<Value>,
    scopes: StepScopes,
    headers: Vec<(&'static str, String)>,
    retry_if: Option<RetryIf>,
    /// Not idempotent: re-sent only when Graph said it did not carry it out.
    at_most_once: bool,
}

/// A collection page.
#[derive(serde::Deserialize)]
struct Page<T> {
    value: Vec<T>,
    #[serde(rename = "@odata.nextLink")]
    next_link: Option<String>,
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    if let Ok(secs) = v.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    (when.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .to_std()
        .ok()
}

/// Reads until `read` finds something or `patience` runs out; the last read comes after the
/// budget ran out, so a thing that appears just in time is seen.
async fn poll_until<T, F, Fut, E>(
    mut patience: crate::wait::Patience,
    mut read: F,
) -> Result<Option<T>, E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>, E>>,
{
    loop {
        if let Some(found) = read().await? {
            return Ok(Some(found));
        }
        if !patience.again().await {
            return Ok(None);
        }
    }
}

impl GraphClient {
    pub fn new(http: reqwest::Client, cloud: &Cloud, tokens: Arc<TokenSource>) -> Self {
        Self {
            http,
            base: cloud.graph_v1(),
            tokens,
            retry: RetryPolicy::default(),
            throttle: Arc::default(),
        }
    }

    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The Graph v1.0 root this client talks to (the cloud's own).
    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn tokens(&self) -> &Arc<TokenSource> {
        &self.tokens
    }

    /// Reads until `read` finds what it looks for or the replication budget has passed by the
    /// clock (not a count of reads: a busy tenant's lag is measured in seconds), waiting between
    /// reads as the retry policy says. `Ok(None)` when the budget passed with nothing found.
    pub async fn poll_replication<T, F, Fut>(&self, read: F) -> Result<Option<T>, GraphError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Option<T>, GraphError>>,
    {
        let mut announced = false;
        let mut read = read;
        poll_until(self.replication_patience(), move || {
            if announced {
                crate::wait::announce(
                    "Waiting for Entra to show what this step made (replication)",
                    self.retry.replication_budget,
                );
            }
            announced = true;
            read()
        })
        .await
    }

    /// A wait for replication (the policy's budget and pauses), for loops that
    /// [`Self::poll_replication`] does not fit.
    pub fn replication_patience(&self) -> crate::wait::Patience {
        self.retry.patience(self.retry.replication_budget)
    }

    /// The retry policy.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    pub fn request(&self, method: Method, path: impl Into<String>) -> Request<'_> {
        Request {
            client: self,
            method,
            path: path.into(),
            body: None,
            scopes: StepScopes::SignIn,
            headers: vec![],
            retry_if: None,
            at_most_once: false,
        }
    }

    pub fn get(&self, path: impl Into<String>) -> Request<'_> {
        self.request(Method::GET, path)
    }
    pub fn post(&self, path: impl Into<String>) -> Request<'_> {
        self.request(Method::POST, path)
    }
    pub fn patch(&self, path: impl Into<String>) -> Request<'_> {
        self.request(Method::PATCH, path)
    }
    pub fn put(&self, path: impl Into<String>) -> Request<'_> {
        self.request(Method::PUT, path)
    }
    pub fn delete(&self, path: impl Into<String>) -> Request<'_> {
        self.request(Method::DELETE, path)
    }
}

/// For removals: an object already gone (404) is the outcome asked for.
pub fn gone_ok(r: Result<Answer, GraphError>) -> Result<(), GraphError> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.status() == Some(404) => Ok(()),
        Err(e) => Err(e),
    }
}

/// A successful answer: status and body (if any).
pub struct Answer {
    pub status: StatusCode,
    pub body: Option<Value>,
    pub request_id: Option<String>,
}

impl Request<'_> {
    /// The permissions this call needs (the token is requested for that step's scopes).
    #[must_use]
    pub fn scopes(mut self, scopes: StepScopes) -> Self {
        self.scopes = scopes;
        self
    }

    #[must_use]
    pub fn json(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    #[must_use]
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// An advanced query (Graph's "advanced query capabilities on Microsoft Entra ID objects"):
    /// `ne`, `not`, `endsWith`, `$search`, lambda filters on the collections Graph indexes
    /// separately (e.g. `web/redirectUris/any(…)`), OData casts on transitive members. Graph
    /// answers these only with the `ConsistencyLevel: eventual` header and `$count=true`.
    #[must_use]
    pub fn advanced(mut self) -> Self {
        self.headers.push(("ConsistencyLevel", "eventual".into()));
        if !self.path.contains("$count=true") {
            let sep = if self.path.contains('?') { '&' } else { '?' };
            self.path = format!("{}{sep}$count=true", self.path);
        }
        self
    }

    /// A create that must not happen twice (addPassword, instantiate, a synchronization job):
    /// it is re-sent only after answers that say it was not carried out — 429, or 503 with
    /// Retry-After (Graph's throttling answers), or a connection that never opened. Any other
    /// failure comes back to the caller, which reads state to learn whether it happened
    /// ([`GraphError::ambiguous`]).
    #[must_use]
    pub fn once(mut self) -> Self {
        self.at_most_once = true;
        self
    }

    /// Also retry (with backoff) errors this predicate accepts, e.g. replication-delay 404s.
    #[must_use]
    pub fn retry_if(mut self, f: RetryIf) -> Self {
        self.retry_if = Some(f);
        self
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}/{}", self.client.base, path.trim_start_matches('/'))
        }
    }

    /// Sends the request with retries and returns the raw answer.
    pub async fn send(&self) -> Result<Answer, GraphError> {
        self.send_to(&self.path).await
    }

    async fn send_to(&self, path: &str) -> Result<Answer, GraphError> {
        let retry = &self.client.retry;
        let short = self.scopes.scopes();
        let started = tokio::time::Instant::now();
        let mut attempt = 0u32;
        let mut refreshed = false;
        loop {
            attempt += 1;
            self.client.throttle.wait(retry).await;
            let token = if refreshed && attempt == 1 {
                self.client.tokens.force_refresh(short).await?
            } else {
                self.client.tokens.access_token(short).await?
            };
            let client_request_id = uuid::Uuid::new_v4().to_string();
            let mut req = self
                .client
                .http
                .request(self.method.clone(), self.url(path))
                .bearer_auth(token.expose_secret())
                .header("client-request-id", &client_request_id)
                .header("return-client-request-id", "true");
            for (k, v) in &self.headers {
                req = req.header(*k, v);
            }
            if let Some(b) = &self.body {
                req = req.json(b);
            }
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    let unsent = e.is_connect();
                    if attempt < retry.max_attempts && (unsent || !self.at_most_once) {
                        let delay = retry.backoff(attempt);
                        tracing::warn!(method = %self.method, path, attempt, ?delay, error = %e.without_url(), "network error; retrying");
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    return Err(GraphError::Network {
                        method: self.method.to_string(),
                        path: path.to_string(),
                        detail: crate::http::describe_network_error(&e, &self.url(path)),
                        client_request_id,
                    });
                }
            };
            let status = resp.status();
            let request_id = resp
                .headers()
                .get("request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let wait = retry_after(resp.headers());
            let bytes = crate::http::read_body(resp, crate::http::GRAPH_BODY_LIMIT)
                .await
                .map_err(|e| match e {
                    crate::http::BodyError::Network(e) => GraphError::Network {
                        method: self.method.to_string(),
                        path: path.to_string(),
                        detail: e.to_string(),
                        client_request_id: client_request_id.clone(),
                    },
                    e => GraphError::Decode {
                        method: self.method.to_string(),
                        path: path.to_string(),
                        detail: e.to_string(),
                        request_id: request_id.clone(),
                    },
                })?;
            tracing::debug!(method = %self.method, path, status = status.as_u16(), request_id = request_id.as_deref().unwrap_or(""), attempt, "graph");
            if status.is_success() {
                self.client.throttle.calm();
                let body = if bytes.is_empty() {
                    None
                } else {
                    Some(
                        serde_json::from_slice(&bytes).map_err(|e| GraphError::Decode {
                            method: self.method.to_string(),
                            path: path.to_string(),
                            detail: e.to_string(),
                            request_id: request_id.clone(),
                        })?,
                    )
                };
                return Ok(Answer {
                    status,
                    body,
                    request_id,
                });
            }
            let parsed: Option<ErrorBody> = serde_json::from_slice(&bytes).ok();
            let api = ApiError {
                status: status.as_u16(),
                code: parsed
                    .as_ref()
                    .map(|p| p.error.code.clone())
                    .unwrap_or_else(|| status.canonical_reason().unwrap_or("Error").to_string()),
                // Graph's words, as they may be shown: printable, and not a novel.
                message: parsed
                    .as_ref()
                    .map(|p| {
                        let m = crate::redact::printable(&p.error.message);
                        match m.char_indices().nth(500) {
                            Some((cut, _)) => format!("{}…", &m[..cut]),
                            None => m,
                        }
                    })
                    .unwrap_or_default(),
                request_id: parsed
                    .as_ref()
                    .and_then(|p| {
                        p.error
                            .inner_error
                            .as_ref()
                            .and_then(|i| i.request_id.clone())
                    })
                    .or(request_id),
                client_request_id,
                date: parsed
                    .as_ref()
                    .and_then(|p| p.error.inner_error.as_ref().and_then(|i| i.date.clone())),
                method: self.method.to_string(),
                path: path.split('?').next().unwrap_or(path).to_string(),
            };
            if status == StatusCode::UNAUTHORIZED && !refreshed {
                tracing::info!(path, "401 from Graph; refreshing the token once");
                refreshed = true;
                attempt = 0;
                continue;
            }
            // Graph documents 429 and 503 as "not carried out; repeat after a delay", so even a
            // create that must not happen twice is re-sent after them; 502 and 504 may come
            // after the write was made, so only idempotent requests repeat those.
            let transient = if self.at_most_once {
                matches!(status.as_u16(), 429 | 503)
            } else {
                matches!(status.as_u16(), 429 | 502 | 503 | 504)
            };
            if transient {
                if wait.is_some_and(|w| w > retry.max_retry_after) {
                    return Err(GraphError::Api(Box::new(api)));
                }
                let pause = self.client.throttle.throttled(wait, retry);
                if started.elapsed() + pause > retry.throttle_budget {
                    return Err(GraphError::Api(Box::new(api)));
                }
                if attempt == 1 {
                    crate::wait::announce(
                        "Microsoft Graph is busy and asked to slow down; waiting as it asks",
                        retry.throttle_budget,
                    );
                }
                tracing::warn!(method = %self.method, path, status = status.as_u16(), code = %api.code, attempt, ?pause, "throttled or unavailable; every request to the tenant pauses");
                continue;
            }
            self.client.throttle.calm();
            if self.retry_if.is_some_and(|f| f(&api)) {
                let left = retry.replication_budget.saturating_sub(started.elapsed());
                if !left.is_zero() {
                    if attempt == 1 {
                        crate::wait::announce(
                            "Waiting for Entra to make a new object visible (replication)",
                            retry.replication_budget,
                        );
                    }
                    let delay = retry.backoff(attempt).min(left);
                    tracing::warn!(method = %self.method, path, status = status.as_u16(), code = %api.code, attempt, ?delay, "not replicated yet; retrying");
                    tokio::time::sleep(delay).await;
                    continue;
                }
            }
            return Err(GraphError::Api(Box::new(api)));
        }
    }

    /// Sends and decodes the JSON body.
    pub async fn send_json<T: DeserializeOwned>(&self) -> Result<T, GraphError> {
        let answer = self.send().await?;
        let body = answer.body.unwrap_or(Value::Null);
        serde_json::from_value(body).map_err(|e| GraphError::Decode {
            method: self.method.to_string(),
            path: self.path.clone(),
            detail: e.to_string(),
            request_id: answer.request_id,
        })
    }

    /// Reads every page of a collection (`@odata.nextLink`), refusing an answer without `value`
    /// rather than treating it as empty.
    pub async fn list<T: DeserializeOwned>(&self) -> Result<Vec<T>, GraphError> {
        let mut out = vec![];
        let mut next = Some(self.path.clone());
        let mut pages = 0;
        while let Some(path) = next.take() {
            pages += 1;
            let answer = self.send_to(&path).await?;
            let page: Page<T> = serde_json::from_value(answer.body.unwrap_or(Value::Null))
                .map_err(|e| GraphError::Decode {
                    method: self.method.to_string(),
                    path: path.clone(),
                    detail: e.to_string(),
                    request_id: answer.request_id,
                })?;
            out.extend(page.value);
            if pages < 1000 {
                next = page.next_link;
            }
            // The next page must be on Microsoft Graph's own root: the access token goes with
            // it, and an answer naming another host is not followed.
            if let Some(link) = &next {
                if !link.starts_with(&format!("{}/", self.client.base)) {
                    return Err(GraphError::Decode {
                        method: self.method.to_string(),
                        path: path.clone(),
                        detail: format!(
                            "its @odata.nextLink points outside Microsoft Graph ({}); it was not followed, so the access token stays with Graph",
                            link.split('/').take(3).collect::<Vec<_>>().join("/")
                        ),
                        request_id: None,
                    });
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            ..Default::default()
        };
        let d1 = p.backoff(1);
        assert!(d1 >= Duration::from_millis(500) && d1 <= Duration::from_secs(1));
        let d4 = p.backoff(4);
        assert!(d4 >= Duration::from_secs(4) && d4 <= Duration::from_secs(8));
        assert!(p.backoff(20) <= Duration::from_secs(30));
    }

    #[test]
    fn reads_retry_after_seconds() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(
            reqwest::header::RETRY_AFTER,
            reqwest::header::HeaderValue::from_static("7"),
        );
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
    }

    /// The replication wait is a duration: with Entra's budget of two minutes it keeps reading
    /// for two minutes (by the clock), however many reads that takes, and stops soon after.
    #[tokio::test(start_paused = true)]
    async fn replication_is_waited_out_by_the_clock_not_by_counting_reads() {
        let policy = RetryPolicy {
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            replication_budget: Duration::from_secs(120),
            ..Default::default()
        };
        let started = tokio::time::Instant::now();
        let reads = std::sync::atomic::AtomicU32::new(0);
        let found: Result<Option<()>, ()> =
            poll_until(policy.patience(policy.replication_budget), || async {
                reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(None)
            })
            .await;
        assert_eq!(found, Ok(None));
        let waited = started.elapsed();
        assert!(waited >= Duration::from_secs(120), "{waited:?}");
        assert!(waited < Duration::from_secs(121), "{waited:?}");
        assert!(
            reads.load(std::sync::atomic::Ordering::SeqCst) > policy.max_attempts,
            "more reads than the old count of tries"
        );
        // Something that shows up after 100 s is found, not given up on.
        let started = tokio::time::Instant::now();
        let found: Result<Option<u8>, ()> =
            poll_until(policy.patience(policy.replication_budget), || async {
                Ok((started.elapsed() >= Duration::from_secs(100)).then_some(7))
            })
            .await;
        assert_eq!(found, Ok(Some(7)));
    }
}
