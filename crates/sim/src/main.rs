//! `entra-sim [--port N] [--auto UPN] [--local-scim]`: runs the simulated tenant on its own, e.g.
//! to point the wizard or a browser at it by hand.

use entra_setup_sim::{Approval, SimConfig};

fn usage() -> ! {
    eprintln!(
        "usage: entra-sim [--port N] [--auto UPN] [--device-interval SECS] [--local-scim]\n\
         \n  --port N              listen on 127.0.0.1:N (default: a free port)\
         \n  --auto UPN            approve every sign-in as this user instead of showing a page\
         \n  --local-scim          let provisioning reach SCIM endpoints on this computer (its own\
         \n                        stand-in at /_fake/scim/v2, token demo-scim-token-7f3a9c)\
         \n  --device-interval S   device-code poll interval in seconds (default 5)\n\
         \nFault knobs can be changed while it runs: POST JSON to /_sim/faults."
    );
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let mut config = SimConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => {
                config.port = args
                    .next()
                    .and_then(|p| p.parse().ok())
                    .unwrap_or_else(|| usage())
            }
            "--auto" => {
                let upn = args.next().unwrap_or_else(|| usage());
                config.approval = Approval::Auto {
                    upn,
                    device_polls: 1,
                };
            }
            "--device-interval" => {
                config.device_interval_secs = args
                    .next()
                    .and_then(|p| p.parse().ok())
                    .unwrap_or_else(|| usage());
            }
            "--local-scim" => config.local_scim_reachable = true,
            "-h" | "--help" => usage(),
            other => {
                eprintln!("entra-sim: unknown argument '{other}'");
                usage()
            }
        }
    }
    let sim = match entra_setup_sim::start(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("entra-sim: cannot listen: {e}");
            std::process::exit(1)
        }
    };
    println!("Simulated Entra tenant listening on {}", sim.base_url());
    for t in sim.tenants() {
        println!(
            "  {} ({}, {}): {} — users: {}",
            t.display_name,
            t.licence,
            t.id,
            t.default_domain,
            if t.users.len() > 6 {
                format!(
                    "{}, … and {} more",
                    t.users[..4].join(", "),
                    t.users.len() - 4
                )
            } else {
                t.users.join(", ")
            }
        );
    }
    println!(
        "Authority and Graph root: {0} (Graph v1.0 at {0}/v1.0)",
        sim.base_url()
    );
    let _ = tokio::signal::ctrl_c().await;
    sim.stop();
}
