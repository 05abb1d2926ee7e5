//! Shared test helpers: start kubelite servers, get kube clients, run kubectl.
//!
//! Panics on setup failure (this is test code) with messages that say what went wrong.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Output;

pub use kubelite;

/// A kubelite server started for a test, with a kube client and its own temp data dir.
pub struct TestCluster {
    pub handle: kubelite::Handle,
    pub client: kube::Client,
    pub dir: tempfile::TempDir,
    config: kubelite::Config,
}

impl std::fmt::Debug for TestCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCluster")
            .field("url", &self.handle.url())
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

impl TestCluster {
    /// SQLite storage (`hub.db` in the temp dir), simulator on, port 0: for restart tests.
    pub async fn start_sqlite() -> TestCluster {
        Self::start_with(|c| {
            c.storage = kubelite::Storage::Sqlite {
                file_name: "hub.db".into(),
            }
        })
        .await
    }

    /// In-memory storage, simulator on, port 0.
    pub async fn start() -> TestCluster {
        Self::start_with(|_| {}).await
    }

    /// Start with a tweaked config (data_dir is a fresh temp dir; storage defaults to memory).
    pub async fn start_with(f: impl FnOnce(&mut kubelite::Config)) -> TestCluster {
        let dir = tempfile::tempdir().expect("testkit: cannot create temp dir");
        let mut config = kubelite::Config::new(dir.path());
        config.storage = kubelite::Storage::Memory;
        f(&mut config);
        Self::launch(dir, config).await
    }

    async fn launch(dir: tempfile::TempDir, config: kubelite::Config) -> TestCluster {
        let handle = kubelite::start(config.clone())
            .await
            .unwrap_or_else(|e| panic!("testkit: kubelite failed to start: {e}"));
        let client = kube_client_for(&handle.kubeconfig_path()).await;
        TestCluster {
            handle,
            client,
            dir,
            config,
        }
    }

    pub fn kubeconfig_path(&self) -> PathBuf {
        self.handle.kubeconfig_path()
    }

    /// Run kubectl against this cluster.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        kubectl(&self.kubeconfig_path(), args)
    }

    /// `kubectl apply -f -` with this YAML; panics (with kubectl's output) when it fails.
    pub fn apply(&self, yaml: &str) -> String {
        ok_stdout(&kubectl_stdin(
            &self.kubeconfig_path(),
            &["apply", "-f", "-"],
            yaml,
        ))
    }

    /// The server's URL.
    pub fn url(&self) -> String {
        self.handle.url()
    }

    /// Stop and start again on the same data dir (and the same port when possible).
    pub async fn restart(self) -> TestCluster {
        self.stop().await.start().await
    }

    /// Stop the server but keep its data dir (and remember its port), to simulate a cluster
    /// that goes away; `StoppedCluster::start` brings it back on the same port when free.
    pub async fn stop(self) -> StoppedCluster {
        let TestCluster {
            handle,
            client,
            dir,
            mut config,
        } = self;
        drop(client);
        config.addr = handle.addr();
        handle
            .shutdown()
            .await
            .unwrap_or_else(|e| panic!("testkit: kubelite shutdown failed: {e}"));
        StoppedCluster { dir, config }
    }

    /// Stop the server.
    pub async fn shutdown(self) {
        self.handle
            .shutdown()
            .await
            .unwrap_or_else(|e| panic!("testkit: kubelite shutdown failed: {e}"));
    }
}

/// A kube client from a kubeconfig file (via `kube::Config::from_custom_kubeconfig`).
pub fn kube_client_for(kubeconfig_path: &Path) -> impl Future<Output = kube::Client> + use<> {
    let path = kubeconfig_path.to_path_buf();
    async move {
        let kc = kube::config::Kubeconfig::read_from(&path)
            .unwrap_or_else(|e| panic!("testkit: cannot read kubeconfig {}: {e}", path.display()));
        let cfg =
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .unwrap_or_else(|e| panic!("testkit: invalid kubeconfig {}: {e}", path.display()));
        kube::Client::try_from(cfg)
            .unwrap_or_else(|e| panic!("testkit: cannot build kube client: {e}"))
    }
}

/// Run `/usr/bin/kubectl --kubeconfig <path> <args>`.
pub fn kubectl(kubeconfig: &Path, args: &[&str]) -> Output {
    std::process::Command::new("/usr/bin/kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .env(
            "KUBECACHEDIR",
            kubeconfig
                .parent()
                .unwrap_or(Path::new("/tmp"))
                .join(".kube-cache"),
        )
        .output()
        .unwrap_or_else(|e| panic!("testkit: cannot run kubectl: {e}"))
}

/// Run kubectl with stdin.
pub fn kubectl_stdin(kubeconfig: &Path, args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = std::process::Command::new("/usr/bin/kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .env(
            "KUBECACHEDIR",
            kubeconfig
                .parent()
                .unwrap_or(Path::new("/tmp"))
                .join(".kube-cache"),
        )
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("testkit: cannot run kubectl: {e}"));
    if let Some(mut s) = child.stdin.take() {
        s.write_all(stdin.as_bytes())
            .unwrap_or_else(|e| panic!("testkit: cannot write kubectl stdin: {e}"));
    }
    child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("testkit: kubectl failed: {e}"))
}

/// Assert a kubectl run succeeded and return its stdout.
pub fn ok_stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "kubectl failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A stopped TestCluster (data dir kept).
pub struct StoppedCluster {
    pub dir: tempfile::TempDir,
    config: kubelite::Config,
}

impl std::fmt::Debug for StoppedCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoppedCluster")
            .field("addr", &self.config.addr)
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

impl StoppedCluster {
    /// The kubeconfig path (still valid for the same port after `start`).
    pub fn kubeconfig_path(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// Start again on the same data dir, on the same port if it can be bound.
    pub async fn start(self) -> TestCluster {
        let StoppedCluster { dir, mut config } = self;
        for _ in 0..20 {
            match kubelite::start(config.clone()).await {
                Ok(handle) => {
                    let client = kube_client_for(&handle.kubeconfig_path()).await;
                    return TestCluster {
                        handle,
                        client,
                        dir,
                        config,
                    };
                }
                Err(kubelite::Error::Bind { .. }) => {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(e) => panic!("testkit: kubelite failed to start again: {e}"),
            }
        }
        config.addr.set_port(0);
        TestCluster::launch(dir, config).await
    }
}
