//! A phone's files as someone who may not see passwords sees them: every known secret (its
//! lines' SIP passwords, its site's provisioning logins) and every value of a key that names a
//! password is replaced by `********`, whatever the file's format (Yealink `key = value`,
//! Polycom XML attributes).

use super::{Manager, Result, parse_mac};
use crate::store;

/// What a masked value reads as.
pub const MASK: &str = "********";

/// Words that make a key's value a secret.
const SECRET_WORDS: &[&str] = &["password", "passwd", "pwd", "secret", "pin"];

fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

/// Whether a key (`account.1.password`, `reg.1.auth.password`) holds a secret.
fn secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|w| {
        k.split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .flat_map(|seg| seg.split('_'))
            .any(|seg| seg == *w || (w.len() > 3 && seg.contains(w)))
    })
}

/// Masks the values of secret keys: `key = value` to the end of the line, `key="value"` and
/// `key='value'` to the closing quote.
fn mask_keys(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut copied = 0;
    while i < b.len() {
        if !is_key_byte(b[i]) || (i > 0 && is_key_byte(b[i - 1])) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && is_key_byte(b[i]) {
            i += 1;
        }
        let key = &text[start..i];
        let mut j = i;
        while j < b.len() && (b[j] == b' ' || b[j] == b'\t') {
            j += 1;
        }
        if j >= b.len() || b[j] != b'=' || !secret_key(key) {
            continue;
        }
        j += 1;
        while j < b.len() && (b[j] == b' ' || b[j] == b'\t') {
            j += 1;
        }
        let (from, to) = match b.get(j) {
            Some(&q) if q == b'"' || q == b'\'' => {
                let end = text[j + 1..]
                    .find(q as char)
                    .map(|e| j + 1 + e)
                    .unwrap_or(b.len());
                (j + 1, end)
            }
            _ => {
                let end = text[j..]
                    .find(['\r', '\n'])
                    .map(|e| j + e)
                    .unwrap_or(b.len());
                (j, end)
            }
        };
        if to > from {
            out.push_str(&text[copied..from]);
            out.push_str(MASK);
            copied = to;
        }
        i = to.max(i);
    }
    out.push_str(&text[copied..]);
    out
}

/// `text` with every secret hidden: the known values first, then any secret key's value.
pub fn mask_secrets(text: &str, secrets: &[String]) -> String {
    let mut t = text.to_string();
    let mut known: Vec<&String> = secrets.iter().filter(|s| s.len() >= 3).collect();
    known.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for s in known {
        t = t.replace(s.as_str(), MASK);
    }
    mask_keys(&t)
}

impl Manager {
    /// The secrets a phone's files hold: its lines' passwords and its site's logins.
    pub async fn phone_secrets(&self, mac: &str) -> Result<Vec<String>> {
        let mac = parse_mac(mac)?;
        let mut conn = self.store.conn().await?;
        let phone = self.phone_of(&mut conn, mac).await?;
        let mut out: Vec<String> = store::lines(&mut conn, mac)
            .await?
            .into_iter()
            .map(|l| l.password)
            .collect();
        if let Some(site) = store::site_by_id(&mut conn, phone.site_id).await? {
            for c in [&site.access.auth, &site.access.previous_auth]
                .into_iter()
                .flatten()
            {
                out.push(c.password.clone());
            }
        }
        out.retain(|s| !s.is_empty());
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yealink_lines_and_polycom_attributes_are_masked() {
        let y = "#!version:1.0.0.1\naccount.1.user_name = 1001\naccount.1.password = s3cr3t!\nstatic.security.user_password = admin:Pa55\naccount.1.label = Front desk\n";
        let m = mask_secrets(y, &[]);
        assert!(!m.contains("s3cr3t!") && !m.contains("Pa55"), "{m}");
        assert!(m.contains("account.1.password = ********\n"), "{m}");
        assert!(m.contains("account.1.user_name = 1001"), "{m}");
        assert!(m.contains("account.1.label = Front desk"), "{m}");
        let p = r#"<reg reg.1.address="1001" reg.1.auth.password="hunter2" reg.1.label='x'/>"#;
        let m = mask_secrets(p, &[]);
        assert_eq!(
            m,
            r#"<reg reg.1.address="1001" reg.1.auth.password="********" reg.1.label='x'/>"#
        );
    }

    #[test]
    fn known_secrets_are_masked_wherever_they_are() {
        let t = "static.auto_provision.server.url = https://prov:LoginPass9@example.net/p/\nx = LoginPass9";
        let m = mask_secrets(t, &["LoginPass9".into(), "".into()]);
        assert!(!m.contains("LoginPass9"), "{m}");
        assert!(m.contains("x = ********"), "{m}");
    }

    #[test]
    fn keys_that_only_look_alike_stay() {
        let t = "features.pickup.direct_pickup_enable = 1\nlocal_time.ntp_server1 = pool.ntp.org\nspin = 3";
        assert_eq!(mask_secrets(t, &[]), t);
        assert!(secret_key("account.1.password"));
        assert!(secret_key("voice_mail.number.1.pin"));
        assert!(!secret_key("features.pickup.direct_pickup_enable"));
    }
}
