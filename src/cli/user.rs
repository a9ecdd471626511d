//! `phoneprov user add|list|rm|passwd`: the web console's users, in the database.

use std::process::ExitCode;

use phoneprov::config::UserCmd;
use phoneprov::manage;
use phoneprov::model::Role;
use phoneprov::store::Store;
use phoneprov::users::{UserError, Users};

use super::print::{print, when};

/// Reads a password given as `-` (the only spelling: a password on the command line is seen
/// by everyone who can run `ps`).
fn password(arg: String) -> anyhow::Result<String> {
    if arg != "-" {
        return Err(manage::Error::Invalid(
            "--password takes only '-' (read from standard input): a password on the command line is visible to every user of the machine".into(),
        )
        .into());
    }
    super::setup::secret(arg, "password")
}

fn refused(e: UserError) -> anyhow::Error {
    match e {
        UserError::Invalid(m) => manage::Error::Invalid(m).into(),
        UserError::NotFound(m) => manage::Error::NotFound(format!("no user '{m}'")).into(),
        UserError::Conflict(m) => manage::Error::Conflict(m).into(),
        UserError::Store(e) => manage::Error::Store(e).into(),
        other => other.into(),
    }
}

pub async fn run(store: &Store, cmd: UserCmd, json: bool) -> anyhow::Result<ExitCode> {
    let users = Users {
        store: store.clone(),
    };
    match cmd {
        UserCmd::Add {
            name,
            role,
            password: p,
        } => {
            let role: Role = role
                .parse()
                .map_err(|e: String| manage::Error::Invalid(format!("--role: {e}")))?;
            let p = password(p)?;
            let u = users.add(&name, role, &p).await.map_err(refused)?;
            print(json, &u, format!("user '{}' added ({})", u.name, u.role));
        }
        UserCmd::List => {
            let list = users.list().await.map_err(refused)?;
            let text = list
                .iter()
                .map(|u| format!("{:<24} {:<7} added {}", u.name, u.role, when(u.created_at)))
                .collect::<Vec<_>>()
                .join("\n");
            print(json, &list, text);
        }
        UserCmd::Rm { name } => {
            let u = users.rm(&name).await.map_err(refused)?;
            print(
                json,
                &serde_json::json!({"removed": u.name}),
                format!("user '{}' removed; their sessions are ended", u.name),
            );
        }
        UserCmd::Passwd { name, password: p } => {
            let p = password(p)?;
            users.set_password(&name, &p).await.map_err(refused)?;
            print(
                json,
                &serde_json::json!({"user": name, "password": "changed"}),
                format!("password of '{name}' changed; their sessions are ended"),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
