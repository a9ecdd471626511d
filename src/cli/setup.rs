//! Bootstrapping a command: which commands may make a data dir (and making it private), secrets
//! read from standard input, and an error said with each cause once.

use anyhow::Context;

use phoneprov::config::{Command, Settings};
use phoneprov::manage;

/// An error and its causes, each said once: a cause whose text the message already carries
/// (errors that print their source) is left out.
pub fn error_text(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let t = cause.to_string();
        if !out.contains(&t) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&t);
        }
    }
    out
}

/// Commands that put data into a data dir, and so may make one. The others, given a data dir
/// that holds no database (a typo in `--data-dir`, another folder), say so instead of reading an
/// empty one.
pub fn creates_data(c: &Command) -> bool {
    use phoneprov::config::{FirmwareCmd, PbxCmd, PhoneCmd, SiteCmd, TokenCmd, UserCmd};
    matches!(
        c,
        Command::Serve(_)
            | Command::Recover(_)
            | Command::Import(_)
            | Command::Site(SiteCmd::Add { .. })
            | Command::Phone(PhoneCmd::Add { .. })
            | Command::Firmware(FirmwareCmd::Add { .. })
            | Command::Token(TokenCmd::New { .. })
            | Command::User(UserCmd::Add { .. })
            | Command::Pbx(PbxCmd::Add { .. })
    )
}

pub fn ensure_data_dir(
    settings: &Settings,
    database: &phoneprov::store::Location,
    creates: bool,
) -> anyhow::Result<()> {
    let dir = &settings.data_dir;
    // A PostgreSQL database is made by its operator (and migrated on first use); an SQLite
    // file that is not there yet means no install here.
    let made = database.sqlite_path().is_none_or(std::path::Path::exists);
    if made && dir.exists() {
        return Ok(());
    }
    if !creates {
        return Err(manage::Error::Invalid(format!(
            "no data dir at {} (no phoneprov.sqlite there): run from the folder that holds it, or give --data-dir or PHONEPROV_DATA_DIR; `site add`, `import` and `serve` make a new one",
            dir.display()
        ))
        .into());
    }
    if dir.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating data dir {}", dir.display()))?;
    eprintln!("phoneprov: created the data dir {}", dir.display());
    // The data dir holds SIP passwords: private from the start.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// A secret given on the command line: `-` reads it from standard input — on a terminal with a
/// prompt and without echo, else one line of a pipe — so it stays out of shell history and `ps`.
pub fn secret(value: String, what: &str) -> anyhow::Result<String> {
    if value != "-" {
        return Ok(value);
    }
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return Ok(rpassword::prompt_password(format!("{what}: "))?);
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}
