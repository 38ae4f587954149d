//! The RFC 8252 loopback redirect: a one-shot HTTP listener on 127.0.0.1 (and ::1 on the same
//! port, since `localhost` may resolve to either) and an ephemeral port that receives the
//! authorization code, checks `state` and the Host header, answers the browser tab, and stops.
//! A request that is not the answer to this sign-in (a wrong or missing `state`, another Host,
//! a stray page) gets an error page and the listener keeps waiting for the real one: a local
//! process or a web page that finds the port cannot end the sign-in.
//! The test sign-in uses it too, for a SAMLResponse POSTed by the browser (with `RelayState` as
//! its state).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::response::{Html, IntoResponse, Response};
use axum::Router;
use std::collections::HashMap;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::AuthError;

type Outcome = Result<HashMap<String, String>, AuthError>;

/// How long one connection to the listener may stay open: a browser's redirect takes
/// milliseconds; a local process that opens connections and sends nothing (or a byte a
/// minute) is cut off instead of holding them for the whole sign-in.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(20);

/// Serves `app` on `listener` until `stop`, each connection for at most `per_connection`.
async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    stop: CancellationToken,
    per_connection: Duration,
) {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::service::TowerToHyperService;
    loop {
        let stream = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        let (app, stop) = (app.clone(), stop.clone());
        tokio::spawn(async move {
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let conn =
                builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
            tokio::select! {
                _ = tokio::time::timeout(per_connection, conn) => {}
                () = stop.cancelled() => {}
            }
        });
    }
}

struct Inner {
    expected_state: Option<String>,
    tx: Option<oneshot::Sender<Outcome>>,
    port: u16,
}

/// A bound loopback listener waiting for one authorization response.
pub struct LoopbackListener {
    redirect_uri: String,
    inner: Arc<Mutex<Inner>>,
    rx: oneshot::Receiver<Outcome>,
    stop: CancellationToken,
}

fn page(title: &str, body: &str, ok: bool) -> Response {
    let colour = if ok { "#107c10" } else { "#a4262c" };
    let html = format!(
        "<!doctype html><html lang=en><meta charset=utf-8><meta name=viewport content='width=device-width'>\
         <title>{title} – Entra Setup</title>\
         <style>body{{font:16px system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em;line-height:1.5}}\
         h1{{color:{colour};font-size:1.4em}}@media(prefers-color-scheme:dark){{body{{background:#1b1b1f;color:#eee}}}}</style>\
         <h1>{title}</h1><p>{body}</p></html>",
        title = html_escape(title),
        body = html_escape(body),
    );
    Html(html).into_response()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The Host header names this listener: `localhost`, `127.0.0.1` or `[::1]` with its port (a
/// page on another origin that rebinds its name to 127.0.0.1 sends its own name).
fn host_is_ours(headers: &axum::http::HeaderMap, port: u16) -> bool {
    headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| {
            ["localhost", "127.0.0.1", "[::1]"]
                .iter()
                .any(|name| h.eq_ignore_ascii_case(&format!("{name}:{port}")))
        })
}

async fn callback(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: axum::http::HeaderMap,
    RawQuery(raw): RawQuery,
    body: String,
) -> Response {
    // Every parameter once (RFC 6749 §3.1): a repeated `state` or `code` is not the answer of
    // this sign-in, whichever copy one would pick.
    let raw = raw.unwrap_or_default();
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(raw.as_bytes())
        .chain(url::form_urlencoded::parse(body.as_bytes()))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut q: HashMap<String, String> = HashMap::new();
    for (k, v) in pairs {
        if q.insert(k, v).is_some() {
            return (
                axum::http::StatusCode::BAD_REQUEST,
                "A parameter appears twice: this is not the answer to Entra Setup's sign-in.",
            )
                .into_response();
        }
    }
    let port = match inner.lock() {
        Ok(g) => g.port,
        Err(p) => p.into_inner().port,
    };
    if !host_is_ours(&headers, port) {
        tracing::warn!("a request with another Host reached the sign-in listener; ignored");
        return (
            axum::http::StatusCode::MISDIRECTED_REQUEST,
            "This address answers Entra Setup's sign-in only.",
        )
            .into_response();
    }
    let has_answer =
        q.contains_key("code") || q.contains_key("error") || q.contains_key("SAMLResponse");
    if !has_answer {
        // favicon.ico, a stray reload: not ours to answer, keep waiting.
        return (axum::http::StatusCode::NOT_FOUND, "Not found").into_response();
    }
    let mut guard = match inner.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    if guard.tx.is_none() {
        return page(
            "This sign-in has already finished",
            "You can close this tab and return to Entra Setup.",
            true,
        );
    }
    let state_ok = match (
        &guard.expected_state,
        q.get("state").or_else(|| q.get("RelayState")),
    ) {
        (Some(expected), Some(got)) => expected == got,
        _ => false,
    };
    if !state_ok {
        // Not the answer to this sign-in: refused, and the real one is still awaited.
        drop(guard);
        tracing::warn!(
            "a response with a wrong or missing state reached the sign-in listener; ignored"
        );
        let mut r = page(
            "Not this sign-in",
            "This response does not belong to the sign-in Entra Setup started, so it was ignored. Entra Setup is still waiting: finish the sign-in in the tab it opened.",
            false,
        );
        *r.status_mut() = axum::http::StatusCode::BAD_REQUEST;
        return r;
    }
    let Some(tx) = guard.tx.take() else {
        return page(
            "This sign-in has already finished",
            "You can close this tab and return to Entra Setup.",
            true,
        );
    };
    drop(guard);
    if let Some(error) = q.get("error") {
        let description = q.get("error_description").cloned();
        let aadsts = description.as_deref().and_then(super::aadsts_code);
        let err = AuthError::Denied {
            error: error.clone(),
            description,
            aadsts,
        };
        let text = err.to_string();
        let _ = tx.send(Err(err));
        return page(
            "Sign-in did not complete",
            &format!("{text} You can close this tab and return to Entra Setup."),
            false,
        );
    }
    let saml = q.contains_key("SAMLResponse");
    let _ = tx.send(Ok(q));
    if saml {
        page(
            "Entra answered",
            "Entra Setup is checking the answer. You can close this tab and return to Entra Setup.",
            true,
        )
    } else {
        page(
            "You are signed in",
            "You can close this tab and return to Entra Setup.",
            true,
        )
    }
}

/// The listeners of the sign-in reply: 127.0.0.1, [::1] when `localhost` is used, and the port.
type Bound = (
    tokio::net::TcpListener,
    Option<tokio::net::TcpListener>,
    u16,
);

impl LoopbackListener {
    /// Binds 127.0.0.1 on an ephemeral port. `redirect_host` is the host written into the
    /// redirect URI (`localhost` for clients registered with `http://localhost`, or `127.0.0.1`).
    pub async fn bind(redirect_host: &str) -> Result<Self, AuthError> {
        Self::bind_with(redirect_host, CONNECTION_TIMEOUT).await
    }

    async fn bind_with(redirect_host: &str, per_connection: Duration) -> Result<Self, AuthError> {
        let (listener, v6, port) = Self::bind_loopback(redirect_host, 0).await?;
        let (tx, rx) = oneshot::channel();
        let inner = Arc::new(Mutex::new(Inner {
            expected_state: None,
            tx: Some(tx),
            port,
        }));
        let app = Router::new().fallback(callback).with_state(inner.clone());
        let stop = CancellationToken::new();
        for l in std::iter::once(listener).chain(v6) {
            let (app, stop) = (app.clone(), stop.clone());
            tokio::spawn(serve(l, app, stop, per_connection));
        }
        Ok(Self {
            redirect_uri: format!("http://{redirect_host}:{port}/"),
            inner,
            rx,
            stop,
        })
    }

    /// The redirect URI's address(es): 127.0.0.1 on a free port (`first` tried before any
    /// other; 0 for any) and, for `localhost` (which may resolve to ::1 first), [::1] on the
    /// same port. When that port is taken on [::1] — by another program, which would then
    /// receive the sign-in's code — another port is picked for both; a machine without IPv6
    /// loopback listens on 127.0.0.1 alone.
    async fn bind_loopback(redirect_host: &str, first: u16) -> Result<Bound, AuthError> {
        let net = |what: &str, e: std::io::Error| AuthError::Network {
            what: what.into(),
            detail: e.to_string(),
        };
        for attempt in 0..20 {
            let try_port = if attempt == 0 { first } else { 0 };
            let v4 = match tokio::net::TcpListener::bind(("127.0.0.1", try_port)).await {
                Ok(l) => l,
                Err(_) if try_port != 0 => continue,
                Err(e) => return Err(net("a local port for the sign-in reply", e)),
            };
            let port = v4
                .local_addr()
                .map_err(|e| net("the local listener", e))?
                .port();
            if redirect_host != "localhost" {
                return Ok((v4, None, port));
            }
            match tokio::net::TcpListener::bind(("::1", port)).await {
                Ok(v6) => return Ok((v4, Some(v6), port)),
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                    tracing::info!(port, "[::1] is taken on the sign-in port; picking another");
                    continue;
                }
                // No IPv6 loopback on this machine: `localhost` cannot resolve to it either.
                Err(_) => return Ok((v4, None, port)),
            }
        }
        Err(AuthError::Network {
            what: "a local port free on both 127.0.0.1 and [::1] for the sign-in reply".into(),
            detail: "every port tried was taken on one of them".into(),
        })
    }

    /// `http://{host}:{port}/`.
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Sets the `state` value the response must carry. Call before opening the browser.
    pub fn expect_state(&self, state: &str) {
        let mut g = match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        g.expected_state = Some(state.to_string());
    }

    /// Waits for the authorization code, the timeout, or cancellation — whichever comes first.
    pub async fn wait(
        self,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<String, AuthError> {
        let mut answer = self.wait_params(timeout, cancel).await?;
        Ok(answer.remove("code").unwrap_or_default())
    }

    /// Waits for the answer and returns all its parameters (query and form).
    pub async fn wait_params(
        mut self,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<HashMap<String, String>, AuthError> {
        let result = tokio::select! {
            r = &mut self.rx => r.unwrap_or(Err(AuthError::Cancelled)),
            () = tokio::time::sleep(timeout) => Err(AuthError::TimedOut { minutes: timeout.as_secs().div_ceil(60) }),
            () = cancel.cancelled() => Err(AuthError::Cancelled),
        };
        // Give the browser its page before the listener goes away.
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.stop.cancel();
        result
    }
}

impl Drop for LoopbackListener {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Item 9 of the hardening issue: a connection that sends nothing, or half a request, is
    /// closed after the per-connection timeout, and the browser's answer still gets through.
    #[tokio::test]
    async fn a_port_taken_on_ipv6_loopback_is_not_used_for_localhost() {
        // Someone listens on [::1]:P; a localhost redirect on P would hand them the code.
        let Ok(squatter) = tokio::net::TcpListener::bind(("::1", 0)).await else {
            return; // no IPv6 loopback on this machine: nothing can listen there
        };
        let taken = squatter.local_addr().unwrap().port();
        let (_, v6, port) = LoopbackListener::bind_loopback("localhost", taken)
            .await
            .unwrap();
        assert_ne!(port, taken, "another port was picked for both");
        assert!(v6.is_some(), "[::1] listens on the new port");
    }

    #[tokio::test]
    async fn idle_connections_are_cut_off_and_the_answer_still_arrives() {
        let listener = LoopbackListener::bind_with("127.0.0.1", Duration::from_millis(300))
            .await
            .unwrap();
        listener.expect_state("s1");
        let addr = listener
            .redirect_uri()
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let mut idle = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
        slow.write_all(b"GET /?code=x&state=s1 HTTP/1.1\r\nHo")
            .await
            .unwrap();
        for conn in [&mut idle, &mut slow] {
            let mut buf = [0u8; 64];
            let n = tokio::time::timeout(Duration::from_secs(3), conn.read(&mut buf))
                .await
                .expect("the listener closed the connection")
                .unwrap_or(0);
            assert_eq!(n, 0, "closed without an answer");
        }
        let browser = reqwest::Client::new();
        let page = browser
            .get(format!("http://{addr}/?code=the-code&state=s1"))
            .send()
            .await
            .unwrap();
        assert!(page.status().is_success());
        let code = listener
            .wait(Duration::from_secs(5), &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(code, "the-code");
    }
}
