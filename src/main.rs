//! The command-line edge: parse, set up logging, open the data dir, run one command, turn its
//! outcome into output and an exit code (0 done, 2 the request was refused, 1 anything else).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use phoneprov::config::{
    Cli, Command, FirmwareCmd, LayerArgs, LineCmd, PhoneCmd, PolicyCmd, SettingCmd, Settings,
    SiteCmd, TargetArgs,
};
use phoneprov::manage::{self, LayerInput, LineInput, Manager, PhoneInput, SiteInput, SiteUpdate};
use phoneprov::serve;
use phoneprov::store::Store;

mod output;
mod pbx_cmd;
mod serve_cmd;
mod setup;
mod ymcs_cmd;

use serve_cmd::{recover_cmd, serve_cmd};
use setup::{creates_data, ensure_data_dir, error_text, secret};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Default levels: `serve` logs what it does; `recover`'s requests, progress and outcomes are
    // its output (the tech watches them); other commands say only what went wrong.
    let default = match cli.command {
        Command::Serve(_) => "info",
        Command::Recover(_) => "warn,phoneprov::recover=info",
        _ => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("PHONEPROV_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();

    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            // A refused request is the user's to fix: exit 2. Anything else: 1.
            let refused = match e.downcast_ref::<manage::Error>() {
                Some(manage::Error::Store(_)) => false,
                Some(_) => true,
                None => {
                    e.downcast_ref::<phoneprov::config::ConfigError>().is_some()
                        || matches!(
                            e.downcast_ref::<serve::ServeError>(),
                            Some(serve::ServeError::Publish(
                                phoneprov::publish::PublishError::Render(_)
                            ))
                        )
                }
            };
            let code = if refused { 2 } else { 1 };
            eprintln!("error: {}", error_text(&e));
            ExitCode::from(code)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let settings = Settings::resolve(&cli)?;
    ensure_data_dir(&settings, creates_data(&cli.command))?;
    let store = Store::open(&settings.db_path())
        .await
        .with_context(|| format!("opening the database in {}", settings.data_dir.display()))?;
    let json = cli.json;
    let result = match cli.command {
        Command::Serve(args) => serve_cmd(store.clone(), &settings, args).await,
        Command::Token(cmd) => output::token_cmd(&settings.tokens_path(), cmd, json),
        Command::Ymcs(cmd) => {
            let m = Manager::open(store.clone(), settings.urls(), &settings.data_dir)?;
            ymcs_cmd::run(&m, &settings.data_dir, cmd, json).await
        }
        Command::Recover(args) => {
            let m = Manager::open(store.clone(), settings.urls(), &settings.data_dir)?;
            recover_cmd(&m, args).await
        }
        cmd => {
            let m = Manager::open(store.clone(), settings.urls(), &settings.data_dir)?;
            command(&m, cmd, json, &settings.data_dir).await
        }
    };
    store.close().await;
    result
}

fn target(t: TargetArgs) -> phoneprov::rollout::TargetInput {
    phoneprov::rollout::TargetInput {
        site: t.site,
        model: t.model,
        phone: t.phone,
    }
}

fn layer(l: LayerArgs) -> LayerInput {
    LayerInput {
        site: l.site,
        model: l.model,
        phone: l.phone,
        vendor: l.vendor,
    }
}

async fn command(
    m: &Manager,
    cmd: Command,
    json: bool,
    data_dir: &Path,
) -> anyhow::Result<ExitCode> {
    use output::print;
    match cmd {
        Command::Serve(_) => unreachable!("handled by the caller"),
        Command::Site(SiteCmd::Add {
            name,
            sip_server,
            transport,
            time_zone,
            ntp,
            allow_keyless,
            ymcs_site,
            sip,
        }) => {
            let v = m
                .site_add(SiteInput {
                    name,
                    sip_server,
                    transport: Some(transport),
                    time_zone,
                    ntp,
                    allow_keyless,
                    ymcs_site,
                    outbound_proxy: sip.outbound_proxy,
                    outbound_proxy_2: sip.outbound_proxy_2,
                    recheck: sip.recheck,
                })
                .await?;
            print(json, &v, output::site_text(&v));
        }
        Command::Site(SiteCmd::Update {
            name,
            sip_server,
            transport,
            time_zone,
            ntp,
            allow_keyless,
            rotate_key,
            recovery,
            access,
            sip,
        }) => {
            let ntp = (!ntp.is_empty()).then_some(ntp);
            let auth_password = access
                .auth_password
                .map(|p| secret(p, "provisioning password"))
                .transpose()?;
            let allow_nets = match (access.any_net, access.allow_net.is_empty()) {
                (true, _) => Some(Vec::new()),
                (false, false) => Some(access.allow_net),
                (false, true) => None,
            };
            let v = m
                .site_update(
                    &name,
                    SiteUpdate {
                        sip_server,
                        transport,
                        time_zone,
                        ntp,
                        allow_keyless,
                        rotate_key,
                        recovery,
                        auth_user: access.auth_user,
                        auth_password,
                        no_auth: access.no_auth,
                        rotation_window: access.rotation_window,
                        allow_nets,
                        require_https: access.require_https,
                        tftp: access.tftp,
                        ymcs_site: access.ymcs_site,
                        outbound_proxy: sip.outbound_proxy,
                        outbound_proxy_2: sip.outbound_proxy_2,
                        recheck: sip.recheck,
                    },
                )
                .await?;
            print(json, &v, output::site_text(&v));
        }
        Command::Site(SiteCmd::List) => {
            let v = m.site_list().await?;
            print(json, &v, output::sites_text(&v));
        }
        Command::Site(SiteCmd::Show { name }) => {
            let v = m.site_show(&name).await?;
            print(json, &v, output::site_text(&v));
        }
        Command::Site(SiteCmd::Rm { name, force }) => {
            let n = m.site_rm(&name, force).await?;
            print(
                json,
                &serde_json::json!({"removed": name, "removed_phones": n}),
                format!("removed site {name} ({n} phones)"),
            );
        }
        Command::Phone(PhoneCmd::Add {
            mac,
            model,
            site,
            label,
            sn,
        }) => {
            let v = m
                .phone_add(PhoneInput {
                    mac,
                    model,
                    site,
                    label,
                    sn,
                })
                .await?;
            print(json, &v, output::phone_text(&v));
        }
        Command::Phone(PhoneCmd::Update {
            mac,
            label,
            sn,
            model,
            site,
            move_site,
        }) => {
            let u = phoneprov::manage::PhoneUpdate {
                label,
                sn,
                model,
                site,
                move_site,
            };
            let v = m.phone_update(&mac, u).await?;
            print(json, &v, output::phone_text(&v));
        }
        Command::Phone(PhoneCmd::List { site }) => {
            let v = m.phone_list(site.as_deref()).await?;
            print(json, &v, output::phones_text(&v));
        }
        Command::Phone(PhoneCmd::Show { mac }) => {
            let v = m.phone_show(&mac).await?;
            print(json, &v, output::phone_text(&v));
        }
        Command::Phone(PhoneCmd::Rm { mac }) => {
            m.phone_rm(&mac).await?;
            print(
                json,
                &serde_json::json!({"removed": mac}),
                format!("removed phone {mac}"),
            );
        }
        Command::Line(LineCmd::Set {
            mac,
            n,
            user,
            auth_user,
            password,
            display_name,
            label,
            domain,
        }) => {
            let password = secret(password, &format!("SIP password for line {n} of {mac}"))?;
            let v = m
                .line_set(
                    &mac,
                    n,
                    LineInput {
                        user,
                        auth_user,
                        password,
                        display_name,
                        label,
                        domain,
                    },
                )
                .await?;
            print(
                json,
                &v,
                format!("line {} of {mac} set (user {})", v.n, v.user),
            );
        }
        Command::Line(LineCmd::Rm { mac, n }) => {
            m.line_rm(&mac, n).await?;
            print(
                json,
                &serde_json::json!({"removed": n}),
                format!("line {n} of {mac} removed"),
            );
        }
        Command::Setting(SettingCmd::Set {
            layer: l,
            key,
            value,
        }) => {
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
        Command::Setting(SettingCmd::Rm { layer: l, key }) => {
            m.setting_rm(&layer(l), &key).await?;
            print(
                json,
                &serde_json::json!({"removed": key}),
                format!("{key} removed"),
            );
        }
        Command::Setting(SettingCmd::List { layer: l }) => {
            let v = m.setting_list(&layer(l)).await?;
            let text = v
                .iter()
                .map(|s| format!("{} = {}", s.key, s.value))
                .collect::<Vec<_>>()
                .join("\n");
            print(json, &v, text);
        }
        Command::Import {
            file,
            site,
            dry_run,
            allow_move,
            ymcs,
            confirm,
        } => {
            for w in &ymcs {
                if !matches!(w.as_str(), "register" | "rps") {
                    return Err(manage::Error::Invalid(format!(
                        "--ymcs '{w}': expected register, rps or both (register,rps)"
                    ))
                    .into());
                }
            }
            // Without --confirm, YMCS steps make the whole command a plan: nothing is imported,
            // YMCS is only read, exit 3. Check the YMCS settings first, so a typo costs nothing.
            let plan_only = !ymcs.is_empty() && !confirm && !dry_run;
            let mut clouds = match ymcs.is_empty() || dry_run {
                true => None,
                false => Some(ymcs_cmd::clouds_for(data_dir, &ymcs)?),
            };
            let input = phoneprov::import::Input::Path(file);
            let opts = phoneprov::import::Options {
                site,
                dry_run: dry_run || plan_only,
                allow_move,
                ..Default::default()
            };
            let tty = std::io::IsTerminal::is_terminal(&std::io::stderr()) && !json;
            let mut progress = |n: u64| {
                if tty {
                    eprint!("\rwriting: {n} phones");
                }
            };
            let report = phoneprov::import::import(m, &input, &opts, &mut progress).await?;
            if tty && report.applied {
                eprintln!();
            }
            print(json, &report, output::import_text(&report));
            if !report.errors.is_empty() {
                return Ok(ExitCode::from(2));
            }
            if let Some(c) = clouds.as_mut() {
                // The import stands whatever YMCS says; the report names what to retry.
                let mut code = ExitCode::SUCCESS;
                let all = m.targets_of(report.planned.clone()).await?;
                let site_names: Vec<String> = all.iter().map(|(s, _)| s.name.clone()).collect();
                for w in &ymcs {
                    let targets = all.clone();
                    let r = match w.as_str() {
                        "register" => match c.ymcs() {
                            Ok(y) => {
                                phoneprov::ymcs::register(y, targets, confirm, &|_, _| {}).await
                            }
                            Err(e) => Err(e),
                        },
                        _ => match c.rps() {
                            Ok(r) => {
                                phoneprov::ymcs::rps_add(m, r, targets, confirm, &|_, _| {}).await
                            }
                            Err(e) => Err(e),
                        },
                    };
                    match r {
                        Ok(r) => {
                            let rc = ymcs_cmd::show(&r, json);
                            if rc != ExitCode::SUCCESS {
                                code = rc;
                            }
                        }
                        Err(e) => {
                            let op = if w == "rps" { "rps-add" } else { "register" };
                            let retry: Vec<String> = site_names
                                .iter()
                                .map(|s| format!("phoneprov ymcs {op} --site {s} --confirm"))
                                .collect();
                            eprintln!(
                                "error: {}YMCS {w} failed: {e}\nretry with: {}",
                                if plan_only { "" } else { "import done, but " },
                                retry.join("\n            ")
                            );
                            code = ExitCode::from(1);
                        }
                    }
                }
                if plan_only && code != ExitCode::from(1) {
                    if !json {
                        println!(
                            "[DRY RUN] nothing was imported and nothing sent to Yealink's cloud; re-run with --confirm to import and do the YMCS steps."
                        );
                    }
                    return Ok(ExitCode::from(ymcs_cmd::DRY_RUN));
                }
                return Ok(code);
            }
        }
        Command::Firmware(FirmwareCmd::Add {
            file,
            version,
            models,
        }) => {
            let i = m.firmware_add(&file, version.as_deref(), &models).await?;
            print(
                json,
                &i,
                format!(
                    "stored {} (version {}, fits {}), sha256 {}",
                    i.file_name,
                    i.version,
                    i.models.join(", "),
                    i.sha256
                ),
            );
        }
        Command::Firmware(FirmwareCmd::List) => {
            let v = m.firmware_list().await?;
            print(json, &v, output::firmware_text(&v));
        }
        Command::Firmware(FirmwareCmd::Rm { image }) => {
            let i = m.firmware_rm(&image).await?;
            print(json, &i, format!("removed {}", i.file_name));
        }
        Command::Firmware(FirmwareCmd::Assign { image, target: t }) => {
            let i = m.firmware_assign(&image, &target(t)).await?;
            print(
                json,
                &i,
                format!("assigned {} (version {})", i.file_name, i.version),
            );
        }
        Command::Firmware(FirmwareCmd::Unassign { target: t }) => {
            m.firmware_unassign(&target(t)).await?;
            print(
                json,
                &serde_json::json!({"unassigned": true}),
                "unassigned".into(),
            );
        }
        Command::Firmware(FirmwareCmd::Check {
            file,
            version,
            models,
        }) => {
            let c = m.firmware_check(&file, version.as_deref(), &models).await?;
            let bytes = format!(
                "  {} bytes, sha256 {}, sha1 {}\n  {}",
                c.content.size,
                c.content.sha256,
                c.content.sha1,
                match &c.known {
                    Some(k) => format!("a known build: {} {} ({})", k.vendor, k.version, k.at),
                    None => "not a build phoneprov knows by content: identified by its name and the version given".into(),
                }
            );
            let text = if c.verdict.allowed() {
                format!(
                    "{}: version {} for {}: allowed by the policy\n{bytes}",
                    c.file_name,
                    c.version,
                    c.models.join(", ")
                )
            } else {
                format!(
                    "{}: version {} for {}: DENIED\n  {}\n{bytes}",
                    c.file_name,
                    c.version,
                    c.models.join(", "),
                    c.verdict.refusals.join("\n  ")
                )
            };
            print(json, &c, text);
            if !c.verdict.allowed() {
                return Ok(ExitCode::from(1));
            }
        }
        Command::Firmware(FirmwareCmd::Audit) => {
            let v = m.firmware_audit().await?;
            print(json, &v, output::audit_text(&v));
            if !v.is_empty() {
                return Ok(ExitCode::from(1));
            }
        }
        Command::Policy(PolicyCmd::Show) => {
            let policy = m.policy.get();
            let images = m.firmware_list().await?;
            let mut conn = m.store.conn().await?;
            let affected = phoneprov::publish::denied_assignments(&mut conn, &policy).await?;
            print(
                json,
                &serde_json::json!({"rules": policy.rules, "images": images, "denied_assignments": affected.iter().map(|(mac, f)| serde_json::json!({"mac": mac, "file": f})).collect::<Vec<_>>()}),
                output::policy_text(&policy, &images, &affected),
            );
        }
        Command::Recover(_) => unreachable!("handled by the caller"),
        Command::Export { site, with_secrets } => {
            let out = std::io::stdout().lock();
            let n = phoneprov::import::export(m, site.as_deref(), with_secrets, out).await?;
            tracing::info!(phones = n, "exported");
        }
        Command::Token(_) | Command::Ymcs(_) => unreachable!("handled in run"),
        Command::Pbx(cmd) => return pbx_cmd::run(m, data_dir, cmd, json).await,
        Command::Audit {
            site,
            mac,
            peer,
            result,
            since,
            limit,
        } => {
            let since = since
                .map(|d| phoneprov::config::parse_duration(&d).map_err(manage::Error::Invalid))
                .transpose()?
                .map(|d| phoneprov::store::now_ms() - d.as_millis() as i64);
            let rows = m
                .audit(site.as_deref(), mac.as_deref(), peer, result, since, limit)
                .await?;
            print(json, &rows, output::audit_table(&rows));
        }
        Command::Render { mac, file } => {
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
        }
    }
    Ok(ExitCode::SUCCESS)
}
