//! `kubelite [--data-dir DIR] [--addr IP:PORT] [--memory] [--no-sim] [--nodes N] [--latency-ms MS]`
//!
//! Runs a kubelite server until Ctrl-C and prints the kubeconfig path.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let mut cfg = kubelite::Config::new("./kubelite-data");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--data-dir" | "--data" => match args.next() {
                Some(d) => cfg.data_dir = d.into(),
                None => return usage("--data-dir needs a value"),
            },
            "--addr" => match args.next().map(|s| s.parse()) {
                Some(Ok(addr)) => cfg.addr = addr,
                _ => return usage("--addr needs IP:PORT"),
            },
            "--nodes" => match args.next().map(|s| s.parse()) {
                Some(Ok(n)) => cfg.nodes = n,
                _ => return usage("--nodes needs a number"),
            },
            "--latency-ms" => match args.next().map(|s| s.parse::<u64>()) {
                // Every request waits this long first: a cluster far away.
                Some(Ok(ms)) => cfg.faults.latency = std::time::Duration::from_millis(ms),
                _ => return usage("--latency-ms needs a number"),
            },
            "--memory" => cfg.storage = kubelite::Storage::Memory,
            "--no-sim" => cfg.simulate = None,
            "--simulate" => cfg.simulate = Some(kubelite::SimConfig::default()),
            "-h" | "--help" => return usage(""),
            other => return usage(&format!("unknown argument {other}")),
        }
    }
    let handle = match kubelite::start(cfg).await {
        Ok(h) => h,
        Err(e) => {
            eprintln!("kubelite: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("kubelite listening on {}", handle.url());
    println!("kubeconfig: {}", handle.kubeconfig_path().display());
    let _ = tokio::signal::ctrl_c().await;
    if let Err(e) = handle.shutdown().await {
        eprintln!("kubelite: shutdown: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn usage(msg: &str) -> ExitCode {
    if !msg.is_empty() {
        eprintln!("kubelite: {msg}");
    }
    eprintln!(
        "usage: kubelite [--data-dir|--data DIR] [--addr IP:PORT] [--memory] [--simulate|--no-sim] [--nodes N] [--latency-ms MS]"
    );
    if msg.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}
