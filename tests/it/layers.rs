//! STYLE.md §1: the core, broker and store import nothing above them. The scan reads code,
//! not lines: grouped and nested `use` trees are expanded, `super::` is resolved, and paths
//! written inline (`crate::server::AppState` in a signature) count like imports; comments and
//! string literals do not.

use std::path::{Path, PathBuf};

/// Each lower layer and the paths it must not name.
const RULES: &[(&str, &[&str])] = &[
    (
        "core",
        &[
            "axum",
            "socketioxide",
            "sqlx",
            "crate::surfaces",
            "crate::server",
            "crate::store",
            "crate::apps",
            "crate::transport",
        ],
    ),
    ("broker", &["axum", "sqlx", "crate::core", "crate::surfaces", "crate::server", "crate::apps", "crate::transport"]),
    (
        "store",
        &[
            "axum",
            "crate::core",
            "crate::surfaces",
            "crate::server",
            "crate::apps",
            "crate::broker",
            "crate::transport",
        ],
    ),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/core/conn.rs` → `crate::core::conn`; `src/core/mod.rs` → `crate::core`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut module = vec!["crate".to_owned()];
    module.extend(rel.iter().map(|p| p.to_string_lossy().into_owned()).filter(|p| p != "mod"));
    module
}

/// `src` with comments, string and character literals blanked out (newlines kept), so that a
/// path quoted in them is not taken for code.
fn code_only(src: &str) -> String {
    let chars: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let blank = |out: &mut String, c: char| out.push(if c == '\n' { '\n' } else { ' ' });
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                blank(&mut out, chars[i]);
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
            }
        } else if c == 'r' && matches!(next, Some('"' | '#')) && !chars[..i].last().is_some_and(|p| is_ident(*p)) {
            // r"…", r#"…"#: ends at a quote followed by as many hashes.
            let hashes = chars[i + 1..].iter().take_while(|&&h| h == '#').count();
            if chars.get(i + 1 + hashes) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            let close: Vec<char> = std::iter::once('"').chain(std::iter::repeat_n('#', hashes)).collect();
            let mut j = i + 2 + hashes;
            while j < chars.len() && !chars[j..].starts_with(&close) {
                j += 1;
            }
            let end = (j + close.len()).min(chars.len());
            chars[i..end].iter().for_each(|&c| blank(&mut out, c));
            i = end;
        } else if c == '"' {
            blank(&mut out, c);
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                let skip = if chars[i] == '\\' { 2 } else { 1 };
                chars[i..(i + skip).min(chars.len())].iter().for_each(|&c| blank(&mut out, c));
                i += skip;
            }
            if i < chars.len() {
                blank(&mut out, chars[i]);
                i += 1;
            }
        } else if c == '\'' && (next == Some('\\') || chars.get(i + 2) == Some(&'\'')) {
            // A character literal ('x', '\'', '\u{1F600}'); a lifetime ('a) has no closing quote.
            let mut j = i + 1;
            if next == Some('\\') {
                j += 2;
            }
            while j < chars.len() && chars[j] != '\'' {
                j += 1;
            }
            let end = (j + 1).min(chars.len());
            chars[i..end].iter().for_each(|&c| blank(&mut out, c));
            i = end;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

#[derive(Debug, PartialEq)]
enum Tok {
    Ident(String),
    Sep,
    Punct(char),
}

fn tokens(code: &str) -> Vec<Tok> {
    let chars: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if is_ident(c) {
            let start = i;
            while i < chars.len() && is_ident(chars[i]) {
                i += 1;
            }
            out.push(Tok::Ident(chars[start..i].iter().collect()));
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            out.push(Tok::Sep);
            i += 2;
        } else {
            if !c.is_whitespace() {
                out.push(Tok::Punct(c));
            }
            i += 1;
        }
    }
    out
}

/// Expands the `use` tree at `tokens[*i]` under `prefix` into full paths.
fn use_tree(tokens: &[Tok], i: &mut usize, prefix: &[String], out: &mut Vec<Vec<String>>) {
    let mut path = prefix.to_vec();
    loop {
        match tokens.get(*i) {
            Some(Tok::Sep) => *i += 1,
            Some(Tok::Ident(s)) => {
                if s != "self" || path.is_empty() {
                    path.push(s.clone());
                }
                *i += 1;
                if tokens.get(*i) == Some(&Tok::Sep) {
                    *i += 1;
                    continue;
                }
                if matches!(tokens.get(*i), Some(Tok::Ident(a)) if a == "as") {
                    *i += 2;
                }
                out.push(path);
                return;
            }
            Some(Tok::Punct('{')) => {
                *i += 1;
                loop {
                    match tokens.get(*i) {
                        Some(Tok::Punct('}')) => {
                            *i += 1;
                            return;
                        }
                        Some(Tok::Punct(',')) => *i += 1,
                        None => return,
                        Some(_) => use_tree(tokens, i, &path, out),
                    }
                }
            }
            Some(Tok::Punct('*')) => {
                *i += 1;
                out.push(path);
                return;
            }
            _ => {
                out.push(path);
                return;
            }
        }
    }
}

/// Makes `path` absolute: `super` and `self` are resolved against `module`.
fn resolve(mut path: Vec<String>, module: &[String]) -> Vec<String> {
    if !matches!(path.first().map(String::as_str), Some("super" | "self")) {
        return path;
    }
    let mut base = module.to_vec();
    while let Some(first) = path.first().map(String::as_str) {
        match first {
            "super" => {
                base.pop();
            }
            "self" => {}
            _ => break,
        }
        path.remove(0);
    }
    base.extend(path);
    base
}

/// Every path the code in `code` names, absolute: each `use` tree expanded
/// (`use crate::{a, b::{c}}` names `crate::a` and `crate::b::c`) and each path written inline.
fn paths(code: &str, module: &[String]) -> Vec<String> {
    let toks = tokens(code);
    let mut found = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        match &toks[i] {
            Tok::Ident(s) if s == "use" => {
                i += 1;
                use_tree(&toks, &mut i, &[], &mut found);
            }
            Tok::Ident(s) => {
                // An inline path: a run of identifiers joined by `::`.
                let mut path = vec![s.clone()];
                i += 1;
                while toks.get(i) == Some(&Tok::Sep)
                    && let Some(Tok::Ident(next)) = toks.get(i + 1)
                {
                    path.push(next.clone());
                    i += 2;
                }
                found.push(path);
            }
            _ => i += 1,
        }
    }
    found.into_iter().map(|p| resolve(p, module).join("::")).collect()
}

/// Whether `path` is `forbidden` or lies under it, segment by segment.
fn under(path: &str, forbidden: &str) -> bool {
    path == forbidden || path.strip_prefix(forbidden).is_some_and(|rest| rest.starts_with("::"))
}

/// The forbidden paths one file's code names.
fn violations(text: &str, module: &[String], forbidden: &[&str]) -> Vec<String> {
    let mut found: Vec<String> =
        paths(&code_only(text), module).into_iter().filter(|p| forbidden.iter().any(|f| under(p, f))).collect();
    found.sort();
    found.dedup();
    found
}

#[test]
fn lower_layers_do_not_import_upper_ones() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    for (layer, forbidden) in RULES {
        let mut files = Vec::new();
        rust_files(&src.join(layer), &mut files);
        assert!(!files.is_empty(), "no files under src/{layer}");
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for v in violations(&text, &module_of(&src, &file), forbidden) {
                all.push(format!("{}: {v}", file.display()));
            }
        }
    }
    assert!(all.is_empty(), "layer violations:\n{}", all.join("\n"));
}

/// The scanner is not blind: each way of naming an upper layer is caught, and what only looks
/// like one (a comment, a string, a longer name) is not.
#[test]
fn the_scanner_catches_grouped_nested_inline_and_relative_paths() {
    let text = r##"
        //! crate::server in a doc comment is not code
        use crate::{apps, broker::Broker};
        pub(crate) use crate::{metrics, server::{self, state::{AppState as S}}};
        use super::super::transport::ws;
        use axum::{Router, extract::*};
        extern crate sqlx;
        fn f(s: &crate::surfaces::pusher::Frame) -> crate::store::Store {
            let quoted = "crate::apps::Quoted \" crate::server";
            let raw = r#"crate::transport::Raw"#;
            let c = '"'; let q = '\''; let l: &'static str = "";
            /* crate::apps /* nested */ crate::server */
            helper::<crate::servers::Fine>(crate :: transport :: ws :: run)
        }
    "##;
    let module: Vec<String> = ["crate", "core", "conn"].map(String::from).to_vec();
    let forbidden = RULES[0].1;
    assert_eq!(
        violations(text, &module, forbidden),
        [
            "axum::Router",
            "axum::extract",
            "crate::apps",
            "crate::server",
            "crate::server::state::AppState",
            "crate::store::Store",
            "crate::surfaces::pusher::Frame",
            "crate::transport::ws",
            "crate::transport::ws::run",
            "sqlx",
        ]
    );
}
