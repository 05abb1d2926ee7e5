//! Finding and reaching the hub: `--kubeconfig`, then `$KUBECONFIG`, then
//! `$SAIL_HOME/kubeconfig` (`~/.sailplane/kubeconfig`).

use crate::Error;
use kube::config::{KubeConfigOptions, Kubeconfig};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `$SAIL_HOME`, or `~/.sailplane`.
pub fn sail_home() -> PathBuf {
    if let Some(h) = std::env::var_os("SAIL_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".sailplane")
}

/// The kubeconfig the CLI uses, and why.
pub fn kubeconfig_path(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    if let Some(k) = std::env::var_os("KUBECONFIG").filter(|k| !k.is_empty()) {
        // The first file of a KUBECONFIG list.
        if let Some(first) = std::env::split_paths(&k).next() {
            return first;
        }
    }
    sail_home().join("kubeconfig")
}

/// A connected hub.
pub struct Hub {
    pub client: kube::Client,
    pub server: String,
    pub default_namespace: String,
}

/// A client for the hub that answered a version request.
pub async fn connect(flag: Option<&Path>) -> Result<Hub, Error> {
    let path = kubeconfig_path(flag);
    let hub = client_for(&path).await?;
    let reach = tokio::time::timeout(Duration::from_secs(10), hub.client.apiserver_version()).await;
    let reason = match reach {
        Ok(Ok(_)) => return Ok(hub),
        Ok(Err(e)) => root_cause(&e),
        Err(_) => "no answer within 10s".to_string(),
    };
    Err(Error::Unreachable {
        server: hub.server,
        kubeconfig: path.display().to_string(),
        reason,
    })
}

/// A client built from a kubeconfig file, without talking to the server yet.
pub async fn client_for(path: &Path) -> Result<Hub, Error> {
    if !path.exists() {
        return Err(Error::NoHub(format!(
            "{} does not exist. Start the embedded hub with `sail server` (or `sail quickstart`), or pass --kubeconfig",
            path.display()
        )));
    }
    let kc = Kubeconfig::read_from(path).map_err(|e| Error::File {
        path: path.display().to_string(),
        message: format!("not a usable kubeconfig: {e}"),
    })?;
    let mut config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|e| Error::File {
            path: path.display().to_string(),
            message: format!("not a usable kubeconfig: {e}"),
        })?;
    config.connect_timeout = Some(Duration::from_secs(5));
    let server = config.cluster_url.to_string();
    let default_namespace = config.default_namespace.clone();
    let client = kube::Client::try_from(config).map_err(|e| Error::File {
        path: path.display().to_string(),
        message: format!("cannot build a client: {e}"),
    })?;
    Ok(Hub {
        client,
        server,
        default_namespace,
    })
}

/// The innermost cause of an error, which is what a person needs ("connection refused").
pub fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur: &dyn std::error::Error = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}
