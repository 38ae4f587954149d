//! SAML single sign-on facts the wizard hands over and checks (reference §8b step 5): the app's
//! federation metadata URL, Entra's identifier and endpoints, the signing certificate's
//! fingerprints, and a check that the live metadata carries the certificate Entra signs with.

mod response;

pub use response::{
    authn_request, redirect_url, verify_response, verify_xml, Assertion, AuthnRequest, Expected,
    ResponseError, MAX_RESPONSE_BYTES,
};

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
    #[error("the metadata names no entityID")]
    NoEntityId,
    #[error("a signing certificate in the metadata is not a certificate ({0})")]
    BadCertificate(String),
    #[error("the metadata has no IDPSSODescriptor: it does not describe an identity provider")]
    NoIdentityProvider,
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
    if root
        .attribute("entityID")
        .is_none_or(|e| e.trim().is_empty())
    {
        return Err(MetadataError::NoEntityId);
    }
    let idp = root
        .children()
        .find(|n| n.has_tag_name((MD, "IDPSSODescriptor")));
    if idp.is_none() {
        return Err(MetadataError::NoIdentityProvider);
    }
    let signing_certs: Vec<String> = idp
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
    for c in &signing_certs {
        let der = base64::engine::general_purpose::STANDARD
            .decode(c)
            .map_err(|e| MetadataError::BadCertificate(format!("not base64: {e}")))?;
        x509_parser::parse_x509_certificate(&der)
            .map_err(|e| MetadataError::BadCertificate(e.to_string()))?;
    }
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

/// What a service provider's own metadata says, as far as Entra's app needs it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct SpMetadata {
    pub entity_id: String,
    /// HTTP-POST Assertion Consumer Service URLs (Entra answers by POST only), the default first.
    pub reply_urls: Vec<String>,
    /// ACS URLs with other bindings, which Entra cannot use.
    pub skipped_acs: Vec<String>,
    pub logout_url: Option<String>,
    /// The service signs its AuthnRequests.
    pub signs_requests: bool,
}

/// Why SP metadata could not be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpMetadataError {
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    #[error("this is an identity provider's metadata (it has an IDPSSODescriptor), not the service's own: download the service provider (SP) metadata from the service's SSO settings")]
    IdentityProvider,
    #[error("the metadata has no SPSSODescriptor: it does not describe a SAML service provider")]
    NoServiceProvider,
    #[error("its Assertion Consumer Service URL cannot be used in Entra: {0}")]
    Acs(String),
    #[error(
        "the metadata describes {0} service providers: save the one for this service on its own"
    )]
    Several(usize),
    #[error("the metadata has no entityID")]
    NoEntityId,
    #[error("the metadata has no Assertion Consumer Service with the HTTP-POST binding, the only one Entra answers with{}", if .0.is_empty() { String::new() } else { format!(" (it has {})", .0.join(", ")) })]
    NoPostAcs(Vec<String>),
}

const POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";

/// Parses a service provider's metadata (an `EntityDescriptor`, or an `EntitiesDescriptor`
/// holding one SP): its Entity ID, its HTTP-POST ACS URLs (the `isDefault` one first, then by
/// `index`), its single logout URL and whether it signs requests.
pub fn parse_sp_metadata(xml: &str) -> Result<SpMetadata, SpMetadataError> {
    if xml.len() > MAX_METADATA_BYTES {
        return Err(MetadataError::TooLarge(MAX_METADATA_BYTES).into());
    }
    let doc = roxmltree::Document::parse(xml).map_err(|e| MetadataError::NotXml(e.to_string()))?;
    let root = doc.root_element();
    let entities: Vec<roxmltree::Node> = if root.has_tag_name((MD, "EntityDescriptor")) {
        vec![root]
    } else if root.has_tag_name((MD, "EntitiesDescriptor")) {
        root.descendants()
            .filter(|n| n.has_tag_name((MD, "EntityDescriptor")))
            .collect()
    } else {
        return Err(MetadataError::WrongRoot(root.tag_name().name().to_string()).into());
    };
    let sps: Vec<(roxmltree::Node, roxmltree::Node)> = entities
        .iter()
        .filter_map(|e| {
            e.children()
                .find(|n| n.has_tag_name((MD, "SPSSODescriptor")))
                .map(|sp| (*e, sp))
        })
        .collect();
    let (entity, sp) = match sps.as_slice() {
        [] if entities.iter().any(|e| {
            e.children()
                .any(|n| n.has_tag_name((MD, "IDPSSODescriptor")))
        }) =>
        {
            return Err(SpMetadataError::IdentityProvider)
        }
        [] => return Err(SpMetadataError::NoServiceProvider),
        [one] => *one,
        many => return Err(SpMetadataError::Several(many.len())),
    };
    let entity_id = entity
        .attribute("entityID")
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .ok_or(SpMetadataError::NoEntityId)?
        .to_string();
    let mut acs: Vec<(bool, u32, String)> = vec![];
    let mut skipped = vec![];
    for n in sp
        .children()
        .filter(|n| n.has_tag_name((MD, "AssertionConsumerService")))
    {
        let Some(location) = n.attribute("Location").map(str::trim) else {
            continue;
        };
        if n.attribute("Binding") == Some(POST) {
            crate::provider::check_redirect_uri(location)
                .map_err(|e| SpMetadataError::Acs(e.to_string()))?;
            let default = n
                .attribute("isDefault")
                .is_some_and(|d| d == "true" || d == "1");
            let index = n
                .attribute("index")
                .and_then(|i| i.parse().ok())
                .unwrap_or(u32::MAX);
            acs.push((!default, index, location.to_string()));
        } else {
            let binding = n
                .attribute("Binding")
                .and_then(|b| b.rsplit(':').next())
                .unwrap_or("no binding");
            skipped.push(format!("{location} ({binding})"));
        }
    }
    if acs.is_empty() {
        return Err(SpMetadataError::NoPostAcs(skipped));
    }
    acs.sort();
    let mut reply_urls: Vec<String> = vec![];
    for (_, _, u) in acs {
        if !reply_urls.contains(&u) {
            reply_urls.push(u);
        }
    }
    let logout_url = sp
        .children()
        .filter(|n| n.has_tag_name((MD, "SingleLogoutService")))
        .filter_map(|n| n.attribute("Location").map(|l| l.trim().to_string()))
        .next();
    Ok(SpMetadata {
        entity_id,
        reply_urls,
        skipped_acs: skipped,
        logout_url,
        signs_requests: sp
            .attribute("AuthnRequestsSigned")
            .is_some_and(|v| v == "true" || v == "1"),
    })
}

impl SpMetadata {
    /// The SAML inputs it fills: `entity_id`, `reply_url` (comma-separated, the default first)
    /// and `logout_url` when it has one.
    pub fn inputs(&self) -> std::collections::BTreeMap<String, String> {
        let mut m = std::collections::BTreeMap::new();
        m.insert("entity_id".to_string(), self.entity_id.clone());
        m.insert("reply_url".to_string(), self.reply_urls.join(","));
        if let Some(l) = &self.logout_url {
            m.insert("logout_url".to_string(), l.clone());
        }
        m
    }
}

/// Why SP metadata could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{0}")]
    Url(#[from] crate::endpoint::EndpointError),
    #[error("could not fetch it: {0}")]
    Http(String),
    #[error("the service answered HTTP {0}")]
    Status(u16),
    #[error("it is larger than {} bytes", MAX_METADATA_BYTES)]
    TooLarge,
}

/// Fetches SP metadata from an https URL (http only on this computer), at most
/// [`MAX_METADATA_BYTES`], without sending any credentials.
pub async fn fetch_sp_metadata(http: &reqwest::Client, url: &str) -> Result<String, FetchError> {
    let u = crate::endpoint::parse(url, crate::endpoint::Http::Loopback, true)?;
    let mut r = http
        .get(u)
        .send()
        .await
        .map_err(|e| FetchError::Http(e.to_string()))?;
    if !r.status().is_success() {
        return Err(FetchError::Status(r.status().as_u16()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = r
        .chunk()
        .await
        .map_err(|e| FetchError::Http(e.to_string()))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_METADATA_BYTES {
            return Err(FetchError::TooLarge);
        }
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// Why the service's SAML metadata could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    Fetch(#[from] FetchError),
    #[error("cannot read it: {0}")]
    Read(String),
    #[error(
        "it is larger than {} bytes; give the service's SP metadata file",
        MAX_METADATA_BYTES
    )]
    TooLarge,
    #[error("{0}")]
    Parse(#[from] SpMetadataError),
}

/// Where the service's own SAML metadata comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetadataSource {
    /// An http(s) URL (plain http only to this computer, like every fetch of the wizard's).
    Url(String),
    /// A local file the admin named (the CLI's `--sp-metadata FILE`) or picked in the desktop's
    /// file dialog — never a path the webview sends.
    File(std::path::PathBuf),
}

impl MetadataSource {
    /// What the admin typed: a URL, or a path to a local file. Network shares (`\\host\share`,
    /// `//host/share`: opening one sends the Windows sign-in's NTLM hash to that host) and
    /// device paths (`\\.\`, `\\?\`, `/dev/…`) are refused.
    pub fn parse(text: &str) -> Result<Self, ImportError> {
        let t = text.trim();
        if t.starts_with("https://") || t.starts_with("http://") {
            return Ok(Self::Url(t.to_string()));
        }
        if t.is_empty() {
            return Err(ImportError::Read("no file or URL was given".into()));
        }
        if t.starts_with("\\\\")
            || t.starts_with("//")
            || t.starts_with("\\/")
            || t.starts_with("/\\")
        {
            return Err(ImportError::Read(
                "it is a network path: copy the metadata file to this computer, or give its https:// URL".into(),
            ));
        }
        if t.starts_with("/dev/") || t.starts_with("/proc/") {
            return Err(ImportError::Read("it is a device, not a file".into()));
        }
        Ok(Self::File(std::path::PathBuf::from(t)))
    }
}

impl MetadataSource {
    /// A URL the desktop's page sent: anything else (a path, `file:`, a share) is refused, so
    /// a compromised page cannot make the app open local files or devices.
    pub fn url_only(text: &str) -> Result<Self, ImportError> {
        match Self::parse(text)? {
            u @ Self::Url(_) => Ok(u),
            Self::File(_) => Err(ImportError::Read(
                "it is not an https:// URL: type the metadata's URL, or use \"Choose a file…\" to pick a file".into(),
            )),
        }
    }
}

/// Reads the service's own SAML metadata (at most [`MAX_METADATA_BYTES`]) and parses it.
pub async fn import_sp_metadata(
    http: &reqwest::Client,
    from: &MetadataSource,
) -> Result<SpMetadata, ImportError> {
    let xml = match from {
        MetadataSource::Url(u) => fetch_sp_metadata(http, u).await?,
        MetadataSource::File(path) => crate::files::read_regular(path, MAX_METADATA_BYTES as u64)
            .map_err(|e| match e {
            crate::files::ReadError::TooLarge { .. } => ImportError::TooLarge,
            e => ImportError::Read(e.to_string()),
        })?,
    };
    Ok(parse_sp_metadata(&xml)?)
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

    fn sample(name: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/tests/data/sp-metadata/{name}",
            std::env::var("CARGO_MANIFEST_DIR")
                .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into())
        ))
        .unwrap()
    }

    #[test]
    fn sp_metadata_of_independent_libraries_gives_the_entity_id_and_post_acs() {
        let m = parse_sp_metadata(&sample("saml2-js.xml")).unwrap();
        assert_eq!(m.entity_id, "https://files.example.com/saml/metadata");
        assert_eq!(m.reply_urls, ["https://files.example.com/saml/acs"]);
        assert_eq!(
            m.logout_url.as_deref(),
            Some("https://files.example.com/saml/acs")
        );
        let m = parse_sp_metadata(&sample("pysaml2.xml")).unwrap();
        assert_eq!(m.entity_id, "https://wiki.example.org/shibboleth");
        // Entra answers by POST: the Artifact ACS is left out and said so.
        assert_eq!(
            m.reply_urls,
            ["https://wiki.example.org/Shibboleth.sso/SAML2/POST"]
        );
        assert_eq!(
            m.skipped_acs,
            ["https://wiki.example.org/Shibboleth.sso/SAML2/Artifact (HTTP-Artifact)"]
        );
        assert_eq!(
            m.logout_url.as_deref(),
            Some("https://wiki.example.org/Shibboleth.sso/SLO/Redirect")
        );
        assert!(m.signs_requests);
    }

    #[test]
    fn sp_metadata_puts_the_default_acs_first_and_refuses_what_is_not_an_sp() {
        // Written after the SAML 2.0 metadata schema: several POST ACS, the default not first,
        // inside an EntitiesDescriptor.
        let xml = r#"<EntitiesDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata"><EntityDescriptor entityID="urn:acme:files"><SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
<AssertionConsumerService index="0" Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://a.example/acs0"/>
<AssertionConsumerService index="3" isDefault="true" Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://a.example/acs3"/>
</SPSSODescriptor></EntityDescriptor></EntitiesDescriptor>"#;
        let m = parse_sp_metadata(xml).unwrap();
        assert_eq!(m.entity_id, "urn:acme:files");
        assert_eq!(
            m.reply_urls,
            ["https://a.example/acs3", "https://a.example/acs0"]
        );
        let idp = r#"<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://sts.windows.net/t/"><IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"/></EntityDescriptor>"#;
        assert_eq!(
            parse_sp_metadata(idp),
            Err(SpMetadataError::IdentityProvider)
        );
        let artifact_only = sample("pysaml2.xml").replace("bindings:HTTP-POST", "bindings:PAOS");
        let e = parse_sp_metadata(&artifact_only).unwrap_err();
        assert!(e.to_string().contains("HTTP-POST binding"), "{e}");
        assert!(matches!(
            parse_sp_metadata("<html/>"),
            Err(SpMetadataError::Metadata(MetadataError::WrongRoot(_)))
        ));
        let dtd = format!(
            "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>{}",
            sample("saml2-js.xml").trim_start_matches("<?xml version=\"1.0\"?>")
        );
        assert!(matches!(
            parse_sp_metadata(&dtd),
            Err(SpMetadataError::Metadata(MetadataError::NotXml(_)))
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
