//! The RFC 8252 loopback redirect: a one-shot HTTP listener on 127.0.0.1 and an ephemeral port
//! that receives the authorization code, checks `state`, answers the browser tab, and stops.
//! The test sign-in uses it too, for a SAMLResponse POSTed by the browser (with `RelayState` as
//! its state).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::Router;
use std::collections::HashMap;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::AuthError;

type Outcome = Result<HashMap<String, String>, AuthError>;

struct Inner {
    expected_state: Option<String>,
    tx: Option<oneshot::Sender<Outcome>>,
}

/// A bound loopback listener waiting for one authorization response.
pub struct LoopbackListener {
    redirect_uri: String,
    inner: Arc<Mutex<Inner>>,
    rx: oneshot::Receiver<Outcome>,
    stop: Option<oneshot::Sender<()>>,
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

async fn callback(
    State(inner): State<Arc<Mutex<Inner>>>,
    Query(mut q): Query<HashMap<String, String>>,
    body: String,
) -> Response {
    // A POSTed form (SAML's HTTP-POST binding) counts as parameters too.
    q.extend(url::form_urlencoded::parse(body.as_bytes()).into_owned());
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
    let Some(tx) = guard.tx.take() else {
        return page(
            "This sign-in has already finished",
            "You can close this tab and return to Entra Setup.",
            true,
        );
    };
    let state_ok = match (
        &guard.expected_state,
        q.get("state").or_else(|| q.get("RelayState")),
    ) {
        (Some(expected), Some(got)) => expected == got,
        _ => false,
    };
    drop(guard);
    if !state_ok {
        let _ = tx.send(Err(AuthError::StateMismatch));
        return page(
            "Sign-in rejected",
            "This response does not belong to the sign-in Entra Setup started, so it was ignored. Return to Entra Setup and start again.",
            false,
        );
    }
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

impl LoopbackListener {
    /// Binds 127.0.0.1 on an ephemeral port. `redirect_host` is the host written into the
    /// redirect URI (`localhost` for clients registered with `http://localhost`, or `127.0.0.1`).
    pub async fn bind(redirect_host: &str) -> Result<Self, AuthError> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| AuthError::Network {
                what: "a local port for the sign-in reply".into(),
                detail: e.to_string(),
            })?;
        let port = listener
            .local_addr()
            .map_err(|e| AuthError::Network {
                what: "the local listener".into(),
                detail: e.to_string(),
            })?
            .port();
        let (tx, rx) = oneshot::channel();
        let inner = Arc::new(Mutex::new(Inner {
            expected_state: None,
            tx: Some(tx),
        }));
        let app = Router::new().fallback(callback).with_state(inner.clone());
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop_rx.await;
                })
                .await;
        });
        Ok(Self {
            redirect_uri: format!("http://{redirect_host}:{port}/"),
            inner,
            rx,
            stop: Some(stop_tx),
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
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        result
    }
}

impl Drop for LoopbackListener {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
