//! SCIM verification benchmark: wall time of the full read-only verification against local SCIM
//! servers (the simulator's, SCIMMY from npm, scim2-server from PyPI), and the time of each check.
//! Target: ≤ 2 s for the whole read-only verification.
//!
//!   cargo bench -p entra-setup-core --bench scim_verify            (prints the tables)
//!   cargo bench -p entra-setup-core --bench scim_verify -- --write (also updates docs/PERFORMANCE.md)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use entra_setup_core::scim::{self, ScimAuth, ScimReport, ScimTarget, VerifyOptions};
use entra_setup_core::SecretString;
use entra_setup_sim::scim_server::{self, ScimFaults};

const TOKEN: &str = "bench-scim-token";
const RUNS: usize = 10;

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn scimmy() -> Option<(String, Kill)> {
    let mut child = Command::new("node")
        .args(["tests/scim/scimmy-server.mjs", "0", TOKEN])
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take()?)
        .read_line(&mut line)
        .ok()?;
    let url = line.trim().strip_prefix("READY ")?.to_string();
    Some((url, Kill(child)))
}

fn scim2_server() -> Option<(String, Kill)> {
    let bin = root().join(".venv/bin/scim2-server");
    if !bin.exists() {
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = Command::new(bin)
        .args(["--port", &port.to_string(), "--bearer-token", TOKEN])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some((format!("http://127.0.0.1:{port}"), Kill(child)));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

async fn measure(url: &str) -> Vec<(ScimReport, Duration)> {
    let target = ScimTarget {
        url: url.to_string(),
        auth: ScimAuth::Bearer(SecretString::from(TOKEN)),
        trusted_cert: None,
    };
    // One warm-up run (connection set-up, the server's first-request work).
    let _ = scim::verify(&target, &VerifyOptions::default()).await;
    let mut out = vec![];
    for _ in 0..RUNS {
        let t = std::time::Instant::now();
        let r = scim::verify(&target, &VerifyOptions::default()).await;
        out.push((r, t.elapsed()));
    }
    out
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let write = std::env::args().any(|a| a == "--write");
    let sim = scim_server::serve(TOKEN, ScimFaults::default())
        .await
        .unwrap();
    let mut servers: Vec<(&str, String, Option<Kill>)> =
        vec![("Simulator (Rust, in process)", sim.url.clone(), None)];
    match scimmy() {
        Some((u, k)) => servers.push(("SCIMMY (npm)", u, Some(k))),
        None => eprintln!("SCIMMY did not start: skipped"),
    }
    match scim2_server() {
        Some((u, k)) => servers.push(("scim2-server (PyPI)", u, Some(k))),
        None => eprintln!("scim2-server is not installed (scripts/setup.sh --test): skipped"),
    }
    let mut totals = vec![];
    let mut per_check: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut order: Vec<String> = vec![];
    for (name, url, _) in &servers {
        let runs = measure(url).await;
        let mut times: Vec<Duration> = runs.iter().map(|(_, t)| *t).collect();
        times.sort_unstable();
        let (total, worst) = (times[times.len() / 2], times[times.len() - 1]);
        let verdict = if worst <= Duration::from_secs(2) {
            "≤ 2 s (meets)"
        } else {
            "≤ 2 s (MISSES)"
        };
        totals.push(format!(
            "| {name} | {} | {} | {verdict} |",
            ms(total),
            ms(worst)
        ));
        let reports: Vec<&ScimReport> = runs.iter().map(|(r, _)| r).collect();
        for c in &reports[0].checks {
            if !order.contains(&c.id) {
                order.push(c.id.clone());
            }
            let all: Vec<u32> = reports
                .iter()
                .filter_map(|r| r.checks.iter().find(|x| x.id == c.id).map(|x| x.millis))
                .collect();
            let mean = f64::from(all.iter().sum::<u32>()) / all.len().max(1) as f64;
            let max = all.iter().copied().max().unwrap_or(0);
            per_check
                .entry(c.id.clone())
                .or_default()
                .push(format!("{mean:.1} ms (worst {max} ms)"));
        }
    }
    let header: Vec<&str> = servers.iter().map(|(n, _, _)| *n).collect();
    let rows: Vec<String> = order
        .iter()
        .map(|id| format!("| `{id}` | {} |", per_check[id].join(" | ")))
        .collect();
    let table = format!(
        "Measured {} on 2 cores; read-only verification (no write tests), median and worst of {RUNS} runs after a warm-up run.\n\n\
         | Server | Median | Worst | Target |\n|---|---:|---:|---|\n{}\n\n\
         Time per check (mean and worst over the runs, in whole milliseconds as the report records them; a check's requests added up, and independent checks run concurrently, so they overlap):\n\n\
         | Check | {} |\n|---|{}\n{}",
        chrono::Utc::now().format("%Y-%m-%d"),
        totals.join("\n"),
        header.join(" | "),
        "---:|".repeat(header.len()),
        rows.join("\n"),
    );
    println!("{table}");
    if write {
        let doc = root().join("docs/PERFORMANCE.md");
        let text = std::fs::read_to_string(&doc).unwrap();
        let (begin, end) = ("<!-- bench:scim:begin -->", "<!-- bench:scim:end -->");
        if let (Some(a), Some(b)) = (text.find(begin), text.find(end)) {
            let updated = format!("{}{begin}\n{table}\n{}", &text[..a], &text[b..]);
            std::fs::write(&doc, updated).unwrap();
            println!("updated {}", doc.display());
        }
    }
}
