//! OpenID Connect discovery: finds the tenant's endpoints and, for a domain, its tenant ID,
//! before a browser is opened, so a typo is reported at once.

use serde::Deserialize;

use super::AuthError;

/// The parts of an OpenID provider configuration the wizard uses.
#[derive(Clone, Debug, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    #[serde(default)]
    pub device_authorization_endpoint: Option<String>,
    pub jwks_uri: String,
}

impl Discovery {
    /// The tenant ID in the issuer (`https://login.microsoftonline.com/{tid}/v2.0`), unless it is
    /// the `{tenantid}` template that multi-tenant metadata carries.
    pub fn tenant_id(&self) -> Option<String> {
        let segment = self
            .issuer
            .trim_end_matches('/')
            .trim_end_matches("/v2.0")
            .rsplit('/')
            .next()?;
        (segment.len() == 36 && segment.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'))
            .then(|| segment.to_string())
    }

    /// The issuer an id token for `tid` must carry.
    pub fn issuer_for(&self, tid: &str) -> String {
        self.issuer.replace("{tenantid}", tid)
    }
}

/// Fetches the configuration at `url`. `tenant` and `cloud` only shape the error message.
pub async fn discover(
    http: &reqwest::Client,
    url: &str,
    tenant: &str,
    cloud: &str,
) -> Result<Discovery, AuthError> {
    let resp = crate::http::send_idempotent(|| http.get(url))
        .await
        .map_err(|e| AuthError::Network {
            what: format!("the {cloud} sign-in service"),
            detail: e.without_url().to_string(),
        })?;
    let status = resp.status();
    let text = resp.text().await.map_err(|e| AuthError::Network {
        what: "the sign-in service".into(),
        detail: e.to_string(),
    })?;
    if status.as_u16() == 400 || status.as_u16() == 404 {
        return Err(AuthError::UnknownTenant {
            tenant: tenant.to_string(),
            cloud: cloud.to_string(),
        });
    }
    if !status.is_success() {
        return Err(AuthError::Protocol(format!(
            "OpenID configuration at {url} answered HTTP {status}"
        )));
    }
    serde_json::from_str(&text).map_err(|e| {
        AuthError::Protocol(format!("OpenID configuration at {url} is not valid: {e}"))
    })
}
