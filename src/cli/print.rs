//! What every command group prints with: text for people, JSON with `--json`, and local times.

use chrono::TimeZone;

pub fn print<T: serde::Serialize>(json: bool, value: &T, text: String) {
    if json {
        match serde_json::to_string_pretty(value) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("error: cannot print JSON: {e}"),
        }
    } else if !text.is_empty() {
        println!("{text}");
    }
}

pub fn when(ms: i64) -> String {
    chrono::Local
        .timestamp_millis_opt(ms)
        .single()
        .map(|t| t.format("%Y-%m-%d %H:%M:%S %z").to_string())
        .unwrap_or_else(|| ms.to_string())
}
