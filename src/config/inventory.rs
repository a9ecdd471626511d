//! The commands on the inventory — sites, phones, lines, settings, firmware, the policy and
//! recovery — as clap structs: plain data, every flag documented.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::AccessArgs;

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
