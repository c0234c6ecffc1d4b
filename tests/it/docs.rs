//! The documentation stays true: every relative link in README.md and docs/*.md leads to a file
//! (and heading) in the repository, the shell snippets that drive `switchboard apps` run as
//! written, and the systemd unit in docs/operations.md passes `systemd-analyze verify`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::binary::{command, run};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn markdown_files() -> Vec<PathBuf> {
    let mut files = vec![repo().join("README.md")];
    for entry in std::fs::read_dir(repo().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    files
}

/// A fenced block: its info string and its lines.
struct Block {
    info: String,
    text: String,
}

fn blocks(markdown: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut current: Option<Block> = None;
    for line in markdown.lines() {
        match (line.trim_start().strip_prefix("```"), current.take()) {
            (Some(info), None) => current = Some(Block { info: info.trim().to_owned(), text: String::new() }),
            (Some(_), Some(block)) => out.push(block),
            (None, Some(mut block)) => {
                block.text.push_str(line);
                block.text.push('\n');
                current = Some(block);
            }
            (None, None) => {}
        }
    }
    out
}

/// Markdown outside fenced blocks (links inside code are code).
fn prose(markdown: &str) -> String {
    let mut out = String::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(markdown: &str) -> Vec<String> {
    prose(markdown).lines().filter_map(|l| l.strip_prefix('#')).map(|h| slug(h.trim_start_matches('#'))).collect()
}

#[test]
fn relative_links_stay_in_the_repository_and_resolve() {
    let root = repo().canonicalize().unwrap();
    let mut broken = Vec::new();
    for file in markdown_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        let body = prose(&text);
        for (start, _) in body.match_indices("](") {
            let rest = &body[start + 2..];
            let Some(end) = rest.find(')') else { continue };
            let target = rest[..end].split_whitespace().next().unwrap_or_default();
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
            let resolved = if path.is_empty() { file.clone() } else { file.parent().unwrap().join(path) };
            let name = format!("{}: {target}", file.strip_prefix(repo()).unwrap().display());
            match resolved.canonicalize() {
                Ok(real) if !real.starts_with(&root) => broken.push(format!("{name} (outside the repository)")),
                Ok(real) if !anchor.is_empty() => {
                    let heads = anchors(&std::fs::read_to_string(&real).unwrap_or_default());
                    if !heads.iter().any(|h| h == anchor) {
                        broken.push(format!("{name} (no such heading)"));
                    }
                }
                Ok(_) => {}
                Err(_) => broken.push(format!("{name} (no such file)")),
            }
        }
    }
    assert!(broken.is_empty(), "broken links: {broken:#?}");
}

/// Runs the `sh` blocks of a file that call `switchboard apps`, in order, with the built
/// binary first on PATH and a data dir holding the app the examples name.
fn run_app_snippets(file: &Path, example_id: &str) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let created = run(command(dir.path(), &["apps", "create", "--id", example_id, "--data-dir"]).arg(&data));
    assert_eq!(created.code, Some(0), "{}", created.stderr);
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_switchboard")).parent().unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let text = std::fs::read_to_string(file).unwrap();
    let mut ran = 0;
    for block in blocks(&text).into_iter().filter(|b| b.info == "sh" && b.text.starts_with("switchboard apps ")) {
        let mut sh = Command::new("sh");
        for (name, _, _) in switchboard::config::ENV_VARS {
            sh.env_remove(name);
        }
        sh.args(["-e", "-c", &block.text])
            .current_dir(dir.path())
            .env("PATH", &path)
            .env("SWITCHBOARD_DATA_DIR", &data)
            .env("LOG_LEVEL", "warn");
        let out = run(&mut sh);
        assert_eq!(out.code, Some(0), "{}:\n{}\n{}", file.display(), block.text, out.stderr);
        ran += 1;
    }
    ran
}

#[test]
fn the_app_commands_in_the_docs_run_as_written() {
    assert_eq!(run_app_snippets(&repo().join("README.md"), "4827163"), 1);
    assert_eq!(run_app_snippets(&repo().join("docs/operations.md"), "4827163"), 1);
}

#[test]
fn the_systemd_unit_is_valid_and_stops_after_the_shutdown_grace() {
    let text = std::fs::read_to_string(repo().join("docs/operations.md")).unwrap();
    let unit = blocks(&text)
        .into_iter()
        .find(|b| b.info == "ini" && b.text.starts_with("# /etc/systemd/system/switchboard.service"))
        .expect("docs/operations.md has the systemd unit")
        .text;
    let value = |key: &str| {
        unit.lines().find_map(|l| l.strip_prefix(&format!("{key}="))).unwrap_or_else(|| panic!("no {key}= in the unit"))
    };
    let grace_ms = switchboard::config::Config::default().server.shutdown_grace_ms;
    let stop_secs: u64 = value("TimeoutStopSec").parse().unwrap();
    assert!(stop_secs * 1000 > grace_ms, "TimeoutStopSec={stop_secs} is not above the {grace_ms} ms shutdown grace");
    assert_eq!(value("LimitNOFILE"), "65536");
    assert_eq!(value("KillSignal"), "SIGTERM");
    assert!(!["", "root"].contains(&value("User")), "a dedicated user");
    let exec = value("ExecStart");
    let data_dir = exec.split("--data-dir ").nth(1).and_then(|r| r.split_whitespace().next()).unwrap();
    assert!(Path::new(data_dir).is_absolute(), "--data-dir {data_dir} is relative");

    let Ok(probe) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("note: systemd-analyze is not installed here: the unit was not verified by systemd");
        return;
    };
    assert!(probe.status.success());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("switchboard.service");
    // verify checks that ExecStart's program exists: the built binary stands in.
    std::fs::write(&file, unit.replace("/usr/local/bin/switchboard", env!("CARGO_BIN_EXE_switchboard"))).unwrap();
    let out = Command::new("systemd-analyze").arg("verify").arg(&file).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Unknown keys are only warnings for systemd: any line about the unit is a mistake here.
    assert!(!stderr.contains("switchboard.service"), "{stderr}");
}

/// The README's embedding example is the crate docs' `no_run` doctest, which `cargo test --doc`
/// compiles: the README's copy cannot drift from code that builds.
#[test]
fn the_readme_embedding_example_is_the_compiled_crate_doc_example() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let in_readme: Vec<_> = blocks(&readme).into_iter().filter(|b| b.info == "rust").collect();
    assert_eq!(in_readme.len(), 1, "README.md has one Rust block, the embedding example");
    let lib = std::fs::read_to_string(repo().join("src/lib.rs")).unwrap();
    let crate_doc: String = lib
        .lines()
        .map_while(|l| l.strip_prefix("//!"))
        .map(|l| format!("{}\n", l.strip_prefix(' ').unwrap_or(l)))
        .collect();
    let example = blocks(&crate_doc)
        .into_iter()
        .find(|b| b.info == "no_run")
        .expect("the crate docs show the embedding example as a no_run doctest");
    assert_eq!(in_readme[0].text, example.text);
}
