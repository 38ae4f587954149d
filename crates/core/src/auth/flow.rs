//! The interactive sign-in: discovery, then either the authorization code flow with PKCE (S256)
//! through the loopback listener, or the device code flow. All token requests go through the
//! `oauth2` crate.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, CsrfToken, DeviceAuthorizationUrl,
    DeviceCodeErrorResponse, DeviceCodeErrorResponseType, ExtraDeviceAuthorizationFields,
    ExtraTokenFields, PkceCodeChallenge, RedirectUrl, RequestTokenError, Scope,
    StandardErrorResponse, StandardRevocableToken, StandardTokenResponse, TokenResponse, TokenUrl,
};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::discovery::{discover, Discovery};
use super::{aadsts_code, AuthError, BrowserOpener, LoopbackListener};

/// How long the browser flow waits for the redirect.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// Microsoft returns an id token beside the access token.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct IdTokenField {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}
impl ExtraTokenFields for IdTokenField {}

/// Microsoft's device authorization response carries a ready-made `message`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct DeviceMessage {
    #[serde(default)]
    pub message: Option<String>,
}
impl ExtraDeviceAuthorizationFields for DeviceMessage {}

pub(crate) type MsTokenResponse = StandardTokenResponse<IdTokenField, BasicTokenType>;
pub(crate) type BaseClient = oauth2::Client<
    BasicErrorResponse,
    MsTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
>;

/// How the admin signs in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub enum Method {
    /// System browser, authorization code + PKCE, loopback redirect.
    #[default]
    Browser,
    /// Device code: enter a code at a URL on any device.
    DeviceCode,
}

/// Inputs of one interactive sign-in.
#[derive(Clone, Debug)]
pub struct SignInOptions {
    /// OpenID configuration URL of the tenant (see [`crate::cloud::Cloud::discovery_url`]).
    pub discovery_url: String,
    /// How the tenant and cloud are named in messages.
    pub tenant_label: String,
    pub cloud_name: String,
    pub client_id: String,
    /// Fully qualified scopes, including the OpenID Connect ones.
    pub scopes: Vec<String>,
    pub method: Method,
    pub timeout: Duration,
    /// Host written into the loopback redirect URI.
    pub redirect_host: String,
    /// Extra authorize parameters, e.g. `prompt=select_account`, `login_hint`.
    pub extra_params: Vec<(String, String)>,
}

/// Progress the UI shows while the admin signs in.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum SignInEvent {
    /// The tenant was found; endpoints are known.
    TenantFound { tenant_id: Option<String> },
    /// The browser was asked to open this URL.
    BrowserOpened { url: String },
    /// The admin must enter `user_code` at `verification_uri` before `expires_at`.
    DeviceCode {
        user_code: String,
        verification_uri: String,
        expires_at: DateTime<Utc>,
        message: Option<String>,
    },
    /// The code is being exchanged for tokens.
    Redeeming,
}

/// Who signed in, from the verified id token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdClaims {
    pub tid: String,
    pub oid: String,
    pub preferred_username: Option<String>,
    pub name: Option<String>,
}

/// The result of a sign-in. Tokens are redacting secrets.
pub struct TokenSet {
    pub access_token: SecretString,
    pub expires_at: DateTime<Utc>,
    pub refresh_token: Option<SecretString>,
    pub granted_scopes: Vec<String>,
    pub id: IdClaims,
    /// Every claim of the verified id token (the test sign-in shows them).
    pub id_token_claims: serde_json::Map<String, serde_json::Value>,
    pub discovery: Discovery,
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSet")
            .field("expires_at", &self.expires_at)
            .field("has_refresh_token", &self.refresh_token.is_some())
            .field("granted_scopes", &self.granted_scopes)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

pub(crate) fn base_client(client_id: &str) -> BaseClient {
    oauth2::Client::new(ClientId::new(client_id.to_string())).set_auth_type(AuthType::RequestBody)
}

fn url_err(what: &str, e: impl std::fmt::Display) -> AuthError {
    AuthError::Protocol(format!("the {what} URL is invalid: {e}"))
}

/// Maps a token-endpoint failure to a message the admin can act on.
pub(crate) fn map_token_error<
    RE: std::error::Error + 'static,
    T: oauth2::ErrorResponseType + AsRef<str> + std::fmt::Display + 'static,
>(
    e: RequestTokenError<RE, StandardErrorResponse<T>>,
) -> AuthError {
    match e {
        RequestTokenError::ServerResponse(r) => {
            let error = r.error().as_ref().to_string();
            let description = r.error_description().cloned();
            let aadsts = description.as_deref().and_then(aadsts_code);
            match (error.as_str(), aadsts) {
                (_, Some(65001)) | ("consent_required", _) | ("interaction_required", _) => {
                    AuthError::ConsentRequired {
                        scopes: description.unwrap_or(error),
                    }
                }
                ("invalid_grant", Some(700082 | 70008 | 50173 | 700084 | 50132 | 70043)) => {
                    AuthError::SessionExpired {
                        reason: format!("{error}, AADSTS{}", aadsts.unwrap_or_default()),
                    }
                }
                _ => AuthError::Server {
                    error,
                    description,
                    aadsts,
                },
            }
        }
        RequestTokenError::Request(err) => {
            let mut detail = err.to_string();
            let mut source = std::error::Error::source(&err);
            while let Some(s) = source {
                detail = format!("{detail}: {s}");
                source = s.source();
            }
            AuthError::Network {
                what: "the token endpoint".into(),
                detail,
            }
        }
        RequestTokenError::Parse(e, _) => {
            AuthError::Protocol(format!("unexpected token response: {e}"))
        }
        RequestTokenError::Other(s) => AuthError::Protocol(s),
    }
}

fn granted(resp: &MsTokenResponse, requested: &[String]) -> Vec<String> {
    match resp.scopes() {
        Some(s) => s.iter().map(|x| x.to_string()).collect(),
        None => requested.to_vec(),
    }
}

fn expiry(resp: &MsTokenResponse) -> DateTime<Utc> {
    Utc::now() + super::token_lifetime(resp.expires_in())
}

/// Verifies the id token's signature against the provider's JWKS, its audience, issuer and nonce.
async fn verify_id_token(
    http: &reqwest::Client,
    discovery: &Discovery,
    client_id: &str,
    token: &str,
    nonce: Option<&str>,
) -> Result<(IdClaims, serde_json::Map<String, serde_json::Value>), AuthError> {
    #[derive(Deserialize)]
    struct Raw {
        tid: Option<String>,
        oid: Option<String>,
        sub: String,
        iss: String,
        nonce: Option<String>,
        preferred_username: Option<String>,
        name: Option<String>,
        email: Option<String>,
    }
    let header =
        jsonwebtoken::decode_header(token).map_err(|e| AuthError::InvalidIdToken(e.to_string()))?;
    let network = |detail: String| AuthError::Network {
        what: "the signing keys".into(),
        detail,
    };
    let resp = crate::http::send_idempotent(|| http.get(&discovery.jwks_uri))
        .await
        .map_err(|e| network(e.to_string()))?;
    if !resp.status().is_success() {
        return Err(network(format!(
            "{} answered HTTP {}",
            discovery.jwks_uri,
            resp.status().as_u16()
        )));
    }
    let body = crate::http::read_body(resp, crate::http::SMALL_BODY_LIMIT)
        .await
        .map_err(|e| network(e.to_string()))?;
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_slice(&body).map_err(|e| {
        AuthError::InvalidIdToken(format!("the signing keys are not valid JSON: {e}"))
    })?;
    let jwk = match &header.kid {
        Some(kid) => jwks.find(kid),
        // Without a key id the token could have been signed by any published key; that is
        // only unambiguous when there is one.
        None if jwks.keys.len() == 1 => jwks.keys.first(),
        None => {
            return Err(AuthError::InvalidIdToken(
                "it names no signing key (kid) while the provider publishes several".into(),
            ))
        }
    }
    .ok_or_else(|| {
        AuthError::InvalidIdToken("it was signed with a key the provider does not publish".into())
    })?;
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk)
        .map_err(|e| AuthError::InvalidIdToken(e.to_string()))?;
    let allowed = [
        jsonwebtoken::Algorithm::RS256,
        jsonwebtoken::Algorithm::PS256,
        jsonwebtoken::Algorithm::ES256,
    ];
    if !allowed.contains(&header.alg) {
        return Err(AuthError::InvalidIdToken(format!(
            "unexpected signing algorithm {:?}",
            header.alg
        )));
    }
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&[client_id]);
    validation.set_required_spec_claims(&["exp", "aud", "iss"]);
    validation.leeway = 300;
    validation.validate_nbf = true;
    let all = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
        token,
        &key,
        &validation,
    )
    .map_err(|e| AuthError::InvalidIdToken(e.to_string()))?
    .claims;
    let raw: Raw = serde_json::from_value(serde_json::Value::Object(all.clone()))
        .map_err(|e| AuthError::InvalidIdToken(e.to_string()))?;
    let tid = raw
        .tid
        .clone()
        .or_else(|| discovery.tenant_id())
        .unwrap_or_default();
    let expected_iss = discovery.issuer_for(&tid);
    if raw.iss != expected_iss {
        return Err(AuthError::InvalidIdToken(format!(
            "issuer {} is not the tenant's issuer {expected_iss}",
            raw.iss
        )));
    }
    if let Some(n) = nonce {
        if raw.nonce.as_deref() != Some(n) {
            return Err(AuthError::InvalidIdToken(
                "the nonce does not match this sign-in".into(),
            ));
        }
    }
    Ok((
        IdClaims {
            tid,
            oid: raw.oid.unwrap_or(raw.sub),
            preferred_username: raw.preferred_username.or(raw.email),
            name: raw.name,
        },
        all,
    ))
}

async fn finish(
    http: &reqwest::Client,
    discovery: Discovery,
    opts: &SignInOptions,
    resp: MsTokenResponse,
    nonce: Option<&str>,
) -> Result<TokenSet, AuthError> {
    let id_token = resp.extra_fields().id_token.clone().ok_or_else(|| {
        AuthError::Protocol(
            "the token response has no id_token; was the openid scope requested?".into(),
        )
    })?;
    let (id, id_token_claims) =
        verify_id_token(http, &discovery, &opts.client_id, &id_token, nonce).await?;
    Ok(TokenSet {
        access_token: SecretString::from(resp.access_token().secret().clone()),
        expires_at: expiry(&resp),
        refresh_token: resp
            .refresh_token()
            .map(|r| SecretString::from(r.secret().clone())),
        granted_scopes: granted(&resp, &opts.scopes),
        id,
        id_token_claims,
        discovery,
    })
}

/// The tenant's OpenID configuration, unless the sign-in is cancelled first.
async fn discover_or_cancel(
    http: &reqwest::Client,
    opts: &SignInOptions,
    cancel: &CancellationToken,
) -> Result<Discovery, AuthError> {
    tokio::select! {
        d = discover(http, &opts.discovery_url, &opts.tenant_label, &opts.cloud_name) => d,
        () = cancel.cancelled() => Err(AuthError::Cancelled),
    }
}

/// Runs one interactive sign-in to completion, cancellation, or timeout.
pub async fn sign_in(
    http: &reqwest::Client,
    opts: &SignInOptions,
    opener: &dyn BrowserOpener,
    on_event: Arc<dyn Fn(SignInEvent) + Send + Sync>,
    cancel: &CancellationToken,
) -> Result<TokenSet, AuthError> {
    let discovery = discover_or_cancel(http, opts, cancel).await?;
    on_event(SignInEvent::TenantFound {
        tenant_id: discovery.tenant_id(),
    });
    match opts.method {
        Method::Browser => browser_flow(http, discovery, opts, opener, on_event, cancel).await,
        Method::DeviceCode => device_flow(http, discovery, opts, on_event, cancel).await,
    }
}

/// A browser sign-in answered on a listener the caller bound (and registered as a redirect URI
/// first: the test sign-in of a new app).
pub async fn sign_in_on(
    http: &reqwest::Client,
    opts: &SignInOptions,
    listener: LoopbackListener,
    opener: &dyn BrowserOpener,
    on_event: Arc<dyn Fn(SignInEvent) + Send + Sync>,
    cancel: &CancellationToken,
) -> Result<TokenSet, AuthError> {
    let discovery = discover_or_cancel(http, opts, cancel).await?;
    browser_flow_on(http, discovery, opts, listener, opener, on_event, cancel).await
}

async fn browser_flow(
    http: &reqwest::Client,
    discovery: Discovery,
    opts: &SignInOptions,
    opener: &dyn BrowserOpener,
    on_event: Arc<dyn Fn(SignInEvent) + Send + Sync>,
    cancel: &CancellationToken,
) -> Result<TokenSet, AuthError> {
    let listener = LoopbackListener::bind(&opts.redirect_host).await?;
    browser_flow_on(http, discovery, opts, listener, opener, on_event, cancel).await
}

async fn browser_flow_on(
    http: &reqwest::Client,
    discovery: Discovery,
    opts: &SignInOptions,
    listener: LoopbackListener,
    opener: &dyn BrowserOpener,
    on_event: Arc<dyn Fn(SignInEvent) + Send + Sync>,
    cancel: &CancellationToken,
) -> Result<TokenSet, AuthError> {
    let client = base_client(&opts.client_id)
        .set_auth_uri(
            AuthUrl::new(discovery.authorization_endpoint.clone())
                .map_err(|e| url_err("authorization", e))?,
        )
        .set_token_uri(
            TokenUrl::new(discovery.token_endpoint.clone()).map_err(|e| url_err("token", e))?,
        )
        .set_redirect_uri(
            RedirectUrl::new(listener.redirect_uri().to_string())
                .map_err(|e| url_err("redirect", e))?,
        );
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let nonce = CsrfToken::new_random();
    let mut request = client
        .authorize_url(CsrfToken::new_random)
        .add_scopes(opts.scopes.iter().cloned().map(Scope::new))
        .set_pkce_challenge(challenge)
        .add_extra_param("response_mode", "query")
        .add_extra_param("nonce", nonce.secret().clone());
    for (k, v) in &opts.extra_params {
        request = request.add_extra_param(k.clone(), v.clone());
    }
    let (url, state) = request.url();
    listener.expect_state(state.secret());
    tracing::info!(
        redirect = listener.redirect_uri(),
        "opening the browser for sign-in"
    );
    tokio::select! {
        r = opener.open(url.to_string()) => r?,
        () = cancel.cancelled() => return Err(AuthError::Cancelled),
    }
    on_event(SignInEvent::BrowserOpened {
        url: url.to_string(),
    });
    let code = listener.wait(opts.timeout, cancel).await?;
    on_event(SignInEvent::Redeeming);
    let resp = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&crate::http::oauth_client(http))
        .await
        .map_err(map_token_error)?;
    finish(http, discovery, opts, resp, Some(nonce.secret())).await
}

fn map_device_error<RE: std::error::Error + 'static>(
    e: RequestTokenError<RE, DeviceCodeErrorResponse>,
) -> AuthError {
    match e {
        RequestTokenError::ServerResponse(r) => match r.error() {
            DeviceCodeErrorResponseType::ExpiredToken => AuthError::DeviceCodeExpired,
            DeviceCodeErrorResponseType::AccessDenied => AuthError::DeviceCodeDeclined,
            DeviceCodeErrorResponseType::Basic(b) if b.as_ref() == "authorization_declined" => {
                AuthError::DeviceCodeDeclined
            }
            other => {
                let description = r.error_description().cloned();
                let aadsts = description.as_deref().and_then(aadsts_code);
                AuthError::Server {
                    error: other.as_ref().to_string(),
                    description,
                    aadsts,
                }
            }
        },
        RequestTokenError::Request(err) => AuthError::Network {
            what: "the token endpoint".into(),
            detail: err.to_string(),
        },
        RequestTokenError::Parse(e, _) => {
            AuthError::Protocol(format!("unexpected token response: {e}"))
        }
        RequestTokenError::Other(s) => AuthError::Protocol(s),
    }
}

async fn device_flow(
    http: &reqwest::Client,
    discovery: Discovery,
    opts: &SignInOptions,
    on_event: Arc<dyn Fn(SignInEvent) + Send + Sync>,
    cancel: &CancellationToken,
) -> Result<TokenSet, AuthError> {
    let device_url = discovery
        .device_authorization_endpoint
        .clone()
        .ok_or_else(|| {
            AuthError::Protocol(format!(
                "the {} sign-in service does not offer device-code sign-in",
                opts.cloud_name
            ))
        })?;
    let client = base_client(&opts.client_id)
        .set_token_uri(
            TokenUrl::new(discovery.token_endpoint.clone()).map_err(|e| url_err("token", e))?,
        )
        .set_device_authorization_url(
            DeviceAuthorizationUrl::new(device_url).map_err(|e| url_err("device", e))?,
        );
    let patient = crate::http::oauth_client(http);
    let details: oauth2::DeviceAuthorizationResponse<DeviceMessage> = tokio::select! {
        r = client.exchange_device_code().add_scopes(opts.scopes.iter().cloned().map(Scope::new)).request_async(&patient) => r.map_err(map_token_error)?,
        () = cancel.cancelled() => return Err(AuthError::Cancelled),
    };
    // A device code lives 15 minutes at Microsoft; an answer claiming more is held to an hour.
    let lifetime = details.expires_in().min(Duration::from_secs(3600));
    on_event(SignInEvent::DeviceCode {
        user_code: details.user_code().secret().clone(),
        verification_uri: details.verification_uri().to_string(),
        expires_at: Utc::now()
            + chrono::Duration::from_std(lifetime)
                .unwrap_or_else(|_| chrono::Duration::minutes(15)),
        message: details.extra_fields().message.clone(),
    });
    let resp = tokio::select! {
        r = client.exchange_device_access_token(&details).request_async(&patient, tokio::time::sleep, Some(lifetime)) => r.map_err(map_device_error)?,
        () = cancel.cancelled() => return Err(AuthError::Cancelled),
    };
    on_event(SignInEvent::Redeeming);
    finish(http, discovery, opts, resp, None).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use base64::Engine;

    /// An ES256 key and its JWK.
    fn key(kid: &str) -> (jsonwebtoken::EncodingKey, serde_json::Value) {
        let pair = rcgen::KeyPair::generate().unwrap();
        let raw = pair.public_key_raw();
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let jwk = serde_json::json!({"kty": "EC", "crv": "P-256", "use": "sig", "kid": kid, "x": b64(&raw[1..33]), "y": b64(&raw[33..65])});
        let enc = jsonwebtoken::EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap();
        (enc, jwk)
    }

    /// Serves `body` with `status` as the key set; returns its discovery.
    async fn keys_at(status: u16, body: String) -> Discovery {
        let app = axum::Router::new().route(
            "/keys",
            axum::routing::get(move || {
                let body = body.clone();
                async move { (axum::http::StatusCode::from_u16(status).unwrap(), body) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Discovery {
            issuer: format!("{base}/tid/v2.0"),
            authorization_endpoint: format!("{base}/authorize"),
            token_endpoint: format!("{base}/token"),
            device_authorization_endpoint: None,
            jwks_uri: format!("{base}/keys"),
        }
    }

    fn token(enc: &jsonwebtoken::EncodingKey, kid: Option<&str>, iss: &str, nbf: i64) -> String {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = kid.map(str::to_string);
        let now = Utc::now().timestamp();
        let claims = serde_json::json!({"aud": "client", "iss": iss, "sub": "s", "oid": "o", "tid": "tid", "exp": now + 3600, "iat": now, "nbf": nbf});
        jsonwebtoken::encode(&header, &claims, enc).unwrap()
    }

    /// Item 8 of the hardening issue: the key set's status is checked and its size capped, a
    /// token naming no key is refused when several are published, and `nbf` is enforced.
    #[tokio::test]
    async fn id_tokens_are_checked_against_a_sound_key_set() {
        let http = crate::http::client();
        let (enc, jwk) = key("k1");
        let (_, other) = key("k2");
        let now = Utc::now().timestamp();
        let verify = |d: Discovery, t: String| {
            let http = http.clone();
            async move { verify_id_token(&http, &d, "client", &t, None).await }
        };

        // The control: a sound token against its key set.
        let d = keys_at(200, serde_json::json!({"keys": [jwk.clone()]}).to_string()).await;
        let t = token(&enc, Some("k1"), &d.issuer, now);
        assert_eq!(verify(d, t).await.unwrap().0.oid, "o");

        // A key set answered with an error status is not read as keys.
        let d = keys_at(500, serde_json::json!({"keys": [jwk.clone()]}).to_string()).await;
        let t = token(&enc, Some("k1"), &d.issuer, now);
        let e = verify(d, t).await.unwrap_err().to_string();
        assert!(e.contains("HTTP 500"), "{e}");

        // One that never ends is cut off.
        let huge = format!("{{\"keys\": [], \"pad\": \"{}\"}}", "x".repeat(2 << 20));
        let d = keys_at(200, huge).await;
        let t = token(&enc, Some("k1"), &d.issuer, now);
        let e = verify(d, t).await.unwrap_err().to_string();
        assert!(e.contains("larger than"), "{e}");

        // No kid, several keys: refused even though the first would verify it.
        let d = keys_at(
            200,
            serde_json::json!({"keys": [jwk.clone(), other]}).to_string(),
        )
        .await;
        let t = token(&enc, None, &d.issuer, now);
        let e = verify(d, t).await.unwrap_err().to_string();
        assert!(e.contains("names no signing key"), "{e}");

        // Not valid before an hour from now.
        let d = keys_at(200, serde_json::json!({"keys": [jwk]}).to_string()).await;
        let t = token(&enc, Some("k1"), &d.issuer, now + 3600);
        let e = verify(d, t).await.unwrap_err().to_string();
        assert!(
            e.contains("ImmatureSignature") || e.contains("not yet valid"),
            "{e}"
        );
    }
}
