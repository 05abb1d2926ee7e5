//! The CUE packages definitions import beside CUE's own: `vela/builtin`, `vela/kube`,
//! `vela/http`, `vela/util`, `vela/config`, `vela/time`, `vela/multicluster`, `vela/oam`, `vela/query`, `vela/metrics`, `vela/email` and the legacy `vela/op` and `vela/ql`, in which workflow steps declare their
//! operations (`#do`/`#provider`). Sailplane's own text (definitions/packages/vela), with the
//! names and parameters of KubeVela's; the workflow engine serves the operations.

/// `(import path, file name, source)` of every package.
pub const PACKAGES: &[(&str, &str, &str)] = &[
    (
        "vela/builtin",
        "vela/builtin.cue",
        include_str!("../../../definitions/packages/vela/builtin.cue"),
    ),
    (
        "vela/kube",
        "vela/kube.cue",
        include_str!("../../../definitions/packages/vela/kube.cue"),
    ),
    (
        "vela/http",
        "vela/http.cue",
        include_str!("../../../definitions/packages/vela/http.cue"),
    ),
    (
        "vela/util",
        "vela/util.cue",
        include_str!("../../../definitions/packages/vela/util.cue"),
    ),
    (
        "vela/config",
        "vela/config.cue",
        include_str!("../../../definitions/packages/vela/config.cue"),
    ),
    (
        "vela/time",
        "vela/time.cue",
        include_str!("../../../definitions/packages/vela/time.cue"),
    ),
    (
        "vela/multicluster",
        "vela/multicluster.cue",
        include_str!("../../../definitions/packages/vela/multicluster.cue"),
    ),
    (
        "vela/oam",
        "vela/oam.cue",
        include_str!("../../../definitions/packages/vela/oam.cue"),
    ),
    (
        "vela/query",
        "vela/query.cue",
        include_str!("../../../definitions/packages/vela/query.cue"),
    ),
    (
        "vela/ql",
        "vela/ql.cue",
        include_str!("../../../definitions/packages/vela/ql.cue"),
    ),
    (
        "vela/metrics",
        "vela/metrics.cue",
        include_str!("../../../definitions/packages/vela/metrics.cue"),
    ),
    (
        "vela/email",
        "vela/email.cue",
        include_str!("../../../definitions/packages/vela/email.cue"),
    ),
    (
        "vela/op",
        "vela/op.cue",
        include_str!("../../../definitions/packages/vela/op.cue"),
    ),
];

/// A CUE runtime that knows the packages.
pub fn runtime() -> cue::Runtime {
    let mut rt = cue::Runtime::new();
    for (path, file, src) in PACKAGES {
        rt.register_package(path, &[(file, src)]);
    }
    rt
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_package_compiles() {
        let rt = super::runtime();
        for (path, _, _) in super::PACKAGES {
            let src = format!("import \"{path}\"\nx: 1\n");
            rt.compile("t.cue", &src)
                .unwrap_or_else(|e| panic!("{path}: {e}"));
        }
    }
}
