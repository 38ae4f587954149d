//! RS256 tokens shaped like Microsoft's: v1.0 access tokens for Graph (`scp`, `wids`, `tid`,
//! `oid`) and v2.0 id tokens. The signing key is a fixed simulator key; its public half is served
//! as JWKS, so a client can verify what it receives.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

const PRIVATE_PEM: &str = include_str!("../keys/sim-signing.pem");
const MODULUS_B64URL: &str = include_str!("../keys/sim-signing.n");
pub const KEY_ID: &str = "sim-key-1";

pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub aud: String,
    pub iss: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub appid: String,
    pub tid: String,
    pub oid: String,
    #[serde(default)]
    pub upn: String,
    #[serde(default)]
    pub name: String,
    /// Delegated scopes (user tokens).
    #[serde(default)]
    pub scp: String,
    /// Application permissions (app-only tokens).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    #[serde(default)]
    pub wids: Vec<String>,
    pub ver: String,
    /// `user` or `app`.
    pub idtyp: String,
}

impl Keys {
    #[allow(clippy::expect_used)]
    pub fn load() -> Self {
        let encoding = EncodingKey::from_rsa_pem(PRIVATE_PEM.as_bytes())
            .expect("the bundled simulator key is valid");
        let decoding = DecodingKey::from_rsa_components(MODULUS_B64URL.trim(), "AQAB")
            .expect("the bundled modulus is valid");
        Self { encoding, decoding }
    }

    pub fn jwks(&self) -> Value {
        json!({"keys": [{
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": KEY_ID, "x5t": KEY_ID,
            "n": MODULUS_B64URL.trim(), "e": "AQAB",
        }]})
    }

    pub fn sign<T: Serialize>(&self, claims: &T) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(KEY_ID.to_string());
        header.typ = Some("JWT".into());
        // Signing with a valid RSA key cannot fail; an empty string would fail the client loudly.
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap_or_default()
    }

    /// Verifies a Graph access token: signature, expiry and audience.
    pub fn verify_access(&self, token: &str, audience: &str) -> Result<AccessClaims, String> {
        let mut v = Validation::new(Algorithm::RS256);
        v.set_audience(&[audience]);
        v.leeway = 0;
        jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &v)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    "Lifetime validation failed, the token is expired.".to_string()
                }
                jsonwebtoken::errors::ErrorKind::InvalidAudience => "Invalid audience.".to_string(),
                _ => "Access token validation failure. Invalid audience or signature.".to_string(),
            })
    }
}
