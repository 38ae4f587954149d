//! Pushing the provider's settings to its API, as its profile describes it (`[push]`): look
//! for the object a push made before (paging through the list), then update it or create one,
//! with an output as the body. The API token is used once and never stored.

use std::collections::BTreeMap;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::provider::{render, PushRequest, PushSpec};

/// The result of pushing settings to the provider.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct PushResult {
    /// What was made at the provider, in words ("the identity provider").
    pub object: String,
    pub id: String,
    /// False when an object made before was updated instead.
    pub created: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("The provider's API could not be reached: {0}")]
    Network(String),
    /// The API answered, and said no.
    #[error("The provider's API refused the request (HTTP {status}): {message}")]
    Refused { status: u16, message: String },
    /// The API answered something the profile does not describe.
    #[error("The provider's API answered in a way the wizard does not understand (HTTP {status}): {message}")]
    Unexpected { status: u16, message: String },
    /// The push could not be built from the profile and inputs.
    #[error("The push could not be prepared: {0}")]
    Prepare(String),
}

/// Follows a JSON pointer; an empty pointer is the whole document.
fn at<'a>(v: &'a Value, pointer: &str) -> Option<&'a Value> {
    if pointer.is_empty() {
        Some(v)
    } else {
        v.pointer(pointer)
    }
}

/// The most pages a lookup reads (a guard against an API that never says it is done).
const MAX_PAGES: u32 = 100;

struct Call<'a> {
    http: &'a reqwest::Client,
    spec: &'a PushSpec,
    auth: SecretString,
    /// What this push sends that the API might echo back (the token, the client secret):
    /// masked in every message.
    sent: Vec<SecretString>,
}

impl Call<'_> {
    /// Sends one request and checks the answer the way the profile says: a 2xx status, the
    /// `ok` flag when there is one, and the API's own error messages when not.
    async fn send(
        &self,
        method: &str,
        url: &str,
        body: Option<&SecretString>,
    ) -> Result<Value, PushError> {
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| PushError::Prepare(e.to_string()))?;
        let mut req = self
            .http
            .request(method, url)
            .header(self.spec.auth_header.as_str(), self.auth.expose_secret())
            .header("Accept", "application/json");
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(b.expose_secret().to_string());
        }
        let resp = req
            .send()
            .await
            .map_err(|e| PushError::Network(e.without_url().to_string()))?;
        let status = resp.status().as_u16();
        let text = crate::http::read_text(resp, crate::http::SMALL_BODY_LIMIT)
            .await
            .map_err(|e| match e {
                crate::http::BodyError::Network(e) => {
                    PushError::Network(e.without_url().to_string())
                }
                e => PushError::Unexpected {
                    status,
                    message: e.to_string(),
                },
            })?;
        let v: Value = serde_json::from_str(&text).map_err(|e| PushError::Unexpected {
            status,
            message: format!("the answer is not JSON ({e})"),
        })?;
        let ok_flag = self
            .spec
            .answer
            .ok
            .as_deref()
            .is_none_or(|p| at(&v, p) == Some(&Value::Bool(true)));
        if (200..300).contains(&status) && ok_flag {
            return Ok(v);
        }
        let mut message = self
            .spec
            .answer
            .errors
            .as_deref()
            .and_then(|p| at(&v, p))
            .and_then(Value::as_array)
            .map(|errs| {
                errs.iter()
                    .map(|e| match (&e["message"], &e["code"]) {
                        (Value::String(m), Value::Null) => m.clone(),
                        (Value::String(m), code) => format!("{m} (code {code})"),
                        (_, _) => e.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| {
                crate::redact::redact(&text.chars().take(300).collect::<String>()).into_owned()
            });
        let sent: Vec<&str> = std::iter::once(&self.auth)
            .chain(&self.sent)
            .map(|s| s.expose_secret())
            .collect();
        message = crate::redact::echo(&crate::redact::printable_without(&message, &sent), 500);
        if matches!(status, 401 | 403) {
            if let Some(hint) = &self.spec.auth_hint {
                message = format!("{message}. {hint}");
            }
        }
        Err(PushError::Refused { status, message })
    }

    /// The id of the object a push made before, if the profile says how to find it.
    async fn find(&self, values: &BTreeMap<String, String>) -> Result<Option<String>, PushError> {
        let Some(find) = &self.spec.find else {
            return Ok(None);
        };
        let url = url_for(&find.url, values)?;
        let wanted: Vec<(String, String)> = find
            .matches
            .iter()
            .map(|(k, v)| Ok((k.clone(), fill(v, values)?)))
            .collect::<Result<_, PushError>>()?;
        let mut previous: Option<Vec<Value>> = None;
        for page in 1..=MAX_PAGES {
            let page_url = match &find.page_param {
                Some(p) => {
                    let mut u =
                        url::Url::parse(&url).map_err(|e| PushError::Prepare(e.to_string()))?;
                    u.query_pairs_mut().append_pair(p, &page.to_string());
                    u.to_string()
                }
                None => url.clone(),
            };
            let v = self.send("GET", &page_url, None).await?;
            let items = at(&v, &find.items)
                .and_then(Value::as_array)
                .ok_or_else(|| PushError::Unexpected {
                    status: 200,
                    message: format!("the list has no array at {}", find.items),
                })?;
            let hit = items.iter().find(|item| {
                wanted.iter().all(|(ptr, want)| {
                    at(item, ptr).is_some_and(|x| match x {
                        Value::String(s) => s == want,
                        other => serde_json::from_str::<Value>(want).ok().as_ref() == Some(other),
                    })
                })
            });
            if let Some(item) = hit {
                return Ok(at(item, &find.id).and_then(|x| match x {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                }));
            }
            // An API that ignores the page parameter answers the same page again: stop there.
            let last = find.page_param.is_none()
                || items.is_empty()
                || previous.as_ref() == Some(items)
                || find
                    .total_pages
                    .as_deref()
                    .and_then(|p| at(&v, p))
                    .and_then(Value::as_u64)
                    .is_some_and(|total| u64::from(page) >= total);
            if last {
                break;
            }
            previous = Some(items.clone());
        }
        Ok(None)
    }
}

fn fill(template: &str, values: &BTreeMap<String, String>) -> Result<String, PushError> {
    render(template, values, str::to_string).map_err(|e| PushError::Prepare(e.to_string()))
}

/// Characters a value may not bring into a URL as they are: anything that would end its path
/// segment, start a query or fragment, or add credentials or a port.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A push URL from its template: every value but `api_base` percent-encoded as a path segment,
/// and the result checked to go to `api_base`'s own scheme, host and port. A shared profile (or
/// an input such as `../..@evil.example`) can send the API token and the secret nowhere else.
fn url_for(template: &str, values: &BTreeMap<String, String>) -> Result<String, PushError> {
    let base = values.get("api_base").cloned().unwrap_or_default();
    let encoded: BTreeMap<String, String> = values
        .iter()
        .map(|(k, v)| {
            let v = if k == "api_base" {
                v.clone()
            } else {
                percent_encoding::utf8_percent_encode(v, SEGMENT).to_string()
            };
            (k.clone(), v)
        })
        .collect();
    let url = fill(template, &encoded)?;
    same_origin(&base, &url)?;
    Ok(url)
}

/// Refuses a URL that leaves the API's origin.
fn same_origin(base: &str, url: &str) -> Result<(), PushError> {
    let parse = |u: &str| {
        url::Url::parse(u).map_err(|e| {
            PushError::Prepare(format!(
                "the URL {} is not valid ({e})",
                crate::redact::echo(u, 200)
            ))
        })
    };
    let (b, u) = (parse(base)?, parse(url)?);
    let origin = |x: &url::Url| {
        (
            x.scheme().to_string(),
            x.host_str().map(str::to_ascii_lowercase),
            x.port_or_known_default(),
        )
    };
    if origin(&b) != origin(&u) || !u.username().is_empty() || u.password().is_some() {
        return Err(PushError::Prepare(format!(
            "the profile's push URL goes to {}, not to the provider's API at {}: nothing was sent. Fix the profile's [push] URLs (they must stay on api_base's host).",
            crate::redact::echo(u.host_str().unwrap_or("(no host)"), 100),
            crate::redact::echo(b.host_str().unwrap_or("(no host)"), 100)
        )));
    }
    Ok(())
}

/// Whether a profile's push URL template stays on `api_base` whatever the values are (checked
/// when the profile is read, so a bad file names its line).
pub(crate) fn template_stays_on(template: &str, api_base: &str) -> Result<(), String> {
    let mut values: BTreeMap<String, String> = crate::provider::placeholders(template)
        .into_iter()
        .map(|p| (p, "x".to_string()))
        .collect();
    values.insert(
        "api_base".into(),
        api_base.trim_end_matches('/').to_string(),
    );
    url_for(template, &values).map(|_| ()).map_err(|e| match e {
        PushError::Prepare(m) => m,
        e => e.to_string(),
    })
}

fn request_url(r: &PushRequest, values: &BTreeMap<String, String>) -> Result<String, PushError> {
    url_for(&r.url, values)
}

/// Pushes `body` (the rendered output, holding the secret) as `spec` describes. `values` are
/// the setup's values and the push inputs that are not secret; `secrets` are the secret push
/// inputs (the API token), used in the auth header and nothing else; `api_base` replaces the
/// profile's (the demo's stand-in, a test's fake); `client_secret` is the secret inside `body`,
/// masked in any message the API sends back.
pub async fn push(
    http: &reqwest::Client,
    spec: &PushSpec,
    api_base: Option<&str>,
    values: &BTreeMap<String, String>,
    secrets: &BTreeMap<String, SecretString>,
    body: &SecretString,
    client_secret: Option<&SecretString>,
) -> Result<PushResult, PushError> {
    let mut values = values.clone();
    values.insert(
        "api_base".into(),
        api_base
            .unwrap_or(&spec.api_base)
            .trim_end_matches('/')
            .to_string(),
    );
    serde_json::from_str::<Value>(body.expose_secret())
        .map_err(|e| PushError::Prepare(format!("the request body is not JSON: {e}")))?;
    let mut secret_values = values.clone();
    for (id, v) in secrets {
        secret_values.insert(id.clone(), v.expose_secret().trim().to_string());
    }
    let call = Call {
        http,
        spec,
        auth: SecretString::from(fill(&spec.auth_value, &secret_values)?),
        sent: secrets.values().chain(client_secret).cloned().collect(),
    };
    let found = call.find(&values).await?;
    let (request, created) = match (&found, &spec.update) {
        (Some(id), Some(update)) => {
            values.insert("id".into(), id.clone());
            (update, false)
        }
        _ => (&spec.create, true),
    };
    let url = request_url(request, &values)?;
    let answer = call.send(&request.method, &url, Some(body)).await?;
    let id = spec
        .answer
        .id
        .as_deref()
        .and_then(|p| at(&answer, p))
        .and_then(|x| match x {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .or(found)
        .unwrap_or_default();
    Ok(PushResult {
        object: spec.object.clone(),
        id,
        created,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    #[test]
    fn push_urls_stay_on_the_api_host() {
        let base = "https://api.cloudflare.com/client/v4";
        let ok = url_for(
            "{api_base}/accounts/{account_id}/access/identity_providers",
            &values(&[("api_base", base), ("account_id", "0123abcd")]),
        )
        .unwrap();
        assert_eq!(
            ok,
            "https://api.cloudflare.com/client/v4/accounts/0123abcd/access/identity_providers"
        );
        // A value cannot leave its path segment: it is encoded, and the host stays.
        let sneaky = url_for(
            "{api_base}/accounts/{account_id}/x",
            &values(&[
                ("api_base", base),
                ("account_id", "../../x?y#z@evil.example"),
            ]),
        )
        .unwrap();
        assert!(sneaky.starts_with("https://api.cloudflare.com/client/v4/accounts/..%2F..%2Fx%3Fy%23z%40evil.example/x"), "{sneaky}");
        // A template that changes the host (a profile shared as "data") is refused.
        for t in [
            "{api_base}.evil.example/x",
            "{api_base}@evil.example/x",
            "{api_base}:8443/x",
        ] {
            let e = url_for(t, &values(&[("api_base", "https://api.cloudflare.com")])).unwrap_err();
            assert!(e.to_string().contains("nothing was sent"), "{t}: {e}");
        }
    }
}
