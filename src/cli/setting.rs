//! `phoneprov setting set|rm|list`: raw vendor settings at a layer.

use std::process::ExitCode;

use phoneprov::config::{LayerArgs, SettingCmd};
use phoneprov::manage::{LayerInput, Manager};

use super::print::print;

pub async fn run(m: &Manager, cmd: SettingCmd, json: bool) -> anyhow::Result<ExitCode> {
    match cmd {
        SettingCmd::Set {
            layer: l,
            key,
            value,
        } => {
            let changed = m.setting_set(&layer(l), &key, &value).await?;
            let text = if changed {
                format!("{key} = {value}")
            } else {
                format!("{key} already = {value}; nothing changed")
            };
            print(
                json,
                &serde_json::json!({"key": key, "changed": changed}),
                text,
            );
        }
        SettingCmd::Rm { layer: l, key } => {
            m.setting_rm(&layer(l), &key).await?;
            print(
                json,
                &serde_json::json!({"removed": key}),
                format!("{key} removed"),
            );
        }
        SettingCmd::List { layer: l } => {
            let v = m.setting_list(&layer(l)).await?;
            let text = v
                .iter()
                .map(|s| format!("{} = {}", s.key, s.value))
                .collect::<Vec<_>>()
                .join("\n");
            print(json, &v, text);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn layer(l: LayerArgs) -> LayerInput {
    LayerInput {
        site: l.site,
        model: l.model,
        phone: l.phone,
        vendor: l.vendor,
    }
}
