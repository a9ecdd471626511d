//! The TFTP wire format (RFC 1350, options of RFC 2347): a pure codec. Parsing and encoding
//! touch no socket, and no input can make the parser panic.

use std::fmt;

/// Longest filename or option string accepted in a request.
pub const MAX_STRING: usize = 512;

/// TFTP error codes (RFC 1350, RFC 2347).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum ErrorCode {
    NotDefined = 0,
    FileNotFound = 1,
    AccessViolation = 2,
    DiskFull = 3,
    IllegalOperation = 4,
    UnknownTid = 5,
    FileExists = 6,
    NoSuchUser = 7,
    OptionRefused = 8,
}

impl ErrorCode {
    fn from_u16(v: u16) -> ErrorCode {
        match v {
            1 => ErrorCode::FileNotFound,
            2 => ErrorCode::AccessViolation,
            3 => ErrorCode::DiskFull,
            4 => ErrorCode::IllegalOperation,
            5 => ErrorCode::UnknownTid,
            6 => ErrorCode::FileExists,
            7 => ErrorCode::NoSuchUser,
            8 => ErrorCode::OptionRefused,
            _ => ErrorCode::NotDefined,
        }
    }
}

/// Transfer mode of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Octet,
    Netascii,
}

/// A read or write request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub filename: String,
    /// `None`: a mode this server does not speak (e.g. `mail`), kept to answer with an error.
    pub mode: Option<Mode>,
    /// Options as sent, names lower-cased, in order.
    pub options: Vec<(String, String)>,
}

/// One TFTP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet<'a> {
    Rrq(Request),
    Wrq(Request),
    Data { block: u16, data: &'a [u8] },
    Ack { block: u16 },
    Error { code: ErrorCode, message: String },
    Oack { options: Vec<(String, String)> },
}

/// Why a datagram is not a TFTP packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("datagram shorter than an opcode")]
    Short,
    #[error("unknown opcode {0}")]
    Opcode(u16),
    #[error("truncated {0} packet")]
    Truncated(&'static str),
    #[error("string not NUL-terminated, too long, or not text")]
    BadString,
    #[error("option '{0}' has no value")]
    OptionWithoutValue(String),
}

/// Splits NUL-terminated strings off the front of `buf`; the last one must end the buffer.
fn strings(mut buf: &[u8]) -> Result<Vec<String>, ParseError> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let end = buf
            .iter()
            .position(|b| *b == 0)
            .ok_or(ParseError::BadString)?;
        if end > MAX_STRING {
            return Err(ParseError::BadString);
        }
        let s = std::str::from_utf8(&buf[..end]).map_err(|_| ParseError::BadString)?;
        out.push(s.to_string());
        buf = &buf[end + 1..];
    }
    Ok(out)
}

fn options(pairs: &[String]) -> Result<Vec<(String, String)>, ParseError> {
    pairs
        .chunks(2)
        .map(|c| match c {
            [k, v] => Ok((k.to_ascii_lowercase(), v.clone())),
            [k] => Err(ParseError::OptionWithoutValue(k.clone())),
            _ => Err(ParseError::BadString),
        })
        .collect()
}

fn request(body: &[u8]) -> Result<Request, ParseError> {
    let parts = strings(body)?;
    let [filename, mode, rest @ ..] = parts.as_slice() else {
        return Err(ParseError::Truncated("request"));
    };
    let mode = match mode.to_ascii_lowercase().as_str() {
        "octet" => Some(Mode::Octet),
        "netascii" => Some(Mode::Netascii),
        _ => None,
    };
    Ok(Request {
        filename: filename.clone(),
        mode,
        options: options(rest)?,
    })
}

impl<'a> Packet<'a> {
    /// Parses one datagram.
    pub fn parse(buf: &'a [u8]) -> Result<Packet<'a>, ParseError> {
        if buf.len() < 2 {
            return Err(ParseError::Short);
        }
        let op = u16::from_be_bytes([buf[0], buf[1]]);
        let body = &buf[2..];
        let block = || body.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]]));
        Ok(match op {
            1 => Packet::Rrq(request(body)?),
            2 => Packet::Wrq(request(body)?),
            3 => Packet::Data {
                block: block().ok_or(ParseError::Truncated("DATA"))?,
                data: &body[2..],
            },
            4 => {
                if body.len() != 2 {
                    return Err(ParseError::Truncated("ACK"));
                }
                Packet::Ack {
                    block: block().ok_or(ParseError::Truncated("ACK"))?,
                }
            }
            5 => {
                let code = block().ok_or(ParseError::Truncated("ERROR"))?;
                // Many clients omit the trailing NUL or send none at all: be lenient.
                let msg = &body[2..];
                let msg = msg.strip_suffix(&[0]).unwrap_or(msg);
                Packet::Error {
                    code: ErrorCode::from_u16(code),
                    message: String::from_utf8_lossy(msg).into_owned(),
                }
            }
            6 => Packet::Oack {
                options: options(&strings(body)?)?,
            },
            other => return Err(ParseError::Opcode(other)),
        })
    }

    /// Encodes into `out` (cleared first).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.clear();
        let put_str = |out: &mut Vec<u8>, s: &str| {
            out.extend_from_slice(s.as_bytes());
            out.push(0);
        };
        match self {
            Packet::Rrq(r) | Packet::Wrq(r) => {
                out.extend_from_slice(
                    &(if matches!(self, Packet::Rrq(_)) {
                        1u16
                    } else {
                        2u16
                    })
                    .to_be_bytes(),
                );
                put_str(out, &r.filename);
                put_str(
                    out,
                    match r.mode {
                        Some(Mode::Octet) => "octet",
                        Some(Mode::Netascii) => "netascii",
                        None => "mail",
                    },
                );
                for (k, v) in &r.options {
                    put_str(out, k);
                    put_str(out, v);
                }
            }
            Packet::Data { block, data } => {
                out.extend_from_slice(&3u16.to_be_bytes());
                out.extend_from_slice(&block.to_be_bytes());
                out.extend_from_slice(data);
            }
            Packet::Ack { block } => {
                out.extend_from_slice(&4u16.to_be_bytes());
                out.extend_from_slice(&block.to_be_bytes());
            }
            Packet::Error { code, message } => {
                out.extend_from_slice(&5u16.to_be_bytes());
                out.extend_from_slice(&(*code as u16).to_be_bytes());
                put_str(out, message);
            }
            Packet::Oack { options } => {
                out.extend_from_slice(&6u16.to_be_bytes());
                for (k, v) in options {
                    put_str(out, k);
                    put_str(out, v);
                }
            }
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode(&mut v);
        v
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Octet => "octet",
            Mode::Netascii => "netascii",
        })
    }
}

/// Writes the header of a DATA packet into the first 4 bytes of `buf`.
pub fn data_header(buf: &mut [u8], block: u16) {
    buf[..2].copy_from_slice(&3u16.to_be_bytes());
    buf[2..4].copy_from_slice(&block.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rrq(name: &str, opts: &[(&str, &str)]) -> Packet<'static> {
        Packet::Rrq(Request {
            filename: name.into(),
            mode: Some(Mode::Octet),
            options: opts
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        })
    }

    #[test]
    fn round_trip() {
        let data = [1u8, 2, 3];
        for p in [
            rrq("805ec0aabbcc.cfg", &[]),
            rrq(
                "p/abc/x.rom",
                &[("blksize", "1468"), ("tsize", "0"), ("windowsize", "8")],
            ),
            Packet::Wrq(Request {
                filename: "a".into(),
                mode: Some(Mode::Netascii),
                options: vec![],
            }),
            Packet::Data {
                block: 65535,
                data: &data,
            },
            Packet::Data {
                block: 0,
                data: &[],
            },
            Packet::Ack { block: 7 },
            Packet::Error {
                code: ErrorCode::FileNotFound,
                message: "File not found".into(),
            },
            Packet::Oack {
                options: vec![("blksize".into(), "1468".into())],
            },
        ] {
            let bytes = p.to_bytes();
            assert_eq!(Packet::parse(&bytes).unwrap(), p);
        }
    }

    #[test]
    fn requests_as_clients_send_them() {
        let p =
            Packet::parse(b"\x00\x01/805ec0aabbcc.cfg\x00OCTET\x00BLKSIZE\x001468\x00").unwrap();
        let Packet::Rrq(r) = p else { panic!() };
        assert_eq!(r.filename, "/805ec0aabbcc.cfg");
        assert_eq!(r.mode, Some(Mode::Octet));
        assert_eq!(r.options, vec![("blksize".to_string(), "1468".to_string())]);
        let Packet::Rrq(r) = Packet::parse(b"\x00\x01f\x00mail\x00").unwrap() else {
            panic!()
        };
        assert_eq!(r.mode, None);
        // An ERROR without its final NUL is still an ERROR.
        assert!(matches!(
            Packet::parse(b"\x00\x05\x00\x08no"),
            Ok(Packet::Error {
                code: ErrorCode::OptionRefused,
                ..
            })
        ));
    }

    #[test]
    fn malformed_is_an_error() {
        for bad in [
            &b""[..],
            b"\x00",
            b"\x00\x09\x00\x00",
            b"\x00\x01",
            b"\x00\x01file",
            b"\x00\x01file\x00",
            b"\x00\x01file\x00octet",
            b"\x00\x01file\x00octet\x00blksize\x00",
            b"\x00\x01\xff\xfe\x00octet\x00",
            b"\x00\x03\x00",
            b"\x00\x04\x00",
            b"\x00\x04\x00\x01\x00",
            b"\x00\x05\x00",
            b"\x00\x06blksize",
        ] {
            assert!(Packet::parse(bad).is_err(), "{bad:?}");
        }
        let long = [
            &b"\x00\x01"[..],
            &vec![b'a'; MAX_STRING + 1],
            b"\x00octet\x00",
        ]
        .concat();
        assert_eq!(Packet::parse(&long), Err(ParseError::BadString));
    }

    /// Random and mutated datagrams never panic the parser, and what parses re-encodes to
    /// something that parses the same (a deterministic fuzz: fixed seed, 200,000 inputs).
    #[test]
    fn parser_fuzz() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let seeds: Vec<Vec<u8>> = vec![
            rrq(
                "p/0123/805ec0aabbcc.cfg",
                &[("blksize", "1468"), ("tsize", "0")],
            )
            .to_bytes(),
            Packet::Ack { block: 3 }.to_bytes(),
            Packet::Error {
                code: ErrorCode::NotDefined,
                message: "x".into(),
            }
            .to_bytes(),
            Packet::Oack {
                options: vec![("windowsize".into(), "8".into())],
            }
            .to_bytes(),
        ];
        for i in 0..200_000 {
            let mut buf = if i % 2 == 0 {
                seeds[(rnd() % seeds.len() as u64) as usize].clone()
            } else {
                (0..rnd() % 64).map(|_| rnd() as u8).collect()
            };
            for _ in 0..(rnd() % 4) {
                match rnd() % 3 {
                    0 if !buf.is_empty() => {
                        let at = (rnd() % buf.len() as u64) as usize;
                        buf[at] = rnd() as u8;
                    }
                    1 if !buf.is_empty() => buf.truncate((rnd() % buf.len() as u64) as usize),
                    _ => buf.push(rnd() as u8),
                }
            }
            if let Ok(p) = Packet::parse(&buf) {
                let again = p.to_bytes();
                let reparsed = Packet::parse(&again).expect("re-encoded packet parses");
                if !matches!(
                    p,
                    Packet::Rrq(Request { mode: None, .. })
                        | Packet::Wrq(Request { mode: None, .. })
                        | Packet::Error { .. }
                ) {
                    assert_eq!(reparsed, p);
                }
            }
        }
    }
}
