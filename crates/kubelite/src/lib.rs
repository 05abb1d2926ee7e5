//! kubelite: a lightweight Kubernetes-API-compatible server.
//!
//! It speaks the Kubernetes REST protocol over TLS with bearer-token auth, keeps objects in
//! memory or SQLite, and can simulate workloads (Deployments, StatefulSets, DaemonSets, Jobs,
//! Pods, Services) moving through their status stages. See the crate README.

mod apply;
mod discovery;
mod error;
mod gc;
mod handlers;
mod openapi;
mod ops;
mod patch;
mod protobuf;
mod registry;
mod selector;
mod server;
mod simulator;
mod status;
mod store;
mod table;
mod tls;
mod util;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use error::Error;
pub use handlers::Body;

/// Serves the paths under its prefix (e.g. `/clusters/`) beside the Kubernetes API, after the
/// server has authenticated the caller with its token. The embedder's hook for things that are
/// not Kubernetes objects, such as Sailplane's proxy to member clusters.
pub trait Extension: Send + Sync + 'static {
    /// Paths starting with this are the extension's.
    fn prefix(&self) -> &str;
    /// Answer one request (its body read in full, within the server's size limit).
    fn call(
        &self,
        req: http::Request<hyper::body::Bytes>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = http::Response<Body>> + Send>>;
}

/// The extensions of a server, in the order they are asked.
#[derive(Clone, Default)]
pub struct Extensions(pub Vec<Arc<dyn Extension>>);

impl std::fmt::Debug for Extensions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|e| e.prefix()))
            .finish()
    }
}

/// Where objects live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// Objects are lost when the server stops.
    Memory,
    /// Objects are stored in an SQLite database in `data_dir` (WAL, synchronous=FULL).
    Sqlite { file_name: String },
}

impl Default for Storage {
    fn default() -> Self {
        Storage::Sqlite {
            file_name: "hub.db".to_string(),
        }
    }
}

/// Workload simulator settings.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Time between a Pod being created and it becoming Running + Ready.
    pub pod_ready_delay: Duration,
    /// Time between a Pod being created and it being scheduled (Pending -> Running).
    pub pod_start_delay: Duration,
    /// Time for a Job's pods to complete.
    pub job_complete_delay: Duration,
    /// Tick of the reconcile loop that moves objects forward.
    pub tick: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            pod_ready_delay: Duration::from_millis(300),
            pod_start_delay: Duration::from_millis(100),
            job_complete_delay: Duration::from_millis(400),
            tick: Duration::from_millis(50),
        }
    }
}

/// Faults injected on demand (all off by default).
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Extra latency added to every API request.
    pub latency: Duration,
    /// Fraction (0.0..=1.0) of non-watch requests answered with 500 InternalError.
    pub error_rate: f64,
    /// Close every watch stream after this long (simulates dropped watches).
    pub drop_watches_after: Option<Duration>,
}

/// Server configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to bind; port 0 picks a free port.
    pub addr: SocketAddr,
    /// Directory for ca.crt, ca.key, server.crt, server.key, token, kubeconfig and the database.
    pub data_dir: PathBuf,
    /// Storage backend.
    pub storage: Storage,
    /// Workload simulator (None = off).
    pub simulate: Option<SimConfig>,
    /// Number of simulated Nodes.
    pub nodes: u32,
    /// Name used for the cluster, context and user in the kubeconfig.
    pub cluster_name: String,
    /// Fault injection.
    pub faults: Faults,
    /// Number of watch events kept for resuming watches (older resourceVersions get 410 Gone).
    pub watch_history: usize,
    /// Maximum accepted request body in bytes (larger: 413).
    pub max_body_bytes: usize,
    /// Extra subject alternative names (DNS names or IPs) for the server certificate, e.g. a
    /// host name when binding 0.0.0.0. Always included: 127.0.0.1, ::1, localhost, bound IP.
    pub tls_sans: Vec<String>,
    /// Extra handlers for paths beside the Kubernetes API (authenticated like the rest).
    pub extensions: Extensions,
}

impl Config {
    /// Defaults: 127.0.0.1:0, SQLite `hub.db`, simulator on, one node, cluster name "kubelite".
    pub fn new(data_dir: impl Into<PathBuf>) -> Config {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.into(),
            storage: Storage::default(),
            simulate: Some(SimConfig::default()),
            nodes: 1,
            cluster_name: "kubelite".to_string(),
            faults: Faults::default(),
            watch_history: 10_000,
            max_body_bytes: 3 * 1024 * 1024,
            tls_sans: Vec::new(),
            extensions: Extensions::default(),
        }
    }
}

/// A running server.
pub struct Handle {
    addr: SocketAddr,
    token: String,
    ca_pem: String,
    cluster_name: String,
    data_dir: PathBuf,
    shutdown: server::Shutdown,
    store: Arc<store::Store>,
    faults: Arc<std::sync::RwLock<Faults>>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("addr", &self.addr)
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

impl Handle {
    /// The actual bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://IP:PORT`.
    pub fn url(&self) -> String {
        server::url_for(self.addr)
    }

    /// The bearer token every request must carry.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The CA certificate (PEM) that signed the server certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A kubeconfig for this server (https server, certificate-authority-data, bearer token).
    pub fn kubeconfig_yaml(&self) -> String {
        tls::kubeconfig_yaml(&self.cluster_name, &self.url(), &self.ca_pem, &self.token)
    }

    /// `data_dir/kubeconfig`, written at start with mode 0600.
    pub fn kubeconfig_path(&self) -> PathBuf {
        self.data_dir.join("kubeconfig")
    }

    /// The data directory.
    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }

    /// Change the injected faults of the running server (applies to new requests/watches).
    pub fn set_faults(&self, faults: Faults) {
        match self.faults.write() {
            Ok(mut f) => *f = faults,
            Err(e) => *e.into_inner() = faults,
        }
    }

    /// Forget watch history up to the current resourceVersion: every watch resumed from an
    /// older version gets 410 Gone (as after an etcd compaction).
    pub fn compact(&self) {
        let mut st = self.store.lock();
        let rv = st.rv;
        st.compact(rv);
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.store.current_rv()
    }

    /// Graceful stop: stop accepting, close watches, flush storage.
    pub async fn shutdown(self) -> Result<(), Error> {
        self.shutdown.shutdown().await;
        self.store.flush()
    }
}

/// Start a server.
pub async fn start(config: Config) -> Result<Handle, Error> {
    server::start(config).await
}
