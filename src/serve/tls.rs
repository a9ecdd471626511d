//! HTTPS certificates: the operator's PEM files, or a self-signed certificate generated once
//! into `<data-dir>/tls/`; either is reloaded without a restart when its files change.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use axum_server::tls_rustls::RustlsConfig;
use sha2::{Digest, Sha256};

/// A certificate chain and its key, as PEM files.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Why HTTPS cannot start.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot generate a certificate: {0}")]
    Generate(String),
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
}

fn file_err(path: &Path, e: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// The generated certificate in `dir`, made on first use (ECDSA P-256, valid from yesterday
/// for two years, for `hosts`); the key file is 0600.
pub fn self_signed(dir: &Path, hosts: &[String]) -> Result<TlsFiles, TlsError> {
    let files = TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    if files.cert.exists() && files.key.exists() {
        return Ok(files);
    }
    std::fs::create_dir_all(dir).map_err(|e| file_err(dir, e))?;
    let fail = |e: rcgen::Error| TlsError::Generate(e.to_string());
    let mut params = rcgen::CertificateParams::new(hosts.to_vec()).map_err(fail)?;
    use chrono::Datelike;
    let today = chrono::Utc::now().date_naive() - chrono::Days::new(1);
    params.not_before = rcgen::date_time_ymd(today.year(), today.month() as u8, today.day() as u8);
    params.not_after = rcgen::date_time_ymd(
        today.year() + 2,
        today.month() as u8,
        today.day().min(28) as u8,
    );
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "phoneprov");
    let key = rcgen::KeyPair::generate().map_err(fail)?;
    let cert = params.self_signed(&key).map_err(fail)?;
    write_private(&files.key, key.serialize_pem().as_bytes())?;
    std::fs::write(&files.cert, cert.pem()).map_err(|e| file_err(&files.cert, e))?;
    tracing::info!(cert = %files.cert.display(), "generated a self-signed certificate");
    Ok(files)
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path).map_err(|e| file_err(path, e))?;
    f.write_all(bytes).map_err(|e| file_err(path, e))
}

/// SHA-256 fingerprint of the first certificate in a PEM file, `AB:CD:...`.
pub fn fingerprint(cert: &Path) -> Result<String, TlsError> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let der = CertificateDer::pem_file_iter(cert)
        .map_err(|e| file_err(cert, e))?
        .next()
        .ok_or_else(|| file_err(cert, "no certificate in the file"))?
        .map_err(|e| file_err(cert, e))?;
    let d = Sha256::digest(der.as_ref());
    Ok(d.iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":"))
}

/// Loads the files into a rustls configuration (checking they parse and match).
pub async fn load(files: &TlsFiles) -> Result<RustlsConfig, TlsError> {
    RustlsConfig::from_pem_file(&files.cert, &files.key)
        .await
        .map_err(|e| file_err(&files.cert, e))
}

fn mtimes(files: &TlsFiles) -> (Option<SystemTime>, Option<SystemTime>) {
    let m = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    (m(&files.cert), m(&files.key))
}

/// Reloads `config` whenever the files change; a pair that does not load is logged and the
/// running certificate kept.
pub async fn watch(
    config: RustlsConfig,
    files: TlsFiles,
    every: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut last = mtimes(&files);
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tick.tick() => {}
        }
        let now = mtimes(&files);
        if now == last {
            continue;
        }
        last = now;
        match config.reload_from_pem_file(&files.cert, &files.key).await {
            Ok(()) => {
                tracing::info!(cert = %files.cert.display(), fingerprint = %fingerprint(&files.cert).unwrap_or_default(), "certificate reloaded")
            }
            Err(e) => {
                tracing::error!(cert = %files.cert.display(), error = %e, "certificate not reloaded; keeping the current one")
            }
        }
    }
}
