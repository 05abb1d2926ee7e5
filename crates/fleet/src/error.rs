use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error("cluster {name:?} is not registered (known: {known})")]
    UnknownCluster { name: String, known: String },

    #[error("cluster {cluster}: {api_version} {kind} is not served (is its CRD installed?)")]
    UnknownKind {
        cluster: String,
        api_version: String,
        kind: String,
    },

    #[error("cluster {cluster}: object has no {field}")]
    Invalid {
        cluster: String,
        field: &'static str,
    },

    #[error("cluster {cluster}: {reason}")]
    Registry { cluster: String, reason: String },

    #[error("kubeconfig {}: {reason}", path.display())]
    Kubeconfig {
        path: std::path::PathBuf,
        reason: String,
    },

    #[error("cluster {cluster}: {verb} {what}: {source}")]
    Api {
        cluster: String,
        verb: &'static str,
        what: String,
        #[source]
        source: Box<kube::Error>,
    },
}

impl Error {
    pub(crate) fn api(
        cluster: &str,
        verb: &'static str,
        what: impl Into<String>,
        source: kube::Error,
    ) -> Error {
        Error::Api {
            cluster: cluster.to_string(),
            verb,
            what: what.into(),
            source: Box::new(source),
        }
    }

    /// The API server answered 409 Conflict (a field owned by another manager, a stale write).
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Api { source, .. } if matches!(source.as_ref(), kube::Error::Api(s) if s.code == 409))
    }
}
