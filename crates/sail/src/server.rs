//! `sail server`: the embedded hub. kubelite (SQLite in the data folder) with the OAM CRDs, the
//! built-in definitions and the controller, in one process.

use crate::Error;
use controller::{Controller, ControllerConfig, SYSTEM_NAMESPACE};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub struct ServerArgs {
    pub addr: SocketAddr,
    pub data: PathBuf,
    pub memory: bool,
}

/// A running embedded hub.
pub struct EmbeddedHub {
    kubelite: kubelite::Handle,
    controller: tokio::task::JoinHandle<()>,
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
    pub async fn shutdown(self) -> Result<(), Error> {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(10), self.controller).await;
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
    let handle = kubelite::start(config).await?;
    let hub = crate::hub::client_for(&handle.kubeconfig_path()).await?;
    install(&hub.client).await?;
    let ctl = Controller::new(hub.client.clone(), ControllerConfig::default())?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let controller = tokio::spawn(ctl.run(async move {
        let _ = stopped.await;
    }));
    Ok(EmbeddedHub {
        kubelite: handle,
        controller,
        stop,
    })
}

/// Install (or update) the CRDs and the built-in definitions, as server-side apply, so that a
/// restart with a newer binary updates them and leaves what users changed elsewhere alone.
pub async fn install(client: &kube::Client) -> Result<(), Error> {
    let params = PatchParams::apply("sailplane").force();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in oam::crds() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        crds.patch(&name, &params, &Patch::Apply(&crd))
            .await
            .map_err(Error::api(format!("install CRD {name}")))?;
    }
    // The definitions' kinds are served once their CRDs are established.
    for kind in render::DefinitionKind::ALL {
        wait_served(client, kind).await?;
    }
    for def in render::builtin::definitions()? {
        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("core.oam.dev", "v1beta1", def.kind.kind_name()),
            def.kind.plural(),
        );
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), SYSTEM_NAMESPACE, &ar);
        api.patch(
            &def.name,
            &params,
            &Patch::Apply(&def.to_object(SYSTEM_NAMESPACE)),
        )
        .await
        .map_err(Error::api(format!(
            "install {} {}",
            def.kind.kind_name(),
            def.name
        )))?;
    }
    Ok(())
}

async fn wait_served(client: &kube::Client, kind: render::DefinitionKind) -> Result<(), Error> {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("core.oam.dev", "v1beta1", kind.kind_name()),
        kind.plural(),
    );
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), SYSTEM_NAMESPACE, &ar);
    let mut last = None;
    for _ in 0..100 {
        match api.list(&Default::default()).await {
            Ok(_) => return Ok(()),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(Error::Failed(format!(
        "the hub does not serve {} after installing its CRD: {}",
        kind.plural(),
        last.map(|e| e.to_string()).unwrap_or_default()
    )))
}

/// `sail server` in the foreground until Ctrl-C or SIGTERM.
pub async fn run(args: ServerArgs) -> Result<(), Error> {
    let hub = start(&args).await?;
    eprintln!("sailplane hub listening on {}", hub.url());
    eprintln!("kubeconfig: {}", hub.kubeconfig_path().display());
    eprintln!(
        "  kubectl --kubeconfig {} get applications -A",
        hub.kubeconfig_path().display()
    );
    wait_for_signal().await;
    eprintln!("stopping the hub");
    hub.shutdown().await
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
