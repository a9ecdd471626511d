//! Address ranges (CIDR) for per-site allowed networks: parsing, display, membership.
//! IPv4-mapped IPv6 peers (`::ffff:192.0.2.1`, as a dual-stack listener reports them) match
//! IPv4 ranges.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

/// An address range such as `192.0.2.0/24` or `2001:db8::/32`; a bare address is a /32 or /128.
/// The arithmetic is `ipnet`'s; this type adds the mapped-address rule, refuses host bits, and
/// words errors for operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr(IpNet);

impl Cidr {
    /// Whether `ip` lies in the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.0.contains(&ip)
    }
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Cidr, String> {
        let bad = |why: &str| format!("'{s}' is not a network ({why}); expected e.g. 192.0.2.0/24");
        let t = s.trim();
        let net = match t.split_once('/') {
            Some((a, p)) => {
                let addr: IpAddr = a.parse().map_err(|_| bad("bad address"))?;
                let max = if addr.is_ipv4() { 32 } else { 128 };
                let prefix = p
                    .parse::<u8>()
                    .ok()
                    .filter(|n| *n <= max)
                    .ok_or_else(|| bad(&format!("prefix must be 0 to {max}")))?;
                IpNet::new(addr, prefix).map_err(|_| bad(&format!("prefix must be 0 to {max}")))?
            }
            None => IpNet::from(t.parse::<IpAddr>().map_err(|_| bad("bad address"))?),
        };
        // Host bits set (`192.0.2.7/24`) is almost always a typo for a different network.
        if net.trunc() != net {
            return Err(bad(&format!(
                "host bits set; did you mean {}?",
                net.trunc()
            )));
        }
        Ok(Cidr(net))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.0.addr(), self.0.prefix_len())
    }
}

impl serde::Serialize for Cidr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership() {
        let c: Cidr = "192.0.2.0/24".parse().unwrap();
        assert!(c.contains("192.0.2.200".parse().unwrap()));
        assert!(c.contains("::ffff:192.0.2.9".parse().unwrap()));
        assert!(!c.contains("192.0.3.1".parse().unwrap()));
        assert!(!c.contains("2001:db8::1".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.5".parse().unwrap()));
        let one: Cidr = "127.0.0.2".parse().unwrap();
        assert_eq!(one.to_string(), "127.0.0.2/32");
        assert!(one.contains("127.0.0.2".parse().unwrap()));
        assert!(!one.contains("127.0.0.3".parse().unwrap()));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:1::5".parse().unwrap()));
        assert!(!v6.contains("2001:db9::5".parse().unwrap()));
        for bad in [
            "",
            "10.0.0.0/33",
            "10.0.0.1/8",
            "nope/8",
            "10.0.0.0/x",
            "::/129",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        assert!(
            "10.0.0.1/8"
                .parse::<Cidr>()
                .unwrap_err()
                .contains("10.0.0.0/8")
        );
    }
}
