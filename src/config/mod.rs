//! The command line and the settings file: plain data, documented flags.
//!
//! Precedence, highest first: command-line flag, `PHONEPROV_*` environment variable, the
//! settings file (`--config`, default `<data-dir>/phoneprov.toml`), built-in default.

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};
use serde::Deserialize;

mod services;
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
    Import {
        /// The CSV file (a header row, then a row per phone).
        file: PathBuf,
        /// Site for rows without a site column value.
        #[arg(long)]
        site: Option<String>,
        /// Report what would change; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Allow moving phones that are enrolled in another site.
        #[arg(long = "move")]
        allow_move: bool,
        /// After a successful import, also in Yealink's cloud: register, rps (comma-separated).
        #[arg(long, value_delimiter = ',', value_name = "register,rps")]
        ymcs: Vec<String>,
        /// Do the YMCS writes (without: print their plan, exit 3).
        #[arg(long)]
        confirm: bool,
    },
    /// Write phones and lines as CSV that `import` reads back unchanged.
    Export {
        /// Only this site's phones.
        #[arg(long)]
        site: Option<String>,
        /// Include SIP passwords (otherwise blank; an import keeps the stored ones).
        #[arg(long)]
        with_secrets: bool,
    },
    /// Print exactly the bytes a phone would get (without FILE: the names of its files).
    Render {
        /// The phone's MAC, in any spelling (805ec0aabbcc, 80:5E:C0:AA:BB:CC, 805e.c0aa.bbcc).
        mac: String,
        /// Only this file (default: the names of every file the phone gets).
        file: Option<String>,
    },
    /// Admin API tokens (kept as hashes).
    #[command(subcommand)]
    Token(TokenCmd),
    /// PBXes that phones and lines are read from (NetSapiens, SARK).
    #[command(subcommand)]
    Pbx(PbxCmd),
    /// Yealink's cloud (YMCS): register MACs, point RPS at us, reboot. Writes are dry runs
    /// unless --confirm.
    #[command(subcommand)]
    Ymcs(YmcsCmd),
    /// Fetches of sensitive files (per-MAC and rendered files), newest first.
    Audit {
        /// Only this site's fetches.
        #[arg(long)]
        site: Option<String>,
        /// The phone's MAC, in any spelling (805ec0aabbcc, 80:5E:C0:AA:BB:CC, 805e.c0aa.bbcc).
        #[arg(long)]
        mac: Option<String>,
        /// Only fetches from this IP address.
        #[arg(long, value_name = "IP")]
        peer: Option<String>,
        /// served, not-found, unauthorized, refused-network, refused-transport, banned.
        #[arg(long)]
        result: Option<String>,
        /// Only the last DURATION (e.g. 1h, 7d).
        #[arg(long, value_name = "DURATION")]
        since: Option<String>,
        /// At most this many rows.
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
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

    /// On an empty database, create a demo site with a Yealink T54W and a Polycom VVX 450 and
    /// print curl commands that fetch their files.
    #[arg(long)]
    pub demo: bool,
}

/// Where phones send SIP, and when they look for changes.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SipArgs {
    /// Where phones send REGISTER and calls when it is not the --sip-server's host (a
    /// multi-tenant PBX's core server; --sip-server is then the account domain). Empty removes.
    #[arg(long, value_name = "HOST[:PORT]")]
    pub outbound_proxy: Option<String>,
    /// The failover outbound proxy (Yealink phones). Empty removes.
    #[arg(long, value_name = "HOST[:PORT]")]
    pub outbound_proxy_2: Option<String>,
    /// When phones look for changes between boots: daily:HH:MM-HH:MM (each phone picks a
    /// moment in the window; default daily:02:00-04:00), every:Nh or every:Nm, or off.
    #[arg(long, value_name = "SCHEDULE")]
    pub recheck: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum SiteCmd {
    /// Create a site.
    Add {
        /// Site name: lowercase letters, digits, '-' and '_'.
        name: String,
        /// The PBX's SIP server, HOST or HOST:PORT.
        #[arg(long, value_name = "HOST[:PORT]")]
        sip_server: String,
        /// SIP transport: udp, tcp, tls, or dns (DNS NAPTR/SRV chooses; no port is written).
        #[arg(long, default_value = "udp")]
        transport: String,
        /// IANA zone name (America/Denver) or UTC offset (-7, +5:30).
        #[arg(long, value_name = "TZ")]
        time_zone: Option<String>,
        /// NTP server (repeat for a second one).
        #[arg(long, value_name = "HOST")]
        ntp: Vec<String>,
        /// Also serve this site's phones at / without the site key (LANs using DHCP option
        /// 66/160).
        #[arg(long)]
        allow_keyless: bool,
        /// The Yealink cloud (YMCS) site of its phones, when not the one of the same name.
        #[arg(long, value_name = "NAME")]
        ymcs_site: Option<String>,
        #[command(flatten)]
        sip: SipArgs,
    },
    /// Change a site.
    Update {
        /// Site name: lowercase letters, digits, '-' and '_'.
        name: String,
        /// The account's SIP domain and registrar, HOST or HOST:PORT.
        #[arg(long, value_name = "HOST[:PORT]")]
        sip_server: Option<String>,
        /// SIP transport: udp, tcp, tls, or dns.
        #[arg(long)]
        transport: Option<String>,
        /// Time zone; an empty value removes it.
        #[arg(long, value_name = "TZ")]
        time_zone: Option<String>,
        /// NTP servers; replaces the list.
        #[arg(long, value_name = "HOST")]
        ntp: Vec<String>,
        /// Serve at / without the site key: true or false.
        #[arg(long, value_name = "BOOL")]
        allow_keyless: Option<bool>,
        /// Replace the site key: the old provisioning URL stops working at once.
        #[arg(long)]
        rotate_key: bool,
        /// Hand this stored image (version or sha256) to phones in recovery mode that ask this
        /// server for a .rom/.bin/.rfs; "off" to stop.
        #[arg(long, value_name = "IMAGE|off")]
        recovery: Option<String>,
        #[command(flatten)]
        access: AccessArgs,
        #[command(flatten)]
        sip: SipArgs,
    },
    /// List sites.
    List,
    /// Show a site and its provisioning URL.
    Show {
        /// Site name.
        name: String,
    },
    /// Remove a site.
    Rm {
        /// Site name: lowercase letters, digits, '-' and '_'.
        name: String,
        /// Also remove the site's phones.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum PhoneCmd {
    /// Enrol a phone.
    Add {
        /// The phone's MAC, in any spelling (805ec0aabbcc, 80:5E:C0:AA:BB:CC, 805e.c0aa.bbcc).
        mac: String,
        /// Model: T54W, VVX_450 … ("Yealink T46U", "Polycom VVX 450" work too).
        #[arg(long)]
        model: String,
        /// The site the phone belongs to.
        #[arg(long)]
        site: String,
        /// A label for people: lists and file comments.
        #[arg(long, value_name = "TEXT")]
        label: Option<String>,
        /// Serial number, as on the phone's label (Yealink's cloud needs it for RPS without
        /// RPS keys).
        #[arg(long, value_name = "SN")]
        sn: Option<String>,
    },
    /// Change a phone: label, serial number, model, or site (with --move).
    Update {
        /// The phone's MAC, in any spelling (805ec0aabbcc, 80:5E:C0:AA:BB:CC, 805e.c0aa.bbcc).
        mac: String,
        /// A label for people: lists and file comments.
        #[arg(long, value_name = "TEXT")]
        label: Option<String>,
        /// Serial number; an empty value removes it.
        #[arg(long, value_name = "SN")]
        sn: Option<String>,
        /// Another model (the phone was enrolled as the wrong one).
        #[arg(long)]
        model: Option<String>,
        /// Another site (needs --move).
        #[arg(long)]
        site: Option<String>,
        /// Allow moving the phone to another site.
        #[arg(long = "move")]
        move_site: bool,
    },
    /// List phones.
    List {
        /// Only this site's phones.
        #[arg(long)]
        site: Option<String>,
    },
    /// Show a phone, its lines and when it last fetched its files.
    Show {
        /// The phone's MAC, in any spelling (805ec0aabbcc, 80:5E:C0:AA:BB:CC, 805e.c0aa.bbcc).
        mac: String,
    },
    /// Remove a phone.
    Rm {
        /// The phone's MAC, in any spelling (805ec0aabbcc, 80:5E:C0:AA:BB:CC, 805e.c0aa.bbcc).
        mac: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum LineCmd {
    /// Create or replace line N of a phone.
    Set {
        /// The phone's MAC, in any spelling (805ec0aabbcc, 80:5E:C0:AA:BB:CC, 805e.c0aa.bbcc).
        mac: String,
        /// Line number, 1 to the model's number of accounts.
        n: u32,
        /// SIP user (the address's user part).
        #[arg(long)]
        user: String,
        /// Authentication user, if it differs from --user.
        #[arg(long)]
        auth_user: Option<String>,
        /// SIP password; "-" reads it from standard input (a prompt without echo on a
        /// terminal), keeping it out of shell history and the process list.
        #[arg(long, value_name = "PASSWORD")]
        password: String,
        /// Name on the phone's screen (default: the user).
        #[arg(long, value_name = "TEXT")]
        display_name: Option<String>,
        /// Line key label (default: the display name).
        #[arg(long, value_name = "TEXT")]
        label: Option<String>,
        /// The account's SIP domain, when it is not the site's --sip-server (a multi-tenant
        /// PBX's domain, e.g. vwp.91912.service).
        #[arg(long, value_name = "DOMAIN")]
        domain: Option<String>,
    },
    /// Remove line N of a phone.
    Rm {
        /// The phone's MAC, in any spelling (805ec0aabbcc, 80:5E:C0:AA:BB:CC, 805e.c0aa.bbcc).
        mac: String,
        /// Line number.
        n: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum FirmwareCmd {
    /// Store an image (refused if the policy denies it).
    Add {
        /// The image file (its published name says vendor, version and models).
        file: PathBuf,
        /// The version, when the file name does not say it (required for Polycom sip.ld).
        #[arg(long)]
        version: Option<String>,
        /// Models it fits, comma-separated, when the file name does not list them.
        #[arg(long, value_delimiter = ',')]
        models: Vec<String>,
    },
    /// List stored images with what the policy says of each.
    List,
    /// Remove a stored image (by version or sha256).
    Rm {
        /// A stored image: its version, or 8+ digits of its sha256.
        image: String,
    },
    /// Make an image the target of a site, a model within a site, or one phone.
    Assign {
        /// Version or sha256 of a stored image.
        image: String,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Remove a target.
    Unassign {
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Say what the policy says of a file, and why; store nothing.
    Check {
        /// The image file (its published name says vendor, version and models).
        file: PathBuf,
        #[arg(long)]
        version: Option<String>,
        /// Models it is for, comma-separated (when its name does not say).
        #[arg(long, value_delimiter = ',')]
        models: Vec<String>,
    },
    /// Phones whose last fetch reported firmware the policy denies (exit code 1 if any).
    Audit,
}

/// Where a firmware target goes.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// Assign for the whole site (with --model: that model in the site).
    #[arg(long)]
    pub site: Option<String>,
    /// Within the site, phones of this model only.
    #[arg(long)]
    pub model: Option<String>,
    /// This phone only (MAC): the first step of a staged rollout.
    #[arg(long, value_name = "MAC")]
    pub phone: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCmd {
    /// Every rule in force, where it was written, and the stored images it denies.
    Show,
}

#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// The known-good image to hand out.
    #[arg(long)]
    pub image: PathBuf,
    /// TFTP listen address (a recovering phone asks on port 69).
    #[arg(long, default_value = "0.0.0.0:69")]
    pub listen: String,
    /// The model being recovered (the image must fit it).
    #[arg(long, default_value = "T54W")]
    pub model: String,
    /// The image's version, when its file name does not say it.
    #[arg(long)]
    pub version: Option<String>,
    /// File name endings answered with the image, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = ".rom,.bin,.rfs")]
    pub names: Vec<String>,
}

/// Which layer a setting lives at.
#[derive(Debug, Args)]
pub struct LayerArgs {
    /// Site layer: phones of this site (with --model: of that model in the site).
    #[arg(long)]
    pub site: Option<String>,
    /// Model layer: phones of this model.
    #[arg(long)]
    pub model: Option<String>,
    /// Phone layer: this phone (MAC).
    #[arg(long, value_name = "MAC")]
    pub phone: Option<String>,
    /// With --site alone: only this vendor's phones (yealink, polycom).
    #[arg(long)]
    pub vendor: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum SettingCmd {
    /// Set KEY to VALUE at a layer.
    Set {
        #[command(flatten)]
        layer: LayerArgs,
        /// Vendor key, e.g. lang.gui.
        key: String,
        /// Its value, written as given.
        value: String,
    },
    /// Remove KEY from a layer.
    Rm {
        #[command(flatten)]
        layer: LayerArgs,
        /// Vendor key, e.g. lang.gui.
        key: String,
    },
    /// List the keys set at a layer.
    List {
        #[command(flatten)]
        layer: LayerArgs,
    },
}

/// The settings file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub http: Option<String>,
    pub tftp: Option<String>,
    pub public_url: Option<String>,
    pub public_https_url: Option<String>,
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
            data_dir,
            public_url,
            public_url_configured: configured.is_some(),
            public_https_url,
            http,
            tftp,
            file: path,
        })
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("phoneprov.sqlite")
    }

    pub fn template_dir(&self) -> PathBuf {
        self.data_dir.join("templates")
    }

    pub fn tokens_path(&self) -> PathBuf {
        self.data_dir.join(crate::tokens::FILE)
    }

    /// The base URLs rendered files point at.
    pub fn urls(&self) -> crate::render::Urls {
        crate::render::Urls::new(&self.public_url, self.public_https_url.as_deref())
    }
}

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
