//! Load harness: `cargo bench -p kubelite --bench api` (add `-- quick` for a smaller run).
//!
//! Measures writes per second (memory, SQLite), listing 10,000 objects, watch fan-out to 100
//! watchers, and resident memory per 10,000 objects. Prints a Markdown table.

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;
use testkit::TestCluster;

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"bench": "yes", "shard": format!("{}", name.len() % 7)}},
        "data": {"key": "value", "another": "a somewhat longer value to look like real config"}
    }))
    .expect("configmap")
}

async fn create_many(api: &Api<ConfigMap>, prefix: &str, n: usize, concurrency: usize) -> Duration {
    let start = Instant::now();
    stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            let name = format!("{prefix}-{i}");
            async move {
                api.create(&PostParams::default(), &cm(&name))
                    .await
                    .map(|_| ())
            }
        })
        .buffer_unordered(concurrency)
        .try_collect::<Vec<()>>()
        .await
        .expect("create");
    start.elapsed()
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|x| x.parse().ok()))
        })
        .unwrap_or(0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let scale = if quick { 10 } else { 1 };
    let mut rows: Vec<(String, String)> = Vec::new();

    // writes per second, memory
    let tc = TestCluster::start_with(|c| c.simulate = None).await;
    let api: Api<ConfigMap> = Api::namespaced(tc.client.clone(), "default");
    let n = 2000 / scale;
    let t = create_many(&api, "w", n, 16).await;
    rows.push((
        "creates/s, memory storage (16 concurrent clients)".into(),
        format!("{:.0}", n as f64 / t.as_secs_f64()),
    ));
    tc.shutdown().await;

    // writes per second, SQLite
    let tc = TestCluster::start_with(|c| {
        c.simulate = None;
        c.storage = kubelite::Storage::Sqlite {
            file_name: "hub.db".into(),
        };
    })
    .await;
    let api: Api<ConfigMap> = Api::namespaced(tc.client.clone(), "default");
    let n = 1000 / scale;
    let t = create_many(&api, "w", n, 16).await;
    rows.push((
        "creates/s, SQLite synchronous=FULL (16 concurrent clients)".into(),
        format!("{:.0}", n as f64 / t.as_secs_f64()),
    ));
    tc.shutdown().await;

    // list of 10,000 objects and memory per 10,000 objects
    let tc = TestCluster::start_with(|c| c.simulate = None).await;
    let api: Api<ConfigMap> = Api::namespaced(tc.client.clone(), "default");
    let n = 10_000 / scale;
    let before = rss_kib();
    create_many(&api, "l", n, 32).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = rss_kib();
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        let l = api.list(&ListParams::default()).await.expect("list");
        assert_eq!(l.items.len(), n);
        best = best.min(t.elapsed());
    }
    rows.push((
        format!("list {n} ConfigMaps (best of 5, incl. client decode)"),
        format!("{:.1} ms", best.as_secs_f64() * 1000.0),
    ));
    let t = Instant::now();
    let l = api
        .list(&ListParams::default().labels("shard=3"))
        .await
        .expect("list");
    rows.push((
        format!(
            "list with label selector over {n} (matched {})",
            l.items.len()
        ),
        format!("{:.1} ms", t.elapsed().as_secs_f64() * 1000.0),
    ));
    rows.push((
        format!("resident memory growth for {n} ConfigMaps (server + client, watch history)"),
        format!(
            "{:.1} MiB ({:.2} KiB/object)",
            (after.saturating_sub(before)) as f64 / 1024.0,
            after.saturating_sub(before) as f64 / n as f64
        ),
    ));
    tc.shutdown().await;

    // watch fan-out
    let tc = TestCluster::start_with(|c| c.simulate = None).await;
    let api: Api<ConfigMap> = Api::namespaced(tc.client.clone(), "default");
    let watchers = 100;
    let events = 100 / scale;
    let rv = api
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .unwrap_or_default();
    let mut handles = Vec::new();
    for _ in 0..watchers {
        let s = api
            .watch(&WatchParams::default(), &rv)
            .await
            .expect("watch");
        handles.push(tokio::spawn(async move {
            let mut s = s.boxed();
            let mut got = 0;
            while got < events {
                match s.try_next().await {
                    Ok(Some(WatchEvent::Added(_))) => got += 1,
                    Ok(Some(_)) => {}
                    _ => break,
                }
            }
            Instant::now()
        }));
    }
    let t = Instant::now();
    create_many(&api, "f", events, 8).await;
    let mut last = t;
    for h in handles {
        last = last.max(h.await.expect("watcher"));
    }
    let total = last.duration_since(t);
    rows.push((
        format!("watch fan-out: {events} creates to {watchers} watchers"),
        format!(
            "{:.0} ms until all delivered ({:.0} events/s)",
            total.as_secs_f64() * 1000.0,
            (events * watchers) as f64 / total.as_secs_f64()
        ),
    ));
    tc.shutdown().await;

    println!("| measurement | result |\n|---|---|");
    for (k, v) in rows {
        println!("| {k} | {v} |");
    }
}
