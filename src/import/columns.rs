//! The file's shape: columns and their names, byte-order mark, delimiter, the header row,
//! and a reader that hashes what it reads.

use std::collections::HashSet;
use std::io::Read;

use sha2::{Digest, Sha256};

use super::{Input, MAX_LINE, RowError};

/// A column of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Col {
    Mac,
    Model,
    Site,
    Label,
    Sn,
    Line(u8, LineField),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum LineField {
    User,
    AuthUser,
    Password,
    DisplayName,
    Label,
    Domain,
}

impl LineField {
    pub(super) const ALL: [(LineField, &'static str); 6] = [
        (LineField::User, "user"),
        (LineField::AuthUser, "auth_user"),
        (LineField::Password, "password"),
        (LineField::DisplayName, "display_name"),
        (LineField::Label, "label"),
        (LineField::Domain, "domain"),
    ];
}

pub(super) fn parse_col(name: &str) -> Option<Col> {
    let n = name.trim().to_ascii_lowercase();
    match n.as_str() {
        "mac" => return Some(Col::Mac),
        "model" => return Some(Col::Model),
        "site" => return Some(Col::Site),
        "label" => return Some(Col::Label),
        "sn" | "serial" | "serial_number" => return Some(Col::Sn),
        _ => {}
    }
    let rest = n.strip_prefix("line")?;
    let (num, field) = rest.split_once('_')?;
    let num: u8 = num.parse().ok().filter(|v| (1..=MAX_LINE).contains(v))?;
    let field = LineField::ALL.iter().find(|(_, s)| *s == field)?.0;
    Some(Col::Line(num, field))
}

pub(super) fn col_name(c: Col) -> String {
    match c {
        Col::Mac => "mac".into(),
        Col::Model => "model".into(),
        Col::Site => "site".into(),
        Col::Label => "label".into(),
        Col::Sn => "sn".into(),
        Col::Line(n, f) => {
            let s = LineField::ALL
                .iter()
                .find(|(x, _)| *x == f)
                .map(|(_, s)| *s)
                .unwrap_or("");
            format!("line{n}_{s}")
        }
    }
}

/// Strips a UTF-8 byte-order mark.
pub(super) fn skip_bom(mut r: Box<dyn Read + Send>) -> std::io::Result<Box<dyn Read + Send>> {
    let mut head = [0u8; 3];
    let mut got = 0;
    while got < 3 {
        match r.read(&mut head[got..])? {
            0 => break,
            n => got += n,
        }
    }
    let keep = if got == 3 && head == [0xEF, 0xBB, 0xBF] {
        Vec::new()
    } else {
        head[..got].to_vec()
    };
    Ok(Box::new(std::io::Cursor::new(keep).chain(r)))
}

/// `,` or `;`, whichever the header line uses more of outside quotes.
pub(super) fn sniff_delimiter(input: &Input) -> std::io::Result<u8> {
    let mut r = skip_bom(input.open()?)?;
    let mut line = Vec::new();
    let mut b = [0u8; 4096];
    'read: loop {
        let n = r.read(&mut b)?;
        if n == 0 {
            break;
        }
        for &c in &b[..n] {
            if c == b'\n' {
                break 'read;
            }
            line.push(c);
        }
        if line.len() > 64 * 1024 {
            break;
        }
    }
    let (mut commas, mut semis, mut quoted) = (0, 0, false);
    for c in line {
        match c {
            b'"' => quoted = !quoted,
            b',' if !quoted => commas += 1,
            b';' if !quoted => semis += 1,
            _ => {}
        }
    }
    Ok(if semis > commas { b';' } else { b',' })
}

/// Feeds every byte read into a hash, to notice a file that changes between the passes.
pub(super) struct Hashing<R> {
    pub(super) inner: R,
    pub(super) hash: Sha256,
    /// Where it is in the stream, and where each physical line after the first starts, as
    /// an editor or Excel counts them: `\n`, `\r\n` and a lone `\r` each end one line. The
    /// CSV reader's own count is off for CRLF and CR files.
    pub(super) lines: LineIndex,
}

impl<R> Hashing<R> {
    pub(super) fn new(inner: R) -> Hashing<R> {
        Hashing {
            inner,
            hash: Sha256::new(),
            lines: LineIndex::default(),
        }
    }
}

/// Byte offsets where lines start (line 1 at 0 is implied).
#[derive(Debug, Default)]
pub(super) struct LineIndex {
    starts: Vec<u64>,
    offset: u64,
    last_cr: bool,
}

impl LineIndex {
    fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.offset += 1;
            match b {
                b'\r' => {
                    self.starts.push(self.offset);
                    self.last_cr = true;
                }
                b'\n' if self.last_cr && self.starts.last() == Some(&(self.offset - 1)) => {
                    // CRLF: one line break; the next line starts after the LF.
                    if let Some(l) = self.starts.last_mut() {
                        *l = self.offset;
                    }
                    self.last_cr = false;
                }
                b'\n' => {
                    self.starts.push(self.offset);
                    self.last_cr = false;
                }
                _ => self.last_cr = false,
            }
        }
    }

    /// The physical line (1-based) that the byte at `offset` is on.
    pub(super) fn line_of(&self, offset: u64) -> u64 {
        self.starts.partition_point(|s| *s <= offset) as u64 + 1
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.lines.feed(&buf[..n]);
        Ok(n)
    }
}

/// Reads the header; errors name line 1.
pub(super) fn header(rdr: &mut csv::Reader<impl Read>, errors: &mut Vec<RowError>) -> Vec<Col> {
    let h = match rdr.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            errors.push(RowError {
                line: 1,
                column: String::new(),
                message: format!("cannot read the header: {e}"),
                record: None,
            });
            return Vec::new();
        }
    };
    let mut cols = Vec::new();
    let mut seen = HashSet::new();
    for name in h.iter() {
        match parse_col(name) {
            Some(c) if seen.insert(c) => cols.push(c),
            Some(_) => errors.push(RowError { line: 1, column: name.trim().into(), message: format!("column '{}' appears twice", name.trim()), record: None }),
            None if name.trim().is_empty() => errors.push(RowError { line: 1, column: String::new(), message: "a column has no name".into(), record: None }),
            None => errors.push(RowError {
                line: 1,
                column: name.trim().into(),
                message: format!("unknown column '{}': expected mac, model, site, label, lineN_user, lineN_auth_user, lineN_password, lineN_display_name, lineN_label", name.trim()), record: None }),
        }
    }
    if !cols.contains(&Col::Mac) && errors.is_empty() {
        errors.push(RowError {
            line: 1,
            column: "mac".into(),
            message: "the header has no 'mac' column".into(),
            record: None,
        });
    }
    cols
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns() {
        assert_eq!(parse_col(" MAC "), Some(Col::Mac));
        assert_eq!(
            parse_col("Line12_Auth_User"),
            Some(Col::Line(12, LineField::AuthUser))
        );
        assert_eq!(parse_col("line0_user"), None);
        assert_eq!(parse_col("line65_user"), None);
        assert_eq!(parse_col("line1_pasword"), None);
        assert_eq!(
            col_name(Col::Line(3, LineField::DisplayName)),
            "line3_display_name"
        );
    }
}
