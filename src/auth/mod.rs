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
    /// HMAC-SHA256 keyed with the secret, cloned for each tag: keying hashes the key's two
    /// padded blocks, which would otherwise be half of every tag's work.
    keyed: Hmac<sha2::Sha256>,
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
            keyed: <Hmac<sha2::Sha256>>::new_from_slice(&secret)
                .expect("HMAC takes keys of any length"),
            used: Mutex::default(),
        }
    }
}

/// MD5 of `parts` joined by `:`, in lowercase hex (RFC 7616's `H(a:b:...)`), on the stack.
fn md5_hex(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Md5::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update(b":");
        }
        h.update(p);
    }
    let mut out = [0u8; 32];
    // 16 bytes into 32 digits: the lengths match, so it cannot fail.
    let _ = hex::encode_to_slice(h.finalize(), &mut out);
    out
}

/// Hex digits as text (they are ASCII, so nothing is ever lost).
fn hex_text(digits: &[u8]) -> &str {
    std::str::from_utf8(digits).unwrap_or_default()
}

/// A Digest header's parameters, names in lowercase, in the order sent.
#[derive(Debug, Default)]
struct Params(Vec<(String, String)>);

impl Params {
    /// A parameter's value; the last one sent wins where a name is repeated.
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Splits `a="x, y", b=z` into pairs; quoted values may hold commas and escaped quotes. A list
/// rather than a map: a header holds ten or so, and a search of ten beats hashing each name.
fn parse_params(s: &str) -> Params {
    let mut out = Params::default();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else { break };
        let key = rest[..eq].trim().to_ascii_lowercase();
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(r) = rest.strip_prefix('"')
            && let Some(q) = r.find(['"', '\\']).filter(|&q| r.as_bytes()[q] == b'"')
        {
            // No escape before the closing quote (every phone's header): the value as sent.
            value = r[..q].to_string();
            rest = &r[q + 1..];
        } else if let Some(r) = rest.strip_prefix('"') {
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
        out.0.push((key, value));
        rest = rest.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

impl Authenticator {
    fn tag(&self, body: &[u8]) -> [u8; 8] {
        let mut m = self.keyed.clone();
        m.update(body);
        let full = m.finalize().into_bytes();
        let mut t = [0u8; 8];
        t.copy_from_slice(&full[..8]);
        t
    }

    /// A fresh nonce.
    pub fn nonce(&self, now: i64) -> String {
        // issued-ms ‖ 8 random bytes ‖ their tag, built in place.
        let mut raw = [0u8; 24];
        raw[..8].copy_from_slice(&now.to_be_bytes());
        let _ = getrandom::fill(&mut raw[8..16]);
        let tag = self.tag(&raw[..16]);
        raw[16..].copy_from_slice(&tag);
        let mut digits = [0u8; 48];
        // 24 bytes into 48 digits: cannot fail.
        let _ = hex::encode_to_slice(raw, &mut digits);
        hex_text(&digits).to_string()
    }

    /// Whether the nonce is ours and young enough.
    fn nonce_ok(&self, nonce: &str, now: i64) -> bool {
        let mut raw = [0u8; 24];
        // Anything but 48 hex digits is not one of ours.
        if hex::decode_to_slice(nonce, &mut raw).is_err() {
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
            let get = |k: &str| params.get(k).unwrap_or("");
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
            let ha2 = md5_hex(&[method.as_bytes(), duri.as_bytes()]);
            let resp = resp.to_ascii_lowercase();
            let (nonce_b, nc_b, cnonce_b, qop_b) = (
                nonce.as_bytes(),
                nc.as_bytes(),
                cnonce.as_bytes(),
                qop.as_bytes(),
            );
            for (i, (c, real)) in cands.iter().enumerate() {
                let ha1 = md5_hex(&[c.user.as_bytes(), REALM.as_bytes(), c.password.as_bytes()]);
                let expect = if qop.is_empty() {
                    md5_hex(&[&ha1, nonce_b, &ha2])
                } else {
                    md5_hex(&[&ha1, nonce_b, nc_b, cnonce_b, qop_b, &ha2])
                };
                let ok = user.as_bytes().ct_eq(c.user.as_bytes()) & resp.as_bytes().ct_eq(&expect);
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
    let ha1 = md5_hex(&[user.as_bytes(), REALM.as_bytes(), password.as_bytes()]);
    let ha2 = md5_hex(&[method.as_bytes(), uri.as_bytes()]);
    let resp = md5_hex(&[
        &ha1,
        nonce.as_bytes(),
        nc.as_bytes(),
        cnonce.as_bytes(),
        b"auth",
        &ha2,
    ]);
    let resp = hex_text(&resp);
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
    fn digest_hashes_match_the_rfc_example() {
        // RFC 2617 section 3.5: Mufasa's request for /dir/index.html.
        let ha1 = md5_hex(&[b"Mufasa", b"testrealm@host.com", b"Circle Of Life"]);
        let ha2 = md5_hex(&[b"GET", b"/dir/index.html"]);
        let nonce = b"dcd98b7102dd2f0e8b11d0f600bfb0c093";
        let resp = md5_hex(&[&ha1, nonce, b"00000001", b"0a4f113b", b"auth", &ha2]);
        assert_eq!(hex_text(&resp), "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn nonces_are_48_hex_digits_and_only_ours_pass() {
        let a = Authenticator::with_secret([7; 32]);
        let now = 1_700_000_000_000;
        let n = a.nonce(now);
        assert_eq!(n.len(), 48);
        assert!(
            n.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert!(a.nonce_ok(&n, now));
        assert!(
            a.nonce_ok(&n.to_ascii_uppercase(), now),
            "hex in either case"
        );
        assert!(!a.nonce_ok(&n[..46], now), "too short");
        assert!(!a.nonce_ok(&format!("{n}00"), now), "too long");
        let mut flipped = n.clone().into_bytes();
        flipped[47] = if flipped[47] == b'0' { b'1' } else { b'0' };
        assert!(!a.nonce_ok(hex_text(&flipped), now), "a changed tag");
        assert!(
            Authenticator::with_secret([7; 32]).nonce_ok(&n, now),
            "same secret"
        );
        assert!(
            !Authenticator::with_secret([8; 32]).nonce_ok(&n, now),
            "another secret"
        );
        assert!(!a.nonce_ok(&n, now + NONCE_TTL_MS), "expired");
    }

    #[test]
    fn params() {
        let p = parse_params(r#"username="a, b", Realm="r\"x", nc=00000001, qop=auth"#);
        assert_eq!(p.get("username"), Some("a, b"));
        assert_eq!(p.get("realm"), Some("r\"x"), "names in any case");
        assert_eq!(p.get("nc"), Some("00000001"));
        assert_eq!(p.get("qop"), Some("auth"));
        assert_eq!(p.get("cnonce"), None);
        assert!(parse_params("garbage").0.is_empty());
        assert_eq!(
            parse_params("a=\"unterminated").get("a"),
            Some("unterminated")
        );
        assert_eq!(
            parse_params("nc=1, nc=2").get("nc"),
            Some("2"),
            "the last one wins"
        );
        let p = parse_params(r#"a="x\\y\"z", b="plain", c="é,\é""#);
        assert_eq!(p.get("a"), Some(r#"x\y"z"#), "escapes taken literally");
        assert_eq!(p.get("b"), Some("plain"));
        assert_eq!(p.get("c"), Some("é,é"), "an escaped multi-byte character");
        assert_eq!(parse_params(r#"a="ends in \"#).get("a"), Some("ends in "));
    }
}
