//! CA, server certificate, token and kubeconfig.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use rand::Rng;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

use crate::Error;

pub struct Credentials {
    pub ca_pem: String,
    pub token: String,
    pub server_config: Arc<rustls::ServerConfig>,
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "kubelite-ca");
    dn.push(DnType::OrganizationName, "sailplane");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2099, 1, 1);
    params
}

fn read_opt(path: &Path) -> Result<Option<String>, Error> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

pub fn write_private(path: &Path, contents: &str) -> Result<(), Error> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts.open(&tmp).map_err(|e| Error::io(&tmp, e))?;
    f.write_all(contents.as_bytes())
        .map_err(|e| Error::io(&tmp, e))?;
    f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    Ok(())
}

/// Load the CA and token from `dir` or create them; always issue a fresh server certificate
/// for `ips` (plus 127.0.0.1, ::1, localhost).
pub fn load_or_create(dir: &Path, ips: &[IpAddr], extra: &[String]) -> Result<Credentials, Error> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let ca_crt_path = dir.join("ca.crt");
    let ca_key_path = dir.join("ca.key");
    let (ca_pem, ca_key) = match (read_opt(&ca_crt_path)?, read_opt(&ca_key_path)?) {
        (Some(crt), Some(key)) => {
            let kp = KeyPair::from_pem(&key).map_err(|e| Error::Pem {
                path: ca_key_path.clone(),
                message: e.to_string(),
            })?;
            (crt, kp)
        }
        _ => {
            let kp = KeyPair::generate()?;
            let cert = ca_params().self_signed(&kp)?;
            let pem = cert.pem();
            write_private(&ca_key_path, &kp.serialize_pem())?;
            write_private(&ca_crt_path, &pem)?;
            (pem, kp)
        }
    };
    let issuer = Issuer::new(ca_params(), ca_key);

    let token_path = dir.join("token");
    let token = match read_opt(&token_path)? {
        Some(t) if !t.trim().is_empty() => t.trim().to_string(),
        _ => {
            let mut bytes = [0u8; 32];
            rand::rng().fill(&mut bytes);
            let t = bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
            write_private(&token_path, &t)?;
            t
        }
    };

    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "kubelite");
    params.distinguished_name = dn;
    let mut sans = vec![
        SanType::DnsName("localhost".try_into()?),
        SanType::DnsName("kubernetes.default.svc".try_into()?),
        SanType::IpAddress(IpAddr::from([127, 0, 0, 1])),
        SanType::IpAddress(IpAddr::from(std::net::Ipv6Addr::LOCALHOST)),
    ];
    for ip in ips.iter().filter(|ip| !ip.is_unspecified()) {
        let san = SanType::IpAddress(*ip);
        if !sans.contains(&san) {
            sans.push(san);
        }
    }
    for name in extra {
        let san = match name.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(name.as_str().try_into()?),
        };
        if !sans.contains(&san) {
            sans.push(san);
        }
    }
    params.subject_alt_names = sans;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let now = chrono::Utc::now();
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(chrono::Datelike::year(&now) + 5, 1, 1);
    let server_key = KeyPair::generate()?;
    let server_cert = params.signed_by(&server_key, &issuer)?;
    write_private(&dir.join("server.crt"), &server_cert.pem())?;
    write_private(&dir.join("server.key"), &server_key.serialize_pem())?;

    let cert_der = server_cert.der().clone();
    let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(
        rustls::pki_types::PrivatePkcs8KeyDer::from(server_key.serialize_der()),
    );
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![cert_der], key_der)?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Credentials {
        ca_pem,
        token,
        server_config: Arc::new(cfg),
    })
}

pub fn kubeconfig_yaml(name: &str, url: &str, ca_pem: &str, token: &str) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem.as_bytes());
    let name = yaml_str(name);
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: {name}
  cluster:
    server: {url}
    certificate-authority-data: {ca}
users:
- name: {name}
  user:
    token: {token}
contexts:
- name: {name}
  context:
    cluster: {name}
    user: {name}
    namespace: default
current-context: {name}
preferences: {{}}
"
    )
}

fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"kubelite\"".to_string())
}
