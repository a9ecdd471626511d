//! `phoneprov serve` and `phoneprov recover`: the two commands that run until stopped, and
//! the recovery summary printed when `recover` stops.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;

use phoneprov::config::{ServeArgs, Settings};
use phoneprov::manage::{self, Manager};
use phoneprov::serve::{self, ServeConfig};
use phoneprov::store::Store;

use super::demo;

pub async fn recover(
    m: &Manager,
    args: phoneprov::config::RecoverArgs,
) -> anyhow::Result<ExitCode> {
    let checked = m
        .firmware_check(
            &args.image,
            args.version.as_deref(),
            std::slice::from_ref(&args.model),
        )
        .await?;
    if !checked.verdict.allowed() {
        return Err(manage::Error::Invalid(format!(
            "refusing to recover with {}: {}",
            checked.file_name,
            checked.verdict.refusals.join("; ")
        ))
        .into());
    }
    let sock = tokio::net::UdpSocket::bind(&args.listen)
        .await
        .with_context(|| {
            format!(
                "listening on udp {} (port 69 needs root or CAP_NET_BIND_SERVICE)",
                args.listen
            )
        })?;
    let responder = std::sync::Arc::new(phoneprov::recover::Recovery::new(
        args.image.clone(),
        checked.content.size,
        checked.content.sha256.clone(),
        &args.names,
    ));
    println!(
        "phoneprov recover: answering {} requests on udp://{} with {} (version {}, sha256 {}). Ctrl-C to stop.",
        args.names.join(" "),
        sock.local_addr()?,
        checked.file_name,
        checked.version,
        &checked.content.sha256[..16]
    );
    let _ = std::io::stdout().flush();
    let files: std::sync::Arc<dyn phoneprov::resolve::Responder> = responder.clone();
    let cfg = serve::tftp::TftpConfig {
        retries: 8,
        ..Default::default()
    };
    serve::tftp::run(sock, files, cfg, stop_signal()?).await;
    println!("{}", recovery_summary(&responder.summary()));
    Ok(ExitCode::SUCCESS)
}

/// How long console sessions live: each a duration above zero, the idle time no longer than
/// the lifetime.
fn session_policy(args: &ServeArgs) -> anyhow::Result<phoneprov::users::sessions::SessionPolicy> {
    let read = |flag: &str, v: &str| -> anyhow::Result<std::time::Duration> {
        match phoneprov::config::parse_duration(v) {
            Ok(d) if !d.is_zero() => Ok(d),
            Ok(_) => Err(manage::Error::Invalid(format!("{flag}: must be more than 0")).into()),
            Err(e) => Err(manage::Error::Invalid(format!("{flag}: {e}")).into()),
        }
    };
    let idle = read("--session-idle", &args.session_idle)?;
    let lifetime = read("--session-lifetime", &args.session_lifetime)?;
    if idle > lifetime {
        return Err(manage::Error::Invalid(format!(
            "--session-idle ({}) is longer than --session-lifetime ({}): sessions would end at their lifetime anyway",
            args.session_idle, args.session_lifetime
        ))
        .into());
    }
    Ok(phoneprov::users::sessions::SessionPolicy { idle, lifetime })
}

pub async fn serve(store: Store, settings: &Settings, args: ServeArgs) -> anyhow::Result<ExitCode> {
    phoneprov::tokens::migrate_legacy(&settings.tokens_path())?;
    if phoneprov::tokens::read(&settings.tokens_path())?.is_empty() {
        tracing::warn!(
            "no admin tokens: the admin API refuses every call; make one with `phoneprov token new NAME`"
        );
    }
    // SIGHUP reads the command line, environment and settings file again, as at start.
    let https_arg = args.https.clone();
    let reread = serve::Reread(std::sync::Arc::new(move || {
        let cli =
            <phoneprov::config::Cli as clap::Parser>::try_parse().map_err(|e| e.to_string())?;
        let s = Settings::resolve(&cli).map_err(|e| e.to_string())?;
        Ok(serve::Reloaded {
            public_url: s.public_url_configured.then(|| s.public_url.clone()),
            public_https_url: s.public_https_url.clone(),
            listen: (s.http.clone(), s.tftp.clone(), https_arg.clone()),
        })
    }));
    let cfg = ServeConfig {
        settings_file: Some(settings.file.clone()),
        metrics_open: args.metrics_open,
        file_cache_bytes: args.file_cache_mb.saturating_mul(1 << 20),
        sessions: session_policy(&args)?,
        reread: Some(reread),
        http: settings.http.clone(),
        public_url: settings
            .public_url_configured
            .then(|| settings.public_url.clone()),
        template_dir: settings.template_dir(),
        files_dir: settings.data_dir.join("files"),
        data_dir: settings.data_dir.clone(),
        public_https_url: settings.public_https_url.clone(),
        sync_every: args
            .sync_every
            .as_deref()
            .map(phoneprov::config::parse_duration)
            .transpose()
            .map_err(|e| manage::Error::Invalid(format!("--sync-every: {e}")))?,
        upload_cap: 1024 * 1024,
        poll_every: std::time::Duration::from_millis(500),
        tftp: settings.tftp.clone(),
        https: args.https.clone(),
        guard: (args.ban_after > 0).then(|| phoneprov::access::GuardConfig {
            threshold: args.ban_after,
            ban_ms: i64::from(args.ban_minutes) * 60_000,
            ..Default::default()
        }),
        tls_files: match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some(serve::tls::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => None,
        },
        tftp_cfg: serve::tftp::TftpConfig {
            max_transfers: args.tftp_max_transfers.max(1),
            timeout: std::time::Duration::from_millis(args.tftp_timeout_ms.clamp(10, 255_000)),
            retries: args.tftp_retries,
            ..Default::default()
        },
    };
    let demo = if args.demo {
        demo::seed_demo(&store, settings, &cfg).await?
    } else {
        None
    };
    if !settings.public_url_configured && !settings.http.starts_with("127.") {
        tracing::warn!(
            "no --public-url set: rendered files point at this machine's loopback address, which phones cannot reach; set public_url in {}/phoneprov.toml",
            settings.data_dir.display()
        );
    }
    let shutdown = stop_signal()?;
    let data_dir = settings.data_dir.clone();
    serve::run(
        store,
        cfg,
        |bound, public_url| {
            if let Some(t) = bound.tftp {
                println!("phoneprov: tftp on udp://{t}");
            }
            if let Some((a, fp)) = &bound.https {
                println!("phoneprov: https on https://{a} (certificate sha256 {fp})");
            }
            println!(
                "phoneprov: listening on http://{} (public URL {public_url})",
                bound.http
            );
            if let Some(demo) = &demo {
                println!(
                    "{}",
                    demo::demo_instructions(demo, bound.http, public_url, &data_dir)
                );
            }
            let _ = std::io::stdout().flush();
        },
        shutdown,
    )
    .await?;
    Ok(ExitCode::SUCCESS)
}
/// Completes on the first SIGINT (Ctrl-C) or SIGTERM (`systemctl stop`, `docker stop`), both
/// caught from this call on. Waiting for a first poll left a window after start in which the
/// HTTP threads already answered but a signal still killed the process outright, and SIGTERM
/// was not caught at all: a stop by systemd skipped the drain and the last flush.
fn stop_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot catch SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot catch SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

fn recovery_summary(
    s: &std::collections::BTreeMap<std::net::SocketAddr, phoneprov::recover::PhoneLog>,
) -> String {
    if s.is_empty() {
        return "recovery summary: no phone asked for an image".into();
    }
    let mut out = format!("recovery summary: {} phone(s)", s.len());
    for (peer, l) in s {
        out.push_str(&format!(
            "\n  {peer}: asked for {}; {} of {} bytes; {}",
            l.requests.join(", "),
            l.acked,
            l.total,
            l.outcome.as_deref().unwrap_or("in progress when stopped")
        ));
    }
    out
}
