//! Preparing a hub: the OAM CRDs and the built-in definitions, applied with server-side apply so
//! that a newer binary updates them and leaves alone what others changed elsewhere.

use crate::{Error, SYSTEM_NAMESPACE};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;
use render::DefinitionKind;
use std::time::Duration;

/// Field manager of what the installation writes.
pub const INSTALL_MANAGER: &str = "sailplane";

/// Install (or update) the CRDs and the built-in definitions on the hub.
pub async fn install(client: &kube::Client) -> Result<(), Error> {
    let params = PatchParams::apply(INSTALL_MANAGER).force();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in oam::crds() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        crds.patch(&name, &params, &Patch::Apply(&crd))
            .await
            .map_err(Error::hub("install CRD", name))?;
    }
    for kind in DefinitionKind::ALL {
        wait_served(client, kind).await?;
    }
    for def in render::builtin::definitions()? {
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), SYSTEM_NAMESPACE, &api_resource(def.kind));
        api.patch(
            &def.name,
            &params,
            &Patch::Apply(&def.to_object(SYSTEM_NAMESPACE)),
        )
        .await
        .map_err(Error::hub(
            "install",
            format!("{} {}", def.kind.kind_name(), def.name),
        ))?;
    }
    Ok(())
}

pub(crate) fn api_resource(kind: DefinitionKind) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(oam::GROUP, "v1beta1", kind.kind_name()),
        kind.plural(),
    )
}

/// A CRD is served a moment after it is created; wait for it (at most 5 seconds).
async fn wait_served(client: &kube::Client, kind: DefinitionKind) -> Result<(), Error> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), SYSTEM_NAMESPACE, &api_resource(kind));
    let mut last = None;
    for _ in 0..100 {
        match api.list(&Default::default()).await {
            Ok(_) => return Ok(()),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(Error::Invalid(format!(
        "the hub does not serve {} after installing its CRD: {}",
        kind.plural(),
        last.map(|e| e.to_string()).unwrap_or_default()
    )))
}
