//! The wizard's AuthnRequest and the simulated tenant's signed SAMLResponse, checked by a SAML
//! implementation we did not write: pysaml2 from PyPI (tests/saml/pysaml2_peer.py), whose XML
//! signatures go through the xmlsec1 tool. As the identity provider it parses the wizard's
//! request; as the service provider it reads the app's live federation metadata and accepts the
//! simulator's response — and refuses the same response with one name changed.
//! Needs `scripts/setup.sh --test` (xmlsec1, and pysaml2 in .venv).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use entra_setup_core::saml;
use entra_setup_core::setup::flow;
use support::*;

const ENTITY_ID: &str = "https://sp.example.test/saml/metadata";
const ACS: &str = "https://sp.example.test/saml/acs";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs the peer; `Ok(stdout JSON)` when it accepts, `Err(stderr)` when it refuses.
fn peer(args: &[&str]) -> Result<serde_json::Value, String> {
    let python = root().join(".venv/bin/python");
    let out = Command::new(&python)
        .arg(root().join("tests/saml/pysaml2_peer.py"))
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{} runs (scripts/setup.sh --test installs pysaml2): {e}",
                python.display()
            )
        });
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[tokio::test]
async fn pysaml2_accepts_the_wizards_request_and_the_simulators_signed_response() {
    let sim = sim_as("adele@contoso.com").await;
    let (s, _) = admin_with(&sim, "contoso.com", false).await;
    let want = intent_for(
        "saml",
        &[
            ("name", "Peer SP"),
            ("entity_id", ENTITY_ID),
            ("reply_url", ACS),
            ("groups", "SecurityGroup"),
        ],
    );
    let prepared = flow::prepare(&s, &data_dir("entra-setup-saml-peer"), want, &[])
        .await
        .unwrap();
    let run = apply_run(&s, prepared).await;
    let tenant = s.account.tenant_id.clone();
    let app_id = run.saml.as_ref().unwrap().app_id.clone();

    // The wizard's AuthnRequest, as the identity provider reads it.
    let sso = saml::sso_url(&s.cloud, &tenant);
    let request = saml::authn_request(ENTITY_ID, ACS, &sso, chrono::Utc::now());
    let url = saml::redirect_url(&sso, &request, "relay-1").unwrap();
    let parsed = peer(&["request", &sso, ENTITY_ID, ACS, &url]).unwrap();
    assert_eq!(parsed["id"], request.id.as_str());
    assert_eq!(parsed["issuer"], ENTITY_ID);
    assert_eq!(parsed["acs"], ACS);
    assert_eq!(parsed["destination"], sso.as_str());
    assert_eq!(
        parsed["binding"],
        "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
    );

    // The simulator answers that request; the service provider checks it against the app's
    // live federation metadata.
    let page = reqwest::get(&url).await.unwrap().text().await.unwrap();
    let b64 = saml_response_in(&page);
    let metadata = reqwest::get(saml::metadata_url(&s.cloud, &tenant, &app_id))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let dir = data_dir("entra-setup-saml-peer-files");
    std::fs::create_dir_all(&dir).unwrap();
    let md_file = dir.join("idp-metadata.xml");
    std::fs::write(&md_file, &metadata).unwrap();
    let response_file = dir.join("response.b64");
    std::fs::write(&response_file, &b64).unwrap();
    let check = |file: &Path| {
        peer(&[
            "response",
            md_file.to_str().unwrap(),
            ENTITY_ID,
            ACS,
            &request.id,
            file.to_str().unwrap(),
        ])
    };
    let accepted = check(&response_file).unwrap();
    assert_eq!(accepted["name_id"], "adele@contoso.com");
    assert_eq!(
        accepted["name_id_format"],
        "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
    );
    assert_eq!(accepted["issuer"], saml::idp_entity_id(&tenant).as_str());
    // pysaml2 names the WS-Federation claims it knows by their friendly names.
    assert_eq!(
        accepted["attributes"]["emailAddress"][0], "adele@contoso.com",
        "{accepted:#}"
    );

    // One name changed after signing: pysaml2 refuses it too.
    let forged = forged_response(&b64);
    let forged_file = dir.join("forged.b64");
    std::fs::write(
        &forged_file,
        base64::engine::general_purpose::STANDARD.encode(forged),
    )
    .unwrap();
    let refused = check(&forged_file).unwrap_err();
    assert!(
        refused.to_ascii_lowercase().contains("signature"),
        "{refused}"
    );
}
