//! Admin API tokens, stored as hashes: `<data-dir>/admin-tokens` holds one `name sha256 created`
//! line per token (0600). A token is shown once, when made; the server re-reads the file when
//! it changes, so tokens can be added and revoked while it runs. A plain-text `admin-token` file
//! from an older version is hashed into it on first use and removed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The token file's name in the data dir.
pub const FILE: &str = crate::config::TOKENS_FILE;
/// What older versions kept in plain text.
const LEGACY: &str = "admin-token";

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {reason}")]
    Corrupt {
        path: String,
        line: usize,
        reason: String,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("no admin token named '{0}'")]
    NotFound(String),
}

/// One stored token: its name, digest and creation time (unix ms).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Entry {
    pub name: String,
    #[serde(skip)]
    pub sha256: [u8; 32],
    pub created_at: i64,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> TokenError + '_ {
    move |source| TokenError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.trim().as_bytes()).into()
}

/// Reads the token file (none yet: no tokens).
pub fn read(path: &Path) -> Result<Vec<Entry>, TokenError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(path)(e)),
    };
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let corrupt = |reason: &str| TokenError::Corrupt {
            path: path.display().to_string(),
            line: i + 1,
            reason: reason.to_string(),
        };
        let f: Vec<&str> = line.split_whitespace().collect();
        let [name, sha, created] = f[..] else {
            return Err(corrupt("expected: name sha256 created-ms"));
        };
        let sha = hex::decode(sha)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| corrupt("not a sha256"))?;
        out.push(Entry {
            name: name.to_string(),
            sha256: sha,
            created_at: created.parse().map_err(|_| corrupt("bad time"))?,
        });
    }
    Ok(out)
}

fn write(path: &Path, entries: &[Entry]) -> Result<(), TokenError> {
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&tmp).map_err(io(&tmp))?;
    writeln!(
        f,
        "# phoneprov admin tokens: name sha256 created-ms (the tokens themselves are not kept)"
    )
    .map_err(io(&tmp))?;
    for e in entries {
        writeln!(f, "{} {} {}", e.name, hex::encode(e.sha256), e.created_at).map_err(io(&tmp))?;
    }
    f.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// Makes a token named `name`; returns it (the only time it is seen).
pub fn create(path: &Path, name: &str) -> Result<String, TokenError> {
    let name_ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !name_ok {
        return Err(TokenError::Invalid(format!(
            "token name '{name}' may hold only letters, digits, '-', '_' and '.' (1 to 64)"
        )));
    }
    migrate_legacy(path)?;
    let mut entries = read(path)?;
    if entries.iter().any(|e| e.name == name) {
        return Err(TokenError::Invalid(format!(
            "a token named '{name}' exists; remove it first (`phoneprov token rm {name}`)"
        )));
    }
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| TokenError::Invalid(format!("no randomness: {e}")))?;
    let token = format!("ppt_{}", hex::encode(b));
    entries.push(Entry {
        name: name.to_string(),
        sha256: digest(&token),
        created_at: crate::store::now_ms(),
    });
    write(path, &entries)?;
    Ok(token)
}

/// Revokes a token by name.
pub fn remove(path: &Path, name: &str) -> Result<(), TokenError> {
    migrate_legacy(path)?;
    let mut entries = read(path)?;
    let before = entries.len();
    entries.retain(|e| e.name != name);
    if entries.len() == before {
        return Err(TokenError::NotFound(name.to_string()));
    }
    write(path, &entries)
}

/// Hashes an older version's plain-text token into the file as `default`, then removes it.
pub fn migrate_legacy(path: &Path) -> Result<(), TokenError> {
    let Some(legacy) = path.parent().map(|d| d.join(LEGACY)) else {
        return Ok(());
    };
    let plain = match std::fs::read_to_string(&legacy) {
        Ok(t) if !t.trim().is_empty() => t,
        Ok(_) => return std::fs::remove_file(&legacy).map_err(io(&legacy)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(&legacy)(e)),
    };
    let mut entries = read(path)?;
    if !entries.iter().any(|e| e.name == "default") {
        entries.push(Entry {
            name: "default".into(),
            sha256: digest(&plain),
            created_at: crate::store::now_ms(),
        });
        write(path, &entries)?;
    }
    std::fs::remove_file(&legacy).map_err(io(&legacy))?;
    tracing::info!(path = %path.display(), "plain-text admin token hashed into the token file and removed");
    Ok(())
}

/// The token file as a running server sees it: re-read when it changes.
#[derive(Debug)]
pub struct TokenFile {
    path: PathBuf,
    cache: Mutex<(Option<std::time::SystemTime>, Vec<Entry>)>,
}

impl TokenFile {
    pub fn new(path: PathBuf) -> TokenFile {
        if let Err(e) = migrate_legacy(&path) {
            tracing::error!(error = %e, "admin token file not migrated");
        }
        TokenFile {
            path,
            cache: Mutex::new((None, Vec::new())),
        }
    }

    /// The name of the token `given` is, if any. Compares with every stored digest.
    pub fn verify(&self, given: &str) -> Option<String> {
        let mtime = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        let mut g = match self.cache.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if g.0 != mtime || mtime.is_none() {
            match read(&self.path) {
                Ok(entries) => *g = (mtime, entries),
                Err(e) => {
                    tracing::error!(error = %e, "admin tokens unreadable: every admin call refused");
                    *g = (None, Vec::new());
                }
            }
        }
        let d = digest(given);
        let mut found = None;
        for e in &g.1 {
            if bool::from(e.sha256.ct_eq(&d)) && !given.is_empty() {
                found = Some(e.name.clone());
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        std::fs::write(dir.path().join(LEGACY), "oldtoken\n").unwrap();
        let t = create(&path, "ci").unwrap();
        assert!(!dir.path().join(LEGACY).exists());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&t) && !text.contains("oldtoken"));
        let f = TokenFile::new(path.clone());
        assert_eq!(f.verify(&t).as_deref(), Some("ci"));
        assert_eq!(f.verify("oldtoken").as_deref(), Some("default"));
        assert_eq!(f.verify("nope"), None);
        assert_eq!(f.verify(""), None);
        assert!(create(&path, "ci").is_err());
        assert!(create(&path, "bad name").is_err());
        std::thread::sleep(std::time::Duration::from_millis(20));
        remove(&path, "ci").unwrap();
        assert_eq!(f.verify(&t), None, "revoked while running");
        assert!(matches!(remove(&path, "ci"), Err(TokenError::NotFound(_))));
    }
}
