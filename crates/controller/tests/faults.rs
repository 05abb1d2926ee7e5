//! An API server that fails requests: nothing the application still wants is deleted, and
//! garbage collection finishes once the server answers again.

mod common;

use common::{Hub, app, web};
use futures::StreamExt;
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use testkit::kubelite::Faults;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_requests_never_delete_what_is_wanted_and_garbage_is_collected_later() {
    // A hang is a failure, not a CI run that never ends.
    tokio::time::timeout(Duration::from_secs(180), faults_scenario())
        .await
        .expect("the scenario finished within 3 minutes");
}

async fn faults_scenario() {
    let hub = Hub::start().await;
    let g = hub
        .apply(&app(
            "flaky",
            json!([web("keep", "nginx:1"), web("drop", "nginx:1")]),
            json!([]),
        ))
        .await;
    hub.wait_running("flaky", g, 1).await;

    // Watch every Deployment deletion (watches are not failed by the fault injection).
    let deleted: Arc<Mutex<Vec<String>>> = Arc::default();
    {
        let deleted = deleted.clone();
        let api = hub.deployments();
        tokio::spawn(async move {
            // With backoff, as every watcher of ours: its list requests fail too, and without
            // it the retries spin a worker thread of this two-thread runtime.
            let mut s = watcher::watcher(api, watcher::Config::default())
                .default_backoff()
                .boxed();
            while let Some(ev) = s.next().await {
                if let Ok(watcher::Event::Delete(o)) = ev {
                    deleted
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(o.metadata.name.unwrap_or_default());
                }
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Half of all requests fail while v2 (which drops `drop` and changes `keep`) rolls out.
    hub.cluster.handle.set_faults(Faults {
        error_rate: 0.5,
        ..Faults::default()
    });
    let v2 = app("flaky", json!([web("keep", "nginx:2")]), json!([]));
    let mut applied = None;
    for _ in 0..50 {
        if let Ok(a) = hub
            .apps()
            .patch(
                "flaky",
                &kube::api::PatchParams::apply("test").force(),
                &kube::api::Patch::Apply(&v2),
            )
            .await
        {
            applied = a.metadata.generation;
            break;
        }
    }
    let g = applied.expect("the application was written despite the faults");
    tokio::time::sleep(Duration::from_secs(5)).await;
    hub.cluster.handle.set_faults(Faults::default());

    hub.wait_running("flaky", g, 2).await;
    hub.eventually("`drop` to be collected", || async {
        !hub.exists(&hub.deployments(), "drop").await
    })
    .await;
    assert!(hub.exists(&hub.deployments(), "keep").await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let deleted = deleted.lock().unwrap_or_else(|p| p.into_inner()).clone();
    assert_eq!(deleted, ["drop"], "only what v2 does not want was deleted");
}
