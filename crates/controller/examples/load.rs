//! The controller's load harness: N applications on one kubelite, measured.
//!
//! ```text
//! cargo build -p kubelite --bin kubelite
//! cargo run -p controller --example load -- [--apps 1000] [--kubelite PATH] [--timeout SECS]
//! ```
//!
//! kubelite runs as a separate process (the `kubelite` binary, next to this example in the
//! target directory unless `--kubelite` names it), so the peak memory reported is the
//! controller's alone (this process: the controller, its kube client and the harness's
//! small bookkeeping). It reports:
//! - the time from the first create until every application is `running`;
//! - reconcile latency p50/p99/max over that phase (the controller's own metrics);
//! - a full resync with rendering forced: every application is touched (an annotation), each
//!   reconcile renders every component again and keeps its state; the time until every
//!   application was reconciled, and the latencies;
//! - the peak resident memory of this process (VmHWM).
//!
//! The whole run has a time limit (`--timeout`, one hour unless told): past it the harness stops
//! kubelite and says which phase it was in and how far it got.

use controller::{Controller, ControllerConfig};
use futures::StreamExt;
use kube::api::{Api, ListParams, Patch, PatchParams};
use oam::{Application, ApplicationPhase};
use serde_json::json;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Args {
    apps: usize,
    kubelite: PathBuf,
    timeout: Duration,
}

/// Where the run is, for the message when it hits its time limit.
type Progress = Arc<Mutex<String>>;

fn note(progress: &Progress, what: String) {
    *progress.lock().unwrap_or_else(|e| e.into_inner()) = what;
}

fn args() -> Result<Args, String> {
    let mut out = Args {
        apps: 1000,
        kubelite: std::env::current_exe()
            .ok()
            .and_then(|p| Some(p.parent()?.parent()?.join("kubelite")))
            .unwrap_or_else(|| PathBuf::from("kubelite")),
        timeout: Duration::from_secs(3600),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--apps" => {
                out.apps = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--apps needs a number")?
            }
            "--kubelite" => out.kubelite = it.next().ok_or("--kubelite needs a path")?.into(),
            "--timeout" => {
                out.timeout = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .map(Duration::from_secs)
                    .ok_or("--timeout needs a number of seconds")?
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(out)
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// The machine's 1, 5 and 15 minute load averages.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

fn ms(d: Option<Duration>) -> String {
    d.map(|d| format!("{:.1} ms", d.as_secs_f64() * 1000.0))
        .unwrap_or_else(|| "-".into())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = args()?;
    let dir = std::env::temp_dir().join(format!("sailplane-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut child = Command::new(&args.kubelite)
        .args(["--memory", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", args.kubelite.display()))?;
    let progress: Progress = Arc::new(Mutex::new("starting kubelite".into()));
    let result = match tokio::time::timeout(args.timeout, run(&args, &mut child, &progress)).await
    {
        Ok(r) => r,
        Err(_) => Err(format!(
            "the load run hit its time limit of {} s (--timeout) while {}; controller peak memory so far {:.1} MiB",
            args.timeout.as_secs(),
            progress.lock().unwrap_or_else(|e| e.into_inner()),
            peak_rss_kib() as f64 / 1024.0
        )
        .into()),
    };
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn run(
    args: &Args,
    child: &mut std::process::Child,
    progress: &Progress,
) -> Result<(), Box<dyn std::error::Error>> {
    let stdout = child.stdout.take().ok_or("kubelite: no stdout")?;
    // Read off the runtime, so that the time limit still applies if kubelite says nothing.
    let kubeconfig = tokio::task::spawn_blocking(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            if let Some(p) = line.ok()?.strip_prefix("kubeconfig: ") {
                return Some(PathBuf::from(p));
            }
        }
        None
    })
    .await?;
    let kubeconfig = kubeconfig.ok_or("kubelite did not say where its kubeconfig is")?;
    let client = testkit::kube_client_for(&kubeconfig).await;
    controller::install(&client).await?;
    let ctl = Controller::new(client.clone(), ControllerConfig::default())?;
    let metrics = ctl.metrics();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(ctl.run(async move {
        let _ = stopped.await;
    }));

    let n = args.apps;
    let apps: Api<Application> = Api::namespaced(client.clone(), "default");
    println!(
        "{n} applications, one webservice with a scaler trait each; {} build; load average {}",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        load_average()
    );
    note(progress, format!("creating {n} applications"));
    let start = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let apps = apps.clone();
            async move {
                let name = format!("load-{i}");
                let app = json!({
                    "apiVersion": "core.oam.dev/v1beta1", "kind": "Application",
                    "metadata": {"name": name, "namespace": "default"},
                    "spec": {"components": [{"name": format!("web-{i}"), "type": "webservice",
                        "properties": {"image": "nginx:1", "port": 80},
                        "traits": [{"type": "scaler", "properties": {"replicas": 1}}]}]}
                });
                apps.patch(
                    &name,
                    &PatchParams::apply("load").force(),
                    &Patch::Apply(&app),
                )
                .await
                .map(|_| ())
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    let created = start.elapsed();
    println!("created in {:.1} s", created.as_secs_f64());
    loop {
        let list = apps.list(&ListParams::default()).await?;
        let ok = list
            .items
            .iter()
            .filter(|a| {
                a.status.as_ref().and_then(|s| s.status.as_ref())
                    == Some(&ApplicationPhase::Running)
            })
            .count();
        if ok == n {
            break;
        }
        note(
            progress,
            format!(
                "waiting for all to run: {ok} of {n} running after {:.0} s ({} reconciles)",
                start.elapsed().as_secs_f64(),
                metrics.reconciles()
            ),
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let all_healthy = start.elapsed();
    println!(
        "all running after {:.1} s; {} reconciles ({} errors); latency p50 {} p99 {} max {}; load average {}",
        all_healthy.as_secs_f64(),
        metrics.reconciles(),
        metrics.errors(),
        ms(metrics.latency_quantile(0.5)),
        ms(metrics.latency_quantile(0.99)),
        ms(metrics.latency_quantile(1.0)),
        load_average(),
    );

    // A full resync with rendering forced.
    metrics.reset();
    note(
        progress,
        format!("touching {n} applications for the resync"),
    );
    let start = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let apps = apps.clone();
            async move {
                apps.patch(
                    &format!("load-{i}"),
                    &PatchParams::default(),
                    &Patch::Merge(json!({"metadata": {"annotations": {"load/touch": "1"}}})),
                )
                .await
                .map(|_| ())
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    while metrics.reconciles() < n as u64 {
        note(
            progress,
            format!(
                "resyncing: {} of {n} reconciles after {:.0} s",
                metrics.reconciles(),
                start.elapsed().as_secs_f64()
            ),
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let resync = start.elapsed();
    println!(
        "full resync (render + state keep of every application) in {:.1} s; {} reconciles ({} errors); latency p50 {} p99 {} max {}",
        resync.as_secs_f64(),
        metrics.reconciles(),
        metrics.errors(),
        ms(metrics.latency_quantile(0.5)),
        ms(metrics.latency_quantile(0.99)),
        ms(metrics.latency_quantile(1.0)),
    );
    println!(
        "controller process peak memory (VmHWM): {:.1} MiB; load average {}",
        peak_rss_kib() as f64 / 1024.0,
        load_average()
    );
    let _ = stop.send(());
    let _ = running.await;
    Ok(())
}
