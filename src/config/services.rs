//! Flags and subcommands for who may fetch a site's files, admin tokens, and the services we
//! call (Yealink's cloud, PBXes).

use clap::{Args, Subcommand};

/// Who may fetch a site's files.
#[derive(Debug, Args)]
pub struct AccessArgs {
    /// Provisioning login phones must present (HTTP Basic or Digest). Changing it starts a
    /// rotation: the old login is still accepted for --rotation-window.
    #[arg(long, value_name = "USER")]
    pub auth_user: Option<String>,
    /// Password of the login ("-" reads it from standard input — a prompt without echo on a
    /// terminal — keeping it out of shell history and the process list).
    #[arg(long, value_name = "PASSWORD")]
    pub auth_password: Option<String>,
    /// Remove the login: the site's files need no credentials.
    #[arg(long, conflicts_with_all = ["auth_user", "auth_password"])]
    pub no_auth: bool,
    /// How long the previous login keeps working after a change (e.g. 7d, 12h, 0).
    #[arg(long, value_name = "DURATION")]
    pub rotation_window: Option<String>,
    /// Only these networks may fetch the site's files (repeat; replaces the list).
    #[arg(long, value_name = "CIDR")]
    pub allow_net: Vec<String>,
    /// The Yealink cloud (YMCS) site of its phones ("" for the one of the same name).
    #[arg(long, value_name = "NAME")]
    pub ymcs_site: Option<String>,
    /// Remove the network restriction.
    #[arg(long, conflicts_with = "allow_net")]
    pub any_net: bool,
    /// Refuse plain HTTP and TFTP for the site; rendered URLs use the public HTTPS URL.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub require_https: Option<bool>,
    /// Rendered files over TFTP (which carries no credentials): auto (allowed unless the site
    /// has a login), allow, deny.
    #[arg(long, value_name = "auto|allow|deny")]
    pub tftp: Option<String>,
}

/// Which phones a YMCS operation acts on: a site's, or the MACs named.
#[derive(Debug, Args)]
pub struct YmcsTarget {
    /// Every phone of this site.
    #[arg(long)]
    pub site: Option<String>,
    /// MACs (our phones), instead of --site.
    pub macs: Vec<String>,
    /// Do it (without: print the plan, change nothing, exit 3).
    #[arg(long)]
    pub confirm: bool,
}

#[derive(Debug, Subcommand)]
pub enum YmcsCmd {
    /// Whether the access key works; YMCS sites and their device counts.
    Status,
    /// What YMCS knows against what we know, per MAC.
    Devices {
        /// Every phone of this site.
        #[arg(long)]
        site: Option<String>,
    },
    /// Add our phones to the site's YMCS site by MAC.
    Register(YmcsTarget),
    /// Point the phones' RPS entries at the site's provisioning URL (with its login).
    RpsAdd(YmcsTarget),
    /// Remove the phones from RPS.
    RpsRemove(YmcsTarget),
    /// Reboot the phones through YMCS, paced.
    Reboot {
        #[command(flatten)]
        target: YmcsTarget,
        /// Reboots per minute (e.g. 60/min or 60).
        #[arg(long, value_name = "N/min", default_value = "60/min")]
        pace: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum PbxCmd {
    /// Add a PBX. Credentials: PHONEPROV_PBX_<NAME>_API_KEY (NetSapiens), or _CLIENT_ID,
    /// _CLIENT_SECRET, _USERNAME, _PASSWORD (OAuth), or _TOKEN (SARK); or a table [NAME] in
    /// <data-dir>/pbx-credentials.toml (mode 0600).
    Add {
        /// The PBX's name in phoneprov.
        name: String,
        /// netsapiens or sark.
        #[arg(long, value_name = "netsapiens|sark")]
        kind: String,
        /// The API's base URL (https://…; http:// only for loopback).
        #[arg(long, value_name = "URL")]
        base_url: String,
        /// NetSapiens API version: v2, v1 or auto.
        #[arg(long, value_name = "auto|v2|v1", default_value = "auto")]
        api_version: String,
    },
    List,
    /// A PBX and the domain/site pairs synced from it.
    Show {
        /// The PBX's name in phoneprov.
        name: String,
    },
    Rm {
        /// The PBX's name in phoneprov.
        name: String,
    },
    /// Read the PBX's phones and lines for a domain (NetSapiens) or tenant (SARK) into a site.
    Sync {
        /// The PBX's name in phoneprov.
        name: String,
        /// The PBX domain (tenant) to read.
        #[arg(long, value_name = "PBX_DOMAIN_OR_TENANT")]
        domain: String,
        /// Our site that gets the domain's phones and lines.
        #[arg(long)]
        site: String,
        /// Report what would change; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Also remove the site's phones the PBX no longer has.
        #[arg(long)]
        prune: bool,
    },
}

/// Admin API tokens.
#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Make a token; it is printed once and only its hash is kept.
    New {
        /// Token name (who or what uses it).
        name: String,
    },
    /// List tokens by name.
    List,
    /// Revoke a token (a running server stops accepting it at once).
    Rm {
        /// Token name.
        name: String,
    },
}

/// Web console users.
#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Add a user. The password is read from standard input (`--password -`): a prompt
    /// without echo on a terminal, else one line of a pipe.
    Add {
        /// Login name (letters, digits, `.`, `_`, `-`, `@`).
        name: String,
        /// admin: everything, users and passwords included; tech: sites, phones, import,
        /// firmware, YMCS, never a password; viewer: read only.
        #[arg(long, value_name = "admin|tech|viewer")]
        role: String,
        /// `-`: read it from standard input (never on the command line, where `ps` shows it).
        #[arg(long, value_name = "-")]
        password: String,
    },
    /// List users and their roles.
    List,
    /// Remove a user; their sessions end at once. The last admin stays.
    Rm {
        /// Login name.
        name: String,
    },
    /// Set a user's password (read from standard input); their sessions end.
    Passwd {
        /// Login name.
        name: String,
        /// `-`: read it from standard input.
        #[arg(long, value_name = "-")]
        password: String,
    },
}
