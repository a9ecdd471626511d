//! The `Mac` newtype: every vendor spelling of a hardware address in, one canonical form out.
//!
//! Accepted: `80:5E:C0:AA:BB:CC`, `80-5e-c0-aa-bb-cc`, `805e.c0aa.bbcc` (Cisco dotted) and
//! `805ec0aabbcc`, in any case, with surrounding spaces. Separators must be consistent and in
//! the right places: `0:1:2:3:4:5:6:789` or `80:5e-c0:aa:bb:cc` are refused, not guessed at.
//! Canonical form (file names, database keys) is 12 lowercase hex digits; [`Mac::colon`] is the
//! form for people.

use std::fmt;
use std::str::FromStr;

/// A 48-bit hardware address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Mac([u8; 6]);

/// Hashed as one 64-bit word: a derived hash writes a length and a 6-byte slice, two hasher
/// calls where one does (maps keyed by MAC are looked up several times per fetch).
impl std::hash::Hash for Mac {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.as_u64());
    }
}

/// Why a string is not a MAC address. The message is shown to users as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MacError {
    #[error("MAC address is empty")]
    Empty,
    #[error(
        "'{0}' is not a MAC address: expected 12 hex digits, as 80:5E:C0:AA:BB:CC, 80-5e-c0-aa-bb-cc, 805e.c0aa.bbcc or 805ec0aabbcc"
    )]
    Shape(String),
    #[error("'{input}' is not a MAC address: '{ch}' is not a hex digit")]
    NotHex { input: String, ch: char },
    #[error("'{0}' is a multicast address, not a phone's MAC")]
    Multicast(String),
    #[error("'{0}' is all zeros, not a phone's MAC")]
    Zero(String),
}

impl Mac {
    /// The 6 raw bytes.
    pub const fn from_bytes(b: [u8; 6]) -> Mac {
        Mac(b)
    }

    pub fn bytes(&self) -> [u8; 6] {
        self.0
    }

    /// The address as the low 48 bits of a number.
    pub fn as_u64(&self) -> u64 {
        let [a, b, c, d, e, f] = self.0;
        u64::from_be_bytes([0, 0, a, b, c, d, e, f])
    }

    /// `80:5e:c0:aa:bb:cc`, the form people read.
    pub fn colon(&self) -> String {
        let b = self.0;
        format!(
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }

    /// Parses only the canonical 12-lowercase-or-uppercase-hex form; used on file names, where
    /// a separator would mean "not a MAC".
    pub fn from_bare(s: &str) -> Option<Mac> {
        // One pass over the 12 bytes: this runs on every file name a phone asks for.
        let b: &[u8; 12] = s.as_bytes().try_into().ok()?;
        let mut out = [0u8; 6];
        for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
            *o = (hex_val(pair[0])? << 4) | hex_val(pair[1])?;
        }
        Some(Mac(out))
    }
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

impl FromStr for Mac {
    type Err = MacError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let s = input.trim();
        if s.is_empty() {
            return Err(MacError::Empty);
        }
        if let Some(ch) = s
            .chars()
            .find(|c| !c.is_ascii_hexdigit() && !matches!(c, ':' | '-' | '.'))
        {
            return Err(MacError::NotHex {
                input: input.to_string(),
                ch,
            });
        }
        let digits: String = match s.len() {
            12 => s.to_string(),
            // 80:5e:c0:aa:bb:cc or 80-5e-c0-aa-bb-cc: one separator, every third char.
            17 => {
                let sep = s.as_bytes()[2];
                if !(sep == b':' || sep == b'-') {
                    return Err(MacError::Shape(input.to_string()));
                }
                for (i, b) in s.bytes().enumerate() {
                    let want_sep = i % 3 == 2;
                    if want_sep != (b == sep) || (!want_sep && !b.is_ascii_hexdigit()) {
                        return Err(MacError::Shape(input.to_string()));
                    }
                }
                s.chars().filter(|c| c.is_ascii_hexdigit()).collect()
            }
            // 805e.c0aa.bbcc
            14 => {
                for (i, b) in s.bytes().enumerate() {
                    let want_sep = i == 4 || i == 9;
                    if want_sep != (b == b'.') || (!want_sep && !b.is_ascii_hexdigit()) {
                        return Err(MacError::Shape(input.to_string()));
                    }
                }
                s.chars().filter(|c| c.is_ascii_hexdigit()).collect()
            }
            _ => return Err(MacError::Shape(input.to_string())),
        };
        let mac = Mac::from_bare(&digits).ok_or_else(|| MacError::Shape(input.to_string()))?;
        if mac.0 == [0; 6] {
            return Err(MacError::Zero(input.to_string()));
        }
        if mac.0[0] & 1 == 1 {
            return Err(MacError::Multicast(input.to_string()));
        }
        Ok(mac)
    }
}

/// Canonical: 12 lowercase hex digits.
impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One write of twelve digits: a MAC is formatted on every phone's request.
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 12];
        for (i, b) in self.0.iter().enumerate() {
            out[2 * i] = HEX[usize::from(b >> 4)];
            out[2 * i + 1] = HEX[usize::from(b & 0xf)];
        }
        f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mac({self})")
    }
}

impl serde::Serialize for Mac {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Mac {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_common_form_is_one_mac() {
        for s in [
            "80:5E:C0:AA:BB:CC",
            "80-5e-c0-aa-bb-cc",
            "805e.c0aa.bbcc",
            "805ec0aabbcc",
            "805EC0AABBCC",
            "  80:5e:c0:aa:bb:cc ",
        ] {
            let mac: Mac = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(mac.to_string(), "805ec0aabbcc", "{s}");
            assert_eq!(mac.colon(), "80:5e:c0:aa:bb:cc");
        }
    }

    #[test]
    fn odd_shapes_are_refused_with_a_reason() {
        for s in [
            "0:1:2:3:4:5:6:789",
            "80:5e-c0:aa:bb:cc",
            "80:5e:c0:aa:bb",
            "805ec0aabbccdd",
            "805e.c0aa.bbc",
            "80:5e:c0:aa:bb:c:",
            "805e:c0aa:bbcc",
        ] {
            let err = s.parse::<Mac>().unwrap_err();
            assert!(matches!(err, MacError::Shape(_)), "{s}: {err}");
            assert!(err.to_string().contains("12 hex digits"), "{s}: {err}");
        }
        let err = "80:5E:C0:11:22:0G".parse::<Mac>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "'80:5E:C0:11:22:0G' is not a MAC address: 'G' is not a hex digit"
        );
        assert_eq!("".parse::<Mac>().unwrap_err(), MacError::Empty);
        assert!(matches!(
            "000000000000".parse::<Mac>(),
            Err(MacError::Zero(_))
        ));
        assert!(matches!(
            "ffffffffffff".parse::<Mac>(),
            Err(MacError::Multicast(_))
        ));
    }

    #[test]
    fn bare_form_only_for_file_names() {
        assert_eq!(
            Mac::from_bare("0004F2A1B2C3").map(|m| m.to_string()),
            Some("0004f2a1b2c3".into())
        );
        assert!(Mac::from_bare("0004f2a1b2c").is_none());
        assert!(Mac::from_bare("00:04:f2:a1:b2").is_none());
        assert!(Mac::from_bare("0004f2a1b2cé").is_none());
        assert!(Mac::from_bare("0004f2a1b2c3d").is_none());
        assert!(Mac::from_bare("0004f2a1b2cg").is_none());
        assert!(Mac::from_bare("g004f2a1b2c3").is_none());
        assert!(Mac::from_bare("0004f2a1b2c ").is_none());
        assert!(Mac::from_bare("+004f2a1b2c3").is_none());
        assert!(Mac::from_bare("").is_none());
        assert_eq!(
            Mac::from_bare("aAbBcCdDeEfF").map(|m| m.bytes()),
            Some([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff])
        );
        assert_eq!(
            Mac::from_bare("019a2b3c4d5e").map(|m| m.bytes()),
            Some([0x01, 0x9a, 0x2b, 0x3c, 0x4d, 0x5e])
        );
        // Every byte value: exactly the 22 hex digits are digits.
        for b in 0..=255u8 {
            let want = (b as char).to_digit(16).map(|d| d as u8);
            assert_eq!(super::hex_val(b), want, "byte {b}");
        }
    }
}

/// A MAC as users write it, for API documents: the spellings [`Mac`]'s `FromStr` takes (12 hex
/// digits, colon or dash pairs, Cisco dotted quads; spaces around are ignored). It also refuses
/// all-zero and multicast MACs, which a pattern does not say.
#[derive(utoipa::ToSchema)]
#[schema(
    pattern = r"^\s*([0-9A-Fa-f]{12}|[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}|[0-9A-Fa-f]{2}(-[0-9A-Fa-f]{2}){5}|[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4})\s*$",
    example = "80:5E:C0:AA:BB:CC"
)]
#[allow(dead_code)] // only its schema is used
pub struct MacText(String);
