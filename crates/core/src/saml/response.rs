//! The test sign-in's SAML half (issue: "Test sign-in with a claim inspector"): an SP-initiated
//! AuthnRequest for the HTTP-Redirect binding, and the checks a careful service makes of the
//! SAMLResponse Entra POSTs back — status, destination, InResponseTo, issuer, audience, time
//! window, and an XML signature by one of the app's certificates. The signature is verified by
//! xml-sec (canonicalisation, digests, the signed element's identity against wrapping); this
//! module only reads the verified assertion.

use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use std::io::Write;

const PROTOCOL: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
const ASSERTION: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
/// A SAMLResponse larger than this is refused before decoding (Entra's are a few kB; a very
/// large group list stays far below it).
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// Clock difference tolerated on NotBefore / NotOnOrAfter.
const SKEW_MINUTES: i64 = 5;

/// An AuthnRequest ready for the HTTP-Redirect binding.
#[derive(Clone, Debug)]
pub struct AuthnRequest {
    /// The request's ID; the response must answer it (InResponseTo).
    pub id: String,
    pub xml: String,
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An AuthnRequest from `entity_id` asking Entra (`destination`, its SAML endpoint) to POST the
/// answer to `acs`.
pub fn authn_request(
    entity_id: &str,
    acs: &str,
    destination: &str,
    now: DateTime<Utc>,
) -> AuthnRequest {
    // An xs:ID must not start with a digit.
    let id = format!("_{}", uuid::Uuid::new_v4().simple());
    let xml = format!(
        "<samlp:AuthnRequest xmlns:samlp=\"{PROTOCOL}\" xmlns:saml=\"{ASSERTION}\" ID=\"{id}\" Version=\"2.0\" IssueInstant=\"{instant}\" Destination=\"{destination}\" AssertionConsumerServiceURL=\"{acs}\" ProtocolBinding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST\"><saml:Issuer>{issuer}</saml:Issuer><samlp:NameIDPolicy AllowCreate=\"true\"/></samlp:AuthnRequest>",
        instant = now.format("%Y-%m-%dT%H:%M:%SZ"),
        destination = xml_escape(destination),
        acs = xml_escape(acs),
        issuer = xml_escape(entity_id),
    );
    AuthnRequest { id, xml }
}

/// The sign-in URL for the HTTP-Redirect binding: DEFLATE, Base64, URL-encoded (SAML bindings
/// §3.4.4.1), with `relay_state` to tie the answer to this attempt.
pub fn redirect_url(
    sso_url: &str,
    request: &AuthnRequest,
    relay_state: &str,
) -> Result<String, url::ParseError> {
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = enc.write_all(request.xml.as_bytes());
    let deflated = enc.finish().unwrap_or_default();
    let b64 = base64::engine::general_purpose::STANDARD.encode(deflated);
    let mut url = url::Url::parse(sso_url)?;
    url.query_pairs_mut()
        .append_pair("SAMLRequest", &b64)
        .append_pair("RelayState", relay_state);
    Ok(url.into())
}

/// What the response must match.
pub struct Expected<'a> {
    pub request_id: &'a str,
    /// The Assertion Consumer Service URL the request named.
    pub acs: &'a str,
    /// The app's Entity ID (the assertion's audience).
    pub audience: &'a str,
    /// Entra's identifier for the tenant (`https://sts.windows.net/{tenant}/`).
    pub idp_entity_id: &'a str,
    /// The app's signing certificates (DER) the signature may come from.
    pub certificates: &'a [Vec<u8>],
    pub now: DateTime<Utc>,
}

/// A verified assertion: what the service will read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assertion {
    pub name_id: String,
    pub name_id_format: Option<String>,
    /// Every attribute, in document order, with all its values.
    pub attributes: Vec<(String, Vec<String>)>,
    /// SHA-1 thumbprint of the certificate whose signature was verified.
    pub signed_by: String,
    /// `Assertion` or `Response`: which element the signature covers.
    pub signed_element: &'static str,
}

/// Why a SAMLResponse was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("the SAMLResponse is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the SAMLResponse is not Base64")]
    NotBase64,
    #[error("the SAMLResponse is not XML: {0}")]
    NotXml(String),
    #[error("the SAMLResponse's root element is <{0}>, not a SAML <Response>")]
    WrongRoot(String),
    #[error("Entra refused the sign-in: {0}")]
    Refused(String),
    #[error("the response must carry exactly one assertion (it has {0})")]
    AssertionCount(usize),
    #[error("the assertion is encrypted; the test sign-in reads plain assertions (turn off token encryption for the test, or test at the service)")]
    Encrypted,
    #[error("the {0} does not match: expected {1}, got {2}")]
    Mismatch(&'static str, String, String),
    #[error("the assertion is not valid now (valid {0} to {1}); check this computer's clock")]
    OutsideValidity(String, String),
    #[error("no valid signature by the app's signing certificate covers the assertion ({0})")]
    Signature(String),
    #[error("the app has no signing certificate to check the signature with")]
    NoCertificate,
}

fn child<'a, 'i>(
    n: roxmltree::Node<'a, 'i>,
    ns: &str,
    name: &str,
) -> Option<roxmltree::Node<'a, 'i>> {
    n.children().find(|c| c.has_tag_name((ns, name)))
}

/// An element's whole text, as the signature covers it: every text node inside it, comments
/// dropped (canonicalisation without comments). Reading only the first text node would show
/// `alice@contoso.com` for `alice@contoso.com<!---->.evil.example`, which the signature
/// covers as `alice@contoso.com.evil.example`.
fn text(n: Option<roxmltree::Node<'_, '_>>) -> String {
    n.map(|n| {
        n.descendants()
            .filter(roxmltree::Node::is_text)
            .filter_map(|t| t.text())
            .collect::<String>()
    })
    .map(|t| t.trim().to_string())
    .unwrap_or_default()
}

fn check(what: &'static str, expected: &str, got: &str) -> Result<(), ResponseError> {
    if expected == got {
        Ok(())
    } else {
        Err(ResponseError::Mismatch(
            what,
            expected.to_string(),
            got.to_string(),
        ))
    }
}

/// Decodes, checks and verifies a POSTed SAMLResponse (Base64).
pub fn verify_response(b64: &str, expected: &Expected<'_>) -> Result<Assertion, ResponseError> {
    if b64.len() > MAX_RESPONSE_BYTES {
        return Err(ResponseError::TooLarge(MAX_RESPONSE_BYTES));
    }
    let compact: String = b64.split_whitespace().collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|_| ResponseError::NotBase64)?;
    let xml = String::from_utf8(bytes).map_err(|e| ResponseError::NotXml(e.to_string()))?;
    verify_xml(&xml, expected)
}

/// [`verify_response`] for the decoded XML.
pub fn verify_xml(xml: &str, expected: &Expected<'_>) -> Result<Assertion, ResponseError> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| ResponseError::NotXml(e.to_string()))?;
    let root = doc.root_element();
    if !root.has_tag_name((PROTOCOL, "Response")) {
        return Err(ResponseError::WrongRoot(root.tag_name().name().to_string()));
    }
    let status = child(root, PROTOCOL, "Status");
    let code = status
        .and_then(|s| child(s, PROTOCOL, "StatusCode"))
        .and_then(|c| c.attribute("Value"))
        .unwrap_or_default();
    if code != "urn:oasis:names:tc:SAML:2.0:status:Success" {
        let message = text(status.and_then(|s| child(s, PROTOCOL, "StatusMessage")));
        let code = code.rsplit(':').next().unwrap_or(code);
        return Err(ResponseError::Refused(if message.is_empty() {
            code.to_string()
        } else {
            format!("{code}: {message}")
        }));
    }
    if doc
        .descendants()
        .any(|n| n.has_tag_name((ASSERTION, "EncryptedAssertion")))
    {
        return Err(ResponseError::Encrypted);
    }
    let assertions: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name((ASSERTION, "Assertion")))
        .collect();
    let [assertion] = assertions[..] else {
        return Err(ResponseError::AssertionCount(assertions.len()));
    };
    if assertion.parent() != Some(root) {
        return Err(ResponseError::AssertionCount(0));
    }
    if let Some(d) = root.attribute("Destination") {
        check("Destination", expected.acs, d)?;
    }
    check(
        "InResponseTo",
        expected.request_id,
        root.attribute("InResponseTo").unwrap_or_default(),
    )?;
    check(
        "issuer",
        expected.idp_entity_id,
        &text(child(assertion, ASSERTION, "Issuer")),
    )?;

    let (signed_by, signed_element) = verify_signature(xml, root, assertion, expected)?;

    let conditions = child(assertion, ASSERTION, "Conditions");
    let audience = text(
        conditions
            .and_then(|c| child(c, ASSERTION, "AudienceRestriction"))
            .and_then(|a| child(a, ASSERTION, "Audience")),
    );
    check("audience", expected.audience, &audience)?;
    if let Some(c) = conditions {
        let skew = Duration::minutes(SKEW_MINUTES);
        let at = |name: &str| {
            c.attribute(name)
                .and_then(|v| DateTime::parse_from_rfc3339(v).ok())
                .map(|d| d.with_timezone(&Utc))
        };
        let (from, until) = (at("NotBefore"), at("NotOnOrAfter"));
        let early = from.is_some_and(|f| expected.now + skew < f);
        let late = until.is_some_and(|u| expected.now - skew >= u);
        if early || late {
            let show = |d: Option<DateTime<Utc>>| d.map_or_else(|| "…".into(), |d| d.to_rfc3339());
            return Err(ResponseError::OutsideValidity(show(from), show(until)));
        }
    }
    let subject = child(assertion, ASSERTION, "Subject");
    if let Some(recipient) = subject
        .and_then(|s| child(s, ASSERTION, "SubjectConfirmation"))
        .and_then(|s| child(s, ASSERTION, "SubjectConfirmationData"))
        .and_then(|d| d.attribute("Recipient"))
    {
        check("Recipient", expected.acs, recipient)?;
    }
    let name_id = subject.and_then(|s| child(s, ASSERTION, "NameID"));
    let attributes = child(assertion, ASSERTION, "AttributeStatement")
        .into_iter()
        .flat_map(|s| s.children())
        .filter(|n| n.has_tag_name((ASSERTION, "Attribute")))
        .map(|a| {
            let values = a
                .children()
                .filter(|v| v.has_tag_name((ASSERTION, "AttributeValue")))
                .map(|v| text(Some(v)))
                .collect();
            (a.attribute("Name").unwrap_or_default().to_string(), values)
        })
        .collect();
    Ok(Assertion {
        name_id: text(name_id),
        name_id_format: name_id
            .and_then(|n| n.attribute("Format"))
            .map(str::to_string),
        attributes,
        signed_by,
        signed_element,
    })
}

/// The signature algorithm a certificate's key verifies (SHA-256, Entra's default), and its
/// SubjectPublicKeyInfo.
fn verification_key(der: &[u8]) -> Result<xml_sec::xmldsig::VerificationKey, String> {
    use xml_sec::xmldsig::{SignatureAlgorithm, VerificationKey};
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("the certificate cannot be read: {e}"))?;
    let spki = cert.public_key();
    let algorithm = match spki.algorithm.algorithm.to_id_string().as_str() {
        "1.2.840.113549.1.1.1" => SignatureAlgorithm::RsaSha256,
        "1.2.840.10045.2.1" => SignatureAlgorithm::EcdsaSha256,
        other => {
            return Err(format!(
                "the certificate's key type ({other}) is not one Entra signs with"
            ))
        }
    };
    Ok(VerificationKey {
        algorithm,
        public_key_bytes: spki.raw.to_vec(),
        certificate_der: None,
        name: None,
    })
}

/// Verifies that a signature by one of the app's certificates covers the assertion — signed
/// itself (Entra's default) or through the whole response — and returns that certificate's
/// thumbprint and the signed element.
fn verify_signature(
    xml: &str,
    response: roxmltree::Node<'_, '_>,
    assertion: roxmltree::Node<'_, '_>,
    expected: &Expected<'_>,
) -> Result<(String, &'static str), ResponseError> {
    use xml_sec::policy::{PolicyCompileContext, PolicyCompiler, PolicyProfile};
    use xml_sec::provider::RustCryptoProvider;
    use xml_sec::xmldsig::VerificationRequest;
    use xml_sec::{api::Operation, XmlSecurity};
    if expected.certificates.is_empty() {
        return Err(ResponseError::NoCertificate);
    }
    let sig = |e: &dyn std::fmt::Display| ResponseError::Signature(e.to_string());
    let provider = RustCryptoProvider;
    // The SAML profile: restricted signature shapes and the target's coverage authenticated.
    let policies = PolicyCompiler::new(PolicyProfile::SecureSaml, &provider, None)
        .and_then(|c| {
            c.compile(&PolicyCompileContext {
                external_resources: false,
                target_evidence: true,
            })
        })
        .map_err(|e| sig(&e))?;
    let security = XmlSecurity::new(&policies, &provider).map_err(|e| sig(&e))?;
    let mut last = String::from("the response is not signed");
    for (element, node) in [("Assertion", assertion), ("Response", response)] {
        let Some(id) = node.attribute("ID") else {
            continue;
        };
        let signed_here = node
            .children()
            .any(|c| c.has_tag_name(("http://www.w3.org/2000/09/xmldsig#", "Signature")));
        if !signed_here {
            continue;
        }
        for der in expected.certificates {
            let key = verification_key(der).map_err(ResponseError::Signature)?;
            let document = security
                .parse_document(xml.to_string(), Operation::Verify)
                .map_err(|e| sig(&e))?;
            let Some(target) = document.with_view(|v| v.node_for_id(id, &[])) else {
                last = format!("the {element}'s ID is missing or not unique");
                continue;
            };
            let verifier = security.verifier().map_err(|e| sig(&e))?;
            match verifier.key(&key).verify(
                &document,
                &VerificationRequest {
                    expected_targets: &[target],
                    ..Default::default()
                },
            ) {
                Ok(evidence) if evidence.accepted(&document).unwrap_or(false) => {
                    return Ok((super::thumbprint(der), element));
                }
                Ok(_) => {
                    last = format!(
                        "the {element}'s signature does not verify with the certificate {}",
                        super::thumbprint(der)
                    )
                }
                Err(e) => last = e.to_string(),
            }
        }
    }
    Err(ResponseError::Signature(last))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A response signed by the xmlsec1 tool, not by the simulator (tests/data/saml/SOURCE.txt).
    const SIGNED: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/saml/xmlsec1-signed-response.xml"
    ));
    const CERT: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/saml/xmlsec1-signing-certificate.cer"
    ));

    fn expected(certificates: &[Vec<u8>]) -> Expected<'_> {
        Expected {
            request_id: "_req42",
            acs: "https://files.contoso.com/saml/acs",
            audience: "https://files.contoso.com/saml/metadata",
            idp_entity_id: "https://sts.windows.net/b2d5c2a4-6f1e-4c8b-9a3d-1e2f3a4b5c6d/",
            certificates,
            now: DateTime::parse_from_rfc3339("2026-12-02T10:01:00Z")
                .unwrap()
                .with_timezone(&Utc),
        }
    }

    #[test]
    fn a_response_signed_by_another_implementation_verifies_and_reads() {
        let certs = [CERT.to_vec()];
        let a = verify_xml(SIGNED, &expected(&certs)).unwrap();
        assert_eq!(a.name_id, "adele@contoso.com");
        assert_eq!(
            a.name_id_format.as_deref(),
            Some("urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress")
        );
        assert_eq!(a.signed_by, crate::saml::thumbprint(CERT));
        assert_eq!(a.attributes.len(), 2);
        assert_eq!(a.attributes[0].1, ["a1b2c3d4-1111-4a1a-9a1a-000000000001"]);
    }

    #[test]
    fn a_changed_group_or_audience_breaks_the_signature() {
        let certs = [CERT.to_vec()];
        for (from, to) in [
            (
                "000000000001</AttributeValue>",
                "000000000009</AttributeValue>",
            ),
            ("saml/metadata</Audience>", "saml/other</Audience>"),
        ] {
            let forged = SIGNED.replace(from, to);
            assert_ne!(forged, SIGNED);
            let mut e = expected(&certs);
            let audience = "https://files.contoso.com/saml/other";
            if to.contains("other") {
                e.audience = audience;
            }
            assert!(
                matches!(verify_xml(&forged, &e), Err(ResponseError::Signature(_))),
                "{from}"
            );
        }
    }

    #[test]
    fn the_inspector_shows_the_whole_text_the_signature_covers() {
        // A comment inside the NameID is not covered by the signature (canonicalisation drops
        // it): the signature still verifies, so the text shown must be all of it, never the
        // part before the comment.
        let certs = [CERT.to_vec()];
        let commented = SIGNED.replacen(
            "adele@contoso.com</NameID>",
            "adele@<!-- a comment -->contoso.com</NameID>",
            1,
        );
        assert_ne!(commented, SIGNED);
        let a = verify_xml(&commented, &expected(&certs)).unwrap();
        assert_eq!(a.name_id, "adele@contoso.com");
    }

    #[test]
    fn a_wrapped_second_assertion_is_refused() {
        // Signature wrapping: a forged assertion next to the signed one.
        let forged = SIGNED.replace(
            "<Assertion ",
            "<Assertion xmlns=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"_evil\" Version=\"2.0\" IssueInstant=\"2026-12-02T10:00:00Z\"><Issuer>x</Issuer></Assertion><Assertion ",
        );
        let certs = [CERT.to_vec()];
        assert_eq!(
            verify_xml(&forged, &expected(&certs)),
            Err(ResponseError::AssertionCount(2))
        );
    }

    #[test]
    fn an_authn_request_deflates_into_a_redirect_url() {
        use std::io::Read;
        let now = Utc::now();
        let r = authn_request(
            "https://sp.example/a&b",
            "http://127.0.0.1:5/saml",
            "https://login.example/t/saml2",
            now,
        );
        assert!(r.id.starts_with('_'));
        let url =
            url::Url::parse(&redirect_url("https://login.example/t/saml2", &r, "rs").unwrap())
                .unwrap();
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["RelayState"], "rs");
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&q["SAMLRequest"])
            .unwrap();
        let mut xml = String::new();
        flate2::read::DeflateDecoder::new(&raw[..])
            .read_to_string(&mut xml)
            .unwrap();
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let root = doc.root_element();
        assert_eq!(root.attribute("ID"), Some(r.id.as_str()));
        assert_eq!(
            root.attribute("AssertionConsumerServiceURL"),
            Some("http://127.0.0.1:5/saml")
        );
        assert_eq!(
            text(child(root, ASSERTION, "Issuer")),
            "https://sp.example/a&b"
        );
    }
}
