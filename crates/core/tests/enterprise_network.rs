//! An enterprise network: a TLS-inspecting proxy (HTTPS_PROXY) that answers for every https
//! host with certificates from its own root, which IT put in the OS trust store and nowhere else.
//! The wizard's client must go through the proxy, trust the root because the OS does, keep
//! NO_PROXY hosts and loopback direct — and refuse the proxy when the OS does not trust it.
//!
//! On Linux the OS store is the system bundle, which `SSL_CERT_FILE` names; the whole file is one
//! test because it changes this process's environment.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

struct Inspector {
    root_pem: String,
    tls: Arc<rustls::ServerConfig>,
}

/// A corporate inspection root and a server config that answers for `hosts` with a leaf it signed.
fn inspection_authority(hosts: &[&str]) -> Inspector {
    let mut ca = CertificateParams::new(vec![]).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "Contoso TLS Inspection Root");
    let root = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>())
        .unwrap()
        .signed_by(&leaf_key, &root)
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap();
    let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![leaf.der().clone(), root.der().clone()], key)
    .unwrap();
    Inspector {
        root_pem: root.pem(),
        tls: Arc::new(tls),
    }
}

/// Answers one HTTP/1.1 request on `stream` with a JSON body naming `who` and the Host asked for.
async fn answer<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    stream: S,
    who: &'static str,
) {
    let mut r = BufReader::new(stream);
    let mut host = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await.unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some(h) = line.to_ascii_lowercase().strip_prefix("host:") {
            host = h.trim().to_string();
        }
    }
    let body = format!(r#"{{"answeredBy":"{who}","host":"{host}"}}"#);
    let resp = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = r.get_mut().write_all(resp.as_bytes()).await;
    let _ = r.get_mut().shutdown().await;
}

/// The inspecting proxy: records each CONNECT target (and each plain request line), then
/// terminates TLS itself with the inspection root's leaf and answers as the origin would.
async fn proxy(tls: Arc<rustls::ServerConfig>, seen: Arc<Mutex<Vec<String>>>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let (tls, seen) = (tls.clone(), seen.clone());
            tokio::spawn(async move {
                let mut s = BufReader::new(s);
                let mut first = String::new();
                s.read_line(&mut first).await.unwrap_or(0);
                seen.lock().unwrap().push(first.trim().to_string());
                if !first.starts_with("CONNECT ") {
                    return;
                }
                loop {
                    let mut line = String::new();
                    if s.read_line(&mut line).await.unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                }
                let mut s = s.into_inner();
                let _ = s
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await;
                if let Ok(tls_stream) = tokio_rustls::TlsAcceptor::from(tls).accept(s).await {
                    answer(tls_stream, "inspecting proxy").await;
                }
            });
        }
    });
    addr
}

/// An origin on this machine with a certificate from the same root, reached without the proxy.
async fn direct_origin(tls: Arc<rustls::ServerConfig>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let tls = tls.clone();
            tokio::spawn(async move {
                if let Ok(t) = tokio_rustls::TlsAcceptor::from(tls).accept(s).await {
                    answer(t, "direct").await;
                }
            });
        }
    });
    addr
}

/// A plain-HTTP server on loopback (as the built-in demo tenant is).
async fn loopback_plain() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(answer(s, "loopback"));
        }
    });
    addr
}

async fn get_json(client: &reqwest::Client, url: &str) -> Result<serde_json::Value, String> {
    let resp = client.get(url).send().await.map_err(|e| {
        // The interesting cause (UnknownIssuer, connection refused) is deep in the chain.
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            msg.push_str(&format!(": {s}"));
            src = s.source();
        }
        msg
    })?;
    let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
    serde_json::from_slice(&bytes).map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_inspecting_proxy_trusted_by_the_os_store_is_used_and_one_it_does_not_trust_is_refused(
) {
    let graph = "graph.contoso-corp.example";
    let inspector = inspection_authority(&[graph, "scim.contoso-corp.example"]);
    let seen = Arc::new(Mutex::new(vec![]));
    let proxy_addr = proxy(inspector.tls.clone(), seen.clone()).await;
    let origin = direct_origin(inspector.tls.clone()).await;
    let plain = loopback_plain().await;

    // The OS store of this machine plus the inspection root, as IT would deploy it.
    let dir = std::env::temp_dir().join(format!("entra-setup-osstore-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut bundle =
        std::fs::read_to_string("/etc/ssl/certs/ca-certificates.crt").unwrap_or_default();
    bundle.push_str(&inspector.root_pem);
    let bundle_path = dir.join("ca-certificates.crt");
    std::fs::write(&bundle_path, bundle).unwrap();

    std::env::set_var(
        "HTTPS_PROXY",
        format!("http://127.0.0.1:{}", proxy_addr.port()),
    );
    std::env::set_var(
        "HTTP_PROXY",
        format!("http://127.0.0.1:{}", proxy_addr.port()),
    );
    std::env::remove_var("NO_PROXY");
    std::env::remove_var("no_proxy");
    std::env::set_var("SSL_CERT_FILE", &bundle_path);

    // 1. Through the proxy, trusted because the OS store holds its root.
    let url = format!("https://{graph}/v1.0/organization");
    let got = get_json(&entra_setup_core::http::client(), &url)
        .await
        .unwrap();
    assert_eq!(got["answeredBy"], "inspecting proxy");
    assert_eq!(got["host"], graph);
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .any(|l| l == &format!("CONNECT {graph}:443 HTTP/1.1")),
        "the proxy saw no CONNECT for {graph}: {:?}",
        seen.lock().unwrap()
    );

    // What Advanced shows: the proxy from the environment.
    let shown = entra_setup_core::http::Network::from_env().shown();
    assert_eq!(
        shown.https_proxy.as_deref(),
        Some(format!("http://127.0.0.1:{}", proxy_addr.port()).as_str())
    );

    // 2. Loopback (the demo tenant) never goes through the proxy, even with HTTP_PROXY set.
    let before = seen.lock().unwrap().len();
    let got = get_json(
        &entra_setup_core::http::client(),
        &format!("http://127.0.0.1:{}/", plain.port()),
    )
    .await
    .unwrap();
    assert_eq!(got["answeredBy"], "loopback");
    assert_eq!(
        seen.lock().unwrap().len(),
        before,
        "loopback went to the proxy"
    );

    // 3. NO_PROXY sends the host direct (the same root, so TLS still verifies).
    std::env::set_var("NO_PROXY", "contoso-corp.example");
    let direct = entra_setup_core::http::builder(&[])
        .resolve("scim.contoso-corp.example", origin)
        .build()
        .unwrap();
    let got = get_json(
        &direct,
        &format!(
            "https://scim.contoso-corp.example:{}/scim/v2/Users",
            origin.port()
        ),
    )
    .await
    .unwrap();
    assert_eq!(got["answeredBy"], "direct");
    assert_eq!(
        seen.lock().unwrap().len(),
        before,
        "a NO_PROXY host went to the proxy"
    );
    std::env::remove_var("NO_PROXY");

    // 4. The same proxy when the OS store does not hold its root: refused as an unknown issuer,
    //    although the bundled roots are still there.
    let empty = dir.join("system-only.crt");
    std::fs::write(
        &empty,
        std::fs::read_to_string("/etc/ssl/certs/ca-certificates.crt").unwrap_or_default(),
    )
    .unwrap();
    std::env::set_var("SSL_CERT_FILE", &empty);
    let err = get_json(&entra_setup_core::http::client(), &url)
        .await
        .unwrap_err();
    assert!(
        err.contains("UnknownIssuer") || err.contains("unknown issuer"),
        "expected an unknown-issuer refusal, got: {err}"
    );

    // 5. A proxy URL with credentials is shown without them.
    std::env::set_var(
        "HTTPS_PROXY",
        "http://alice:s3cret@proxy.contoso-corp.example:3128",
    );
    let shown = entra_setup_core::http::Network::from_env().shown();
    let p = shown.https_proxy.unwrap();
    assert!(!p.contains("s3cret") && !p.contains("alice"), "{p}");
    assert!(p.contains("proxy.contoso-corp.example:3128"), "{p}");

    let _ = std::fs::remove_dir_all(&dir);
}
