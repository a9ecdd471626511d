//! Provisioning credentials on the wire: HTTP Basic and Digest (RFC 7616 with MD5 and
//! `qop=auth`, which is what desk phones speak), with nonces the server mints and checks.
//!
//! A nonce is `hex(issued-ms ‖ 8 random bytes ‖ HMAC-SHA256(secret, both)[..8])`: the server can
//! tell its own nonces and their age without storing them. Only answers that were valid are
//! remembered (a fingerprint of nonce and count, [`replays`]), so a replayed answer (same nonce
//! and count) is refused and memory grows with real phones' fetches, not with scanners.
//!
//! Every check compares against every candidate credential in constant time and never stops at
//! the first mismatch, so how long a check takes says nothing about which part was wrong.

pub mod replays;

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine;
use hmac::{Hmac, Mac as _};
use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

use crate::model::Credential;

/// The realm of every challenge: one for all sites, so a challenge names no site.
pub const REALM: &str = "phoneprov";

/// How long a nonce is accepted after it was issued.
pub const NONCE_TTL_MS: i64 = 10 * 60 * 1000;

/// What a request's `Authorization` header proved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The site's current credential.
    Current,
    /// The credential being rotated out, inside its window.
    Previous,
    /// No credentials sent.
    Missing,
    /// Credentials that match nothing (or a stale or foreign nonce).
    Wrong,
    /// A Digest answer already used once.
    Replayed,
}

impl Outcome {
    pub fn ok(self) -> bool {
        matches!(self, Outcome::Current | Outcome::Previous)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Current => "current",
            Outcome::Previous => "previous",
            Outcome::Missing => "missing",
            Outcome::Wrong => "wrong",
            Outcome::Replayed => "replayed",
        }
    }
}

/// Mints and checks nonces; remembers used answers.
pub struct Authenticator {
    secret: [u8; 32],
    used: Mutex<replays::Replays>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authenticator")
    }
}

impl Default for Authenticator {
    fn default() -> Self {
        Authenticator::with_secret(fresh_secret())
    }
}

/// 32 random bytes for a nonce key.
pub fn fresh_secret() -> [u8; 32] {
    let mut secret = [0u8; 32];
    // Without randomness nonces would be forgeable; failing loudly beats that.
    if getrandom::fill(&mut secret).is_err() {
        panic!("no system randomness for nonce keys");
    }
    secret
}

impl Authenticator {
    /// Nonces keyed by `secret`: servers given the same one accept each other's nonces (the
    /// record of answers already used stays each server's own).
    pub fn with_secret(secret: [u8; 32]) -> Authenticator {
        Authenticator {
            secret,
            used: Mutex::default(),
        }
    }
}

fn md5_hex(parts: &[&str]) -> String {
    let mut h = Md5::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update(b":");
        }
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Splits `a="x, y", b=z` into pairs; quoted values may hold commas and escaped quotes.
fn parse_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else { break };
        let key = rest[..eq].trim().to_ascii_lowercase();
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(r) = rest.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = r.char_indices();
            let mut end = r.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            v.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => v.push(c),
                }
            }
            value = v;
            rest = &r[end.min(r.len())..];
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_string();
            rest = &rest[end..];
        }
        out.insert(key, value);
        rest = rest.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

impl Authenticator {
    fn tag(&self, body: &[u8]) -> [u8; 8] {
        let mut m = <Hmac<sha2::Sha256>>::new_from_slice(&self.secret)
            .expect("HMAC takes keys of any length");
        m.update(body);
        let full = m.finalize().into_bytes();
        let mut t = [0u8; 8];
        t.copy_from_slice(&full[..8]);
        t
    }

    /// A fresh nonce.
    pub fn nonce(&self, now: i64) -> String {
        let mut body = [0u8; 16];
        body[..8].copy_from_slice(&now.to_be_bytes());
        let _ = getrandom::fill(&mut body[8..]);
        let tag = self.tag(&body);
        format!("{}{}", hex::encode(body), hex::encode(tag))
    }

    /// Whether the nonce is ours and young enough.
    fn nonce_ok(&self, nonce: &str, now: i64) -> bool {
        let Ok(raw) = hex::decode(nonce) else {
            return false;
        };
        if raw.len() != 24 {
            return false;
        }
        let ok: bool = self.tag(&raw[..16]).ct_eq(&raw[16..]).into();
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&raw[..8]);
        let issued = i64::from_be_bytes(ts);
        ok && issued <= now + 5_000 && now - issued < NONCE_TTL_MS
    }

    /// The `WWW-Authenticate` values of a challenge: Digest first, then Basic.
    pub fn challenge(&self, now: i64) -> [String; 2] {
        [
            format!(
                "Digest realm=\"{REALM}\", qop=\"auth\", algorithm=MD5, nonce=\"{}\"",
                self.nonce(now)
            ),
            format!("Basic realm=\"{REALM}\", charset=\"UTF-8\""),
        ]
    }

    /// Checks an `Authorization` header against `current` and `previous` for a request of
    /// `method` on `uri`. With no credentials to check against, the same work is done against
    /// a throw-away one, so the answer takes as long.
    pub fn check(
        &self,
        header: Option<&str>,
        method: &str,
        uri: &str,
        current: Option<&Credential>,
        previous: Option<&Credential>,
        now: i64,
    ) -> Outcome {
        let Some(h) = header.map(str::trim) else {
            return Outcome::Missing;
        };
        let dummy = Credential {
            user: "\u{0}".into(),
            password: "\u{0}".into(),
        };
        let cands: [(&Credential, bool); 2] = [
            (current.unwrap_or(&dummy), current.is_some()),
            (previous.unwrap_or(&dummy), previous.is_some()),
        ];
        let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
        let mut matched = [false; 2];
        let params;
        let mut replay_of: Option<(&str, &str)> = None;
        if scheme.eq_ignore_ascii_case("basic") {
            let Some(decoded) = base64::engine::general_purpose::STANDARD
                .decode(rest.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
            else {
                return Outcome::Wrong;
            };
            let (u, p) = decoded.split_once(':').unwrap_or((&decoded, ""));
            for (i, (c, real)) in cands.iter().enumerate() {
                let ok = u.as_bytes().ct_eq(c.user.as_bytes())
                    & p.as_bytes().ct_eq(c.password.as_bytes());
                matched[i] = bool::from(ok) && *real;
            }
        } else if scheme.eq_ignore_ascii_case("digest") {
            params = parse_params(rest);
            let get = |k: &str| params.get(k).map(String::as_str).unwrap_or("");
            let (user, nonce, duri, resp) =
                (get("username"), get("nonce"), get("uri"), get("response"));
            let (qop, nc, cnonce) = (get("qop"), get("nc"), get("cnonce"));
            let algo = get("algorithm");
            let well_formed = get("realm") == REALM
                && (algo.is_empty() || algo.eq_ignore_ascii_case("MD5"))
                && (qop.is_empty() || qop == "auth")
                && (qop.is_empty() || (!nc.is_empty() && !cnonce.is_empty()))
                && duri == uri;
            let fresh = self.nonce_ok(nonce, now);
            let ha2 = md5_hex(&[method, duri]);
            for (i, (c, real)) in cands.iter().enumerate() {
                let ha1 = md5_hex(&[&c.user, REALM, &c.password]);
                let expect = if qop.is_empty() {
                    md5_hex(&[&ha1, nonce, &ha2])
                } else {
                    md5_hex(&[&ha1, nonce, nc, cnonce, qop, &ha2])
                };
                let ok = user.as_bytes().ct_eq(c.user.as_bytes())
                    & resp
                        .to_ascii_lowercase()
                        .as_bytes()
                        .ct_eq(expect.as_bytes());
                matched[i] = bool::from(ok) && *real && well_formed && fresh;
            }
            if matched.iter().any(|m| *m) {
                replay_of = Some((nonce, nc));
            }
        } else {
            return Outcome::Wrong;
        }
        let outcome = match matched {
            [true, _] => Outcome::Current,
            [false, true] => Outcome::Previous,
            _ => return Outcome::Wrong,
        };
        if let Some((nonce, nc)) = replay_of {
            let mut g = match self.used.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            match g.record(nonce, nc, now) {
                replays::Use::First => {}
                replays::Use::Replayed => return Outcome::Replayed,
                replays::Use::Full { first } => {
                    if first {
                        tracing::warn!(
                            max = replays::MAX_PER_GENERATION,
                            "the record of Digest answers is full: answers are refused until its \
                             generation turns (at most one nonce lifetime); further refusals \
                             until then are logged at debug level"
                        );
                    } else {
                        tracing::debug!("Digest answer refused: the record of answers is full");
                    }
                    return Outcome::Replayed;
                }
            }
        }
        outcome
    }
}

/// A Digest `Authorization` value, as a client computes it (tests and tools).
pub fn digest_answer(
    user: &str,
    password: &str,
    method: &str,
    uri: &str,
    nonce: &str,
    nc: &str,
    cnonce: &str,
) -> String {
    let ha1 = md5_hex(&[user, REALM, password]);
    let ha2 = md5_hex(&[method, uri]);
    let resp = md5_hex(&[&ha1, nonce, nc, cnonce, "auth", &ha2]);
    format!(
        "Digest username=\"{user}\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"{uri}\", \
         algorithm=MD5, qop=auth, nc={nc}, cnonce=\"{cnonce}\", response=\"{resp}\""
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cred(u: &str, p: &str) -> Credential {
        Credential {
            user: u.into(),
            password: p.into(),
        }
    }

    #[test]
    fn basic_and_digest() {
        let a = Authenticator::default();
        let now = 1_000_000_000;
        let cur = cred("prov", "s3cret");
        let old = cred("prov", "old");
        let basic = |u: &str, p: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        };
        let chk = |h: &str| a.check(Some(h), "GET", "/p/k/x.cfg", Some(&cur), Some(&old), now);
        assert_eq!(chk(&basic("prov", "s3cret")), Outcome::Current);
        assert_eq!(chk(&basic("prov", "old")), Outcome::Previous);
        assert_eq!(chk(&basic("prov", "nope")), Outcome::Wrong);
        assert_eq!(chk("Basic !!!"), Outcome::Wrong);
        assert_eq!(chk("Bearer x"), Outcome::Wrong);
        assert_eq!(
            a.check(None, "GET", "/", Some(&cur), None, now),
            Outcome::Missing
        );
        let n = a.nonce(now);
        let d = digest_answer("prov", "s3cret", "GET", "/p/k/x.cfg", &n, "00000001", "abc");
        assert_eq!(chk(&d), Outcome::Current);
        assert_eq!(chk(&d), Outcome::Replayed, "same nonce and count again");
        let d2 = digest_answer("prov", "s3cret", "GET", "/p/k/x.cfg", &n, "00000002", "abd");
        assert_eq!(chk(&d2), Outcome::Current, "next count on the same nonce");
        let d3 = digest_answer(
            "prov",
            "old",
            "GET",
            "/p/k/x.cfg",
            &a.nonce(now),
            "00000001",
            "q",
        );
        assert_eq!(chk(&d3), Outcome::Previous);
        // Another resource than the one requested.
        let other = digest_answer(
            "prov",
            "s3cret",
            "GET",
            "/p/k/y.cfg",
            &a.nonce(now),
            "00000001",
            "q",
        );
        assert_eq!(chk(&other), Outcome::Wrong);
        // A nonce we did not mint, or one too old.
        let forged = digest_answer(
            "prov",
            "s3cret",
            "GET",
            "/p/k/x.cfg",
            &"ab".repeat(24),
            "00000001",
            "q",
        );
        assert_eq!(chk(&forged), Outcome::Wrong);
        let old_nonce = a.nonce(now - NONCE_TTL_MS - 1);
        let stale = digest_answer(
            "prov",
            "s3cret",
            "GET",
            "/p/k/x.cfg",
            &old_nonce,
            "00000001",
            "q",
        );
        assert_eq!(chk(&stale), Outcome::Wrong);
        // A nonce from another server instance.
        let b = Authenticator::default();
        let foreign = digest_answer(
            "prov",
            "s3cret",
            "GET",
            "/p/k/x.cfg",
            &b.nonce(now),
            "00000001",
            "q",
        );
        assert_eq!(chk(&foreign), Outcome::Wrong);
        // No credential configured: nothing matches, not even the throw-away one.
        let none = a.check(Some(&basic("\u{0}", "\u{0}")), "GET", "/", None, None, now);
        assert_eq!(none, Outcome::Wrong);
    }

    #[test]
    fn params() {
        let p = parse_params(r#"username="a, b", realm="r\"x", nc=00000001, qop=auth"#);
        assert_eq!(p["username"], "a, b");
        assert_eq!(p["realm"], "r\"x");
        assert_eq!(p["nc"], "00000001");
        assert_eq!(p["qop"], "auth");
        assert!(parse_params("garbage").is_empty());
        assert!(parse_params("a=\"unterminated").contains_key("a"));
    }
}
