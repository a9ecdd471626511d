//! The command line and the settings file: plain data, documented flags.
//!
//! Precedence, highest first: command-line flag, `PHONEPROV_*` environment variable, the
//! settings file (`--config`, default `<data-dir>/phoneprov.toml`), built-in default.

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};
use serde::Deserialize;

mod inventory;
mod services;
pub use inventory::*;
pub use services::*;

/// Zero-touch provisioning server for Yealink and Polycom desk phones.
#[derive(Debug, Parser)]
#[command(name = "phoneprov", version, about)]
pub struct Cli {
    /// Directory holding the database, the admin token, uploads and template overrides.
    #[arg(
        long,
        env = "PHONEPROV_DATA_DIR",
        global = true,
        help_heading = "Global options",
        value_name = "DIR"
    )]
    pub data_dir: Option<PathBuf>,

    /// Base URL phones reach this server at (e.g. http://prov.example.com:8080). Rendered
    /// files and site URLs are built from it, so every command should agree on it: put it in
    /// the settings file.
    #[arg(
        long,
        env = "PHONEPROV_PUBLIC_URL",
        global = true,
        help_heading = "Global options",
        value_name = "URL"
    )]
    pub public_url: Option<String>,

    /// Base HTTPS URL phones reach this server at (e.g. https://prov.example.com:8443), for
    /// sites that require HTTPS. Put it in the settings file as `public_https_url`.
    #[arg(
        long,
        env = "PHONEPROV_PUBLIC_HTTPS_URL",
        global = true,
        help_heading = "Global options",
        value_name = "URL"
    )]
    pub public_https_url: Option<String>,

    /// The database: a PostgreSQL URL (postgres://user:password@host:port/db) that several
    /// servers can share, or sqlite:PATH. Default: phoneprov.sqlite in the data dir. Put it in
    /// the environment or the settings file (`database_url`) rather than on a command line
    /// others can read.
    #[arg(
        long,
        env = "PHONEPROV_DATABASE_URL",
        global = true,
        help_heading = "Global options",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,

    /// Settings file (TOML). Default: <data-dir>/phoneprov.toml, if it exists.
    #[arg(
        long,
        env = "PHONEPROV_CONFIG",
        global = true,
        help_heading = "Global options",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,

    /// Print JSON instead of text.
    #[arg(long, global = true, help_heading = "Global options")]
    pub json: bool,

    /// Log lines on standard error as text (for people) or JSON (one object per line, for log
    /// shippers: time, level, target, message and every field).
    #[arg(
        long,
        env = "PHONEPROV_LOG_FORMAT",
        global = true,
        help_heading = "Global options",
        value_name = "text|json",
        default_value = "text",
        value_parser = ["text", "json"]
    )]
    pub log_format: String,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the provisioning server.
    Serve(ServeArgs),
    /// Manage sites.
    #[command(subcommand)]
    Site(SiteCmd),
    /// Manage phones.
    #[command(subcommand)]
    Phone(PhoneCmd),
    /// Set or remove a phone's SIP lines.
    #[command(subcommand)]
    Line(LineCmd),
    /// Set raw vendor settings at a layer (model, site, model in site, phone).
    #[command(subcommand)]
    Setting(SettingCmd),
    /// Firmware images: store, assign, check, audit.
    #[command(subcommand)]
    Firmware(FirmwareCmd),
    /// The firmware policy in force.
    #[command(subcommand)]
    Policy(PolicyCmd),
    /// Recover bricked phones: a TFTP responder that hands every image request a known-good image.
    Recover(RecoverArgs),
    /// Import phones and lines from CSV: all rows validated first, then all or nothing.
    Import(ImportArgs),
    /// Write phones and lines as CSV that `import` reads back unchanged.
    Export(ExportArgs),
    /// Print exactly the bytes a phone would get (without FILE: the names of its files).
    Render(RenderArgs),
    /// Admin API tokens (kept as hashes).
    #[command(subcommand)]
    Token(TokenCmd),
    /// Web console users (`/ui/`): roles admin, tech, viewer; argon2-hashed passwords.
    #[command(subcommand)]
    User(UserCmd),
    /// PBXes that phones and lines are read from (NetSapiens, SARK).
    #[command(subcommand)]
    Pbx(PbxCmd),
    /// Yealink's cloud (YMCS): register MACs, point RPS at us, reboot. Writes are dry runs
    /// unless --confirm.
    #[command(subcommand)]
    Ymcs(YmcsCmd),
    /// Fetches of sensitive files (per-MAC and rendered files), newest first.
    Audit(AuditArgs),
    /// Copy the whole install (database with audit, firmware, settings, TLS, tokens,
    /// credentials) into one archive, while `serve` runs.
    Backup(BackupArgs),
    /// Bring an install back from a `backup` archive into an empty --data-dir, checked.
    Restore(BackupArgs),
    /// Copy every row of this install's database (audit included) into another, empty one —
    /// SQLite to PostgreSQL or back — checked by row counts and a digest of every value.
    MigrateDb(MigrateDbArgs),
    /// Check what a rollout needs — public URLs answer, TFTP, the policy, YMCS/RPS and PBX
    /// credentials (reads only) — one line each; exit 1 if anything needs fixing.
    Doctor(DoctorArgs),
}

/// Arguments of `phoneprov doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Where `serve` answers TFTP (default: the settings' TFTP address; "off" skips it).
    #[arg(long, value_name = "ADDR|off")]
    pub tftp: Option<String>,
    /// The certificate file `serve --tls-cert` uses, checked when there is no public HTTPS URL
    /// (default: the generated one in <data-dir>/tls/, if any).
    #[arg(long, env = "PHONEPROV_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<std::path::PathBuf>,
}

/// Arguments of `phoneprov migrate-db`.
#[derive(Debug, Args)]
pub struct MigrateDbArgs {
    /// The database to copy into: postgres://user:password@host/db, or sqlite:PATH. It must
    /// be empty (it is migrated first). The source is --database-url, or the data dir's file.
    #[arg(
        long,
        value_name = "URL",
        env = "PHONEPROV_MIGRATE_TO",
        hide_env_values = true
    )]
    pub to: String,
}

/// The archive of `phoneprov backup` and `phoneprov restore`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The archive file (tar; it holds SIP passwords: keep it private).
    pub file: PathBuf,
}

/// Arguments of `phoneprov import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The CSV file (a header row, then a row per phone).
    pub file: PathBuf,
    /// Site for rows without a site column value.
    #[arg(long)]
    pub site: Option<String>,
    /// Report what would change; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Allow moving phones that are enrolled in another site.
    #[arg(long = "move")]
    pub allow_move: bool,
    /// After a successful import, also in Yealink's cloud: register, rps (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "register,rps")]
    pub ymcs: Vec<String>,
    /// Do the YMCS writes (without: print their plan, exit 3).
    #[arg(long)]
    pub confirm: bool,
}

/// Arguments of `phoneprov export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Only this site's phones.
    #[arg(long)]
    pub site: Option<String>,
    /// Include SIP passwords (otherwise blank; an import keeps the stored ones).
    #[arg(long)]
    pub with_secrets: bool,
}

/// Arguments of `phoneprov render`.
#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The phone's MAC, in any spelling (805ec0aabbcc, 80:5E:C0:AA:BB:CC, 805e.c0aa.bbcc).
    pub mac: String,
    /// Only this file (default: the names of every file the phone gets).
    pub file: Option<String>,
}

/// Arguments of `phoneprov audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only this site's fetches.
    #[arg(long)]
    pub site: Option<String>,
    /// The phone's MAC, in any spelling (805ec0aabbcc, 80:5E:C0:AA:BB:CC, 805e.c0aa.bbcc).
    #[arg(long)]
    pub mac: Option<String>,
    /// Only fetches from this IP address.
    #[arg(long, value_name = "IP")]
    pub peer: Option<String>,
    /// served, not-found, unauthorized, refused-network, refused-transport, banned.
    #[arg(long)]
    pub result: Option<String>,
    /// Only the last DURATION (e.g. 1h, 7d).
    #[arg(long, value_name = "DURATION")]
    pub since: Option<String>,
    /// At most this many rows.
    #[arg(long, default_value_t = 100)]
    pub limit: i64,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// HTTP listen address. Default 0.0.0.0:8080.
    #[arg(long, env = "PHONEPROV_HTTP", value_name = "ADDR")]
    pub http: Option<String>,

    /// TFTP listen address, or "off". Default 0.0.0.0:6969 (an unprivileged port; see the
    /// README for serving on port 69 without root).
    #[arg(long, env = "PHONEPROV_TFTP", value_name = "ADDR|off")]
    pub tftp: Option<String>,

    /// HTTPS listen address (e.g. 0.0.0.0:8443). Without --tls-cert/--tls-key, a self-signed
    /// certificate is generated once into <data-dir>/tls/ and its fingerprint printed.
    #[arg(long, env = "PHONEPROV_HTTPS", value_name = "ADDR")]
    pub https: Option<String>,

    /// The certificate chain (PEM) for HTTPS; reloaded when the file changes.
    #[arg(
        long,
        env = "PHONEPROV_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,

    /// The private key (PEM) for HTTPS.
    #[arg(
        long,
        env = "PHONEPROV_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,

    /// Misses on per-MAC file names from one address (within 10 minutes) before it is refused;
    /// 0 turns banning off. Addresses known phones fetch from are never banned.
    #[arg(long, env = "PHONEPROV_BAN_AFTER", default_value_t = 50)]
    pub ban_after: u32,

    /// How long a banned address is refused, in minutes.
    #[arg(long, env = "PHONEPROV_BAN_MINUTES", default_value_t = 15)]
    pub ban_minutes: u32,

    /// Keep every PBX/site pair that `pbx sync` has synced in sync, this often (e.g. 15m).
    #[arg(long, env = "PHONEPROV_SYNC_EVERY", value_name = "DURATION")]
    pub sync_every: Option<String>,

    /// TFTP retransmission interval in milliseconds before backoff.
    #[arg(long, env = "PHONEPROV_TFTP_TIMEOUT_MS", default_value_t = 1000)]
    pub tftp_timeout_ms: u64,

    /// TFTP retransmissions of one packet before a transfer is abandoned.
    #[arg(long, env = "PHONEPROV_TFTP_RETRIES", default_value_t = 5)]
    pub tftp_retries: u32,

    /// TFTP transfers running at once; more are refused as busy.
    #[arg(long, env = "PHONEPROV_TFTP_MAX_TRANSFERS", default_value_t = 1000)]
    pub tftp_max_transfers: usize,

    /// Serve GET /metrics (Prometheus text) to any address without an admin token. Without
    /// it, loopback scrapers need none and others send `Authorization: Bearer <admin token>`.
    #[arg(long, env = "PHONEPROV_METRICS_OPEN")]
    pub metrics_open: bool,

    /// Memory for phones' rendered files, in MiB: the files of phones that are booting are
    /// served from memory, the rest from `<data-dir>/rendered/` (and the OS page cache).
    /// A phone is kept from its fourth read from disk, so phones that boot once (a storm)
    /// pass through; 32 MiB holds about 25,000 T54Ws with a line each that keep asking (1.3 KiB
    /// each, `phoneprov_file_cache_bytes`).
    #[arg(long, env = "PHONEPROV_FILE_CACHE_MB", default_value_t = 32)]
    pub file_cache_mb: usize,

    /// A web console session ends after this long without a request (e.g. 30m, 2h).
    #[arg(
        long,
        env = "PHONEPROV_SESSION_IDLE",
        default_value = "30m",
        value_name = "DURATION"
    )]
    pub session_idle: String,

    /// A web console session ends this long after its login, however busy (e.g. 12h).
    #[arg(
        long,
        env = "PHONEPROV_SESSION_LIFETIME",
        default_value = "12h",
        value_name = "DURATION"
    )]
    pub session_lifetime: String,

    /// On an empty database, create a demo site with a Yealink T54W and a Polycom VVX 450 and
    /// print curl commands that fetch their files.
    #[arg(long)]
    pub demo: bool,
}

/// The settings file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub http: Option<String>,
    pub tftp: Option<String>,
    pub public_url: Option<String>,
    pub public_https_url: Option<String>,
    pub database_url: Option<String>,
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read settings file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("settings file {path}: {reason}")]
    Parse { path: String, reason: String },
    #[error("public URL '{0}' must start with http:// or https:// and name a host")]
    PublicUrl(String),
}

pub const DEFAULT_DATA_DIR: &str = "./phoneprov-data";
pub const DEFAULT_HTTP: &str = "0.0.0.0:8080";
pub const DEFAULT_TFTP: &str = "0.0.0.0:6969";

/// Everything resolved: what each command runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub public_url: String,
    /// Whether the public URL was configured, or guessed from the listen address.
    pub public_url_configured: bool,
    /// Base HTTPS URL for sites that require HTTPS.
    pub public_https_url: Option<String>,
    pub http: String,
    /// TFTP listen address; `None` when turned off.
    pub tftp: Option<String>,
    /// The settings file these came from (it may not exist).
    pub file: PathBuf,
    /// The database's URL (`--database-url`); `None`: the SQLite file in the data dir.
    pub database_url: Option<String>,
}

impl Settings {
    pub fn resolve(cli: &Cli) -> Result<Settings, ConfigError> {
        let data_dir = cli
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let (path, explicit) = match &cli.config {
            Some(p) => (p.clone(), true),
            None => (data_dir.join("phoneprov.toml"), false),
        };
        let file = read_file(&path, explicit)?;
        let (serve_http, serve_tftp) = match &cli.command {
            Command::Serve(a) => (a.http.clone(), a.tftp.clone()),
            _ => (None, None),
        };
        let tftp = serve_tftp
            .or(file.tftp)
            .unwrap_or_else(|| DEFAULT_TFTP.to_string());
        let tftp = (!tftp.eq_ignore_ascii_case("off")).then_some(tftp);
        let http = serve_http
            .or(file.http)
            .unwrap_or_else(|| DEFAULT_HTTP.to_string());
        let configured = cli.public_url.clone().or(file.public_url);
        let public_url = match &configured {
            Some(u) => check_url(u)?,
            None => default_public_url(&http),
        };
        let public_https_url = match cli.public_https_url.clone().or(file.public_https_url) {
            Some(u) if u.trim().starts_with("https://") => Some(check_url(&u)?),
            Some(u) => return Err(ConfigError::PublicUrl(u)),
            None => None,
        };
        Ok(Settings {
            database_url: cli.database_url.clone().or(file.database_url),
            data_dir,
            public_url,
            public_url_configured: configured.is_some(),
            public_https_url,
            http,
            tftp,
            file: path,
        })
    }

    /// The default database: the SQLite file in the data dir.
    pub fn default_db_path(&self) -> PathBuf {
        self.data_dir.join(DB_FILE)
    }

    pub fn template_dir(&self) -> PathBuf {
        self.data_dir.join("templates")
    }

    pub fn tokens_path(&self) -> PathBuf {
        self.data_dir.join(TOKENS_FILE)
    }
}

/// The SQLite database's file in the data dir (the default database).
pub const DB_FILE: &str = "phoneprov.sqlite";

/// The admin tokens' file in the data dir.
pub const TOKENS_FILE: &str = "admin-tokens";

/// `7d`, `12h`, `30m`, `45s`, `500ms`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().map_err(|_| {
        format!("duration '{s}' must be a number with a unit: 7d, 12h, 30m, 45s, 500ms")
    })?;
    let ms = match unit {
        "ms" => 1,
        "" | "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("duration '{s}': unit must be ms, s, m, h or d")),
    };
    n.checked_mul(ms)
        .filter(|v| *v <= 10 * 365 * 86_400_000)
        .map(std::time::Duration::from_millis)
        .ok_or_else(|| format!("duration '{s}' is too long"))
}

fn read_file(path: &Path, explicit: bool) -> Result<FileConfig, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
            return Ok(FileConfig::default());
        }
        Err(e) => {
            return Err(ConfigError::Read {
                path: path.display().to_string(),
                reason: e.to_string(),
            });
        }
    };
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

fn check_url(u: &str) -> Result<String, ConfigError> {
    let u = u.trim().trim_end_matches('/');
    let rest = u
        .strip_prefix("http://")
        .or_else(|| u.strip_prefix("https://"))
        .ok_or_else(|| ConfigError::PublicUrl(u.to_string()))?;
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() || rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ConfigError::PublicUrl(u.to_string()));
    }
    Ok(u.to_string())
}

/// `http://127.0.0.1:<port>` for a wildcard or loopback listener, else the listen address.
fn default_public_url(http: &str) -> String {
    let port = http.rsplit(':').next().unwrap_or("8080");
    let host = http.rsplit_once(':').map(|(h, _)| h).unwrap_or("");
    match host {
        "" | "0.0.0.0" | "[::]" => format!("http://127.0.0.1:{port}"),
        h => format!("http://{h}:{port}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn urls() {
        assert_eq!(
            check_url("https://prov.example.com/").unwrap(),
            "https://prov.example.com"
        );
        assert!(check_url("prov.example.com").is_err());
        assert!(check_url("http://").is_err());
        assert_eq!(default_public_url("0.0.0.0:8080"), "http://127.0.0.1:8080");
        assert_eq!(default_public_url("10.0.0.5:80"), "http://10.0.0.5:80");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("7d").unwrap().as_secs(), 7 * 86400);
        assert_eq!(parse_duration("90").unwrap().as_secs(), 90);
        assert_eq!(parse_duration("500ms").unwrap().as_millis(), 500);
        assert_eq!(parse_duration("0").unwrap().as_secs(), 0);
        for bad in ["", "d", "7w", "-1s", "99999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
