//! TLS listener, bearer-token auth, fault injection and lifecycle.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::handlers::{self, Body, error_response};
use crate::registry::ResourceType;
use crate::status::ApiError;
use crate::store::{Backend, MemoryBackend, SqliteBackend, Store};
use crate::{Config, Error, Faults, Handle, Storage, ops, tls};

pub struct App {
    pub store: Arc<Store>,
    pub token: String,
    pub shutdown_rx: watch::Receiver<bool>,
    pub faults: Arc<std::sync::RwLock<Faults>>,
    pub max_body: usize,
    pub addr: String,
    pub bookmark_interval: Duration,
    pub extensions: crate::Extensions,
}

impl App {
    pub fn faults(&self) -> Faults {
        self.faults.read().map(|f| f.clone()).unwrap_or_default()
    }
}

pub struct Shutdown {
    tx: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    accept: Option<JoinHandle<()>>,
}

impl Shutdown {
    pub async fn shutdown(mut self) {
        let _ = self.tx.send(true);
        if let Some(a) = self.accept.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), a).await;
        }
        for t in self.tasks.drain(..) {
            t.abort();
            let _ = t.await;
        }
    }
}

impl Drop for Shutdown {
    fn drop(&mut self) {
        let _ = self.tx.send(true);
        for t in &self.tasks {
            t.abort();
        }
        if let Some(a) = &self.accept {
            a.abort();
        }
    }
}

fn authorized(req: &http::Request<Incoming>, token: &str) -> bool {
    let Some(h) = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(t) = h.strip_prefix("Bearer ").map(str::trim) else {
        return false;
    };
    // constant-time comparison
    t.len() == token.len()
        && t.bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

async fn handle(app: Arc<App>, req: http::Request<Incoming>) -> http::Response<Body> {
    if !authorized(&req, &app.token) {
        return error_response(&ApiError::unauthorized());
    }
    let faults = app.faults();
    if !faults.latency.is_zero() {
        tokio::time::sleep(faults.latency).await;
    }
    let is_watch = req
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"))
        || req.uri().path().contains("/watch/");
    if faults.error_rate > 0.0 && !is_watch && rand::random::<f64>() < faults.error_rate {
        return error_response(&ApiError::internal("injected fault"));
    }
    let path = req.uri().path();
    if let Some(ext) = app
        .extensions
        .0
        .iter()
        .find(|e| path.starts_with(e.prefix()))
        .cloned()
    {
        let (parts, body) = req.into_parts();
        return match handlers::read_body(&app, body).await {
            Ok(bytes) => ext.call(http::Request::from_parts(parts, bytes)).await,
            Err(e) => error_response(&e),
        };
    }
    handlers::route(app, req).await
}

fn seed(store: &Store, nodes: u32) {
    let mut st = store.lock();
    let Some(ns_rt): Option<ResourceType> = st.registry.get("", "namespaces").cloned() else {
        return;
    };
    for ns in [
        "default",
        "kube-system",
        "kube-public",
        "kube-node-lease",
        "vela-system",
    ] {
        let obj = ops::bare(&ns_rt, ns);
        ops::ensure(&mut st, &ns_rt, "", obj);
    }
    if let Some(node_rt) = st.registry.get("", "nodes").cloned() {
        for i in 0..nodes {
            let name = format!("kubelite-node-{i}");
            let mut obj = ops::bare(&node_rt, &name);
            obj["metadata"]["labels"] = serde_json::json!({
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "node-role.kubernetes.io/control-plane": ""
            });
            obj["spec"] = serde_json::json!({"podCIDR": format!("10.244.{i}.0/24")});
            obj["status"] = crate::simulator::node_status(i);
            ops::ensure(&mut st, &node_rt, "", obj);
        }
    }
    if let Some(svc_rt) = st.registry.get("", "services").cloned() {
        let mut obj = ops::bare(&svc_rt, "kubernetes");
        obj["metadata"]["labels"] =
            serde_json::json!({"component": "apiserver", "provider": "kubernetes"});
        obj["spec"] = serde_json::json!({"clusterIP": "10.96.0.1", "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]});
        ops::ensure(&mut st, &svc_rt, "default", obj);
    }
}

/// The URL clients use; an unspecified bind address (0.0.0.0, ::) is reached over loopback.
pub fn url_for(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) if a.ip().is_unspecified() => format!("https://127.0.0.1:{}", a.port()),
        SocketAddr::V4(a) => format!("https://{}:{}", a.ip(), a.port()),
        SocketAddr::V6(a) if a.ip().is_unspecified() => format!("https://[::1]:{}", a.port()),
        SocketAddr::V6(a) => format!("https://[{}]:{}", a.ip(), a.port()),
    }
}

pub async fn start(config: Config) -> Result<Handle, Error> {
    std::fs::create_dir_all(&config.data_dir).map_err(|e| Error::io(&config.data_dir, e))?;
    let listener = TcpListener::bind(config.addr)
        .await
        .map_err(|source| Error::Bind {
            addr: config.addr,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| Error::Bind {
        addr: config.addr,
        source,
    })?;
    let creds = tls::load_or_create(&config.data_dir, &[addr.ip()], &config.tls_sans)?;
    let backend: Box<dyn Backend> = match &config.storage {
        Storage::Memory => Box::new(MemoryBackend),
        Storage::Sqlite { file_name } => {
            Box::new(SqliteBackend::open(&config.data_dir.join(file_name))?)
        }
    };
    let store = Arc::new(Store::open(backend, config.watch_history)?);
    seed(&store, config.nodes);

    let url = url_for(addr);
    let kubeconfig = tls::kubeconfig_yaml(&config.cluster_name, &url, &creds.ca_pem, &creds.token);
    tls::write_private(&config.data_dir.join("kubeconfig"), &kubeconfig)?;

    let (tx, rx) = watch::channel(false);
    let faults = Arc::new(std::sync::RwLock::new(config.faults.clone()));
    let app = Arc::new(App {
        store: store.clone(),
        token: creds.token.clone(),
        shutdown_rx: rx.clone(),
        faults: faults.clone(),
        max_body: config.max_body_bytes,
        addr: addr.to_string(),
        bookmark_interval: Duration::from_secs(2),
        extensions: config.extensions.clone(),
    });

    let mut tasks = vec![tokio::spawn(crate::gc::run(store.clone(), rx.clone()))];
    if let Some(sim) = config.simulate.clone() {
        tasks.push(tokio::spawn(crate::simulator::run(
            store.clone(),
            sim,
            config.nodes,
            rx.clone(),
        )));
    }

    let acceptor = tokio_rustls::TlsAcceptor::from(creds.server_config.clone());
    let accept = tokio::spawn(accept_loop(listener, acceptor, app, rx));

    Ok(Handle {
        addr,
        token: creds.token,
        ca_pem: creds.ca_pem,
        cluster_name: config.cluster_name,
        data_dir: config.data_dir,
        shutdown: Shutdown {
            tx,
            tasks,
            accept: Some(accept),
        },
        store,
        faults,
    })
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    app: Arc<App>,
    mut shutdown: watch::Receiver<bool>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (tcp, _peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let tls =
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(s)) => s,
                    _ => return,
                };
            let svc = service_fn(move |req| {
                let app = app.clone();
                async move { Ok::<_, Infallible>(handle(app, req).await) }
            });
            let builder = Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), svc);
            let _ = watcher.watch(conn.into_owned()).await;
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(3), graceful.shutdown()).await;
}
