//! Provenance: which layer set each setting (the file and its line, an environment variable, a
//! flag, or the built-in default), so that an error names what the operator actually wrote.
//! Settings are named by their TOML key (`server.port`), the one name every layer shares.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

/// Where a setting's value came from. `Debug` shows a variable's value only where an error may
/// (never a secret, token, password or URL).
#[derive(Clone, PartialEq, Eq)]
pub enum Source {
    /// Nothing set it.
    Default,
    /// A key in the configuration file, with its 1-based line.
    File { path: Arc<Path>, line: usize },
    /// An environment variable and its value as given.
    Env { name: &'static str, value: String },
    /// A command-line flag, e.g. `--port`.
    Flag(&'static str),
    /// A method of the embedding program's `ServerBuilder`, e.g. `port`.
    Builder(&'static str),
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("Default"),
            Self::File { path, line } => f.debug_struct("File").field("path", path).field("line", line).finish(),
            Self::Env { name, value } => {
                let value: &dyn fmt::Debug = if shows_value(name) { value } else { &"<redacted>" };
                f.debug_struct("Env").field("name", name).field("value", value).finish()
            }
            Self::Flag(flag) => f.debug_tuple("Flag").field(flag).finish(),
            Self::Builder(method) => f.debug_tuple("Builder").field(method).finish(),
        }
    }
}

/// The source of every setting a layer touched; unlisted settings are defaults.
#[derive(Debug, Clone, Default)]
pub struct Sources(BTreeMap<String, Source>);

impl Sources {
    /// Where `key` (e.g. `server.port`) came from.
    pub fn get(&self, key: &str) -> &Source {
        self.0.get(key).unwrap_or(&Source::Default)
    }

    pub(super) fn set(&mut self, key: &str, source: Source) {
        self.0.insert(key.to_owned(), source);
    }

    /// Records `source` for every leaf that differs between two snapshots of the configuration
    /// (how a variable that sets more than one field, like `SERVER_ADDR`, is traced).
    pub(super) fn record_changes(&mut self, before: &Value, after: &Value, source: &Source) {
        let mut changed = Vec::new();
        diff_leaves("", before, after, &mut changed);
        for key in changed {
            self.0.insert(key, source.clone());
        }
    }

    /// Records every key a TOML document sets, with its line.
    pub(super) fn record_file(&mut self, path: &Path, text: &str) {
        let path: Arc<Path> = Arc::from(path);
        for entry in toml_entries(text) {
            self.set(&entry.key, Source::File { path: path.clone(), line: line_of(text, entry.key_start) });
        }
    }
}

/// One leaf of a TOML document: its dotted key and the byte ranges of key and value.
pub(super) struct TomlEntry {
    pub key: String,
    pub key_start: usize,
    pub value: std::ops::Range<usize>,
}

/// The leaves of a TOML document (tables are walked, arrays are leaves); empty when it does not
/// parse.
pub(super) fn toml_entries(text: &str) -> Vec<TomlEntry> {
    let mut out = Vec::new();
    if let Ok(doc) = toml::de::DeTable::parse(text) {
        walk_toml("", doc.get_ref(), &mut out);
    }
    out
}

fn walk_toml(prefix: &str, table: &toml::de::DeTable<'_>, out: &mut Vec<TomlEntry>) {
    for (key, value) in table.iter() {
        let path = if prefix.is_empty() { key.get_ref().to_string() } else { format!("{prefix}.{}", key.get_ref()) };
        match value.get_ref() {
            toml::de::DeValue::Table(inner) => walk_toml(&path, inner, out),
            _ => out.push(TomlEntry { key: path, key_start: key.span().start, value: value.span() }),
        }
    }
}

/// The 1-based line holding byte `offset` of `text`.
pub(super) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

fn diff_leaves(prefix: &str, before: &Value, after: &Value, out: &mut Vec<String>) {
    match (before, after) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, new) in b {
                let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
                diff_leaves(&path, a.get(key).unwrap_or(&Value::Null), new, out);
            }
        }
        (a, b) if a != b => out.push(prefix.to_owned()),
        _ => {}
    }
}

/// Whether a setting's value may be echoed in an error: secrets, tokens, encryption keys and
/// URLs (which carry passwords) never are.
pub(super) fn shows_value(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    !["secret", "token", "password", "url", "encryption", "private_key", "service_account"]
        .iter()
        .any(|word| name.contains(word))
}

/// The setting as the operator wrote it, for the start of an error line: `PORT="6001"`,
/// `--log-level "loud"`, `config file F, line 3: log.level = "loud"`, or `server.port = 6001`
/// when no layer set it.
pub(super) struct Named<'a> {
    pub key: &'a str,
    pub source: &'a Source,
    pub value: Option<&'a Value>,
}

impl fmt::Display for Named<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = self.value.filter(|_| shows_value(self.key)).filter(|v| !v.is_null());
        match self.source {
            // The variable's own text, which is what the operator can find in their environment.
            Source::Env { name, value: raw } if shows_value(name) && shows_value(self.key) => {
                write!(f, "{name}={raw:?}")
            }
            Source::Env { name, .. } => f.write_str(name),
            Source::Flag(flag) => match value {
                Some(v) => write!(f, "{flag} {v}"),
                None => f.write_str(flag),
            },
            Source::Builder(method) => match value {
                Some(v) => write!(f, "ServerBuilder::{method}({v})"),
                None => write!(f, "ServerBuilder::{method}(..)"),
            },
            Source::File { path, line } => {
                write!(f, "config file {}, line {line}: {}", path.display(), self.key)?;
                match value {
                    Some(v) => write!(f, " = {v}"),
                    None => Ok(()),
                }
            }
            Source::Default => match value {
                Some(v) => write!(f, "{} = {v}", self.key),
                None => f.write_str(self.key),
            },
        }
    }
}

/// The value at a dotted key of a JSON snapshot.
pub(super) fn lookup<'a>(root: &'a Value, key: &str) -> Option<&'a Value> {
    key.split('.').try_fold(root, |v, part| v.get(part))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lines_count_from_one_and_a_key_at_a_line_start_is_on_that_line() {
        let text = "[server]\nprot = 1\n";
        assert_eq!(line_of(text, 0), 1);
        assert_eq!(line_of(text, text.find("prot").unwrap()), 2);
    }

    #[test]
    fn file_keys_are_dotted_paths_with_their_lines() {
        let mut s = Sources::default();
        s.record_file(Path::new("a.toml"), "# c\n[server]\nport = 1\n\n[log]\nlevel = \"x\"\n");
        assert_eq!(s.get("server.port"), &Source::File { path: Arc::from(Path::new("a.toml")), line: 3 });
        assert_eq!(s.get("log.level"), &Source::File { path: Arc::from(Path::new("a.toml")), line: 6 });
        assert_eq!(s.get("server.bind"), &Source::Default);
    }

    #[test]
    fn changed_leaves_are_recorded() {
        let mut s = Sources::default();
        let before = json!({"server": {"bind": "0.0.0.0", "port": 6001}, "log": {"level": "info"}});
        let after = json!({"server": {"bind": "127.0.0.1", "port": 3000}, "log": {"level": "info"}});
        let source = Source::Env { name: "SERVER_ADDR", value: "127.0.0.1:3000".into() };
        s.record_changes(&before, &after, &source);
        assert_eq!(s.get("server.bind"), &source);
        assert_eq!(s.get("server.port"), &source);
        assert_eq!(s.get("log.level"), &Source::Default);
    }

    #[test]
    fn secrets_and_urls_are_never_shown() {
        let v = json!("postgres://u:pw@h/db");
        let source = Source::Env { name: "DATABASE_URL", value: "postgres://u:pw@h/db".into() };
        let named = Named { key: "database.url", source: &source, value: Some(&v) };
        assert_eq!(named.to_string(), "DATABASE_URL");
        let v = json!("s3cret-s3cret-s3cret");
        let named = Named { key: "default_app.secret", source: &Source::Flag("--secret"), value: Some(&v) };
        assert_eq!(named.to_string(), "--secret");
        let v = json!(6001);
        let source = Source::Env { name: "PORT", value: "6001".into() };
        let named = Named { key: "server.port", source: &source, value: Some(&v) };
        assert_eq!(named.to_string(), "PORT=\"6001\"");
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let secret = Source::Env { name: "JWT_SECRET", value: "hunter2-hunter2-hunter2".into() };
        assert!(!format!("{secret:?}").contains("hunter2"), "{secret:?}");
        let url = Source::Env { name: "DATABASE_URL", value: "postgres://u:pw@h/db".into() };
        assert!(!format!("{url:?}").contains("pw@"), "{url:?}");
        let port = Source::Env { name: "PORT", value: "6001".into() };
        assert!(format!("{port:?}").contains("6001"));
    }

    #[test]
    fn a_builder_setting_is_named_as_the_call_and_its_url_never_shown() {
        let v = json!(80);
        let named = Named { key: "server.port", source: &Source::Builder("port"), value: Some(&v) };
        assert_eq!(named.to_string(), "ServerBuilder::port(80)");
        let v = json!("postgres://u:pw@h/db");
        let named = Named { key: "database.url", source: &Source::Builder("database_url"), value: Some(&v) };
        assert_eq!(named.to_string(), "ServerBuilder::database_url(..)");
    }
}
