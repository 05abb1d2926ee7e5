//! The cluster registry: member clusters as KubeVela stores them, one Secret per cluster in
//! `vela-system` labelled `cluster.core.oam.dev/cluster-credential-type`.
//!
//! The Secret's data holds `endpoint` (the API server URL), `ca.crt` (PEM; absent means the
//! server certificate is not verified, as cluster-gateway does) and either `token`
//! (`ServiceAccountToken`) or `tls.crt` + `tls.key` (`X509Certificate`). Every other label on
//! the Secret is a label of the cluster, which topology policies select on. `local` is the hub
//! and never has a Secret.
//!
//! Credentials never leave this module except as a kube client: [`Credential`]'s `Debug` prints
//! no secret material, and nothing here logs them.

use crate::Error;
use base64::Engine;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams, ObjectMeta, PostParams};
use kube::config::{
    AuthInfo, Cluster as KubeconfigCluster, Context, KubeConfigOptions, Kubeconfig, NamedAuthInfo,
    NamedCluster, NamedContext,
};
use secrecy::{ExposeSecret, SecretString};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where cluster Secrets live on the hub.
pub const NAMESPACE: &str = "vela-system";
/// The label that marks a Secret as a cluster and says how to authenticate.
pub const LABEL_CREDENTIAL_TYPE: &str = "cluster.core.oam.dev/cluster-credential-type";
/// Optional label naming how the endpoint is reached (`Const`, `ClusterProxy`).
pub const LABEL_ENDPOINT_TYPE: &str = "cluster.core.oam.dev/cluster-endpoint-type";
/// Optional annotation with a human-friendly alias.
pub const ANNOTATION_ALIAS: &str = "cluster.core.oam.dev/cluster-alias";

/// Labels on a cluster Secret that describe the Secret, not the cluster.
const RESERVED_LABELS: &[&str] = &[LABEL_CREDENTIAL_TYPE, LABEL_ENDPOINT_TYPE];

/// How long a connection attempt to a member may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a member may take to answer one request.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How Sailplane authenticates to a member cluster.
#[derive(Clone)]
pub enum Credential {
    /// A bearer token, usually a ServiceAccount's.
    Token(SecretString),
    /// A client certificate and its key, both PEM.
    X509 {
        cert_pem: Vec<u8>,
        key_pem: SecretString,
    },
}

impl Credential {
    /// The value of the credential-type label.
    pub fn type_name(&self) -> &'static str {
        match self {
            Credential::Token(_) => "ServiceAccountToken",
            Credential::X509 { .. } => "X509Certificate",
        }
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret material, not even its length.
        write!(f, "{}(redacted)", self.type_name())
    }
}

/// A member cluster as registered on the hub.
#[derive(Clone, Debug)]
pub struct ClusterRecord {
    pub name: String,
    pub endpoint: String,
    /// PEM of the CA that signs the member's serving certificate; `None` skips verification.
    pub ca_pem: Option<Vec<u8>>,
    pub credential: Credential,
    /// The cluster's labels (the Secret's labels minus the reserved ones).
    pub labels: BTreeMap<String, String>,
    pub alias: Option<String>,
    /// The Secret's resourceVersion, to notice changes.
    pub resource_version: Option<String>,
}

impl ClusterRecord {
    /// Read a cluster Secret. Errors name the Secret and the missing or malformed key.
    pub fn from_secret(secret: &Secret) -> Result<ClusterRecord, Error> {
        let name = secret.metadata.name.clone().unwrap_or_default();
        let bad = |reason: String| Error::Registry {
            cluster: name.clone(),
            reason,
        };
        let labels = secret.metadata.labels.clone().unwrap_or_default();
        let Some(cred_type) = labels.get(LABEL_CREDENTIAL_TYPE) else {
            return Err(bad(format!(
                "Secret {NAMESPACE}/{name} has no {LABEL_CREDENTIAL_TYPE} label"
            )));
        };
        let data = secret.data.clone().unwrap_or_default();
        let get = |key: &str| data.get(key).map(|b| b.0.clone()).filter(|b| !b.is_empty());
        let text = |key: &str| -> Result<Option<String>, Error> {
            get(key)
                .map(|b| {
                    String::from_utf8(b)
                        .map(|s| s.trim().to_string())
                        .map_err(|_| bad(format!("data.{key} is not UTF-8 text")))
                })
                .transpose()
        };
        let endpoint = text("endpoint")?.ok_or_else(|| {
            bad("data.endpoint is missing (expected the API server URL)".to_string())
        })?;
        validate_endpoint(&endpoint).map_err(&bad)?;
        let credential = match cred_type.as_str() {
            "ServiceAccountToken" => {
                let token = text("token")?.ok_or_else(|| {
                    bad("data.token is missing (credential type ServiceAccountToken)".to_string())
                })?;
                Credential::Token(SecretString::from(token))
            }
            "X509Certificate" => {
                let cert_pem = get("tls.crt").ok_or_else(|| {
                    bad("data.tls.crt is missing (credential type X509Certificate)".to_string())
                })?;
                let key = text("tls.key")?.ok_or_else(|| {
                    bad("data.tls.key is missing (credential type X509Certificate)".to_string())
                })?;
                Credential::X509 {
                    cert_pem,
                    key_pem: SecretString::from(key),
                }
            }
            other => {
                return Err(bad(format!(
                    "credential type {other:?} is not supported (expected ServiceAccountToken or X509Certificate)"
                )));
            }
        };
        let cluster_labels = labels
            .into_iter()
            .filter(|(k, _)| !RESERVED_LABELS.contains(&k.as_str()))
            .collect();
        Ok(ClusterRecord {
            name: name.clone(),
            endpoint,
            ca_pem: get("ca.crt"),
            credential,
            labels: cluster_labels,
            alias: secret
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(ANNOTATION_ALIAS).cloned()),
            resource_version: secret.metadata.resource_version.clone(),
        })
    }

    /// The Secret that registers this cluster.
    pub fn to_secret(&self) -> Secret {
        let mut labels = self.labels.clone();
        labels.insert(
            LABEL_CREDENTIAL_TYPE.to_string(),
            self.credential.type_name().to_string(),
        );
        let mut data = BTreeMap::new();
        data.insert(
            "endpoint".to_string(),
            ByteString(self.endpoint.as_bytes().to_vec()),
        );
        if let Some(ca) = &self.ca_pem {
            data.insert("ca.crt".to_string(), ByteString(ca.clone()));
        }
        match &self.credential {
            Credential::Token(t) => {
                data.insert(
                    "token".to_string(),
                    ByteString(t.expose_secret().as_bytes().to_vec()),
                );
            }
            Credential::X509 { cert_pem, key_pem } => {
                data.insert("tls.crt".to_string(), ByteString(cert_pem.clone()));
                data.insert(
                    "tls.key".to_string(),
                    ByteString(key_pem.expose_secret().as_bytes().to_vec()),
                );
            }
        }
        Secret {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some(NAMESPACE.to_string()),
                labels: Some(labels),
                annotations: self
                    .alias
                    .as_ref()
                    .map(|a| BTreeMap::from([(ANNOTATION_ALIAS.to_string(), a.to_string())])),
                ..Default::default()
            },
            type_: Some("Opaque".to_string()),
            data: Some(data),
            ..Default::default()
        }
    }

    /// The credential type, as the label spells it.
    pub fn credential_type(&self) -> &'static str {
        self.credential.type_name()
    }

    /// A kube client for the member, with the gateway's timeouts.
    pub async fn client(&self) -> Result<kube::Client, Error> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut auth = AuthInfo::default();
        match &self.credential {
            Credential::Token(t) => auth.token = Some(t.clone()),
            Credential::X509 { cert_pem, key_pem } => {
                auth.client_certificate_data = Some(b64.encode(cert_pem));
                auth.client_key_data = Some(SecretString::from(
                    b64.encode(key_pem.expose_secret().as_bytes()),
                ));
            }
        }
        let kubeconfig = Kubeconfig {
            clusters: vec![NamedCluster {
                name: self.name.clone(),
                cluster: Some(KubeconfigCluster {
                    server: Some(self.endpoint.clone()),
                    certificate_authority_data: self.ca_pem.as_ref().map(|ca| b64.encode(ca)),
                    insecure_skip_tls_verify: Some(self.ca_pem.is_none()),
                    ..Default::default()
                }),
                other: Default::default(),
            }],
            auth_infos: vec![NamedAuthInfo {
                name: self.name.clone(),
                auth_info: Some(auth),
                other: Default::default(),
            }],
            contexts: vec![NamedContext {
                name: self.name.clone(),
                context: Some(Context {
                    cluster: self.name.clone(),
                    user: Some(self.name.clone()),
                    ..Default::default()
                }),
                other: Default::default(),
            }],
            current_context: Some(self.name.clone()),
            ..Default::default()
        };
        let mut config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(|e| Error::Registry {
                    cluster: self.name.clone(),
                    reason: format!("credentials do not make a client configuration: {e}"),
                })?;
        config.connect_timeout = Some(CONNECT_TIMEOUT);
        config.read_timeout = Some(READ_TIMEOUT);
        kube::Client::try_from(config).map_err(|e| Error::Registry {
            cluster: self.name.clone(),
            reason: format!("cannot build a client: {e}"),
        })
    }

    /// Read a member's credentials from a kubeconfig file (`sail cluster join`). Certificates and
    /// tokens may be inline or in files next to the kubeconfig; exec plugins and auth providers
    /// are refused with the reason, because the hub must be able to reach the member on its own.
    pub fn from_kubeconfig(
        path: &Path,
        context: Option<&str>,
        name: &str,
    ) -> Result<ClusterRecord, Error> {
        let bad = |reason: String| Error::Kubeconfig {
            path: path.to_path_buf(),
            reason,
        };
        let kc = Kubeconfig::read_from(path).map_err(|e| bad(e.to_string()))?;
        let ctx_name = context
            .map(str::to_string)
            .or_else(|| kc.current_context.clone())
            .ok_or_else(|| bad("has no current-context; pass --context".to_string()))?;
        let ctx = kc
            .contexts
            .iter()
            .find(|c| c.name == ctx_name)
            .and_then(|c| c.context.clone())
            .ok_or_else(|| {
                let known: Vec<&str> = kc.contexts.iter().map(|c| c.name.as_str()).collect();
                bad(format!(
                    "has no context {ctx_name:?} (contexts: {})",
                    known.join(", ")
                ))
            })?;
        let cluster = kc
            .clusters
            .iter()
            .find(|c| c.name == ctx.cluster)
            .and_then(|c| c.cluster.clone())
            .ok_or_else(|| {
                bad(format!(
                    "context {ctx_name:?} names cluster {:?}, which is not in the file",
                    ctx.cluster
                ))
            })?;
        let user_name = ctx.user.clone().unwrap_or_default();
        let user = kc
            .auth_infos
            .iter()
            .find(|u| u.name == user_name)
            .and_then(|u| u.auth_info.clone())
            .ok_or_else(|| {
                bad(format!(
                    "context {ctx_name:?} names user {user_name:?}, which is not in the file"
                ))
            })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let endpoint = cluster
            .server
            .clone()
            .ok_or_else(|| bad(format!("cluster {:?} has no server", ctx.cluster)))?;
        validate_endpoint(&endpoint).map_err(&bad)?;
        let ca_pem = inline_or_file(
            cluster.certificate_authority_data.as_deref(),
            cluster.certificate_authority.as_deref(),
            base,
            "certificate-authority",
        )
        .map_err(&bad)?;
        if ca_pem.is_none() && cluster.insecure_skip_tls_verify != Some(true) {
            return Err(bad(format!(
                "cluster {:?} has no certificate-authority; the hub needs it to verify the member (or set insecure-skip-tls-verify: true explicitly)",
                ctx.cluster
            )));
        }
        if user.exec.is_some() || user.auth_provider.is_some() {
            return Err(bad(format!(
                "user {user_name:?} authenticates with an exec plugin or auth provider, which the hub cannot run; \
                 give it a ServiceAccount token or a client certificate (e.g. `kubectl create token ...`)"
            )));
        }
        let token = match (&user.token, &user.token_file) {
            (Some(t), _) => Some(t.expose_secret().trim().to_string()),
            (None, Some(file)) => Some(
                std::fs::read_to_string(resolve(base, file))
                    .map_err(|e| bad(format!("token-file {file}: {e}")))?
                    .trim()
                    .to_string(),
            ),
            (None, None) => None,
        };
        let cert = inline_or_file(
            user.client_certificate_data.as_deref(),
            user.client_certificate.as_deref(),
            base,
            "client-certificate",
        )
        .map_err(&bad)?;
        let key_data = user
            .client_key_data
            .as_ref()
            .map(|k| k.expose_secret().to_string());
        let key = inline_or_file(
            key_data.as_deref(),
            user.client_key.as_deref(),
            base,
            "client-key",
        )
        .map_err(&bad)?;
        let credential = match (token, cert, key) {
            (Some(t), _, _) if !t.is_empty() => Credential::Token(SecretString::from(t)),
            (_, Some(cert_pem), Some(key)) => Credential::X509 {
                cert_pem,
                key_pem: SecretString::from(
                    String::from_utf8(key)
                        .map_err(|_| bad("client-key is not PEM text".to_string()))?,
                ),
            },
            _ => {
                return Err(bad(format!(
                    "user {user_name:?} has neither a token nor a client certificate and key"
                )));
            }
        };
        validate_name(name)?;
        Ok(ClusterRecord {
            name: name.to_string(),
            endpoint,
            ca_pem,
            credential,
            labels: BTreeMap::new(),
            alias: None,
            resource_version: None,
        })
    }
}

fn resolve(base: &Path, file: &str) -> PathBuf {
    let p = Path::new(file);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// Inline base64 data wins over a file, as in kubectl.
fn inline_or_file(
    data: Option<&str>,
    file: Option<&str>,
    base: &Path,
    what: &str,
) -> Result<Option<Vec<u8>>, String> {
    if let Some(d) = data.filter(|d| !d.trim().is_empty()) {
        return base64::engine::general_purpose::STANDARD
            .decode(d.trim())
            .map(Some)
            .map_err(|e| format!("{what}-data is not base64: {e}"));
    }
    match file {
        Some(f) => std::fs::read(resolve(base, f))
            .map(Some)
            .map_err(|e| format!("{what} {f}: {e}")),
        None => Ok(None),
    }
}

fn validate_endpoint(endpoint: &str) -> Result<(), String> {
    match endpoint.parse::<http::Uri>() {
        Ok(uri) if uri.scheme_str() == Some("https") && uri.host().is_some() => Ok(()),
        Ok(uri) if uri.scheme_str() == Some("http") && uri.host().is_some() => Err(format!(
            "endpoint {endpoint:?} is plain HTTP; credentials are only sent over HTTPS"
        )),
        _ => Err(format!(
            "endpoint {endpoint:?} is not an https:// URL of an API server"
        )),
    }
}

/// Cluster names are Secret names (DNS-1123 subdomains) and `local` is the hub.
pub fn validate_name(name: &str) -> Result<(), Error> {
    let bad = |reason: &str| Error::Registry {
        cluster: name.to_string(),
        reason: reason.to_string(),
    };
    if name == crate::LOCAL {
        return Err(bad("`local` is the hub's own name"));
    }
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(bad(
            "a cluster name must be lower-case letters, digits, '-' and '.', starting and ending with a letter or digit",
        ))
    }
}

/// The selector that finds cluster Secrets.
pub fn list_params() -> ListParams {
    ListParams::default().labels(LABEL_CREDENTIAL_TYPE)
}

/// Every registered member, sorted by name. A Secret that does not parse is reported, not
/// skipped silently: it comes back in the second list with its error.
pub async fn list(hub: &kube::Client) -> Result<(Vec<ClusterRecord>, Vec<Error>), Error> {
    let api: Api<Secret> = Api::namespaced(hub.clone(), NAMESPACE);
    let secrets = api
        .list(&list_params())
        .await
        .map_err(|e| Error::api(crate::LOCAL, "list", "cluster Secrets", e))?;
    let mut records = Vec::new();
    let mut broken = Vec::new();
    for s in &secrets.items {
        match ClusterRecord::from_secret(s) {
            Ok(r) => records.push(r),
            Err(e) => broken.push(e),
        }
    }
    records.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((records, broken))
}

/// One member by name; `Ok(None)` when no Secret has that name.
pub async fn get(hub: &kube::Client, name: &str) -> Result<Option<ClusterRecord>, Error> {
    let api: Api<Secret> = Api::namespaced(hub.clone(), NAMESPACE);
    let secret = api
        .get_opt(name)
        .await
        .map_err(|e| Error::api(crate::LOCAL, "get", format!("cluster Secret {name}"), e))?;
    match secret {
        Some(s) if has_credential_label(&s) => ClusterRecord::from_secret(&s).map(Some),
        _ => Ok(None),
    }
}

fn has_credential_label(s: &Secret) -> bool {
    s.metadata
        .labels
        .as_ref()
        .is_some_and(|l| l.contains_key(LABEL_CREDENTIAL_TYPE))
}

/// Register a member. Refuses a name that is taken.
pub async fn create(hub: &kube::Client, record: &ClusterRecord) -> Result<(), Error> {
    validate_name(&record.name)?;
    let api: Api<Secret> = Api::namespaced(hub.clone(), NAMESPACE);
    match api.create(&PostParams::default(), &record.to_secret()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Err(Error::Registry {
            cluster: record.name.clone(),
            reason: "a cluster of that name is already registered (detach it first, or pick another --name)".to_string(),
        }),
        Err(e) => Err(Error::api(
            crate::LOCAL,
            "create",
            format!("cluster Secret {}", record.name),
            e,
        )),
    }
}

/// Write a changed record back (labels, alias). Uses the record's resourceVersion, so a
/// concurrent change is a conflict rather than a lost update.
pub async fn update(hub: &kube::Client, record: &ClusterRecord) -> Result<(), Error> {
    let api: Api<Secret> = Api::namespaced(hub.clone(), NAMESPACE);
    let mut secret = record.to_secret();
    secret.metadata.resource_version = record.resource_version.clone();
    api.replace(&record.name, &PostParams::default(), &secret)
        .await
        .map(|_| ())
        .map_err(|e| {
            Error::api(
                crate::LOCAL,
                "update",
                format!("cluster Secret {}", record.name),
                e,
            )
        })
}

/// Remove a member's registration. Returns whether there was one.
pub async fn remove(hub: &kube::Client, name: &str) -> Result<bool, Error> {
    let api: Api<Secret> = Api::namespaced(hub.clone(), NAMESPACE);
    match api.delete(name, &Default::default()).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(e) => Err(Error::api(
            crate::LOCAL,
            "delete",
            format!("cluster Secret {name}"),
            e,
        )),
    }
}

/// What a probe of a member found.
#[derive(Clone, Debug)]
pub struct Probe {
    /// `v1.31.0`-style git version.
    pub version: String,
    pub nodes: usize,
}

/// Ask a cluster for its version and count its nodes.
pub async fn probe(name: &str, client: &kube::Client) -> Result<Probe, Error> {
    let info = client
        .apiserver_version()
        .await
        .map_err(|e| Error::api(name, "get", "/version", e))?;
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    let list = nodes
        .list_metadata(&ListParams::default())
        .await
        .map_err(|e| Error::api(name, "list", "nodes", e))?;
    Ok(Probe {
        version: info.git_version,
        nodes: list.items.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(labels: &[(&str, &str)], data: &[(&str, &str)]) -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some("prod".into()),
                namespace: Some(NAMESPACE.into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn token_secret_round_trips_and_keeps_labels() {
        let s = secret(
            &[
                (LABEL_CREDENTIAL_TYPE, "ServiceAccountToken"),
                ("region", "eu"),
            ],
            &[
                ("endpoint", "https://10.0.0.1:6443"),
                ("token", "abc"),
                ("ca.crt", "PEM"),
            ],
        );
        let r = ClusterRecord::from_secret(&s).unwrap();
        assert_eq!(r.endpoint, "https://10.0.0.1:6443");
        assert_eq!(r.labels.get("region").map(String::as_str), Some("eu"));
        assert!(!r.labels.contains_key(LABEL_CREDENTIAL_TYPE));
        let back = ClusterRecord::from_secret(&r.to_secret()).unwrap();
        assert_eq!(back.labels, r.labels);
        assert_eq!(back.ca_pem.as_deref(), Some(&b"PEM"[..]));
        assert!(matches!(back.credential, Credential::Token(t) if t.expose_secret() == "abc"));
    }

    #[test]
    fn debug_never_shows_credentials() {
        let s = secret(
            &[(LABEL_CREDENTIAL_TYPE, "X509Certificate")],
            &[
                ("endpoint", "https://m:6443"),
                ("tls.crt", "CERT"),
                ("tls.key", "SUPER-SECRET-KEY"),
            ],
        );
        let r = ClusterRecord::from_secret(&s).unwrap();
        let shown = format!("{r:?}");
        assert!(!shown.contains("SUPER-SECRET-KEY"), "{shown}");
        assert!(shown.contains("X509Certificate(redacted)"), "{shown}");
    }

    #[test]
    fn broken_secrets_name_the_key() {
        type Pairs = &'static [(&'static str, &'static str)];
        let cases: &[(Pairs, Pairs, &str)] = &[
            (
                &[],
                &[],
                "no cluster.core.oam.dev/cluster-credential-type label",
            ),
            (
                &[(LABEL_CREDENTIAL_TYPE, "ServiceAccountToken")],
                &[("token", "x")],
                "data.endpoint is missing",
            ),
            (
                &[(LABEL_CREDENTIAL_TYPE, "ServiceAccountToken")],
                &[("endpoint", "https://m")],
                "data.token is missing",
            ),
            (
                &[(LABEL_CREDENTIAL_TYPE, "X509Certificate")],
                &[("endpoint", "https://m"), ("tls.crt", "c")],
                "data.tls.key is missing",
            ),
            (
                &[(LABEL_CREDENTIAL_TYPE, "Dynamic")],
                &[("endpoint", "https://m")],
                "\"Dynamic\" is not supported",
            ),
            (
                &[(LABEL_CREDENTIAL_TYPE, "ServiceAccountToken")],
                &[("endpoint", "http://m:80"), ("token", "t")],
                "plain HTTP",
            ),
        ];
        for (labels, data, want) in cases {
            let err = ClusterRecord::from_secret(&secret(labels, data))
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{err:?} should contain {want:?}");
            assert!(err.contains("prod"), "{err:?} names the cluster");
        }
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_name("prod-eu.1").is_ok());
        for bad in ["", "local", "Prod", "-x", "x-", "a_b"] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn kubeconfig_with_exec_plugin_is_refused_with_the_reason() {
        let dir = std::env::temp_dir().join(format!("fleet-kc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: k\n  cluster:\n    server: https://m:6443\n    certificate-authority-data: UEVN\ncontexts:\n- name: c\n  context:\n    cluster: k\n    user: u\nusers:\n- name: u\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: gke-gcloud-auth-plugin\n",
        )
        .unwrap();
        let err = ClusterRecord::from_kubeconfig(&path, None, "m")
            .unwrap_err()
            .to_string();
        assert!(err.contains("exec plugin"), "{err}");
        let err = ClusterRecord::from_kubeconfig(&path, Some("nope"), "m")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no context \"nope\""), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
