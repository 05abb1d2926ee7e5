//! `crates/oam/crds/sailplane-crds.yaml` is what `oam::crds_yaml()` generates, so the CRDs
//! can be installed with `kubectl apply -f` without building. Regenerate it with
//! `UPDATE_CRDS=1 cargo test -p oam --test crds_file`.

use std::path::PathBuf;

#[test]
fn checked_in_crds_are_current() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("crds/sailplane-crds.yaml");
    let generated = oam::crds_yaml();
    if std::env::var_os("UPDATE_CRDS").is_some() {
        std::fs::write(&path, &generated).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return;
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run UPDATE_CRDS=1 cargo test -p oam --test crds_file)",
            path.display()
        )
    });
    assert!(
        on_disk == generated,
        "{} is stale: run UPDATE_CRDS=1 cargo test -p oam --test crds_file",
        path.display()
    );
}
