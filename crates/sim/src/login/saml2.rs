//! Entra's SAML endpoint (`/{tenant}/saml2`, HTTP-Redirect binding): an SP-initiated
//! AuthnRequest in, a signed SAMLResponse out, POSTed to the app's reply URL by an auto-submitting
//! form as Entra's own page does. The checks are Entra's: the Issuer must be an app's identifier
//! URI (AADSTS700016), the AssertionConsumerServiceURL one of its reply URLs (AADSTS50011), and a
//! user must be assigned when the app requires it (AADSTS50105). The assertion carries Entra's
//! default claims, NameID = user.userprincipalname, the groups claim the app asks for (a link
//! instead of the list past 150 groups), and an enveloped XML signature by the preferred
//! certificate (xml-sec; Entra signs the assertion by default).

use std::io::Read;
use std::sync::Arc;

use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use base64::Engine;
use chrono::{Duration, SecondsFormat, Utc};
use serde_json::Value;

use crate::directory::Directory;
use crate::fixtures::{Tenant, User};
use crate::world::World;
use crate::{apply_latency, Approval, Shared};

use super::{error_page, escape, hidden_inputs, no_such_tenant, user_options, Params};

/// Entra sends at most this many groups in a SAML token; past it, a link to read them.
const SAML_GROUPS_LIMIT: usize = 150;
const MAX_REQUEST_BYTES: u64 = 64 * 1024;

/// What an AuthnRequest asks, as far as Entra reads it.
struct AuthnRequest {
    id: String,
    issuer: String,
    acs: Option<String>,
}

#[allow(clippy::result_large_err)]
fn decode_request(p: &Params) -> Result<AuthnRequest, Response> {
    let bad = |detail: &str| {
        error_page(
            StatusCode::BAD_REQUEST,
            750054,
            "SAMLRequest or SAMLResponse must be present as query string parameters in HTTP request for SAML Redirect binding.",
            detail,
        )
    };
    let raw = p.get("SAMLRequest").ok_or_else(|| bad(""))?;
    let deflated = base64::engine::general_purpose::STANDARD
        .decode(raw.trim())
        .map_err(|_| bad("The SAMLRequest is not Base64."))?;
    let mut xml = String::new();
    flate2::read::DeflateDecoder::new(&deflated[..])
        .take(MAX_REQUEST_BYTES)
        .read_to_string(&mut xml)
        .map_err(|_| bad("The SAMLRequest is not DEFLATE-compressed XML."))?;
    let doc = roxmltree::Document::parse(&xml)
        .map_err(|e| bad(&format!("The SAMLRequest is not XML: {e}.")))?;
    let root = doc.root_element();
    if !root.has_tag_name(("urn:oasis:names:tc:SAML:2.0:protocol", "AuthnRequest")) {
        return Err(bad("The SAMLRequest is not an AuthnRequest."));
    }
    let issuer = root
        .children()
        .find(|n| n.has_tag_name(("urn:oasis:names:tc:SAML:2.0:assertion", "Issuer")))
        .and_then(|n| n.text())
        .map(str::trim)
        .unwrap_or_default()
        .to_string();
    if let Some(binding) = root.attribute("ProtocolBinding") {
        if binding != "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" {
            return Err(bad(&format!(
                "Entra answers with the HTTP-POST binding only, not {binding}."
            )));
        }
    }
    Ok(AuthnRequest {
        id: root.attribute("ID").unwrap_or_default().to_string(),
        issuer,
        acs: root
            .attribute("AssertionConsumerServiceURL")
            .map(str::to_string),
    })
}

/// `GET /{tenant}/saml2?SAMLRequest=…&RelayState=…`.
pub async fn saml2(
    State(s): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    Query(p): Query<Params>,
) -> Response {
    apply_latency(&s).await;
    let world = s.world();
    let upn = match &world.config.approval {
        Approval::Auto { upn, .. } => upn.clone(),
        Approval::Interactive => return pick_user_page(&world, &tenant, &p),
    };
    sign_in(&world, &tenant, &p, &upn)
}

/// `POST /{tenant}/saml2/decision`: the user picked on the interactive page.
pub async fn saml2_decision(
    State(s): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    Form(p): Form<Params>,
) -> Response {
    apply_latency(&s).await;
    let world = s.world();
    let upn = p.get("sim_user").cloned().unwrap_or_default();
    sign_in(&world, &tenant, &p, &upn)
}

fn pick_user_page(world: &World, tenant: &str, p: &Params) -> Response {
    let Some(t) = world.tenant(tenant) else {
        return no_such_tenant(tenant);
    };
    Html(format!(
        "<!doctype html><html lang=en><meta charset=utf-8><title>Sign in - simulated Entra</title>\
         <body style='font-family:sans-serif;max-width:40em;margin:3em auto'>\
         <h1>Simulated Microsoft Entra sign-in (SAML)</h1>\
         <form method=post action=\"saml2/decision\">{hidden}\
         <label>Sign in as <select name=sim_user>{options}</select></label>\
         <p><button>Sign in</button></p></form></body></html>",
        hidden = hidden_inputs(p),
        options = user_options(t),
    ))
    .into_response()
}

fn sign_in(world: &World, tenant: &str, p: &Params, upn: &str) -> Response {
    let req = match decode_request(p) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let Some(t) = world.tenant(tenant) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            90002,
            &format!("Tenant '{tenant}' not found."),
            "",
        );
    };
    let Some(dir) = world.directories.get(&t.id) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            90002,
            &format!("Tenant '{tenant}' not found."),
            "",
        );
    };
    let Some(app) = dir.applications.iter().find(|a| {
        a["identifierUris"]
            .as_array()
            .is_some_and(|u| u.iter().any(|u| u.as_str() == Some(req.issuer.as_str())))
    }) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            700016,
            &format!("Application with identifier '{}' was not found in the directory '{}'.", req.issuer, t.display_name),
            "This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
        );
    };
    let app_id = app["appId"].as_str().unwrap_or_default();
    let reply_urls: Vec<&str> = app["web"]["redirectUris"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let acs = match &req.acs {
        Some(acs) if reply_urls.contains(&acs.as_str()) && dir.redirect_known(acs) => acs.clone(),
        None if !reply_urls.is_empty() && dir.redirect_known(reply_urls[0]) => {
            reply_urls[0].to_string()
        }
        other => {
            return error_page(
                StatusCode::BAD_REQUEST,
                50011,
                &format!("The redirect URI '{}' specified in the request does not match the redirect URIs configured for the application '{app_id}'.", other.clone().unwrap_or_default()),
                "Make sure the redirect URI sent in the request matches one added to your application in the Azure portal.",
            );
        }
    };
    let Some(sp) = dir.service_principals.iter().find(|s| s["appId"] == app_id) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            700016,
            &format!(
                "Application with identifier '{}' was not found in the directory '{}'.",
                req.issuer, t.display_name
            ),
            "",
        );
    };
    let Some(user) = t.user_by_upn(upn) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            50034,
            &format!("The user account {upn} does not exist in the tenant."),
            "",
        );
    };
    let groups = crate::graph_dir::transitive_groups(dir, &user.id);
    let sp_id = sp["id"].as_str().unwrap_or_default();
    if sp["appRoleAssignmentRequired"] == true && !assigned(dir, sp_id, &user.id, &groups) {
        return error_page(
            StatusCode::BAD_REQUEST,
            50105,
            &format!("Your administrator has configured the application {} ('{app_id}') to block users unless they are specifically granted ('assigned') access to the application. The signed in user '{}' is blocked because they are not a direct member of a group with access, nor had access directly assigned by an administrator.", sp["displayName"].as_str().unwrap_or_default(), user.upn),
            "Please contact your administrator to assign access to this application.",
        );
    }
    let preferred = sp["preferredTokenSigningKeyThumbprint"]
        .as_str()
        .unwrap_or_default();
    let Some(key) = dir
        .signing_keys
        .iter()
        .find(|k| k.sp_id == sp_id && k.thumbprint.eq_ignore_ascii_case(preferred))
    else {
        return error_page(
            StatusCode::BAD_REQUEST,
            500031,
            "No active signing certificate is configured for this application.",
            "Add a SAML signing certificate and make it active (preferredTokenSigningKeyThumbprint).",
        );
    };
    let claim = app["groupMembershipClaims"].as_str().unwrap_or("None");
    let groups_claim = match claim {
        "SecurityGroup" | "All" => Some(groups.clone()),
        "ApplicationGroup" => Some(
            groups
                .iter()
                .filter(|g| {
                    dir.assignments
                        .iter()
                        .any(|a| a["resourceId"] == sp_id && a["principalId"] == g.as_str())
                })
                .cloned()
                .collect(),
        ),
        _ => None,
    };
    let overage = claim != "ApplicationGroup"
        && groups_claim.is_some()
        && groups.len() + user.extra_groups as usize > SAML_GROUPS_LIMIT;
    let response = response_xml(t, user, &req, &acs, groups_claim.as_deref(), overage);
    let signed = match sign(&response, &key.key_pem, &key.cert_der) {
        Ok(x) => x,
        Err(e) => {
            return error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                50000,
                "The simulator could not sign the response.",
                &e,
            )
        }
    };
    let b64 = base64::engine::general_purpose::STANDARD.encode(signed);
    let relay = p
        .get("RelayState")
        .map(|r| {
            format!(
                "<input type=\"hidden\" name=\"RelayState\" value=\"{}\" />",
                escape(r)
            )
        })
        .unwrap_or_default();
    Html(format!(
        "<html><head><title>Working...</title></head><body><form method=\"POST\" name=\"hiddenform\" action=\"{}\"><input type=\"hidden\" name=\"SAMLResponse\" value=\"{b64}\" />{relay}<noscript><p>Script is disabled. Click Submit to continue.</p><input type=\"submit\" value=\"Submit\" /></noscript></form><script language=\"javascript\">document.forms[0].submit();</script></body></html>",
        escape(&acs)
    ))
    .into_response()
}

fn assigned(dir: &Directory, sp_id: &str, user_id: &str, groups: &[String]) -> bool {
    dir.assignments.iter().any(|a| {
        a["resourceId"] == sp_id
            && a["principalId"]
                .as_str()
                .is_some_and(|p| p == user_id || groups.iter().any(|g| g == p))
    })
}

fn x(s: &str) -> String {
    escape(s)
}

fn attribute<S: AsRef<str>>(name: &str, values: &[S]) -> String {
    let values: String = values
        .iter()
        .map(|v| format!("<AttributeValue>{}</AttributeValue>", x(v.as_ref())))
        .collect();
    format!("<Attribute Name=\"{}\">{values}</Attribute>", x(name))
}

fn response_xml(
    t: &Tenant,
    user: &User,
    req: &AuthnRequest,
    acs: &str,
    groups: Option<&[String]>,
    overage: bool,
) -> String {
    let now = Utc::now();
    let ts = |d: chrono::DateTime<Utc>| d.to_rfc3339_opts(SecondsFormat::Millis, true);
    let issuer = format!("https://sts.windows.net/{}/", t.id);
    let assertion_id = format!("_{}", uuid::Uuid::new_v4());
    let mut attrs = vec![
        attribute(
            "http://schemas.microsoft.com/identity/claims/tenantid",
            &[t.id.as_str()],
        ),
        attribute(
            "http://schemas.microsoft.com/identity/claims/objectidentifier",
            &[user.id.as_str()],
        ),
        attribute(
            "http://schemas.microsoft.com/identity/claims/displayname",
            &[user.display_name.as_str()],
        ),
    ];
    if let Some(groups) = groups {
        if overage {
            attrs.push(attribute(
                "http://schemas.microsoft.com/claims/groups.link",
                &[format!(
                    "https://graph.windows.net/{}/users/{}/getMemberObjects",
                    t.id, user.id
                )],
            ));
        } else if !groups.is_empty() {
            attrs.push(attribute(
                "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups",
                groups,
            ));
        }
    }
    attrs.push(attribute(
        "http://schemas.microsoft.com/identity/claims/identityprovider",
        &[issuer.as_str()],
    ));
    attrs.push(attribute(
        "http://schemas.microsoft.com/claims/authnmethodsreferences",
        &["http://schemas.microsoft.com/ws/2008/06/identity/authenticationmethod/password"],
    ));
    attrs.push(attribute(
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname",
        &[user.given_name.as_str()],
    ));
    attrs.push(attribute(
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname",
        &[user.surname.as_str()],
    ));
    if let Some(mail) = &user.mail {
        attrs.push(attribute(
            "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
            &[mail.as_str()],
        ));
    }
    attrs.push(attribute(
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
        &[user.upn.as_str()],
    ));
    let in_response_to = if req.id.is_empty() {
        String::new()
    } else {
        format!(" InResponseTo=\"{}\"", x(&req.id))
    };
    format!(
        "<samlp:Response ID=\"_{rid}\" Version=\"2.0\" IssueInstant=\"{now}\" Destination=\"{acs}\"{in_response_to} xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\">\
<Issuer xmlns=\"urn:oasis:names:tc:SAML:2.0:assertion\">{issuer}</Issuer>\
<samlp:Status><samlp:StatusCode Value=\"urn:oasis:names:tc:SAML:2.0:status:Success\"/></samlp:Status>\
<Assertion ID=\"{assertion_id}\" IssueInstant=\"{now}\" Version=\"2.0\" xmlns=\"urn:oasis:names:tc:SAML:2.0:assertion\">\
<Issuer>{issuer}</Issuer>\
<Signature xmlns=\"http://www.w3.org/2000/09/xmldsig#\"><SignedInfo>\
<CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/>\
<SignatureMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256\"/>\
<Reference URI=\"#{assertion_id}\"><Transforms>\
<Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"/>\
<Transform Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/></Transforms>\
<DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/><DigestValue/></Reference>\
</SignedInfo><SignatureValue/><KeyInfo/></Signature>\
<Subject><NameID Format=\"urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress\">{upn}</NameID>\
<SubjectConfirmation Method=\"urn:oasis:names:tc:SAML:2.0:cm:bearer\">\
<SubjectConfirmationData{in_response_to} NotOnOrAfter=\"{later}\" Recipient=\"{acs}\"/></SubjectConfirmation></Subject>\
<Conditions NotBefore=\"{before}\" NotOnOrAfter=\"{expires}\"><AudienceRestriction><Audience>{audience}</Audience></AudienceRestriction></Conditions>\
<AttributeStatement>{attrs}</AttributeStatement>\
<AuthnStatement AuthnInstant=\"{now}\" SessionIndex=\"{assertion_id}\"><AuthnContext>\
<AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</AuthnContextClassRef>\
</AuthnContext></AuthnStatement></Assertion></samlp:Response>",
        rid = uuid::Uuid::new_v4(),
        now = ts(now),
        acs = x(acs),
        issuer = x(&issuer),
        upn = x(&user.upn),
        later = ts(now + Duration::minutes(5)),
        before = ts(now - Duration::minutes(5)),
        expires = ts(now + Duration::minutes(75)),
        audience = x(&req.issuer),
        attrs = attrs.concat(),
    )
}

/// Fills the assertion's signature template with the certificate's key (xml-sec).
fn sign(template: &str, key_pem: &str, cert_der: &[u8]) -> Result<String, String> {
    use xml_sec::xmldsig::{RsaSigningKey, SignContext, X509CertificateKeyInfoWriter};
    let key = RsaSigningKey::from_pkcs8_pem(key_pem).map_err(|e| e.to_string())?;
    let key_info = X509CertificateKeyInfoWriter::from_der(cert_der).map_err(|e| e.to_string())?;
    SignContext::new(&key)
        .key_info_writer(&key_info)
        .sign_template(template)
        .map_err(|e| e.to_string())
}
