//! `phoneprov doctor`: what a tech wants to know before a rollout, each check a line that says
//! OK, what is wrong and how to fix it, or why it was skipped. Reads only: nothing is written to
//! the database, Yealink's cloud or a PBX.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::manage::Manager;

mod certificate;
mod storm;

pub use storm::Asks as StormAsks;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Fail,
    /// Not configured, so not checked.
    Skip,
}

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub status: Status,
    pub detail: String,
    /// What to do about a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

fn ok(name: &str, detail: String) -> Check {
    Check {
        name: name.into(),
        status: Status::Ok,
        detail,
        fix: None,
    }
}

fn fail(name: &str, detail: String, fix: &str) -> Check {
    Check {
        name: name.into(),
        status: Status::Fail,
        detail,
        fix: Some(fix.into()),
    }
}

fn skip(name: &str, detail: &str) -> Check {
    Check {
        name: name.into(),
        status: Status::Skip,
        detail: detail.into(),
        fix: None,
    }
}

/// What the checks need to know.
pub struct Inputs<'a> {
    pub store: &'a crate::store::Store,
    /// `None` when the verbs could not be set up (a broken policy or template: its own check
    /// says why); the PBX checks are skipped then.
    pub manager: Option<&'a Manager>,
    pub data_dir: &'a Path,
    pub public_url: &'a str,
    pub public_url_configured: bool,
    pub public_https_url: Option<&'a str>,
    /// Where `serve` answers TFTP (`None`: turned off).
    pub tftp: Option<String>,
    /// The certificate file `serve` uses (`--tls-cert`); `None`: the generated one, if any.
    pub tls_cert: Option<&'a Path>,
    /// The accept queue and TFTP receive buffer `serve` asks the kernel for.
    pub storm: StormAsks,
}

/// Runs every check, in the order a tech would fix things.
pub async fn run(i: &Inputs<'_>) -> Vec<Check> {
    let mut out = vec![database(i.store).await];
    out.push(public_url(i).await);
    out.push(match i.public_https_url {
        Some(u) => healthz("public HTTPS URL", u).await,
        None => skip(
            "public HTTPS URL",
            "not set (needed only by sites with --require-https)",
        ),
    });
    out.push(certificate::check(i.public_https_url, i.tls_cert, i.data_dir).await);
    out.push(tftp(i.tftp.as_deref()).await);
    out.push(storm::check(i.storm));
    out.push(policy(i.data_dir));
    out.extend(clouds(i.data_dir).await);
    match i.manager {
        Some(m) => out.extend(pbxes(m, i.data_dir).await),
        None => out.push(skip("PBX", "not checked: fix the failures above first")),
    }
    out
}

async fn database(store: &crate::store::Store) -> Check {
    match store.quick_check().await {
        Ok(Ok(())) => ok("database", "integrity check passed".into()),
        Ok(Err(found)) => fail(
            "database",
            found,
            "restore from a backup (`phoneprov restore`), or recover a copy with sqlite3 .recover",
        ),
        Err(e) => fail("database", e.to_string(), "see the error"),
    }
}

async fn public_url(i: &Inputs<'_>) -> Check {
    let mut c = healthz("public URL", i.public_url).await;
    if c.status == Status::Ok && !i.public_url_configured {
        c = fail(
            "public URL",
            format!(
                "{} answers, but it was guessed from the listen address",
                i.public_url
            ),
            "set public_url in the settings file to the address phones reach",
        );
    } else if c.status == Status::Ok && crate::manage::url_is_loopback(i.public_url) {
        c = fail(
            "public URL",
            format!(
                "{} is a loopback address: phones cannot reach it",
                i.public_url
            ),
            "set public_url to the name or address phones reach this server at",
        );
    }
    c
}

/// `GET <base>/healthz` answered "ok" by phoneprov itself.
async fn healthz(name: &str, base: &str) -> Check {
    let url = format!("{}/healthz", base.trim_end_matches('/'));
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
    {
        Ok(c) => c,
        Err(e) => return fail(name, e.to_string(), "see the error"),
    };
    match client.get(&url).send().await {
        Ok(r) if r.status() == 200 => match r.text().await {
            Ok(t) if t.trim() == "ok" => ok(name, format!("{url} answers")),
            _ => fail(
                name,
                format!("{url} answers, but not as phoneprov"),
                "another server holds that address: point public_url (and DNS, port forwards) at phoneprov",
            ),
        },
        Ok(r) => fail(
            name,
            format!("{url}: HTTP {}", r.status()),
            "something other than phoneprov answers there: check the proxy or port forward",
        ),
        Err(e) => fail(
            name,
            format!("{url}: {}", crate::outbound::describe_send_error(&e)),
            "start `phoneprov serve`, and check DNS, the firewall and port forwards for that address",
        ),
    }
}

/// A read request for a file that does not exist must come back as a TFTP ERROR.
async fn tftp(addr: Option<&str>) -> Check {
    let Some(addr) = addr else {
        return skip("TFTP", "turned off (--tftp off)");
    };
    let target: Option<SocketAddr> = tokio::net::lookup_host(addr)
        .await
        .ok()
        .and_then(|mut a| a.next())
        .map(|mut a| {
            if a.ip().is_unspecified() {
                a.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            a
        });
    let Some(target) = target else {
        return fail(
            "TFTP",
            format!("'{addr}' is not an address"),
            "set --tftp ADDR:PORT",
        );
    };
    let probe = async {
        let sock = tokio::net::UdpSocket::bind(("0.0.0.0", 0)).await.ok()?;
        let mut rrq = vec![0, 1];
        rrq.extend_from_slice(b"phoneprov-doctor-probe.cfg\0octet\0");
        sock.send_to(&rrq, target).await.ok()?;
        let mut buf = [0u8; 516];
        let (n, _) = tokio::time::timeout(Duration::from_secs(2), sock.recv_from(&mut buf))
            .await
            .ok()?
            .ok()?;
        (n >= 4 && buf[1] == 5).then_some(())
    };
    match probe.await {
        Some(()) => ok("TFTP", format!("udp {target} answers")),
        None => fail(
            "TFTP",
            format!("no TFTP answer from udp {target}"),
            "start `phoneprov serve` (port 69 needs CAP_NET_BIND_SERVICE), or firewall rules block UDP",
        ),
    }
}

fn policy(data_dir: &Path) -> Check {
    let path = data_dir.join(crate::firmware::policy::OPERATOR_FILE);
    match crate::firmware::policy::Policy::load(&path) {
        Ok(p) => ok(
            "firmware policy",
            format!(
                "{} rules in force{}",
                p.rules.len(),
                if path.exists() {
                    format!(" (with {})", path.display())
                } else {
                    " (shipped rules only)".into()
                }
            ),
        ),
        Err(e) => fail(
            "firmware policy",
            e.to_string(),
            "fix the file; `serve` keeps the last good policy meanwhile",
        ),
    }
}

async fn clouds(data_dir: &Path) -> Vec<Check> {
    let mut out = Vec::new();
    let mut c = crate::ymcs::Clouds::new(data_dir);
    let ymcs_set = std::env::vars().any(|(k, _)| k.starts_with("PHONEPROV_YMCS_"))
        || data_dir.join(crate::ymcs::FILE).exists();
    if ymcs_set {
        let mut skew = None;
        out.push(match c.ymcs() {
            Ok(y) => {
                let r = crate::ymcs::status(y).await;
                skew = y.clock_skew_ms;
                match r {
                    Ok(_) => ok("YMCS", "the key works (read the account's sites)".into()),
                    Err(e) => fail(
                        "YMCS",
                        e.to_string(),
                        "check the YMCS key, secret and region",
                    ),
                }
            }
            Err(e) => fail("YMCS", e.to_string(), "complete the YMCS settings"),
        });
        out.push(clock(skew));
    } else {
        out.push(skip("YMCS", "not configured"));
    }
    out.push(match c.rps_v1() {
        Ok(Some(r)) => match crate::ymcs::RpsApi::V1(r).servers().await {
            Ok(s) => ok("RPS", format!("the key works ({} server entries)", s.len())),
            Err(e) => fail(
                "RPS",
                e.to_string(),
                "check PHONEPROV_RPS_KEY_ID and PHONEPROV_RPS_KEY_SECRET",
            ),
        },
        Ok(None) => skip("RPS", "not configured"),
        Err(e) => fail("RPS", e.to_string(), "complete the RPS settings"),
    });
    out
}

/// Most a clock may differ from YMCS's before it is called wrong. Signed cloud calls carry a
/// timestamp the cloud checks; certificates, Digest nonces and the audit all read the clock.
const MAX_SKEW_MS: i64 = 60_000;

/// This server's clock against the `Date` of YMCS's answers (second resolution).
fn clock(skew_ms: Option<i64>) -> Check {
    let Some(ms) = skew_ms else {
        return skip("clock", "YMCS sent no Date to compare with");
    };
    let secs = ms as f64 / 1000.0;
    let side = if ms > 0 { "behind" } else { "ahead of" };
    match ms.abs() <= MAX_SKEW_MS {
        true => ok(
            "clock",
            format!("within {:.0} s of YMCS's clock", secs.abs().max(1.0)),
        ),
        false => fail(
            "clock",
            format!("this server's clock is {:.0} s {side} YMCS's", secs.abs()),
            "run NTP here (timedatectl set-ntp true, or chrony): signed cloud calls, certificates and Digest logins need the right time",
        ),
    }
}

async fn pbxes(m: &Manager, data_dir: &Path) -> Vec<Check> {
    let pairs = match m.pbx_pairs(None).await {
        Ok(p) => p,
        Err(e) => return vec![fail("PBX", e.to_string(), "see the error")],
    };
    if pairs.is_empty() {
        return vec![skip("PBX", "no PBX domain synced into a site yet")];
    }
    let mut out = Vec::new();
    for p in pairs {
        let name = format!("PBX {} ({} -> {})", p.pbx, p.domain, p.site);
        // A dry run reads the PBX and plans; it writes nothing.
        out.push(
            match crate::pbx::sync(m, data_dir, &p.pbx, &p.domain, &p.site, true, p.prune).await {
                Ok(r) if r.import.errors.is_empty() => ok(
                    &name,
                    format!(
                        "read: {} phones would be created, {} updated, {} unchanged",
                        r.import.created, r.import.updated, r.import.unchanged
                    ),
                ),
                Ok(r) => fail(
                    &name,
                    format!("{} record(s) refused", r.import.errors.len()),
                    "run `phoneprov pbx sync --dry-run` to see them",
                ),
                Err(e) => fail(&name, e.to_string(), "check the PBX's URL and credentials"),
            },
        );
    }
    out
}
