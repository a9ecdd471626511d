//! The `boot storm` check: the kernel limits that decide whether a storm's connections and
//! TFTP requests wait or are dropped — `net.core.somaxconn` caps the HTTP and HTTPS accept
//! queue `serve` asks for, `net.core.rmem_max` the TFTP receive buffer.

use super::{Check, fail, ok};

const NAME: &str = "boot storm";

/// Below this accept queue a storm of a few hundred phones at once drops SYNs (each such phone
/// retries a second later): kernels before 5.4 had 128.
const MIN_BACKLOG: u64 = 1024;

/// What `serve` asks the kernel for (`serve::LISTEN_BACKLOG`, `serve::TFTP_RECEIVE_BUFFER`;
/// passed in by the CLI, as nothing here imports a transport).
#[derive(Debug, Clone, Copy)]
pub struct Asks {
    pub listen_backlog: u64,
    pub tftp_receive_buffer: u64,
}

/// Reads the two limits from `/proc/sys/net/core/`.
pub fn check(asks: Asks) -> Check {
    let read = |name: &str| {
        std::fs::read_to_string(format!("/proc/sys/net/core/{name}"))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
    };
    judge(asks, read("somaxconn"), read("rmem_max"))
}

/// The check's line for these limits (`None`: not readable here).
fn judge(asks: Asks, somaxconn: Option<u64>, rmem_max: Option<u64>) -> Check {
    let wanted_backlog = asks.listen_backlog;
    let wanted_buf = asks.tftp_receive_buffer;
    let (Some(somaxconn), Some(rmem_max)) = (somaxconn, rmem_max) else {
        return ok(
            NAME,
            "kernel limits not readable here (not Linux?): not checked".into(),
        );
    };
    let backlog = somaxconn.min(wanted_backlog);
    if somaxconn < MIN_BACKLOG {
        return fail(
            NAME,
            format!(
                "net.core.somaxconn is {somaxconn}: HTTP and HTTPS hold only {backlog} \
                 connections waiting to be accepted, and a storm's beyond that are dropped \
                 and retried a second later"
            ),
            &format!(
                "sysctl -w net.core.somaxconn={wanted_backlog}, and the same line in \
                 /etc/sysctl.d/ to keep it"
            ),
        );
    }
    let buf = 2 * rmem_max.min(wanted_buf);
    let mut detail = format!(
        "accept queue {backlog} connections; TFTP receive buffer {} KiB",
        buf / 1024
    );
    if rmem_max < wanted_buf {
        detail.push_str(&format!(
            " (capped by net.core.rmem_max = {rmem_max}: enough for hundreds of phones \
             asking at once; for thousands, sysctl -w net.core.rmem_max={wanted_buf})"
        ));
    }
    ok(NAME, detail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    const ASKS: Asks = Asks {
        listen_backlog: 4096,
        tftp_receive_buffer: 4 << 20,
    };

    #[test]
    fn the_limits_are_judged_as_serve_would_meet_them() {
        // A current kernel with a lifted rmem_max: all of what serve asks for.
        let c = judge(ASKS, Some(4096), Some(4 << 20));
        assert_eq!(c.status, Status::Ok);
        assert_eq!(
            c.detail,
            "accept queue 4096 connections; TFTP receive buffer 8192 KiB"
        );
        // Stock Debian: the buffer is capped, which is said, and still OK.
        let c = judge(ASKS, Some(4096), Some(212_992));
        assert_eq!(c.status, Status::Ok);
        assert!(
            c.detail.contains("TFTP receive buffer 416 KiB"),
            "{}",
            c.detail
        );
        assert!(
            c.detail.contains("net.core.rmem_max=4194304"),
            "{}",
            c.detail
        );
        // An old kernel's 128: a storm's connections are dropped.
        let c = judge(ASKS, Some(128), Some(212_992));
        assert_eq!(c.status, Status::Fail);
        assert!(c.detail.contains("only 128"), "{}", c.detail);
        assert!(
            c.fix
                .as_deref()
                .is_some_and(|f| f.contains("somaxconn=4096"))
        );
        // A larger somaxconn: serve still asks for its own 4096.
        assert!(
            judge(ASKS, Some(65_535), Some(4 << 20))
                .detail
                .contains("queue 4096")
        );
        assert_eq!(judge(ASKS, None, Some(1)).status, Status::Ok);
    }
}
