//! The multi-cluster load harness: applications delivered to member clusters that are far away.
//!
//! ```text
//! cargo build -p kubelite --bin kubelite
//! cargo run -p controller --example fanout -- --clusters 10 --latency-ms 50 --apps 1 --mode all
//! cargo run -p controller --example fanout -- --clusters 5 --latency-ms 0 --apps 200 --mode spread
//! ```
//!
//! The hub and every member are separate `kubelite` processes (members with `--latency-ms`
//! added to every request and the workload simulator on), joined through the registry as
//! `sail cluster join` would. The controller runs in this process. `--mode all` sends every
//! application to every member (one topology policy selecting them by label); `--mode spread`
//! sends application i to member i mod N. It reports the time from the first create until
//! every application is `running`, this process's CPU time and its peak resident memory.

use controller::{Controller, ControllerConfig};
use futures::StreamExt;
use kube::api::{Api, Patch, PatchParams};
use oam::{Application, ApplicationPhase};
use serde_json::json;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Args {
    clusters: usize,
    latency_ms: u64,
    apps: usize,
    spread: bool,
    kubelite: PathBuf,
}

fn args() -> Result<Args, String> {
    let mut out = Args {
        clusters: 10,
        latency_ms: 50,
        apps: 1,
        spread: false,
        kubelite: std::env::current_exe()
            .ok()
            .and_then(|p| Some(p.parent()?.parent()?.join("kubelite")))
            .unwrap_or_else(|| PathBuf::from("kubelite")),
    };
    let mut it = std::env::args().skip(1);
    let num = |v: Option<String>, what: &str| -> Result<u64, String> {
        v.and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{what} needs a number"))
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--clusters" => out.clusters = num(it.next(), "--clusters")? as usize,
            "--latency-ms" => out.latency_ms = num(it.next(), "--latency-ms")?,
            "--apps" => out.apps = num(it.next(), "--apps")? as usize,
            "--mode" => match it.next().as_deref() {
                Some("all") => out.spread = false,
                Some("spread") => out.spread = true,
                _ => return Err("--mode is all or spread".into()),
            },
            "--kubelite" => out.kubelite = it.next().ok_or("--kubelite needs a path")?.into(),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(out)
}

fn proc_status(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// User + system CPU seconds of this process.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

struct Server {
    child: Child,
    kubeconfig: PathBuf,
    dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start(kubelite: &Path, name: &str, latency_ms: u64) -> Result<Server, String> {
    let dir = std::env::temp_dir().join(format!("sailplane-fanout-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut child = Command::new(kubelite)
        .args([
            "--memory",
            "--simulate",
            "--addr",
            "127.0.0.1:0",
            "--latency-ms",
        ])
        .arg(latency_ms.to_string())
        .arg("--data-dir")
        .arg(&dir)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", kubelite.display()))?;
    let stdout = child.stdout.take().ok_or("kubelite: no stdout")?;
    let mut kubeconfig = None;
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.map_err(|e| e.to_string())?;
        if let Some(p) = line.strip_prefix("kubeconfig: ") {
            kubeconfig = Some(PathBuf::from(p));
            break;
        }
    }
    let kubeconfig = kubeconfig.ok_or("kubelite did not say where its kubeconfig is")?;
    Ok(Server {
        child,
        kubeconfig,
        dir,
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = args()?;
    let hub = start(&args.kubelite, "hub", 0)?;
    let mut members = Vec::new();
    for i in 0..args.clusters {
        members.push(start(&args.kubelite, &format!("m{i}"), args.latency_ms)?);
    }
    let client = testkit::kube_client_for(&hub.kubeconfig).await;
    controller::install(&client).await?;
    for (i, m) in members.iter().enumerate() {
        let name = format!("member-{i}");
        let mut record = fleet::ClusterRecord::from_kubeconfig(&m.kubeconfig, None, &name)?;
        record.labels.insert("bench".into(), "yes".into());
        fleet::registry::create(&client, &record).await?;
    }
    let ctl = Controller::new(client.clone(), ControllerConfig::default())?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(ctl.run(async move {
        let _ = stopped.await;
    }));

    let n = args.apps;
    println!(
        "{n} application(s), {} member cluster(s) with {} ms added to every request, mode {}",
        args.clusters,
        args.latency_ms,
        if args.spread { "spread" } else { "all" }
    );
    let apps: Api<Application> = Api::namespaced(client.clone(), "default");
    let cpu0 = cpu_seconds();
    let start_t = Instant::now();
    let clusters = args.clusters;
    let spread = args.spread;
    futures::stream::iter(0..n)
        .map(|i| {
            let apps = apps.clone();
            async move {
                let name = format!("fan-{i}");
                let topology = if spread {
                    json!({"clusters": [format!("member-{}", i % clusters)]})
                } else {
                    json!({"clusterLabelSelector": {"bench": "yes"}})
                };
                let app = json!({
                    "apiVersion": "core.oam.dev/v1beta1", "kind": "Application",
                    "metadata": {"name": name, "namespace": "default"},
                    "spec": {
                        "components": [{"name": format!("web-{i}"), "type": "webservice",
                            "properties": {"image": "nginx:1", "port": 80}}],
                        "policies": [{"name": "where", "type": "topology", "properties": topology}]
                    }
                });
                apps.patch(
                    &name,
                    &PatchParams::apply("fanout").force(),
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
        .collect::<Result<Vec<()>, _>>()?;
    let deadline = Duration::from_secs(600);
    loop {
        let list = apps.list(&Default::default()).await?;
        let done = list
            .items
            .iter()
            .filter(|a| {
                a.status.as_ref().and_then(|s| s.status.as_ref())
                    == Some(&ApplicationPhase::Running)
            })
            .count();
        if done == n {
            break;
        }
        if start_t.elapsed() > deadline {
            return Err(format!("only {done}/{n} running after {deadline:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let wall = start_t.elapsed();
    let cpu = cpu_seconds() - cpu0;
    println!("all running after {:.2} s", wall.as_secs_f64());
    println!("controller CPU time in that phase: {cpu:.2} s");
    println!(
        "controller peak memory (VmHWM): {} MiB",
        proc_status("VmHWM:") / 1024
    );
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(5), running).await;
    Ok(())
}
