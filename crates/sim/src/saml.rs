//! SAML single sign-on on enterprise apps (reference §8b): token-signing certificates, the rules
//! Entra applies to identifier URIs (Entity IDs), and the app's federation metadata.
//!
//! Certificates are real self-signed RSA-2048 X.509 certificates, as Entra's are (the key from
//! the `rsa` crate, the certificate from rcgen); the simulator signs SAML responses with them
//! (RSA-SHA256, Entra's default).

use axum::http::StatusCode;
use base64::Engine;
use chrono::{DateTime, Datelike, Duration, Utc};
use serde_json::{json, Value};
use sha1::Digest;

use crate::directory::Directory;
use crate::graph::{GraphErr, Req};

type Out = Result<(StatusCode, Option<Value>), GraphErr>;

/// A signing certificate's private half, kept so the simulator can sign SAML responses.
#[derive(Clone, Debug)]
pub struct SigningKey {
    pub sp_id: String,
    /// SHA-1 of the certificate's DER, upper-case hex (Graph's `thumbprint`).
    pub thumbprint: String,
    pub cert_der: Vec<u8>,
    pub key_pem: String,
}

fn bad(message: impl Into<String>) -> GraphErr {
    GraphErr::new(StatusCode::BAD_REQUEST, "Request_BadRequest", message)
}

/// SHA-1 of `der`, upper-case hex: the thumbprint Graph wants.
pub fn thumbprint(der: &[u8]) -> String {
    sha1::Sha1::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

fn iso(d: DateTime<Utc>) -> String {
    d.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `POST /servicePrincipals/{id}/addTokenSigningCertificate` (reference §8b step 3): makes a
/// self-signed certificate named `CN=…`, valid until `endDateTime` (at most 3 years, default 3),
/// and adds its Sign and Verify key credentials to the service principal. New credentials stay
/// out of reads for a while (Entra's "a new signing key can take minutes to show").
pub fn add_token_signing_certificate(
    dir: &mut Directory,
    req: &Req<'_>,
    i: usize,
    faults: &crate::Faults,
) -> Out {
    let body = req.body.clone().unwrap_or(Value::Null);
    let name = body["displayName"]
        .as_str()
        .unwrap_or("")
        .trim()
        .to_string();
    let Some(cn) = name.strip_prefix("CN=").filter(|c| !c.trim().is_empty()) else {
        return Err(bad(
            "The displayName of a token signing certificate must start with 'CN='.",
        ));
    };
    let start = Utc::now();
    let end = match body["endDateTime"].as_str() {
        Some(e) => DateTime::parse_from_rfc3339(e)
            .map_err(|_| bad(format!("Invalid endDateTime '{e}'.")))?
            .with_timezone(&Utc),
        None => start + Duration::days(3 * 365),
    };
    if end <= start {
        return Err(bad("endDateTime must be in the future."));
    }
    if end > start + Duration::days(3 * 365 + 1) {
        return Err(bad(
            "The token signing certificate can be valid for at most 3 years.",
        ));
    }
    let (cert_der, key_pem) = make_certificate(cn, start, end).map_err(|e| {
        GraphErr::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            format!("Could not make the certificate: {e}"),
        )
    })?;
    let thumb = thumbprint(&cert_der);
    let custom =
        base64::engine::general_purpose::STANDARD.encode(sha1::Sha1::digest(&cert_der).as_slice());
    let key_b64 = base64::engine::general_purpose::STANDARD.encode(&cert_der);
    let sp_id = dir.service_principals[i]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let verify_id = uuid::Uuid::new_v4().to_string();
    let sign_id = uuid::Uuid::new_v4().to_string();
    let credential = |key_id: &str, usage: &str| {
        json!({
            "customKeyIdentifier": custom,
            "displayName": name,
            "endDateTime": iso(end),
            "key": null,
            "keyId": key_id,
            "startDateTime": iso(start),
            "type": "AsymmetricX509Cert",
            "usage": usage,
        })
    };
    let sp = &mut dir.service_principals[i];
    if !sp["keyCredentials"].is_array() {
        sp["keyCredentials"] = json!([]);
    }
    if let Some(creds) = sp["keyCredentials"].as_array_mut() {
        creds.push(credential(&sign_id, "Sign"));
        let mut verify = credential(&verify_id, "Verify");
        // Reads of the service principal return the public certificate of Verify keys.
        verify["key"] = json!(key_b64);
        creds.push(verify);
    }
    // Entra also adds a password credential with the same customKeyIdentifier (the private
    // key's protection); removing a certificate removes all three.
    let password_id = uuid::Uuid::new_v4().to_string();
    if !sp["passwordCredentials"].is_array() {
        sp["passwordCredentials"] = json!([]);
    }
    if let Some(creds) = sp["passwordCredentials"].as_array_mut() {
        creds.push(json!({
            "customKeyIdentifier": custom,
            "displayName": name,
            "endDateTime": iso(end),
            "hint": null,
            "keyId": password_id,
            "secretText": null,
            "startDateTime": iso(start),
        }));
    }
    dir.hide(&[&verify_id, &sign_id], faults);
    dir.signing_keys.push(SigningKey {
        sp_id,
        thumbprint: thumb.clone(),
        cert_der,
        key_pem,
    });
    Ok((
        StatusCode::OK,
        Some(json!({
            "@odata.context": req.context("microsoft.graph.selfSignedCertificate"),
            "customKeyIdentifier": custom,
            "displayName": name,
            "endDateTime": iso(end),
            "key": key_b64,
            "keyId": verify_id,
            "startDateTime": iso(start),
            "thumbprint": thumb,
            "type": "AsymmetricX509Cert",
            "usage": "Verify",
        })),
    ))
}

fn make_certificate(
    cn: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<(Vec<u8>, String), rcgen::Error> {
    let key = rsa_key_pair()?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn.trim());
    let ymd = |d: DateTime<Utc>| {
        rcgen::date_time_ymd(
            d.year(),
            u8::try_from(d.month()).unwrap_or(1),
            u8::try_from(d.day()).unwrap_or(1),
        )
    };
    params.not_before = ymd(start - Duration::days(1));
    params.not_after = ymd(end);
    let cert = params.self_signed(&key)?;
    Ok((cert.der().to_vec(), key.serialize_pem()))
}

/// A new RSA-2048 key pair, PKCS#8.
fn rsa_key_pair() -> Result<rcgen::KeyPair, rcgen::Error> {
    use rsa::pkcs8::EncodePrivateKey;
    let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)
        .map_err(|_| rcgen::Error::KeyGenerationUnavailable)?;
    let pem = key
        .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
        .map_err(|_| rcgen::Error::KeyGenerationUnavailable)?;
    rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(&pem, &rcgen::PKCS_RSA_SHA256)
}

/// A `keyCredentials` / `passwordCredentials` list in a service principal PATCH replaces the
/// list: credentials left out are removed. Each one sent must name a credential the service
/// principal has (by keyId; new keys come from addTokenSigningCertificate here), and the active
/// signing certificate cannot be left out.
fn check_credentials_patch(
    dir: &Directory,
    i: usize,
    body: &serde_json::Map<String, Value>,
    property: &str,
) -> Result<(), GraphErr> {
    let Some(list) = body.get(property) else {
        return Ok(());
    };
    let Some(list) = list.as_array() else {
        return Err(bad(format!("Property '{property}' must be a collection.")));
    };
    let sp = &dir.service_principals[i];
    let have: Vec<&Value> = sp[property]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    for c in list {
        let id = c["keyId"].as_str().unwrap_or_default();
        if !have.iter().any(|h| h["keyId"] == id) {
            return Err(bad(format!(
                "Invalid value specified for property '{property}' of resource 'ServicePrincipal': a credential with keyId '{id}' does not exist; add certificates with addTokenSigningCertificate."
            )));
        }
    }
    if property == "keyCredentials" {
        let preferred = sp["preferredTokenSigningKeyThumbprint"]
            .as_str()
            .unwrap_or_default();
        let active = dir.signing_keys.iter().find(|k| {
            k.sp_id == sp["id"].as_str().unwrap_or_default()
                && k.thumbprint.eq_ignore_ascii_case(preferred)
        });
        if let Some(k) = active {
            let custom = base64::engine::general_purpose::STANDARD
                .encode(sha1::Sha1::digest(&k.cert_der).as_slice());
            // Every entry sent names a stored credential (checked above): judge by what is stored.
            let kept = list.iter().any(|c| {
                have.iter().any(|h| {
                    h["keyId"] == c["keyId"] && h["customKeyIdentifier"] == custom.as_str()
                })
            });
            if !kept {
                return Err(bad(format!(
                    "The certificate with thumbprint '{preferred}' is the active signing certificate of this service principal; make another certificate active before removing it."
                )));
            }
        }
    }
    Ok(())
}

/// After a PATCH that replaced `keyCredentials`: the sent entries keep their stored details
/// (the public key, which a PATCH may leave out), and signing keys whose credentials are gone
/// are forgotten.
pub fn apply_credentials_patch(dir: &mut Directory, i: usize, before: &Value) {
    for property in ["keyCredentials", "passwordCredentials"] {
        let Some(list) = dir.service_principals[i][property].as_array().cloned() else {
            continue;
        };
        let restored: Vec<Value> = list
            .iter()
            .map(|c| {
                before[property]
                    .as_array()
                    .and_then(|a| a.iter().find(|h| h["keyId"] == c["keyId"]))
                    .cloned()
                    .unwrap_or_else(|| c.clone())
            })
            .collect();
        dir.service_principals[i][property] = Value::Array(restored);
    }
    let sp_id = dir.service_principals[i]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let customs: Vec<String> = dir.service_principals[i]["keyCredentials"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| k["customKeyIdentifier"].as_str().map(str::to_string))
        .collect();
    dir.signing_keys.retain(|k| {
        k.sp_id != sp_id || {
            let custom = base64::engine::general_purpose::STANDARD
                .encode(sha1::Sha1::digest(&k.cert_der).as_slice());
            customs.contains(&custom)
        }
    });
}

/// What a `PATCH /servicePrincipals/{id}` body may not do: prefer a signing key the service
/// principal does not have, or drop credentials it cannot.
pub fn check_sp_patch(
    dir: &Directory,
    i: usize,
    body: &serde_json::Map<String, Value>,
) -> Result<(), GraphErr> {
    if let Some(t) = body
        .get("preferredTokenSigningKeyThumbprint")
        .and_then(Value::as_str)
    {
        let sp_id = dir.service_principals[i]["id"].as_str().unwrap_or_default();
        if !dir
            .signing_keys
            .iter()
            .any(|k| k.sp_id == sp_id && k.thumbprint.eq_ignore_ascii_case(t))
        {
            return Err(bad(format!(
                "The value '{t}' of property 'preferredTokenSigningKeyThumbprint' does not match a token signing certificate of this service principal."
            )));
        }
    }
    check_credentials_patch(dir, i, body, "keyCredentials")?;
    check_credentials_patch(dir, i, body, "passwordCredentials")?;
    if let Some(mode) = body.get("preferredSingleSignOnMode") {
        let ok = mode.is_null()
            || ["saml", "password", "oidc", "notSupported"]
                .contains(&mode.as_str().unwrap_or_default());
        if !ok {
            return Err(bad(format!(
                "Invalid value {mode} for property 'preferredSingleSignOnMode'."
            )));
        }
    }
    Ok(())
}

/// Entra's rules for `identifierUris` in a `PATCH /applications/{id}` body (reference §8b, §12):
/// unique in the tenant, no trailing '/', and, when the tenant enforces secure identifier URIs
/// (`Faults::identifier_uri_policy`), an https URI only on a SAML app (its service principal's
/// `preferredSingleSignOnMode` is `saml`) — other apps may use `api://{appId}` forms only.
pub fn check_identifier_uris(
    dir: &Directory,
    i: usize,
    body: &serde_json::Map<String, Value>,
    faults: &crate::Faults,
) -> Result<(), GraphErr> {
    let Some(uris) = body.get("identifierUris").and_then(Value::as_array) else {
        return Ok(());
    };
    let app = &dir.applications[i];
    let app_id = app["appId"].as_str().unwrap_or_default();
    for u in uris.iter().filter_map(Value::as_str) {
        if u.ends_with('/') {
            return Err(bad(format!(
                "Values of identifierUris property cannot end with '/': '{u}'."
            )));
        }
        let taken = dir.applications.iter().enumerate().any(|(j, other)| {
            j != i
                && other["identifierUris"].as_array().is_some_and(|a| {
                    a.iter()
                        .any(|x| x.as_str().is_some_and(|x| x.eq_ignore_ascii_case(u)))
                })
        });
        if taken {
            return Err(bad(
                "Another object with the same value for property identifierUris already exists.",
            ));
        }
        let saml = dir
            .service_principals
            .iter()
            .find(|s| s["appId"] == app_id)
            .is_some_and(|s| s["preferredSingleSignOnMode"] == "saml");
        let api_form = u.eq_ignore_ascii_case(&format!("api://{app_id}"))
            || u.to_ascii_lowercase()
                .starts_with(&format!("api://{app_id}/"));
        if faults.identifier_uri_policy && !saml && !api_form {
            return Err(GraphErr::new(
                StatusCode::BAD_REQUEST,
                "HostNameNotOnVerifiedDomain",
                format!("Values of identifierUris property must use a verified domain of the organization or its subdomain: '{u}'. Your organization enforces secure identifier URIs; SAML applications are exempt."),
            ));
        }
    }
    Ok(())
}

/// The app's federation metadata (`/{tenant}/federationmetadata/2007-06/federationmetadata.xml
/// ?appid=…`): Entra's entity ID for the tenant, the preferred signing certificate and the SAML
/// endpoints. `None` when no app has that appId.
pub fn federation_metadata(
    dir: &Directory,
    base: &str,
    tenant_id: &str,
    app_id: &str,
) -> Option<String> {
    let sp = dir.service_principals.iter().find(|s| {
        s["appId"]
            .as_str()
            .is_some_and(|a| a.eq_ignore_ascii_case(app_id))
    })?;
    let sp_id = sp["id"].as_str().unwrap_or_default();
    let preferred = sp["preferredTokenSigningKeyThumbprint"]
        .as_str()
        .unwrap_or_default();
    let cert = dir
        .signing_keys
        .iter()
        .find(|k| k.sp_id == sp_id && k.thumbprint.eq_ignore_ascii_case(preferred))
        .map(|k| base64::engine::general_purpose::STANDARD.encode(&k.cert_der));
    let key = cert.map_or_else(String::new, |c| {
        format!(
            "<KeyDescriptor use=\"signing\"><KeyInfo xmlns=\"http://www.w3.org/2000/09/xmldsig#\"><X509Data><X509Certificate>{c}</X509Certificate></X509Data></KeyInfo></KeyDescriptor>"
        )
    });
    let saml2 = format!("{base}/{tenant_id}/saml2");
    let redirect = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
    let post = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";
    Some(format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\
<EntityDescriptor ID=\"_{id}\" entityID=\"https://sts.windows.net/{tenant_id}/\" xmlns=\"urn:oasis:names:tc:SAML:2.0:metadata\">\
<IDPSSODescriptor protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\">{key}\
<SingleLogoutService Binding=\"{redirect}\" Location=\"{saml2}\" />\
<NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</NameIDFormat>\
<NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</NameIDFormat>\
<NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:transient</NameIDFormat>\
<SingleSignOnService Binding=\"{redirect}\" Location=\"{saml2}\" />\
<SingleSignOnService Binding=\"{post}\" Location=\"{saml2}\" />\
</IDPSSODescriptor></EntityDescriptor>",
        id = uuid::Uuid::new_v4()
    ))
}
