//! The crate doc's layout rules, checked on the source: imports between top-level modules, and
//! between the files of one module, run one way (no cycles); no source file over 600 lines;
//! `main.rs` only bootstraps; vendors are data (no `vendor == "..."` in the code).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code of a file without comments and without its `#[cfg(test)]` module.
fn code(p: &Path) -> String {
    let text = std::fs::read_to_string(p).unwrap();
    let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Identifiers that follow `prefix` in `text` (`crate::store::x` with prefix `crate::`: store).
fn after(text: &str, prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices(prefix) {
        let rest = &text[i + prefix.len()..];
        if rest.starts_with('{') {
            // `use crate::{a, b::c}`: every first segment in the braces.
            let inner = &rest[1..rest.find('}').unwrap_or(rest.len())];
            for part in inner.split(',') {
                let id: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !id.is_empty() {
                    out.insert(id);
                }
            }
            continue;
        }
        let id: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !id.is_empty() {
            out.insert(id);
        }
    }
    out
}

/// A cycle in `graph`, if any, as the path around it.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match state.get(n) {
            Some(2) => return None,
            Some(1) => {
                let at = path.iter().position(|x| x == n).unwrap_or(0);
                let mut c = path[at..].to_vec();
                c.push(n.to_string());
                return Some(c);
            }
            _ => {}
        }
        state.insert(n.to_string(), 1);
        path.push(n.to_string());
        for m in g.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, g, state, path) {
                return Some(c);
            }
        }
        path.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in graph.keys() {
        if let Some(c) = visit(n, graph, &mut state, &mut Vec::new()) {
            return Some(c);
        }
    }
    None
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn top_level_modules_import_one_way() {
    let root = src();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let rel = f.strip_prefix(&root).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let top = top.trim_end_matches(".rs").to_string();
        if matches!(top.as_str(), "lib" | "main" | "cli") {
            continue;
        }
        let refs = after(&code(f), "crate::");
        graph
            .entry(top.clone())
            .or_default()
            .extend(refs.into_iter().filter(|r| *r != top));
    }
    let names: BTreeSet<String> = graph.keys().cloned().collect();
    for deps in graph.values_mut() {
        deps.retain(|d| names.contains(d));
    }
    assert!(graph.len() > 15, "modules found: {:?}", graph.keys());
    if let Some(c) = cycle(&graph) {
        panic!("modules import each other: {}", c.join(" -> "));
    }
    // The bottom layer imports nothing above it.
    for low in ["mac", "net", "config", "model", "catalog"] {
        let ups: Vec<_> = graph[low]
            .iter()
            .filter(|d| !["mac", "net", "model", "catalog", "config"].contains(&d.as_str()))
            .collect();
        assert!(ups.is_empty(), "{low} imports {ups:?}");
    }
}

#[test]
fn files_of_one_module_import_one_way() {
    let root = src();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut dirs: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
    for f in files {
        dirs.entry(f.parent().unwrap().to_path_buf())
            .or_default()
            .push(f);
    }
    for (dir, files) in dirs {
        let stem = |f: &Path| f.file_stem().unwrap().to_string_lossy().to_string();
        let module = dir
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace('/', "::");
        let siblings: BTreeSet<String> = files.iter().map(|f| stem(f)).collect();
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for f in &files {
            let me = stem(f);
            let text = code(f);
            let mut refs = if me == "mod" {
                // `mod.rs` may name its children; children naming `super` name `mod`.
                BTreeSet::new()
            } else {
                let mut r = after(&text, "super::");
                // Things defined in mod.rs itself, reached as `super::Thing`.
                r = r
                    .into_iter()
                    .map(|x| {
                        if siblings.contains(&x) {
                            x
                        } else {
                            "mod".into()
                        }
                    })
                    .collect();
                r
            };
            if !module.is_empty() {
                refs.extend(
                    after(&text, &format!("crate::{module}::"))
                        .into_iter()
                        .filter(|x| siblings.contains(x)),
                );
            }
            refs.remove(&me);
            graph.insert(me, refs);
        }
        if let Some(c) = cycle(&graph) {
            panic!(
                "files of src/{} import each other: {}",
                dir.strip_prefix(&root).unwrap().display(),
                c.join(" -> ")
            );
        }
    }
}

#[test]
fn no_source_file_is_over_600_lines_and_main_only_bootstraps() {
    let root = src();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    for f in &files {
        let n = std::fs::read_to_string(f).unwrap().lines().count();
        assert!(n <= 600, "{} has {n} lines", f.display());
    }
    let main = std::fs::read_to_string(root.join("main.rs")).unwrap();
    assert!(main.lines().count() < 150, "main.rs is for bootstrapping");
}

#[test]
fn vendors_are_data_not_conditions() {
    let root = src();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    for f in &files {
        let text = code(f);
        for pat in ["vendor == \"", "vendor != \"", "vendor.as_str() == \""] {
            assert!(
                !text.contains(pat),
                "{} decides by vendor name ({pat}…): put it in templates/<vendor>/vendor.toml",
                f.display()
            );
        }
    }
}
