//! Where a request points: its path split into site key and file name, decoded once and
//! confined to one plain name (no `..`, no deeper path, no control characters) — for every
//! transport alike.

use super::MAX_NAME;
use crate::mac::Mac;

/// Where a request points: a site key (or none, for the key-less root) and a file name, with
/// the MAC part of a per-MAC name in lowercase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub key: Option<String>,
    pub name: String,
}

/// Decodes `%XX` escapes once (Yealink image names carry `%28` `%2C` `%29` for `(` `,` `)`);
/// `None` for a malformed escape or bytes that are not UTF-8.
fn percent_decoded(s: &str) -> Option<std::borrow::Cow<'_, str>> {
    if !s.contains('%') {
        return Some(std::borrow::Cow::Borrowed(s));
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok().map(std::borrow::Cow::Owned)
}

/// Splits a request path into site key and file name, decoding percent escapes once. Refuses
/// empty names, `..`, backslashes, NUL and other control characters, over-long names and any
/// deeper path — all checked on the decoded form. A name after a doubled `/` (a Polycom
/// `serverName` ending in `/` joined with another) is the same name.
pub fn split_path(path: &str) -> Option<Target> {
    if path.len() > 3 * (MAX_NAME + 64) {
        return None;
    }
    let path = percent_decoded(path)?;
    let path = path.as_ref();
    if path.len() > MAX_NAME + 64 || has_control_or_backslash(path) {
        return None;
    }
    let p = path.strip_prefix('/').unwrap_or(path);
    let (key, name) = match p.strip_prefix("p/") {
        Some(rest) => {
            let (key, name) = rest.split_once('/')?;
            (Some(key), name.trim_start_matches('/'))
        }
        None => (None, p.trim_start_matches('/')),
    };
    if name.is_empty() || name.len() > MAX_NAME || name.contains('/') || name == "." || name == ".."
    {
        return None;
    }
    if let Some(k) = key
        && (k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric()))
    {
        return None;
    }
    Some(Target {
        key: key.map(str::to_string),
        name: canonical_name(name),
    })
}

/// Whether `s` holds a control character (C0, DEL or C1) or a backslash. A phone's path is
/// ASCII: checked byte by byte, without decoding characters.
fn has_control_or_backslash(s: &str) -> bool {
    if s.is_ascii() {
        s.bytes().any(|b| b < 0x20 || b == 0x7f || b == b'\\')
    } else {
        s.chars().any(|c| c.is_control() || c == '\\')
    }
}

/// `0004F2A1B2C3-phone.cfg` → `0004f2a1b2c3-phone.cfg`; other names unchanged.
pub fn canonical_name(name: &str) -> String {
    let mut out = name.to_string();
    if name_mac(name).is_some() && matches!(name.as_bytes().get(12), Some(b'.' | b'-')) {
        // Twelve hex digits: lowercasing them is the MAC's canonical form.
        out[..12].make_ascii_lowercase();
    }
    out
}

/// The MAC a per-MAC file name starts with.
pub fn name_mac(name: &str) -> Option<Mac> {
    name.get(..12).and_then(Mac::from_bare)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let t = split_path("/p/abc123/805EC0AABBCC.cfg").unwrap();
        assert_eq!(t.key.as_deref(), Some("abc123"));
        assert_eq!(t.name, "805ec0aabbcc.cfg");
        assert_eq!(split_path("805ec0aabbcc.boot").unwrap().key, None);
        assert_eq!(
            split_path("y000000000096.cfg").unwrap().name,
            "y000000000096.cfg"
        );
        assert_eq!(
            split_path("0004F2A1B2C3-phone.cfg").unwrap().name,
            "0004f2a1b2c3-phone.cfg"
        );
        // Not a MAC prefix: left alone.
        assert_eq!(
            split_path("000000000000X.cfg").unwrap().name,
            "000000000000X.cfg"
        );
        for bad in [
            "",
            "/",
            "/p/",
            "/p/abc/",
            "/p/abc/../x.cfg",
            "..",
            "/..",
            "/p/abc/a/b.cfg",
            "a/b.cfg",
            "/etc/passwd",
            "\\x.cfg",
            "x\0.cfg",
            "/p/a.b/x.cfg",
            "/p/../x",
            "x\n.cfg",
            "/p/abc/%2e%2e/x.cfg",
            "/p/abc/%2E%2E",
            "/p/abc/a%2fb.cfg",
            "/p/abc/x%00.cfg",
            "/p/abc/x%5c.cfg",
            "/p/abc/x%zz.cfg",
            "/p/abc/x%ff.cfg",
            "//etc/passwd",
            "/p/abc//../x",
            "/p/abc/x\u{7f}.cfg",
            "/p/abc/x%7f.cfg",
            "/p/abc/x\u{85}.cfg",
            "/p/abc/x%c2%85.cfg",
            "/p/abc/\u{e9}\\x.cfg",
        ] {
            assert_eq!(split_path(bad), None, "{bad:?}");
        }
        // Field shapes: a doubled slash, and a Yealink image name percent-encoded.
        assert_eq!(split_path("/p/abc//site.cfg").unwrap().name, "site.cfg");
        assert_eq!(
            split_path("//000000000000.cfg").unwrap().name,
            "000000000000.cfg"
        );
        assert_eq!(
            split_path("/p/abc/T54W%28T57W%2CT53W%29-96.86.0.45.rom")
                .unwrap()
                .name,
            "T54W(T57W,T53W)-96.86.0.45.rom"
        );
        // Decoded once: a double-encoded dot-dot is a literal (and missing) name.
        assert_eq!(split_path("/p/abc/%252e%252e").unwrap().name, "%2e%2e");
        assert!(split_path(&"a".repeat(MAX_NAME + 1)).is_none());
        assert!(split_path(&"a".repeat(MAX_NAME)).is_some());
    }
}
