//! The shape of the source tree, checked (docs/architecture.md is the map):
//! no source file over 600 lines, no two modules that import each other,
//! and the lower layers (media, desktop, session, input) never reach up into
//! the layers that use them (signalling, config, agent, cli).
//!
//! Imports are read from the text: `use` items (re-exports, `pub use`, are
//! a module's facade and do not count) and `crate::`/`super::` paths in the
//! code, up to the first `#[cfg(test)]`. Each path is resolved to the
//! deepest module file it names.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 600;
const LOWER: &[&str] = &["media", "desktop", "session"];
const UPPER: &[&str] = &["signalling", "config", "agent", "cli"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `src/media/service/mod.rs` -> ["media", "service"]; `src/lib.rs` -> [].
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).expect("file under src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|c| c.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// `a::{b, c::{d, e}}` -> ["a::b", "a::c::d", "a::c::e"].
fn expand(tree: &str) -> Vec<String> {
    let tree: String = tree.split_whitespace().collect();
    let Some(open) = tree.find('{') else {
        return vec![tree];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut items = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, ch) in inner.char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[start..]);
    items
        .into_iter()
        .filter(|s| !s.is_empty())
        .flat_map(|s| expand(s).into_iter().map(move |e| format!("{prefix}{e}")))
        .collect()
}

/// Every module path a file refers to, as written (before resolution).
fn referenced_paths(text: &str) -> Vec<String> {
    let text = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => text,
    };
    let mut out = Vec::new();
    let mut code = String::new();
    let mut item: Option<(bool, String)> = None; // (re-export, text so far)
    for line in text.lines() {
        let line = line.split("//").next().unwrap_or("");
        let t = line.trim_start();
        if item.is_none() {
            if let Some(rest) = t.strip_prefix("use ") {
                item = Some((false, rest.to_string()));
            } else if let Some(i) = t.find(" use ").filter(|_| t.starts_with("pub")) {
                item = Some((true, t[i + 5..].to_string()));
            } else {
                code.push_str(line);
                code.push('\n');
                continue;
            }
        } else if let Some((_, text)) = item.as_mut() {
            text.push_str(line);
        }
        if let Some((reexport, text)) = item.take_if(|(_, t)| t.contains(';')) {
            let tree = text.split(';').next().unwrap_or("");
            if !reexport {
                out.extend(expand(tree));
            }
        }
    }
    // Paths in code: `crate::a::b(...)`, `super::x::y`.
    for start in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(i) = code[from..].find(start) {
            let at = from + i;
            let path: String = code[at..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            out.push(path.trim_end_matches(':').to_string());
            from = at + start.len();
        }
    }
    out
}

/// The deepest module of `modules` that `path` (seen from `here`) names.
fn resolve(path: &str, here: &[String], modules: &BTreeSet<Vec<String>>) -> Option<Vec<String>> {
    let segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    match segs.first() {
        Some(&"crate") => deepest(Vec::new(), &segs[1..], modules),
        Some(&"super") | Some(&"self") => {
            // `super` of `a/b.rs` is `a`; `self` is the module itself.
            let mut base = here.to_vec();
            let mut i = 0;
            while let Some(&s) = segs.get(i) {
                match s {
                    "super" => drop(base.pop()),
                    "self" => {}
                    _ => break,
                }
                i += 1;
            }
            deepest(base, &segs[i..], modules)
        }
        // A child module of this one (`mod x;` declared here).
        Some(first) if modules.contains(&[here, &[first.to_string()]].concat()) => {
            deepest(here.to_vec(), &segs, modules)
        }
        _ => None, // another crate, std, or a local item
    }
}

fn deepest(
    mut base: Vec<String>,
    segs: &[&str],
    modules: &BTreeSet<Vec<String>>,
) -> Option<Vec<String>> {
    let mut best = modules.contains(&base).then(|| base.clone());
    for s in segs {
        base.push(s.to_string());
        if modules.contains(&base) {
            best = Some(base.clone());
        } else {
            break;
        }
    }
    best
}

struct Crate {
    /// module -> (file, modules it imports)
    modules: BTreeMap<Vec<String>, (PathBuf, BTreeSet<Vec<String>>)>,
}

fn read_crate(src: &Path) -> Crate {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let names: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(src, f)).collect();
    let mut modules = BTreeMap::new();
    for f in files {
        let here = module_of(src, &f);
        let text = std::fs::read_to_string(&f).expect("readable source");
        let imports: BTreeSet<Vec<String>> = referenced_paths(&text)
            .iter()
            .filter_map(|p| resolve(p, &here, &names))
            .filter(|m| *m != here && !m.is_empty())
            .collect();
        modules.insert(here, (f, imports));
    }
    Crate { modules }
}

fn name(m: &[String]) -> String {
    if m.is_empty() {
        "crate".into()
    } else {
        m.join("::")
    }
}

#[test]
fn no_source_file_is_over_600_lines() {
    let mut files = Vec::new();
    for dir in ["src", "crates", "examples", "tests"] {
        rust_files(&root().join(dir), &mut files);
    }
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let n = std::fs::read_to_string(f).ok()?.lines().count();
            (n > MAX_LINES).then(|| format!("{} ({n} lines)", f.display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "split these by concern (at most {MAX_LINES} lines each):\n{}",
        long.join("\n")
    );
}

#[test]
fn no_two_modules_import_each_other() {
    let mut cycles = Vec::new();
    for src in [
        root().join("src"),
        root().join("crates/oriel-input/src"),
        root().join("crates/oriel-protocol/src"),
    ] {
        let c = read_crate(&src);
        for (m, (_, imports)) in &c.modules {
            for other in imports {
                let back = c
                    .modules
                    .get(other)
                    .is_some_and(|(_, theirs)| theirs.contains(m));
                if back && m < other {
                    cycles.push(format!("{} <-> {}", name(m), name(other)));
                }
            }
        }
    }
    assert!(
        cycles.is_empty(),
        "modules importing each other:\n{}",
        cycles.join("\n")
    );
}

#[test]
fn lower_layers_never_import_upper_ones() {
    let c = read_crate(&root().join("src"));
    let mut wrong = Vec::new();
    for (m, (file, imports)) in &c.modules {
        if !m.first().is_some_and(|top| LOWER.contains(&top.as_str())) {
            continue;
        }
        for i in imports {
            if i.first().is_some_and(|top| UPPER.contains(&top.as_str())) {
                wrong.push(format!("{} ({}) uses {}", name(m), file.display(), name(i)));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "lower layers reaching up:\n{}",
        wrong.join("\n")
    );
}

/// The checker itself: it must see the imports it is meant to catch.
#[test]
fn the_checker_reads_imports() {
    let mods: BTreeSet<Vec<String>> = [
        vec!["a".to_string()],
        vec!["a".into(), "b".into()],
        vec!["c".into()],
    ]
    .into_iter()
    .collect();
    let here = vec!["a".to_string(), "b".into()];
    let text = "use crate::{c::X, a::{self, Y}};\npub use crate::c::Z;\nfn f() { super::g(); }\n";
    let got: BTreeSet<Vec<String>> = referenced_paths(text)
        .iter()
        .filter_map(|p| resolve(p, &here, &mods))
        .collect();
    assert!(got.contains(&vec!["c".to_string()]), "{got:?}");
    assert!(got.contains(&vec!["a".to_string()]), "{got:?}");
    assert_eq!(expand("a::{b, c::{d, e}}"), ["a::b", "a::c::d", "a::c::e"]);
}
