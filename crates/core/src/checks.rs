//! Live connection tests after apply: read-only, each with a verdict, the cause in plain words
//! and the fix. They prove what the provider will rely on: the tenant's OpenID metadata, that the
//! new secret gets a token, and (for application permissions) that consent took effect.

use std::time::Duration;

use oauth2::basic::BasicClient;
use oauth2::{AuthType, ClientId, ClientSecret, Scope, TokenResponse, TokenUrl};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::auth::aadsts_code;
use crate::cloud::Cloud;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

/// One test's verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct CheckResult {
    pub id: String,
    pub title: String,
    pub status: Status,
    /// What was seen, in plain words.
    pub detail: String,
    pub cause: Option<String>,
    pub fix: Option<String>,
    /// Codes and ids for support: AADSTS code, request-id, URL.
    pub evidence: Option<String>,
}

/// What an AADSTS code means for this wizard: the step that causes it, the cause, the fix.
pub struct Explained {
    pub step: &'static str,
    pub cause: &'static str,
    pub fix: &'static str,
}

/// Maps the AADSTS codes admins meet to the wizard step that causes them.
pub fn explain_aadsts(code: u32) -> Option<Explained> {
    let e = |step, cause, fix| Some(Explained { step, cause, fix });
    match code {
        7000215 => e("Register app", "The client secret is wrong: often the secret's ID was pasted instead of its value, or the secret was just created and has not reached every Entra server yet.", "Wait a minute and test again; if it still fails, run the wizard again to rotate the secret and hand over the new value."),
        7000222 => e("Register app", "The client secret has expired, so sign-in through the provider stops working.", "Run the wizard again to rotate the secret, then hand the new one to the provider."),
        700016 => e("Register app", "The application was not found in this tenant: the client ID is wrong, or the provider points at another tenant.", "Check the provider uses this tenant's ID and the client ID shown on the Done step."),
        50011 => e("Register app", "The redirect URI the provider sent is not registered on the app.", "Check the provider input (team name, authenticate URL) and re-run the wizard so the app has the exact redirect URI."),
        65001 => e("Permissions & consent", "Nobody has consented to the app's permissions for the organisation.", "Grant admin consent in the wizard, or send the admin-consent link to a Global Administrator."),
        90094 => e("Permissions & consent", "An administrator's approval is needed before users can use the app.", "Grant admin consent in the wizard, or send the admin-consent link to a Global Administrator."),
        50105 => e("Sync mode", "The user is not assigned to the app, and the app requires assignment.", "Assign the user, or a group they are a direct member of, to the enterprise app."),
        65004 => e("Permissions & consent", "The user declined to consent to the app.", "Grant admin consent for the organisation so users are not asked."),
        _ => None,
    }
}

fn fail_from_aadsts(id: &str, title: &str, detail: String, description: &str) -> CheckResult {
    let code = aadsts_code(description);
    let explained = code.and_then(explain_aadsts);
    CheckResult {
        id: id.into(),
        title: title.into(),
        status: Status::Fail,
        detail,
        cause: explained
            .as_ref()
            .map(|x| format!("{} (step: {})", x.cause, x.step))
            .or_else(|| Some(description.to_string())),
        fix: explained.map(|x| x.fix.to_string()),
        evidence: code.map(|c| format!("AADSTS{c}")),
    }
}

/// How long to keep retrying a brand-new secret or app the token endpoint does not know yet
/// (AADSTS7000215, AADSTS700016), and a new permission not yet in app-only tokens (403).
#[derive(Clone, Debug)]
pub struct SecretRetry {
    /// How long, by the clock ([`crate::wait::NEW_CREDENTIAL`]).
    pub budget: Duration,
    /// The pause between tries.
    pub delay: Duration,
}

impl Default for SecretRetry {
    fn default() -> Self {
        Self {
            budget: crate::wait::NEW_CREDENTIAL,
            delay: crate::wait::pause_override().map_or(Duration::from_secs(10), |b| b * 2),
        }
    }
}

impl SecretRetry {
    /// For a removed secret to be refused: up to [`crate::wait::REMOVED_CREDENTIAL`].
    pub fn removal() -> Self {
        Self {
            budget: crate::wait::REMOVED_CREDENTIAL,
            ..Self::default()
        }
    }

    fn patience(&self) -> crate::wait::Patience {
        crate::wait::Patience::every(self.budget, self.delay)
    }
}

/// The tenant's OpenID Connect metadata, which every OIDC provider reads.
pub async fn discovery(http: &reqwest::Client, cloud: &Cloud, tenant_id: &str) -> CheckResult {
    let url = cloud.discovery_url(tenant_id);
    let title = "The tenant's OpenID Connect metadata is reachable";
    match crate::http::send_idempotent(|| http.get(&url)).await {
        Ok(r) if r.status().is_success() => {
            match crate::http::read_body(r, crate::http::SMALL_BODY_LIMIT)
                .await
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            {
                Some(v) if v["issuer"].as_str().is_some_and(|i| i.contains(tenant_id)) => {
                    CheckResult {
                        id: "oidc_discovery".into(),
                        title: title.into(),
                        status: Status::Pass,
                        detail: format!("Issuer {}", v["issuer"].as_str().unwrap_or_default()),
                        cause: None,
                        fix: None,
                        evidence: Some(url),
                    }
                }
                _ => CheckResult {
                    id: "oidc_discovery".into(),
                    title: title.into(),
                    status: Status::Fail,
                    detail: "The metadata does not name this tenant as its issuer.".into(),
                    cause: Some("The authority or tenant ID is wrong for this cloud.".into()),
                    fix: Some("Check the cloud chosen at sign-in.".into()),
                    evidence: Some(url),
                },
            }
        }
        Ok(r) => CheckResult {
            id: "oidc_discovery".into(),
            title: title.into(),
            status: Status::Fail,
            detail: format!("HTTP {}", r.status()),
            cause: Some("The tenant's metadata could not be read.".into()),
            fix: Some("Check the tenant ID and the cloud.".into()),
            evidence: Some(url),
        },
        Err(e) => CheckResult {
            id: "oidc_discovery".into(),
            title: title.into(),
            status: Status::Fail,
            detail: e.to_string(),
            cause: Some("The sign-in service could not be reached.".into()),
            fix: Some("Check the network connection and proxy.".into()),
            evidence: Some(url),
        },
    }
}

/// Gets an app-only token with the new secret (client credentials), retrying while it
/// replicates; then, when application permissions were granted, reads one user with it.
pub async fn secret_and_consent(
    http: &reqwest::Client,
    cloud: &Cloud,
    token_endpoint: &str,
    client_id: &str,
    secret: &SecretString,
    app_permissions: bool,
    retry: &SecretRetry,
) -> Vec<CheckResult> {
    let title = "The new client secret gets a token";
    let Ok(token_url) = TokenUrl::new(token_endpoint.to_string()) else {
        return vec![CheckResult {
            id: "client_secret".into(),
            title: title.into(),
            status: Status::Fail,
            detail: format!("bad token endpoint {token_endpoint}"),
            cause: None,
            fix: None,
            evidence: None,
        }];
    };
    let client = BasicClient::new(ClientId::new(client_id.to_string()))
        .set_client_secret(ClientSecret::new(secret.expose_secret().to_string()))
        .set_auth_type(AuthType::RequestBody)
        .set_token_uri(token_url);
    let mut patience = retry.patience();
    let token = loop {
        match app_token(&client, cloud, http).await {
            Ok(t) => break t,
            Err(oauth2::RequestTokenError::ServerResponse(resp)) => {
                let desc = resp.error_description().cloned().unwrap_or_default();
                // A new secret (7000215) and a new app (700016) reach the token endpoint late.
                if matches!(aadsts_code(&desc), Some(7000215 | 700016)) {
                    tracing::info!(
                        tries = patience.tries(),
                        budget = %crate::wait::up_to(retry.budget),
                        "the new app or secret is not accepted yet; waiting for replication"
                    );
                    if patience.again().await {
                        continue;
                    }
                }
                return vec![fail_from_aadsts(
                    "client_secret",
                    title,
                    format!(
                        "Entra refused the secret after {} attempt(s) over {} s.",
                        patience.tries(),
                        patience.waited().as_secs()
                    ),
                    &desc,
                )];
            }
            Err(e) => {
                return vec![CheckResult {
                    id: "client_secret".into(),
                    title: title.into(),
                    status: Status::Fail,
                    detail: e.to_string(),
                    cause: Some("The token endpoint could not be reached.".into()),
                    fix: Some("Check the network connection.".into()),
                    evidence: None,
                }];
            }
        }
    };
    let mut out = vec![CheckResult {
        id: "client_secret".into(),
        title: title.into(),
        status: Status::Pass,
        detail: if patience.tries() > 1 {
            format!(
                "Accepted after {} attempts over {} s (the secret needed time to replicate).",
                patience.tries(),
                patience.waited().as_secs()
            )
        } else {
            "Accepted at once.".into()
        },
        cause: None,
        fix: None,
        evidence: None,
    }];
    if !app_permissions {
        return out;
    }
    let title = "Application permissions are in effect";
    let url = format!("{}/users?$top=1&$select=id", cloud.graph_v1());
    // A permission granted moments ago is missing from the first tokens (403): wait and ask
    // for a new token, as for the secret.
    let mut token = token;
    let mut patience = retry.patience();
    let r = loop {
        let r = crate::http::send_idempotent(|| http.get(&url).bearer_auth(token.expose_secret()))
            .await;
        match r {
            Ok(resp)
                if resp.status() == reqwest::StatusCode::FORBIDDEN && patience.again().await =>
            {
                tracing::info!(
                    tries = patience.tries(),
                    "the new permission is not in the token yet; waiting"
                );
                if let Ok(t) = app_token(&client, cloud, http).await {
                    token = t;
                }
            }
            other => break other,
        }
    };
    out.push(match r {
        Ok(resp) if resp.status().is_success() => CheckResult { id: "app_consent".into(), title: title.into(), status: Status::Pass, detail: "The app read a user from Microsoft Graph with its own token.".into(), cause: None, fix: None, evidence: None },
        Ok(resp) => {
            let rid = resp.headers().get("request-id").and_then(|v| v.to_str().ok()).map(str::to_string);
            let status = resp.status();
            CheckResult {
                id: "app_consent".into(),
                title: title.into(),
                status: Status::Fail,
                detail: format!("Microsoft Graph answered HTTP {status}."),
                cause: Some("Admin consent for the application permissions has not taken effect (or was never given).".into()),
                fix: Some("Grant consent (or have a Global Administrator open the consent link), wait a minute, and test again.".into()),
                evidence: rid.map(|r| format!("request-id {r}")),
            }
        }
        Err(e) => CheckResult { id: "app_consent".into(), title: title.into(), status: Status::Fail, detail: e.to_string(), cause: Some("Microsoft Graph could not be reached.".into()), fix: None, evidence: None },
    });
    out
}

/// After a retirement: asks the token endpoint for a token with the retired secret until it
/// is refused (AADSTS7000215), so the admin learns when a leaked copy really became useless,
/// not only that Graph no longer lists it. Entra keeps accepting a removed secret for a while;
/// this waits up to `retry.budget` ([`crate::wait::REMOVED_CREDENTIAL`]).
pub async fn retired_secret_refused(
    http: &reqwest::Client,
    cloud: &Cloud,
    token_endpoint: &str,
    client_id: &str,
    secret: &SecretString,
    retry: &SecretRetry,
) -> CheckResult {
    let result = |status, detail: String| CheckResult {
        id: "retired_secret".into(),
        title: "The retired secret no longer gets a token".into(),
        status,
        detail,
        cause: None,
        fix: None,
        evidence: None,
    };
    let Ok(token_url) = TokenUrl::new(token_endpoint.to_string()) else {
        return result(Status::Fail, format!("bad token endpoint {token_endpoint}"));
    };
    let client = BasicClient::new(ClientId::new(client_id.to_string()))
        .set_client_secret(ClientSecret::new(secret.expose_secret().to_string()))
        .set_auth_type(AuthType::RequestBody)
        .set_token_uri(token_url);
    let mut patience = retry.patience();
    loop {
        match app_token(&client, cloud, http).await {
            Ok(_) => {
                if patience.tries() == 1 {
                    crate::wait::announce(
                        "Waiting for Entra to stop accepting the retired secret",
                        retry.budget,
                    );
                }
                if !patience.again().await {
                    return result(
                        Status::Warn,
                        format!(
                            "Entra still accepted the retired secret {} s after it was removed. Removed secrets can keep working for a while; test again later.",
                            patience.waited().as_secs()
                        ),
                    );
                }
            }
            Err(oauth2::RequestTokenError::ServerResponse(resp))
                if matches!(
                    aadsts_code(&resp.error_description().cloned().unwrap_or_default()),
                    Some(7000215 | 7000222)
                ) =>
            {
                return result(
                    Status::Pass,
                    if patience.tries() > 1 {
                        format!(
                            "Entra refused it {} s after it was removed ({} attempts): a leaked copy is useless now.",
                            patience.waited().as_secs(),
                            patience.tries()
                        )
                    } else {
                        "Entra refused it at once: a leaked copy is useless now.".into()
                    },
                );
            }
            Err(e) => {
                return result(
                    Status::Warn,
                    format!("Could not tell whether Entra still accepts the retired secret: {e}"),
                );
            }
        }
    }
}

type AppTokenError = oauth2::RequestTokenError<
    oauth2::HttpClientError<reqwest::Error>,
    oauth2::StandardErrorResponse<oauth2::basic::BasicErrorResponseType>,
>;

/// An app-only token for Microsoft Graph (client credentials), waiting out throttling.
async fn app_token(
    client: &oauth2::basic::BasicClient<
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointSet,
    >,
    cloud: &Cloud,
    http: &reqwest::Client,
) -> Result<SecretString, AppTokenError> {
    client
        .exchange_client_credentials()
        .add_scope(Scope::new(cloud.graph_scope(".default")))
        .request_async(&crate::http::oauth_client(http))
        .await
        .map(|t| SecretString::from(t.access_token().secret().clone()))
}

/// Entra's Test Connection with the credentials it saved for the provisioning job.
pub async fn scim_connection(
    graph: &crate::graph::GraphClient,
    sp_id: &str,
    job_id: &str,
) -> CheckResult {
    match crate::provisioning::validate_saved(graph, sp_id, job_id).await {
        Ok(()) => CheckResult {
            id: "scim_connection".into(),
            title: "Entra reaches the SCIM endpoint with the saved token".into(),
            status: Status::Pass,
            detail: "Test Connection passed: the endpoint answered Entra's probe with an empty list.".into(),
            cause: None,
            fix: None,
            evidence: None,
        },
        Err(e) => CheckResult {
            id: "scim_connection".into(),
            title: "Entra reaches the SCIM endpoint with the saved token".into(),
            status: Status::Fail,
            detail: e.to_string(),
            cause: Some("The provider refused the token, or the endpoint moved or is down. Provisioning quarantines until this passes.".into()),
            fix: Some("Get a new token (or the right URL) from the provider, run the SCIM step again and apply.".into()),
            evidence: e.api().and_then(|a| a.request_id.clone()).map(|r| format!("request-id {r}")),
        },
    }
}

/// Fetches the app's federation metadata (at most [`crate::saml::MAX_METADATA_BYTES`]) and
/// checks it carries Entra's entity ID, the SAML sign-on URL and the certificate Entra signs
/// with. A new certificate reaches the metadata after a while, so a missing one is retried.
/// Returns the verdict and, when it passed, the metadata XML (for saving).
pub async fn saml_metadata(
    http: &reqwest::Client,
    url: &str,
    entity_id: &str,
    sso_url: &str,
    thumbprint: &str,
) -> (CheckResult, Option<String>) {
    let title = "The app's federation metadata carries its signing certificate";
    let result = |status, detail: String, cause: Option<&str>, fix: Option<&str>| CheckResult {
        id: "saml_metadata".into(),
        title: title.into(),
        status,
        detail,
        cause: cause.map(str::to_string),
        fix: fix.map(str::to_string),
        evidence: Some(url.to_string()),
    };
    let base = crate::wait::pause_override().unwrap_or(std::time::Duration::from_secs(5));
    let mut patience = crate::wait::Patience::backoff(crate::wait::METADATA, base, base * 6);
    let mut last;
    loop {
        let fetched = async {
            let r = crate::http::send_idempotent(|| http.get(url)).await?;
            let status = r.status();
            Ok::<_, reqwest::Error>(
                match crate::http::read_text(r, crate::saml::MAX_METADATA_BYTES).await {
                    Ok(body) => (status, false, body),
                    Err(crate::http::BodyError::Network(e)) => return Err(e),
                    Err(crate::http::BodyError::TooLarge { .. }) => (status, true, String::new()),
                },
            )
        }
        .await;
        match fetched {
            Err(e) => {
                return (
                    result(
                        Status::Fail,
                        e.to_string(),
                        Some("The sign-in service could not be reached."),
                        Some("Check the network connection and proxy."),
                    ),
                    None,
                )
            }
            Ok((status, _, body)) if !status.is_success() => {
                last = format!(
                    "HTTP {status}: {}",
                    body.chars().take(200).collect::<String>()
                );
            }
            Ok((_, true, _)) => {
                last = format!(
                    "the metadata is larger than {} bytes",
                    crate::saml::MAX_METADATA_BYTES
                );
            }
            Ok((_, false, body)) => match crate::saml::parse_idp_metadata(&body) {
                Err(e) => last = e.to_string(),
                Ok(meta) => {
                    let problems =
                        crate::saml::metadata_problems(&meta, entity_id, sso_url, thumbprint);
                    if problems.is_empty() {
                        return (
                            result(
                                Status::Pass,
                                format!("Entity ID {entity_id}, sign-on URL {sso_url}, certificate {thumbprint}"),
                                None,
                                None,
                            ),
                            Some(body),
                        );
                    }
                    last = problems.join("; ");
                }
            },
        }
        if !patience.again().await {
            break;
        }
    }
    (
        result(
            Status::Fail,
            format!("The metadata is not right yet: {last}."),
            Some("Entra publishes a new signing certificate in the metadata a few minutes after it is added."),
            Some("Run the live tests again in a few minutes; if it still fails, open the app's Single sign-on page in the Entra admin center and check the SAML certificate is active."),
        ),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_the_codes_admins_meet_to_steps() {
        for code in [7000215, 7000222, 700016, 50011, 65001, 90094, 50105, 65004] {
            assert!(explain_aadsts(code).is_some(), "AADSTS{code}");
        }
        assert_eq!(explain_aadsts(50011).unwrap().step, "Register app");
        assert_eq!(explain_aadsts(50105).unwrap().step, "Sync mode");
        let r = fail_from_aadsts(
            "x",
            "t",
            "d".into(),
            "AADSTS7000222: The provided client secret keys are expired.",
        );
        assert!(
            r.cause.unwrap().contains("expired") && r.evidence.as_deref() == Some("AADSTS7000222")
        );
    }
}
