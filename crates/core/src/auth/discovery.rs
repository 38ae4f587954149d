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

    /// Every endpoint the wizard sends a code, a refresh token or a secret to must be on the
    /// host it asked (the chosen cloud's authority, or the one the admin typed): a configuration
    /// naming another host is refused rather than followed.
    pub fn check_hosts(&self, asked: &str) -> Result<(), AuthError> {
        let origin = |u: &str| {
            url::Url::parse(u).ok().and_then(|u| {
                Some((
                    u.host_str()?.to_ascii_lowercase(),
                    u.port_or_known_default()?,
                ))
            })
        };
        let Some(expected) = origin(asked) else {
            return Err(AuthError::Protocol(format!("{asked} is not a URL")));
        };
        let named = [
            ("authorization", Some(self.authorization_endpoint.as_str())),
            ("token", Some(self.token_endpoint.as_str())),
            (
                "device authorization",
                self.device_authorization_endpoint.as_deref(),
            ),
            ("signing keys", Some(self.jwks_uri.as_str())),
        ];
        for (what, url) in named {
            let Some(url) = url else { continue };
            let secure = url::Url::parse(url).is_ok_and(|u| crate::endpoint::secure_transport(&u));
            if !secure {
                return Err(AuthError::Protocol(format!(
                    "the sign-in service's configuration names its {what} endpoint over an unencrypted connection ({}): Entra Setup sends codes and tokens only over https, so it stopped",
                    crate::redact::echo(&url.split('/').take(3).collect::<Vec<_>>().join("/"), 100)
                )));
            }
            if origin(url).as_ref() != Some(&expected) {
                return Err(AuthError::Protocol(format!(
                    "the sign-in service's configuration names its {what} endpoint on another host ({}), not on {}: Entra Setup sends codes and tokens only to the authority you chose, so it stopped",
                    url.split('/').take(3).collect::<Vec<_>>().join("/"),
                    expected.0
                )));
            }
        }
        Ok(())
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
            detail: crate::http::describe_network_error(&e, url),
        })?;
    let status = resp.status();
    let text = crate::http::read_text(resp, crate::http::SMALL_BODY_LIMIT)
        .await
        .map_err(|e| AuthError::Network {
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
    let d: Discovery = serde_json::from_str(&text).map_err(|e| {
        AuthError::Protocol(format!("OpenID configuration at {url} is not valid: {e}"))
    })?;
    d.check_hosts(url)?;
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(token: &str) -> Discovery {
        Discovery {
            issuer: "https://login.microsoftonline.com/{tenantid}/v2.0".into(),
            authorization_endpoint:
                "https://login.microsoftonline.com/common/oauth2/v2.0/authorize".into(),
            token_endpoint: token.into(),
            device_authorization_endpoint: Some(
                "https://login.microsoftonline.com/common/oauth2/v2.0/devicecode".into(),
            ),
            jwks_uri: "https://login.microsoftonline.com/common/discovery/v2.0/keys".into(),
        }
    }

    #[test]
    fn endpoints_on_another_host_are_refused() {
        let asked =
            "https://login.microsoftonline.com/contoso.com/v2.0/.well-known/openid-configuration";
        assert!(
            config("https://login.microsoftonline.com/common/oauth2/v2.0/token")
                .check_hosts(asked)
                .is_ok()
        );
        let e = config("https://tokens.attacker.example/steal")
            .check_hosts(asked)
            .unwrap_err();
        assert!(e.to_string().contains("tokens.attacker.example"), "{e}");
        // Another port on the same host is another server.
        assert!(config("https://login.microsoftonline.com:8443/t")
            .check_hosts(asked)
            .is_err());
        // The same host over plain http: a token in clear text.
        let e = config("http://login.microsoftonline.com:443/t")
            .check_hosts(asked)
            .unwrap_err();
        assert!(e.to_string().contains("unencrypted"), "{e}");
    }
}
