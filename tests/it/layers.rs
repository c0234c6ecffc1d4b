//! STYLE.md §1: the core, broker and store import nothing above them.

use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn lower_layers_do_not_import_upper_ones() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let rules: &[(&str, &[&str])] = &[
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
        (
            "broker",
            &["axum", "sqlx", "crate::core", "crate::surfaces", "crate::server", "crate::apps", "crate::transport"],
        ),
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
    let mut violations = Vec::new();
    for (layer, forbidden) in rules {
        let mut files = Vec::new();
        rust_files(&root.join(layer), &mut files);
        assert!(!files.is_empty(), "no files under src/{layer}");
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for line in text.lines().map(str::trim).filter(|l| l.starts_with("use ") || l.starts_with("pub use ")) {
                for f in *forbidden {
                    let path = line.trim_start_matches("pub ").trim_start_matches("use ");
                    if path.starts_with(f) {
                        violations.push(format!("{}: {line}", file.display()));
                    }
                }
            }
        }
    }
    assert!(violations.is_empty(), "layer violations:\n{}", violations.join("\n"));
}
