//! The file formats phones parse, checked after every render: a file that a phone could not
//! read is a render error, so the change that would produce it is refused at the door (every
//! verb trial-renders) and a running server keeps the last good bytes. Which format a vendor's
//! files are in is data (`format` in `templates/<vendor>/vendor.toml`).

pub use crate::catalog::FileFormat as Format;

/// Why a rendered text is not a file the phone can read, if it is not.
pub fn check(format: Format, text: &str) -> Result<(), String> {
    match format {
        Format::Text => Ok(()),
        Format::Xml => roxmltree::Document::parse(text)
            .map(|_| ())
            .map_err(|e| format!("the rendered file is not well-formed XML: {e}")),
        Format::KeyValue => {
            let mut lines = text.lines();
            if !lines.next().is_some_and(|l| l.starts_with("#!version:")) {
                return Err("the rendered file does not start with #!version:".into());
            }
            for (i, l) in lines.enumerate() {
                let t = l.trim();
                if t.is_empty() || t.starts_with('#') || t.starts_with("include:") {
                    continue;
                }
                let ok = l.split_once(" = ").is_some_and(|(k, _)| {
                    !k.is_empty()
                        && k.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
                });
                if !ok && l != "overwrite_mode = 1" {
                    return Err(format!(
                        "line {} of the rendered file is not `key = value`: {l:?}",
                        i + 2
                    ));
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert!(check(Format::Xml, "<a b=\"1\"/>").is_ok());
        assert!(check(Format::Xml, "<!-- a -- b --><a/>").is_err());
        assert!(check(Format::Xml, "<a 1bad=\"x\"/>").is_err());
        assert!(check(Format::KeyValue, "#!version:1.0.0.1\n# c\na.b = 1\n").is_ok());
        assert!(check(Format::KeyValue, "#!version:1.0.0.1\nfoo\n").is_err());
        assert!(check(Format::KeyValue, "a = 1\n").is_err());
    }
}
