//! `phoneprov render MAC [FILE]`: exactly the bytes a phone would get, or the names of its
//! files.

use std::io::Write;
use std::process::ExitCode;

use phoneprov::config::RenderArgs;
use phoneprov::manage::{self, Manager};

use super::print::print;

pub async fn run(m: &Manager, args: RenderArgs, json: bool) -> anyhow::Result<ExitCode> {
    let RenderArgs { mac, file } = args;
    let files = m.render_phone(&mac).await?;
    match file {
        None => {
            let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
            print(json, &names, names.join("\n"));
        }
        Some(f) => {
            let want = phoneprov::resolve::canonical_name(&f);
            let (_, bytes) = files.iter().find(|(n, _)| *n == want).ok_or_else(|| {
                let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
                manage::Error::NotFound(format!(
                    "phone {mac} has no file '{f}'; its files: {}",
                    names.join(", ")
                ))
            })?;
            std::io::stdout().write_all(bytes)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
