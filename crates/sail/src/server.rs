//! `sail server`: the embedded hub. kubelite (SQLite in the data folder) with the OAM CRDs, the
//! built-in definitions and the controller, in one process.

use crate::Error;
use controller::{Controller, ControllerConfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// How often the hub re-reads the cluster registry (a join is also noticed at first use).
const REGISTRY_SYNC: Duration = Duration::from_secs(10);

/// `/metrics` on the hub's API port (Prometheus text), for callers with the hub's token: the
/// controller's workflow and step durations.
struct MetricsEndpoint {
    metrics: Arc<OnceLock<Arc<controller::Metrics>>>,
}

impl kubelite::Extension for MetricsEndpoint {
    fn prefix(&self) -> &str {
        "/metrics"
    }

    fn call(
        &self,
        _req: http::Request<bytes::Bytes>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = http::Response<kubelite::Body>> + Send>>
    {
        use http_body_util::BodyExt;
        let text = self
            .metrics
            .get()
            .map(|m| m.prometheus_text())
            .unwrap_or_default();
        let mut resp = http::Response::new(
            http_body_util::Full::new(bytes::Bytes::from(text))
                .map_err(|never| match never {})
                .boxed_unsync(),
        );
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; version=0.0.4"),
        );
        Box::pin(std::future::ready(resp))
    }
}

/// `/clusters/{name}/proxy/...` on the hub's API port, for authenticated callers. The fleet is
/// set once the hub's own client exists (the server must be listening before that).
struct ClusterProxy {
    fleet: Arc<OnceLock<fleet::Fleet>>,
}

impl kubelite::Extension for ClusterProxy {
    fn prefix(&self) -> &str {
        fleet::proxy::PREFIX
    }

    fn call(
        &self,
        req: http::Request<bytes::Bytes>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = http::Response<kubelite::Body>> + Send>>
    {
        let fleet = self.fleet.get().cloned();
        Box::pin(async move {
            match fleet {
                Some(f) => fleet::proxy::forward(&f, req).await,
                None => {
                    let mut r = http::Response::new(kubelite::Body::default());
                    *r.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
                    r
                }
            }
        })
    }
}

pub struct ServerArgs {
    pub addr: SocketAddr,
    pub data: PathBuf,
    pub memory: bool,
    /// How the controller retries a step's provider errors.
    pub retries: workflow::Retries,
    /// How far the re-check of a waiting step backs off.
    pub max_wait_backoff: std::time::Duration,
}

/// A running embedded hub.
pub struct EmbeddedHub {
    kubelite: kubelite::Handle,
    controller: tokio::task::JoinHandle<()>,
    registry: tokio::task::JoinHandle<()>,
    stop: tokio::sync::oneshot::Sender<()>,
}

impl EmbeddedHub {
    pub fn kubeconfig_path(&self) -> PathBuf {
        self.kubelite.kubeconfig_path()
    }

    pub fn url(&self) -> String {
        self.kubelite.url()
    }

    /// Stop the controller, then the API server.
    ///
    /// Reconciles in flight get two seconds to finish; after that the controller is stopped
    /// where it is, which is safe: every step's outcome is in the Application status and a
    /// restart continues from there.
    pub async fn shutdown(self) -> Result<(), Error> {
        let _ = self.stop.send(());
        self.registry.abort();
        let controller = self.controller;
        let abort = controller.abort_handle();
        if tokio::time::timeout(Duration::from_secs(2), controller)
            .await
            .is_err()
        {
            abort.abort();
        }
        self.kubelite.shutdown().await?;
        Ok(())
    }
}

/// Start kubelite, install the CRDs and the built-in definitions, start the controller.
pub async fn start(args: &ServerArgs) -> Result<EmbeddedHub, Error> {
    std::fs::create_dir_all(&args.data)
        .map_err(Error::io(format!("create {}", args.data.display())))?;
    let mut config = kubelite::Config::new(&args.data);
    config.addr = args.addr;
    config.cluster_name = "sailplane".into();
    config.simulate = Some(kubelite::SimConfig::default());
    config.nodes = 3;
    config.storage = if args.memory {
        kubelite::Storage::Memory
    } else {
        kubelite::Storage::Sqlite {
            file_name: "hub.db".into(),
        }
    };
    let proxy_fleet = Arc::new(OnceLock::new());
    config.extensions.0.push(Arc::new(ClusterProxy {
        fleet: proxy_fleet.clone(),
    }));
    let metrics = Arc::new(OnceLock::new());
    config.extensions.0.push(Arc::new(MetricsEndpoint {
        metrics: metrics.clone(),
    }));
    let handle = kubelite::start(config).await?;
    let hub = crate::hub::client_for(&handle.kubeconfig_path()).await?;
    controller::install(&hub.client).await?;
    let fleet = fleet::Fleet::new(hub.client.clone());
    let _ = proxy_fleet.set(fleet.clone());
    let registry = tokio::spawn(fleet.keep_synced(REGISTRY_SYNC, std::future::pending()));
    let ctl = Controller::new(
        hub.client.clone(),
        ControllerConfig {
            retries: args.retries,
            max_wait_backoff: args.max_wait_backoff,
            ..ControllerConfig::default()
        },
    )?;
    let _ = metrics.set(ctl.metrics());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let controller = tokio::spawn(ctl.run(async move {
        let _ = stopped.await;
    }));
    Ok(EmbeddedHub {
        kubelite: handle,
        controller,
        registry,
        stop,
    })
}

/// `sail server` in the foreground until Ctrl-C or SIGTERM. The signal handlers are installed
/// before anything starts, so a signal during start-up still ends in a clean stop.
pub async fn run(args: ServerArgs) -> Result<(), Error> {
    let stop = StopSignal::install()?;
    let hub = start(&args).await?;
    eprintln!("sailplane hub listening on {}", hub.url());
    eprintln!("kubeconfig: {}", hub.kubeconfig_path().display());
    eprintln!(
        "  kubectl --kubeconfig {} get applications -A",
        hub.kubeconfig_path().display()
    );
    stop.wait().await;
    eprintln!("stopping the hub");
    hub.shutdown().await
}

/// Ctrl-C or SIGTERM.
struct StopSignal {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl StopSignal {
    fn install() -> Result<StopSignal, Error> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let term = signal(SignalKind::terminate())
                .map_err(Error::io("install the SIGTERM handler"))?;
            let int =
                signal(SignalKind::interrupt()).map_err(Error::io("install the SIGINT handler"))?;
            Ok(StopSignal { term, int })
        }
        #[cfg(not(unix))]
        Ok(StopSignal {})
    }

    async fn wait(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
