//! Rules for talking to services we do not run (the vendor cloud, PBXes): their base URLs are
//! https, except loopback (tests, local proxies); files holding their secrets must be private.

use std::path::Path;

/// https anywhere; plain http only to this machine.
pub fn check_base_url(url: &str) -> Result<(), String> {
    if url.starts_with("https://") {
        return Ok(());
    }
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("base URL '{url}' must start with https://"))?;
    let host = rest.split('/').next().unwrap_or("");
    let host = match host.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match loopback {
        true => Ok(()),
        false => Err(format!(
            "base URL '{url}': plain http:// is allowed only for loopback; use https://"
        )),
    }
}

/// The text of a file holding secrets, if it exists; refused when others may read it.
pub fn read_private(path: &Path) -> Result<Option<String>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map(|m| m.permissions().mode())
            .unwrap_or(0);
        if mode & 0o077 != 0 {
            return Err(format!(
                "{} holds secrets and may be read by others (mode {:o}); chmod 600 it",
                path.display(),
                mode & 0o777
            ));
        }
    }
    Ok(Some(text))
}

/// Why a request to a service we do not run never got an answer, in words an operator can act
/// on: the name did not resolve, the connection was refused, TLS failed, or it timed out.
pub fn describe_send_error(e: &reqwest::Error) -> String {
    let mut chain = Vec::new();
    let mut cur: Option<&dyn std::error::Error> = Some(e);
    while let Some(x) = cur {
        chain.push(x.to_string());
        cur = x.source();
    }
    let all = chain.join(": ").to_ascii_lowercase();
    let cause = if e.is_timeout() {
        "timed out"
    } else if all.contains("dns error") || all.contains("failed to lookup address") {
        "the host name did not resolve (DNS)"
    } else if all.contains("connection refused") {
        "connection refused"
    } else if all.contains("certificate")
        || all.contains("tls")
        || all.contains("handshake")
        || all.contains("alert")
    {
        "the TLS handshake failed"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "the request failed"
    };
    // The innermost error says the most; do not repeat the same text twice.
    let detail = chain.last().cloned().unwrap_or_default();
    format!("{cause} ({detail})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        assert!(check_base_url("https://us-api.ymcs.yealink.com").is_ok());
        assert!(check_base_url("http://127.0.0.1:9000").is_ok());
        assert!(check_base_url("http://localhost:9000/x").is_ok());
        assert!(check_base_url("http://[::1]:9000").is_ok());
        assert!(check_base_url("http://ymcs.example.com").is_err());
        assert!(check_base_url("http://127.0.0.1.evil.com").is_err());
        assert!(check_base_url("ftp://x").is_err());
    }
}
