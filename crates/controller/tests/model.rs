//! The model-based property test of the application lifecycle.
//!
//! Random sequences of application versions (components added, removed, renamed, images and
//! traits changed, quick A→B→A flips, and versions whose workflow fails or never finishes in
//! between) are applied to a kubelite cluster. After every settle:
//! - after a version that succeeded, the live Deployments and Services labelled with the
//!   application are exactly what that version wants;
//! - after a version that failed, everything the latest successful version wants is still
//!   there.
//!
//! And a watch on Deployments and Services checks that no object the latest successful version
//! wants was deleted on the way (KubeVela users lost data to both: #7278 and #5256).

mod common;

use common::{Hub, app};
use futures::StreamExt;
use kube::api::DynamicObject;
use kube::runtime::watcher;
use oam::ApplicationPhase;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const APP: &str = "model";
const SEEDS: [u64; 2] = [7, 1234];
const STEPS: usize = 8;

/// splitmix64: small, seeded, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[derive(Clone, Debug, PartialEq)]
struct Comp {
    name: String,
    image: u32,
    replicas: Option<u32>,
    expose: bool,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Outcome {
    Succeeds,
    /// A component never becomes ready: the workflow keeps waiting.
    NeverReady,
    /// A component names a kind the cluster does not serve: the workflow fails.
    Fails,
}

#[derive(Clone, Debug)]
struct Version {
    comps: Vec<Comp>,
    outcome: Outcome,
}

impl Version {
    /// `Kind/name` of every Deployment and Service this version wants.
    fn wants(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for c in &self.comps {
            out.insert(format!("Deployment/{}", c.name));
            if c.expose {
                out.insert(format!("Service/{}", c.name));
            }
        }
        out
    }

    fn to_app(&self) -> Value {
        let mut comps: Vec<Value> = self
            .comps
            .iter()
            .map(|c| {
                let mut traits = Vec::new();
                if let Some(r) = c.replicas {
                    traits.push(json!({"type": "scaler", "properties": {"replicas": r}}));
                }
                if c.expose {
                    traits.push(json!({"type": "expose", "properties": {"port": [80]}}));
                }
                json!({"name": c.name, "type": "webservice",
                       "properties": {"image": format!("img:{}", c.image)}, "traits": traits})
            })
            .collect();
        match self.outcome {
            Outcome::Succeeds => {}
            Outcome::NeverReady => comps.push(json!({
                "name": "stuck", "type": "webservice", "properties": {"image": "img:stuck"},
                "traits": [{"type": "annotations",
                            "properties": {"kubelite.sailplane.dev/fail": "never-ready"}}]
            })),
            Outcome::Fails => comps.push(json!({
                "name": "broken", "type": "k8s-objects", "properties": {"objects": [
                    {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
                ]}
            })),
        }
        app(APP, json!(comps), json!([]))
    }
}

/// The next version: a mutation of the latest successful one, a flip back to an earlier one,
/// or a failing one.
fn next_version(rng: &mut Rng, history: &[Version], fresh: &mut u32) -> Version {
    let base = history
        .iter()
        .rev()
        .find(|v| v.outcome == Outcome::Succeeds)
        .cloned()
        .unwrap_or(Version {
            comps: Vec::new(),
            outcome: Outcome::Succeeds,
        });
    let successes: Vec<&Version> = history
        .iter()
        .filter(|v| v.outcome == Outcome::Succeeds)
        .collect();
    let roll = rng.below(10);
    if roll == 0 && successes.len() >= 2 {
        // A→B→A: the one before the latest success, exactly.
        return successes[successes.len() - 2].clone();
    }
    let mut v = base.clone();
    let new_name = |fresh: &mut u32| {
        *fresh += 1;
        format!("c{fresh}")
    };
    let ops = 1 + rng.below(2);
    for _ in 0..ops {
        match rng.below(6) {
            0 | 1 if v.comps.len() < 4 => {
                let name = new_name(fresh);
                v.comps.push(Comp {
                    name,
                    image: 1,
                    replicas: None,
                    expose: rng.below(2) == 0,
                });
            }
            2 if v.comps.len() > 1 => {
                let i = rng.below(v.comps.len());
                v.comps.remove(i);
            }
            3 if !v.comps.is_empty() => {
                let i = rng.below(v.comps.len());
                v.comps[i].name = new_name(fresh);
            }
            4 if !v.comps.is_empty() => {
                let i = rng.below(v.comps.len());
                v.comps[i].expose = !v.comps[i].expose;
                v.comps[i].replicas = Some(1 + rng.below(3) as u32);
            }
            _ if !v.comps.is_empty() => {
                let i = rng.below(v.comps.len());
                v.comps[i].image += 1;
            }
            _ => {
                let name = new_name(fresh);
                v.comps.push(Comp {
                    name,
                    image: 1,
                    replicas: None,
                    expose: false,
                });
            }
        }
    }
    v.outcome = match rng.below(8) {
        0 => Outcome::NeverReady,
        1 => Outcome::Fails,
        _ => Outcome::Succeeds,
    };
    if v.comps.is_empty() {
        v.comps.push(Comp {
            name: new_name(fresh),
            image: 1,
            replicas: None,
            expose: false,
        });
    }
    v
}

/// Deletions seen by the watch: `Kind/name` and when.
type Deletions = Arc<Mutex<Vec<(String, Instant)>>>;

fn watch_deletions(hub: &Hub, deletions: &Deletions) {
    for (api, kind) in [
        (hub.deployments(), "Deployment"),
        (hub.api("v1", "Service", "services"), "Service"),
    ] {
        let deletions = deletions.clone();
        tokio::spawn(async move {
            let mut stream = watcher::watcher(api, watcher::Config::default()).boxed();
            while let Some(ev) = stream.next().await {
                if let Ok(watcher::Event::Delete(o)) = ev {
                    let o: DynamicObject = o;
                    let name = o.metadata.name.unwrap_or_default();
                    deletions
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((format!("{kind}/{name}"), Instant::now()));
                }
            }
        });
    }
}

async fn live(hub: &Hub) -> BTreeSet<String> {
    let selector = format!("app.oam.dev/name={APP}");
    let mut out = BTreeSet::new();
    for (api, kind) in [
        (hub.deployments(), "Deployment"),
        (hub.api("v1", "Service", "services"), "Service"),
    ] {
        let list = api
            .list(&kube::api::ListParams::default().labels(&selector))
            .await
            .expect("list");
        for o in list.items {
            if o.metadata.deletion_timestamp.is_none() {
                out.insert(format!("{kind}/{}", o.metadata.name.unwrap_or_default()));
            }
        }
    }
    out
}

async fn run(seed: u64) {
    let hub = Hub::start().await;
    let deletions: Deletions = Arc::default();
    watch_deletions(&hub, &deletions);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut rng = Rng(seed);
    let mut fresh = 0;
    let mut history: Vec<Version> = Vec::new();
    let mut boundary = Instant::now();
    let mut trace = Vec::new();
    for step in 0..STEPS {
        let v = next_version(&mut rng, &history, &mut fresh);
        trace.push(format!("{:?} {:?}", v.outcome, v.wants()));
        let ctx = || {
            format!(
                "seed {seed}, step {step}; versions so far:\n  {}",
                trace.join("\n  ")
            )
        };
        let g = hub.apply(&v.to_app()).await;
        let latest_ok = history
            .iter()
            .rev()
            .find(|v| v.outcome == Outcome::Succeeds)
            .map(Version::wants)
            .unwrap_or_default();
        match v.outcome {
            Outcome::Succeeds => {
                hub.wait_app(APP, |st| {
                    st.observed_generation == Some(g)
                        && st.status == Some(ApplicationPhase::Running)
                })
                .await;
                let want = v.wants();
                let start = Instant::now();
                loop {
                    let now = live(&hub).await;
                    if now == want {
                        break;
                    }
                    assert!(
                        start.elapsed() < Duration::from_secs(20),
                        "live objects {now:?} are not what the version wants {want:?}\n{}",
                        ctx()
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            Outcome::NeverReady | Outcome::Fails => {
                let phase = if v.outcome == Outcome::Fails {
                    ApplicationPhase::WorkflowFailed
                } else {
                    ApplicationPhase::RunningWorkflow
                };
                hub.wait_app(APP, |st| {
                    st.observed_generation == Some(g) && st.status == Some(phase.clone())
                })
                .await;
                // Give the failed revision time to do whatever harm it would.
                tokio::time::sleep(Duration::from_millis(700)).await;
                let now = live(&hub).await;
                assert!(
                    latest_ok.is_subset(&now),
                    "after a failed version, {:?} of the latest successful one are gone\n{}",
                    latest_ok.difference(&now).collect::<Vec<_>>(),
                    ctx()
                );
            }
        }
        // Let the watch catch up, then check what was deleted since the last settle.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let protected = if v.outcome == Outcome::Succeeds {
            v.wants()
        } else {
            latest_ok.clone()
        };
        let deleted: Vec<String> = deletions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(_, at)| *at > boundary)
            .map(|(k, _)| k.clone())
            .filter(|k| protected.contains(k))
            .collect();
        assert!(
            deleted.is_empty(),
            "objects the latest successful version wants were deleted on the way: {deleted:?}\n{}",
            ctx()
        );
        boundary = Instant::now();
        history.push(v);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_objects_follow_the_latest_successful_version() {
    for seed in SEEDS {
        run(seed).await;
    }
}
