//! `phoneprov token new|list|rm`: admin API tokens, kept as hashes in a file of their own.

use super::print::{print, when};

pub fn run(
    path: &std::path::Path,
    cmd: phoneprov::config::TokenCmd,
    json: bool,
) -> anyhow::Result<std::process::ExitCode> {
    use phoneprov::config::TokenCmd;
    use phoneprov::tokens;
    let refused = |e: tokens::TokenError| -> anyhow::Error {
        match e {
            tokens::TokenError::Invalid(m) => phoneprov::manage::Error::Invalid(m).into(),
            tokens::TokenError::NotFound(m) => {
                phoneprov::manage::Error::NotFound(format!("no admin token named '{m}'")).into()
            }
            other => other.into(),
        }
    };
    match cmd {
        TokenCmd::New { name } => {
            let token = tokens::create(path, &name).map_err(refused)?;
            print(
                json,
                &serde_json::json!({"name": name, "token": token}),
                format!(
                    "{token}\n(shown once: only its hash is kept in {})",
                    path.display()
                ),
            );
        }
        TokenCmd::List => {
            let entries = tokens::read(path).map_err(refused)?;
            let text = entries
                .iter()
                .map(|e| format!("{}  created {}", e.name, when(e.created_at)))
                .collect::<Vec<_>>()
                .join("\n");
            print(json, &entries, text);
        }
        TokenCmd::Rm { name } => {
            tokens::remove(path, &name).map_err(refused)?;
            print(
                json,
                &serde_json::json!({"removed": name}),
                format!("token '{name}' revoked"),
            );
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}
