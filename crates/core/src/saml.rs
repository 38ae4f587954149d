//! SAML single sign-on facts the wizard hands over and checks (reference §8b step 5): the app's
//! federation metadata URL, Entra's identifier and endpoints, the signing certificate's
//! fingerprints, and a check that the live metadata carries the certificate Entra signs with.

use base64::Engine;
use sha1::Digest;

use crate::cloud::Cloud;

/// SHA-1 of a certificate's DER, upper-case hex without separators: Graph's `thumbprint`.
pub fn thumbprint(der: &[u8]) -> String {
    hex_upper(sha1::Sha1::digest(der).as_slice(), "")
}

/// SHA-1 and SHA-256 fingerprints as `openssl x509 -fingerprint` prints them (`AB:CD:…`).
pub fn fingerprints(der: &[u8]) -> (String, String) {
    (
        hex_upper(sha1::Sha1::digest(der).as_slice(), ":"),
        hex_upper(sha2::Sha256::digest(der).as_slice(), ":"),
    )
}

fn hex_upper(bytes: &[u8], sep: &str) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(sep)
}

/// The certificate as a PEM file.
pub fn pem(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// The App Federation Metadata URL: certificate renewals reach a service that reads it.
pub fn metadata_url(cloud: &Cloud, tenant_id: &str, app_id: &str) -> String {
    format!(
        "{}/{tenant_id}/federationmetadata/2007-06/federationmetadata.xml?appid={app_id}",
        cloud.authority.as_str().trim_end_matches('/')
    )
}

/// Entra's SAML identifier (the IdP entity ID) for a tenant.
pub fn idp_entity_id(tenant_id: &str) -> String {
    format!("https://sts.windows.net/{tenant_id}/")
}

/// Entra's SAML sign-in and sign-out endpoint (both bindings).
pub fn sso_url(cloud: &Cloud, tenant_id: &str) -> String {
    format!(
        "{}/{tenant_id}/saml2",
        cloud.authority.as_str().trim_end_matches('/')
    )
}

/// What an IdP metadata document says, as far as a service uses it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IdpMetadata {
    pub entity_id: String,
    /// Signing certificates, base64 DER.
    pub signing_certs: Vec<String>,
    pub sso_urls: Vec<String>,
}

/// Why metadata could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error("the metadata is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the metadata is not XML: {0}")]
    NotXml(String),
    #[error("the metadata's root element is <{0}>, not <EntityDescriptor>")]
    WrongRoot(String),
}

/// Metadata larger than this is refused before parsing.
pub const MAX_METADATA_BYTES: usize = 1 << 20;

const MD: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
const DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";

/// Parses IdP metadata with a well-kept XML parser (roxmltree: no DTD entity expansion beyond
/// its limits, no network).
pub fn parse_idp_metadata(xml: &str) -> Result<IdpMetadata, MetadataError> {
    if xml.len() > MAX_METADATA_BYTES {
        return Err(MetadataError::TooLarge(MAX_METADATA_BYTES));
    }
    let doc = roxmltree::Document::parse(xml).map_err(|e| MetadataError::NotXml(e.to_string()))?;
    let root = doc.root_element();
    if !(root.tag_name().name() == "EntityDescriptor" && root.tag_name().namespace() == Some(MD)) {
        return Err(MetadataError::WrongRoot(root.tag_name().name().to_string()));
    }
    let idp = root
        .children()
        .find(|n| n.has_tag_name((MD, "IDPSSODescriptor")));
    let signing_certs = idp
        .into_iter()
        .flat_map(|d| d.children())
        .filter(|n| {
            n.has_tag_name((MD, "KeyDescriptor"))
                && n.attribute("use").is_none_or(|u| u == "signing")
        })
        .flat_map(|k| k.descendants())
        .filter(|n| n.has_tag_name((DSIG, "X509Certificate")))
        .filter_map(|n| n.text())
        .map(|t| t.split_whitespace().collect::<String>())
        .collect();
    let sso_urls = idp
        .into_iter()
        .flat_map(|d| d.children())
        .filter(|n| n.has_tag_name((MD, "SingleSignOnService")))
        .filter_map(|n| n.attribute("Location").map(str::to_string))
        .collect();
    Ok(IdpMetadata {
        entity_id: root.attribute("entityID").unwrap_or_default().to_string(),
        signing_certs,
        sso_urls,
    })
}

/// What is wrong with live metadata compared with the app, in words; empty when it is right.
pub fn metadata_problems(
    meta: &IdpMetadata,
    entity_id: &str,
    sso_url: &str,
    preferred_thumbprint: &str,
) -> Vec<String> {
    let mut out = vec![];
    if meta.entity_id != entity_id {
        out.push(format!(
            "its entityID is '{}', not Entra's '{entity_id}'",
            meta.entity_id
        ));
    }
    if !meta.sso_urls.iter().any(|u| u == sso_url) {
        out.push(format!("it has no sign-on URL {sso_url}"));
    }
    let carries = meta.signing_certs.iter().any(|c| {
        base64::engine::general_purpose::STANDARD
            .decode(c)
            .is_ok_and(|der| thumbprint(&der).eq_ignore_ascii_case(preferred_thumbprint))
    });
    if !carries {
        out.push(format!(
            "it does not carry the signing certificate {preferred_thumbprint} that Entra signs with"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_or_wrong_metadata_is_refused_with_a_reason() {
        let bomb = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;"><!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;"><!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;"><!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;"><!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;"><!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;"><!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">]><EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="&lol9;"/>"#;
        assert!(matches!(
            parse_idp_metadata(bomb),
            Err(MetadataError::NotXml(_))
        ));
        let huge = format!("<a>{}</a>", "x".repeat(MAX_METADATA_BYTES));
        assert_eq!(
            parse_idp_metadata(&huge),
            Err(MetadataError::TooLarge(MAX_METADATA_BYTES))
        );
        assert_eq!(
            parse_idp_metadata("<html><body>Sign in</body></html>"),
            Err(MetadataError::WrongRoot("html".into()))
        );
        assert!(matches!(
            parse_idp_metadata("{\"error\":1}"),
            Err(MetadataError::NotXml(_))
        ));
    }

    #[test]
    fn fingerprints_are_as_openssl_prints_them() {
        let (sha1, sha256) = fingerprints(b"abc");
        assert_eq!(
            sha1,
            "A9:99:3E:36:47:06:81:6A:BA:3E:25:71:78:50:C2:6C:9C:D0:D8:9D"
        );
        assert!(sha256.starts_with("BA:78:16:BF:8F:01:CF:EA"));
        assert_eq!(
            thumbprint(b"abc"),
            "A9993E364706816ABA3E25717850C26C9CD0D89D"
        );
    }
}
