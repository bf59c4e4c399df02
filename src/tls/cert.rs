//! Certificates: the self-signed one kept in `<state-dir>/tls/` (made on
//! first run, reused after, remade when it no longer covers the names
//! browsers will use), the user's own, and the rustls config serving either.

use std::fs;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

pub const CERT_FILE: &str = "cert.pem";
pub const KEY_FILE: &str = "key.pem";

/// A certificate ready to serve.
pub struct Loaded {
    pub config: Arc<rustls::ServerConfig>,
    /// SHA-256 of the leaf certificate, as browsers show it.
    pub fingerprint: String,
}

/// `AB:CD:...`: SHA-256 over the certificate's DER, the form browsers'
/// certificate viewers show.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The names a self-signed certificate must cover: loopback, this host,
/// the listen IP when specific, and the host of `--public-url`.
pub fn needed_names(
    listen: SocketAddr,
    public_url: Option<&str>,
    hostname: Option<&str>,
) -> Vec<String> {
    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    let mut add = |n: String| {
        if !n.is_empty() && !names.iter().any(|m| m.eq_ignore_ascii_case(&n)) {
            names.push(n);
        }
    };
    if let Some(h) = hostname.filter(|h| h.is_ascii()) {
        add(h.to_ascii_lowercase());
    }
    if !listen.ip().is_unspecified() {
        add(listen.ip().to_string());
    }
    if let Some(h) = public_url.and_then(url_host) {
        add(h);
    }
    names
}

/// The host of `scheme://host[:port]/...`, brackets removed from IPv6.
pub fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split_once(']')?.0
    } else {
        authority.split(':').next()?
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// The machine's host name, for the certificate.
pub fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates
    // on success when the name fits, and we stop at the first NUL anyway.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8(buf[..end].to_vec())
        .ok()
        .filter(|s| !s.is_empty())
}

/// Does this certificate cover every name, and is it valid now?
pub fn covers(cert_der: &[u8], names: &[String]) -> bool {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(cert_der) else {
        return false;
    };
    if !cert.validity().is_valid() {
        return false;
    }
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return false;
    };
    use x509_parser::extensions::GeneralName;
    names.iter().all(|name| {
        let ip: Option<IpAddr> = name.parse().ok();
        san.value.general_names.iter().any(|g| match (g, ip) {
            (GeneralName::DNSName(d), None) => d.eq_ignore_ascii_case(name),
            (GeneralName::IPAddress(bytes), Some(IpAddr::V4(v4))) => *bytes == v4.octets(),
            (GeneralName::IPAddress(bytes), Some(IpAddr::V6(v6))) => *bytes == v6.octets(),
            _ => false,
        })
    })
}

/// The self-signed certificate in `dir` (created 0700), reused when it
/// covers `names`, otherwise (re)generated. Returns the cert and key paths
/// and whether a new one was made.
pub fn self_signed(dir: &Path, names: &[String]) -> Result<(PathBuf, PathBuf, bool)> {
    let cert_path = dir.join(CERT_FILE);
    let key_path = dir.join(KEY_FILE);
    if let Ok(pem) = fs::read(&cert_path) {
        let reusable = CertificateDer::from_pem_slice(&pem).is_ok_and(|der| covers(&der, names))
            && fs::read(&key_path).is_ok_and(|k| PrivateKeyDer::from_pem_slice(&k).is_ok());
        if reusable {
            // The key must stay private even if someone loosened it.
            fs::set_permissions(&key_path, fs::Permissions::from_mode(0o600))
                .with_context(|| format!("tightening {}", key_path.display()))?;
            return Ok((cert_path, key_path, false));
        }
        tracing::info!(
            "the self-signed certificate in {} does not cover {} (or expired, or is unreadable): making a new one",
            dir.display(),
            names.join(", ")
        );
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("restricting {}", dir.display()))?;
    let mut params = rcgen::CertificateParams::new(names.to_vec())
        .context("building the self-signed certificate's names")?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "oriel self-signed");
    let key = rcgen::KeyPair::generate().context("generating a key")?;
    let cert = params
        .self_signed(&key)
        .context("signing the self-signed certificate")?;
    write_atomic(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
    write_atomic(&cert_path, cert.pem().as_bytes(), 0o644)?;
    Ok((cert_path, key_path, true))
}

/// Write to a temporary file with `mode`, then rename: a crash never
/// leaves half a key, and the key is never readable by others.
fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// Reads a PEM chain and key into a rustls server config. Every error
/// names the file at fault.
pub fn load(cert_path: &Path, key_path: &Path) -> Result<Loaded> {
    let cert_pem = fs::read(cert_path)
        .with_context(|| format!("cannot read TLS certificate {}", cert_path.display()))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("{}: not a PEM certificate: {e}", cert_path.display()))?;
    let Some(leaf) = chain.first() else {
        anyhow::bail!("{}: no PEM certificate in it", cert_path.display());
    };
    let fingerprint = fingerprint(leaf);
    let key_pem = fs::read(key_path)
        .with_context(|| format!("cannot read TLS key {}", key_path.display()))?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| anyhow::anyhow!("{}: not a PEM private key: {e}", key_path.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| {
            anyhow::anyhow!(
                "{} with {}: unusable certificate and key: {e}",
                cert_path.display(),
                key_path.display()
            )
        })?;
    // HTTP/1.1 only: warp's WebSocket upgrade is an HTTP/1.1 upgrade.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Loaded {
        config: Arc::new(config),
        fingerprint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("oriel-tls-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    fn names(extra: &[&str]) -> Vec<String> {
        let mut n = needed_names("127.0.0.1:0".parse().unwrap(), None, Some("testhost"));
        n.extend(extra.iter().map(|s| s.to_string()));
        n
    }

    #[test]
    fn names_cover_loopback_host_listen_ip_and_public_url() {
        let n = needed_names(
            "192.168.1.5:8443".parse().unwrap(),
            Some("https://Desk.Example:8443/path"),
            Some("MyBox"),
        );
        assert_eq!(
            n,
            [
                "localhost",
                "127.0.0.1",
                "::1",
                "mybox",
                "192.168.1.5",
                "desk.example"
            ]
        );
        let n = needed_names(
            "0.0.0.0:8443".parse().unwrap(),
            Some("https://[fd00::7]:1/"),
            None,
        );
        assert_eq!(n, ["localhost", "127.0.0.1", "::1", "fd00::7"]);
        assert_eq!(url_host("http://127.0.0.1:8080/"), Some("127.0.0.1".into()));
        assert_eq!(url_host("desk.example"), Some("desk.example".into()));
        assert_eq!(url_host("https://user@h:1/#x"), Some("h".into()));
        assert_eq!(url_host("https:///"), None);
    }

    #[test]
    fn fingerprint_is_colon_separated_upper_hex() {
        let f = fingerprint(b"abc");
        assert_eq!(f.len(), 32 * 3 - 1);
        assert!(f.starts_with("BA:78:16:BF:"), "{f}");
    }

    #[test]
    fn generated_once_then_reused_then_remade_for_a_new_name() {
        let dir = tempdir("reuse");
        let (c, k, made) = self_signed(&dir, &names(&[])).unwrap();
        assert!(made);
        let mode = fs::metadata(&k).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(dir_mode, 0o700);
        let first = load(&c, &k).unwrap().fingerprint;

        let (c, k, made) = self_signed(&dir, &names(&[])).unwrap();
        assert!(!made, "a covering certificate is reused");
        assert_eq!(load(&c, &k).unwrap().fingerprint, first);

        let (c, k, made) = self_signed(&dir, &names(&["desk.example", "10.1.2.3"])).unwrap();
        assert!(made, "a new name needs a new certificate");
        let pem = fs::read(&c).unwrap();
        let der = CertificateDer::from_pem_slice(&pem).unwrap();
        assert!(covers(&der, &names(&["desk.example", "10.1.2.3"])));
        assert!(!covers(&der, &names(&["other.example"])));
        assert!(!covers(&der, &names(&["10.1.2.4"])));
        assert_ne!(load(&c, &k).unwrap().fingerprint, first);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_broken_key_file_is_replaced() {
        let dir = tempdir("broken");
        let (_, k, _) = self_signed(&dir, &names(&[])).unwrap();
        fs::write(&k, "garbage").unwrap();
        let (c, k, made) = self_signed(&dir, &names(&[])).unwrap();
        assert!(made);
        assert!(load(&c, &k).is_ok());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn load_errors_name_the_file() {
        let dir = tempdir("errors");
        let (c, k, _) = self_signed(&dir, &names(&[])).unwrap();
        let missing = dir.join("nope.pem");
        let e = format!("{:#}", load(&missing, &k).err().unwrap());
        assert!(e.contains("nope.pem"), "{e}");
        let junk = dir.join("junk.pem");
        fs::write(&junk, "not pem at all").unwrap();
        let e = format!("{:#}", load(&junk, &k).err().unwrap());
        assert!(e.contains("junk.pem"), "{e}");
        let e = format!("{:#}", load(&c, &junk).err().unwrap());
        assert!(e.contains("junk.pem"), "{e}");
        // A key that is not this certificate's.
        let other = tempdir("errors-other");
        let (_, k2, _) = self_signed(&other, &names(&[])).unwrap();
        let e = format!("{:#}", load(&c, &k2).err().unwrap());
        assert!(e.contains("unusable"), "{e}");
        let _ = fs::remove_dir_all(&dir);
        let _ = fs::remove_dir_all(&other);
    }
}
