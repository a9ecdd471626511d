//! Online backup and restore of an install: one tar archive holding a consistent copy of the
//! database (audit included) and every other file of the data dir — firmware images, the
//! settings file, TLS material, admin tokens, credential files, templates, static files — with
//! their modes, and a manifest (sizes, SHA-256s, rows per table) that a restore checks.
//!
//! A backup runs beside a live `serve`: the database copy is one read transaction, the other
//! files are copied after it, and a firmware image the copy names but that went meanwhile
//! fails the backup (run it again). A restore goes into an empty directory only, checks
//! everything before it says done, and leaves nothing behind when it fails.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::store::Store;
use crate::store::snapshot::{Contents, contents_of};

/// The database file in the data dir and in the archive.
const DB: &str = "phoneprov.sqlite";
const MANIFEST: &str = "MANIFEST.json";
const FORMAT: u32 = 1;

/// What an archive holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// The phoneprov version that wrote it.
    pub version: String,
    pub created_at: i64,
    /// Every file but the manifest, by path in the archive.
    pub files: BTreeMap<String, FileEntry>,
    pub database: Contents,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileEntry {
    pub size: u64,
    pub sha256: String,
    pub mode: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0}")]
    Io(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("{0}")]
    Refused(String),
}

fn io(what: impl std::fmt::Display, e: std::io::Error) -> BackupError {
    BackupError::Io(format!("{what}: {e}"))
}

/// Files of the data dir to archive (relative paths), the live database files and the
/// rendered files left out.
fn data_files(dir: &Path) -> Result<Vec<PathBuf>, BackupError> {
    fn walk(root: &Path, d: &Path, out: &mut Vec<PathBuf>) -> Result<(), BackupError> {
        let entries = std::fs::read_dir(d).map_err(|e| io(d.display(), e))?;
        for e in entries {
            let e = e.map_err(|e| io(d.display(), e))?;
            let p = e.path();
            // Followed: replicas share `firmware/` as a link to one folder.
            let t = std::fs::metadata(&p)
                .map_err(|e| io(p.display(), e))?
                .file_type();
            if t.is_dir() {
                // Rendered files are derived from the rest (and rewritten while serving): a
                // restored install renders them again on its first start.
                if d == root && e.file_name() == crate::render::stored::DIR {
                    continue;
                }
                walk(root, &p, out)?;
            } else if t.is_file() {
                let rel = p.strip_prefix(root).unwrap_or(&p).to_path_buf();
                let name = rel.to_string_lossy();
                let live_db =
                    name == DB || name == "phoneprov.sqlite-wal" || name == "phoneprov.sqlite-shm";
                // Partial writes of a firmware add in progress.
                let partial = name.starts_with("firmware/.") && name.ends_with(".tmp");
                if !live_db && !partial {
                    out.push(rel);
                }
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.sort();
    Ok(out)
}

/// Reads a file, its digest and mode.
fn entry_of(path: &Path) -> Result<(Vec<u8>, FileEntry), BackupError> {
    use std::os::unix::fs::PermissionsExt;
    let bytes = std::fs::read(path).map_err(|e| io(path.display(), e))?;
    let mode = std::fs::metadata(path)
        .map_err(|e| io(path.display(), e))?
        .permissions()
        .mode()
        & 0o7777;
    let e = FileEntry {
        size: bytes.len() as u64,
        sha256: hex::encode(Sha256::digest(&bytes)),
        mode,
    };
    Ok((bytes, e))
}

fn append(
    tar: &mut tar::Builder<std::fs::File>,
    name: &str,
    bytes: &[u8],
    mode: u32,
    mtime: i64,
) -> Result<(), BackupError> {
    let mut h = tar::Header::new_gnu();
    h.set_size(bytes.len() as u64);
    h.set_mode(mode);
    h.set_mtime(u64::try_from(mtime / 1000).unwrap_or(0));
    h.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut h, name, bytes)
        .map_err(|e| io(format!("writing {name} to the archive"), e))
}

/// Writes a backup of the install in `data_dir` to `out` (refused if it exists).
pub async fn backup(store: &Store, data_dir: &Path, out: &Path) -> Result<Manifest, BackupError> {
    use std::os::unix::fs::OpenOptionsExt;
    if out.exists() {
        return Err(BackupError::Refused(format!(
            "{} exists: choose a new file name",
            out.display()
        )));
    }
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let stem = out
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let db_copy = dir.join(format!(".{stem}.db.partial"));
    let tar_tmp = dir.join(format!(".{stem}.partial"));
    let _ = std::fs::remove_file(&db_copy);
    let result = async {
        store.snapshot_into(&db_copy).await?;
        let database = contents_of(&db_copy).await?;
        let now = crate::store::now_ms();
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tar_tmp)
            .map_err(|e| io(tar_tmp.display(), e))?;
        let mut tar = tar::Builder::new(file);
        let mut files = BTreeMap::new();
        let (bytes, e) = entry_of(&db_copy)?;
        append(&mut tar, DB, &bytes, 0o600, now)?;
        files.insert(DB.to_string(), FileEntry { mode: 0o600, ..e });
        for rel in data_files(data_dir)? {
            let name = rel.to_string_lossy().to_string();
            let (bytes, e) = match entry_of(&data_dir.join(&rel)) {
                Ok(v) => v,
                // Gone since the listing (a firmware rm): checked against the database below.
                Err(_) if !data_dir.join(&rel).exists() => continue,
                Err(e) => return Err(e),
            };
            append(&mut tar, &name, &bytes, e.mode, now)?;
            files.insert(name, e);
        }
        for sha in &database.images {
            let name = format!("firmware/{sha}.img");
            if !files.contains_key(&name) {
                return Err(BackupError::Refused(format!(
                    "the database names image {} but {name} is not in the data dir (removed during the backup?): run the backup again",
                    &sha[..16.min(sha.len())]
                )));
            }
        }
        let manifest = Manifest {
            format: FORMAT,
            version: env!("CARGO_PKG_VERSION").to_string(),
            created_at: now,
            files,
            database,
        };
        let text = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| BackupError::Io(format!("manifest: {e}")))?;
        append(&mut tar, MANIFEST, &text, 0o600, now)?;
        let mut file = tar
            .into_inner()
            .map_err(|e| io("finishing the archive", e))?;
        file.flush().map_err(|e| io(tar_tmp.display(), e))?;
        file.sync_all().map_err(|e| io(tar_tmp.display(), e))?;
        std::fs::rename(&tar_tmp, out).map_err(|e| io(out.display(), e))?;
        Ok(manifest)
    }
    .await;
    for f in [
        db_copy.clone(),
        wal_of(&db_copy, "-wal"),
        wal_of(&db_copy, "-shm"),
    ] {
        let _ = std::fs::remove_file(f);
    }
    if result.is_err() {
        let _ = std::fs::remove_file(&tar_tmp);
    }
    result
}

/// SQLite's side file of `db` (`-wal`, `-shm`).
fn wal_of(db: &Path, suffix: &str) -> PathBuf {
    let mut s = db.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// Restores `archive` into `data_dir`, which must be empty or absent; checks every file
/// against the manifest and the database against its counts. On failure nothing is left.
pub async fn restore(archive: &Path, data_dir: &Path) -> Result<Manifest, BackupError> {
    use std::os::unix::fs::PermissionsExt;
    let existed = data_dir.exists();
    if existed {
        let mut entries = std::fs::read_dir(data_dir).map_err(|e| io(data_dir.display(), e))?;
        if entries.next().is_some() {
            return Err(BackupError::Refused(format!(
                "{} is not empty: restore into a new or empty directory",
                data_dir.display()
            )));
        }
    }
    std::fs::create_dir_all(data_dir).map_err(|e| io(data_dir.display(), e))?;
    let _ = std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700));
    let result = async {
        let file = std::fs::File::open(archive).map_err(|e| io(archive.display(), e))?;
        let mut tar = tar::Archive::new(file);
        tar.set_preserve_permissions(true);
        let mut manifest: Option<Manifest> = None;
        let mut seen: BTreeMap<String, FileEntry> = BTreeMap::new();
        for entry in tar.entries().map_err(|e| io(archive.display(), e))? {
            let mut entry = entry.map_err(|e| io(archive.display(), e))?;
            let name = entry
                .path()
                .map_err(|e| io(archive.display(), e))?
                .to_string_lossy()
                .to_string();
            if name == MANIFEST {
                let mut text = Vec::new();
                entry
                    .read_to_end(&mut text)
                    .map_err(|e| io(MANIFEST, e))?;
                manifest = Some(serde_json::from_slice(&text).map_err(|e| {
                    BackupError::Refused(format!("{}: not a phoneprov backup ({e})", archive.display()))
                })?);
                continue;
            }
            let mode = entry.header().mode().unwrap_or(0o600);
            // `unpack_in` refuses paths that leave the directory (`..`, absolute).
            if !entry
                .unpack_in(data_dir)
                .map_err(|e| io(format!("restoring {name}"), e))?
            {
                return Err(BackupError::Refused(format!(
                    "{}: entry {name:?} points outside the data dir",
                    archive.display()
                )));
            }
            let (_, e) = entry_of(&data_dir.join(&name))?;
            seen.insert(name, FileEntry { mode, ..e });
        }
        let manifest = manifest.ok_or_else(|| {
            BackupError::Refused(format!("{}: no manifest: not a phoneprov backup", archive.display()))
        })?;
        if manifest.format != FORMAT {
            return Err(BackupError::Refused(format!(
                "backup format {} (phoneprov {}); this phoneprov reads format {FORMAT}",
                manifest.format, manifest.version
            )));
        }
        for (name, want) in &manifest.files {
            match seen.get(name) {
                Some(got) if got.sha256 == want.sha256 && got.size == want.size => {}
                Some(_) => {
                    return Err(BackupError::Refused(format!(
                        "{name} in the archive does not match its manifest entry: the backup is damaged"
                    )));
                }
                None => {
                    return Err(BackupError::Refused(format!(
                        "{name} is missing from the archive: the backup is damaged"
                    )));
                }
            }
        }
        let restored = contents_of(&data_dir.join(DB)).await?;
        if restored != manifest.database {
            return Err(BackupError::Refused(
                "the restored database does not hold what the manifest says: the backup is damaged".into(),
            ));
        }
        Ok(manifest)
    }
    .await;
    if result.is_err() {
        // Leave the directory as it was: empty, or gone.
        let _ = std::fs::remove_dir_all(data_dir);
        if existed {
            let _ = std::fs::create_dir_all(data_dir);
        }
    }
    result
}
