//! Independently written SCIM servers from the package registries, run as child processes:
//! scim2-server (PyPI, in .venv from scripts/setup.sh --test) and SCIMMY (npm).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The bearer token the peers are started with.
pub const TOKEN: &str = "scim-test-token-123";

pub fn root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub struct Server {
    child: Child,
    pub url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_ready(mut child: Child, from_stdout: bool, fallback: String) -> Server {
    if from_stdout {
        let out = child.stdout.take().unwrap();
        let mut reader = BufReader::new(out);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        let url = line
            .trim()
            .strip_prefix("READY ")
            .unwrap_or_else(|| panic!("server did not start: {line}"))
            .to_string();
        Server { child, url }
    } else {
        // Poll until it answers.
        for _ in 0..100 {
            if std::net::TcpStream::connect(
                fallback
                    .trim_start_matches("http://")
                    .split('/')
                    .next()
                    .unwrap(),
            )
            .is_ok()
            {
                return Server {
                    child,
                    url: fallback,
                };
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = child.kill();
        panic!("server at {fallback} did not start")
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// scim2-server (PyPI), installed into .venv by scripts/setup.sh --test.
pub fn scim2_server() -> Server {
    let bin = root().join(".venv/bin/scim2-server");
    assert!(
        bin.exists(),
        "{} is missing: run scripts/setup.sh --test",
        bin.display()
    );
    let port = free_port();
    let child = Command::new(bin)
        .args(["--port", &port.to_string(), "--bearer-token", TOKEN])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_ready(child, false, format!("http://127.0.0.1:{port}"))
}

/// SCIMMY + scimmy-routers (npm).
pub fn scimmy_server() -> Server {
    let child = Command::new("node")
        .args(["tests/scim/scimmy-server.mjs", "0", TOKEN])
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("node runs");
    wait_ready(child, true, String::new())
}
