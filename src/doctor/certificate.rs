//! The doctor's HTTPS certificate check: the certificate phones are given — the one the public
//! HTTPS URL presents or, without one, the file `serve` uses — judged for expiry, validity
//! start (a wrong clock) and the host name phones ask for.

use std::path::Path;
use std::time::Duration;

use super::{Check, fail, ok};

/// Warn this long before a certificate expires: time to renew it.
const RENEW_DAYS: i64 = 14;

/// What the check reads off a certificate.
#[derive(Debug, Clone)]
pub struct Facts {
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    /// DNS names and IP addresses of the subject alternative names.
    pub names: Vec<String>,
    pub self_signed: bool,
}

/// Reads a DER certificate.
pub fn facts(der: &[u8]) -> Result<Facts, String> {
    use x509_parser::prelude::*;
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| format!("not a certificate: {e}"))?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(d) => names.push(d.to_string()),
                GeneralName::IPAddress(b) => match b.len() {
                    4 => names.push(std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string()),
                    16 => {
                        let a: [u8; 16] = (*b).try_into().unwrap_or([0; 16]);
                        names.push(std::net::Ipv6Addr::from(a).to_string())
                    }
                    _ => {}
                },
                _ => {}
            }
        }
    }
    Ok(Facts {
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        names,
        self_signed: cert.subject() == cert.issuer(),
    })
}

/// Reads the first certificate of a PEM file.
pub fn from_file(path: &Path) -> Result<Facts, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(&bytes)
        .map_err(|e| format!("{}: no PEM certificate ({e})", path.display()))?;
    facts(&pem.contents).map_err(|e| format!("{}: {e}", path.display()))
}

/// The certificate `base` presents, read without trusting it (a self-signed one is the default,
/// and this is an inspection, not a request that relies on it).
pub async fn served(base: &str) -> Result<Facts, String> {
    let url = format!("{}/healthz", base.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .tls_info(true)
        .tls_danger_accept_invalid_certs(true)
        .build()
        .map_err(|e| e.to_string())?;
    let r = client
        .get(&url)
        .send()
        .await
        .map_err(|e| format!("{url}: {}", crate::outbound::describe_send_error(&e)))?;
    let der = r
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|t| t.peer_certificate())
        .ok_or_else(|| format!("{url}: no certificate was presented"))?;
    facts(der)
}

/// Whether `host` is one of `names` (a `*.` wildcard covers one label).
fn names_host(names: &[String], host: &str) -> bool {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    names.iter().any(|n| {
        let n = n.to_ascii_lowercase();
        match n.strip_prefix("*.") {
            Some(rest) => host
                .split_once('.')
                .is_some_and(|(first, tail)| !first.is_empty() && tail == rest),
            None => n == host,
        }
    })
}

fn date(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| unix.to_string())
}

/// The check's line for a certificate from `source`, phones asking for `host`, at `now`.
pub fn judge(source: &str, f: &Facts, host: Option<&str>, now: i64) -> Check {
    const NAME: &str = "certificate";
    let days = (f.not_after - now).div_euclid(86_400);
    if now < f.not_before {
        return fail(
            NAME,
            format!("{source}: not valid until {}", date(f.not_before)),
            "check this server's clock (and the phones' NTP), or issue a certificate valid now",
        );
    }
    if now >= f.not_after {
        return fail(
            NAME,
            format!("{source}: expired on {}", date(f.not_after)),
            "renew it: phones refuse an expired certificate (phoneprov re-reads the files within a second)",
        );
    }
    if days < RENEW_DAYS {
        return fail(
            NAME,
            format!("{source}: expires in {days} days ({})", date(f.not_after)),
            "renew it before then (phoneprov re-reads the files within a second)",
        );
    }
    if let Some(h) = host
        && !names_host(&f.names, h)
    {
        return fail(
            NAME,
            format!(
                "{source}: does not name {h} (it names {})",
                match f.names.is_empty() {
                    true => "nothing".to_string(),
                    false => f.names.join(", "),
                }
            ),
            "use a certificate for the host in public_https_url: phones that check names refuse this one",
        );
    }
    let trust = match f.self_signed {
        true => {
            "; self-signed: phones must be told to trust it (Yealink: upload it as a trusted certificate, or turn off 'Only Accept Trusted Certificates')"
        }
        false => "",
    };
    ok(
        NAME,
        format!(
            "{source}: valid until {} ({days} days){trust}",
            date(f.not_after)
        ),
    )
}

/// The certificate phones are given: from the public HTTPS URL when there is one, else the file
/// `serve` uses (`--tls-cert`, or the generated one in `<data-dir>/tls/`).
pub async fn check(https_url: Option<&str>, cert_file: Option<&Path>, data_dir: &Path) -> Check {
    let now = chrono::Utc::now().timestamp();
    if let Some(url) = https_url {
        let host = reqwest::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string));
        return match served(url).await {
            Ok(f) => judge(url, &f, host.as_deref(), now),
            Err(e) => fail(
                "certificate",
                format!("cannot read it: {e}"),
                "start `phoneprov serve --https ADDR`, and check the address in public_https_url",
            ),
        };
    }
    let generated = data_dir.join("tls").join("cert.pem");
    let file = match cert_file {
        Some(f) => f.to_path_buf(),
        None if generated.exists() => generated,
        None => {
            return super::skip(
                "certificate",
                "no HTTPS here (no public HTTPS URL, no certificate file)",
            );
        }
    };
    let source = file.display().to_string();
    match from_file(&file) {
        Ok(f) => judge(&source, &f, None, now),
        Err(e) => fail(
            "certificate",
            e,
            "point --tls-cert at the PEM certificate chain serve uses",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(not_before: i64, not_after: i64, names: &[&str]) -> Facts {
        Facts {
            not_before,
            not_after,
            names: names.iter().map(|s| s.to_string()).collect(),
            self_signed: false,
        }
    }

    #[test]
    fn expiry_validity_and_names() {
        let day = 86_400;
        let now = 1_800_000_000;
        let good = f(now - day, now + 90 * day, &["prov.example.com"]);
        assert_eq!(
            judge("x", &good, Some("prov.example.com"), now).status,
            super::super::Status::Ok
        );
        let c = judge("x", &f(now - 90 * day, now - day, &[]), None, now);
        assert!(c.detail.contains("expired on"), "{c:?}");
        let c = judge("x", &f(now - day, now + 3 * day, &[]), None, now);
        assert!(c.detail.contains("expires in 3 days"), "{c:?}");
        let c = judge("x", &f(now + day, now + 90 * day, &[]), None, now);
        assert!(c.detail.contains("not valid until"), "{c:?}");
        let c = judge("x", &good, Some("other.example.com"), now);
        assert!(
            c.detail.contains("does not name other.example.com"),
            "{c:?}"
        );
        let wild = f(now - day, now + 90 * day, &["*.example.com"]);
        assert_eq!(
            judge("x", &wild, Some("prov.example.com"), now).status,
            super::super::Status::Ok
        );
        assert_eq!(
            judge("x", &wild, Some("a.b.example.com"), now).status,
            super::super::Status::Fail
        );
        assert_eq!(
            judge("x", &wild, Some("example.com"), now).status,
            super::super::Status::Fail
        );
    }
}
