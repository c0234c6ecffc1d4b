//! The data directory check run before anything opens SQLite or writes a secret there: a path
//! that is a file, cannot be created, or cannot be written becomes one [`ConfigError`] naming
//! the setting and the path, instead of a database error repeated through its sources.

use std::io;
use std::path::Path;

use super::{Config, ConfigError};

impl Config {
    /// Creates the data directory when it is missing and checks that files can be written in it.
    pub fn prepare_data_dir(&self) -> Result<(), ConfigError> {
        let dir = self.server.data_dir.as_path();
        let fail = |why: String| self.invalid("server.data_dir", why);
        match std::fs::metadata(dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(fail("is a file, not a directory".into())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir).map_err(|e| fail(format!("cannot create it: {}", describe(&e))))?;
            }
            Err(e) => return Err(fail(describe(&e))),
        }
        probe_write(dir).map_err(|e| fail(describe(&e)))
    }
}

/// Creates and removes a small file: the only reliable answer to "can we write here" (mode
/// bits say nothing about root, read-only mounts or ACLs).
fn probe_write(dir: &Path) -> io::Result<()> {
    let probe = dir.join(format!(".switchboard-write-check-{}", std::process::id()));
    std::fs::OpenOptions::new().write(true).create(true).truncate(true).open(&probe)?;
    std::fs::remove_file(&probe)
}

fn describe(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::PermissionDenied => "not writable (permission denied)".into(),
        io::ErrorKind::ReadOnlyFilesystem => "not writable (read-only file system)".into(),
        io::ErrorKind::NotADirectory => "a part of the path is a file".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Overrides, Source};

    #[test]
    fn a_missing_dir_is_created_and_a_file_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let mut c = Config::default();
        c.server.data_dir = tmp.path().join("a/b");
        c.prepare_data_dir().unwrap();
        assert!(tmp.path().join("a/b").is_dir());
        assert_eq!(std::fs::read_dir(tmp.path().join("a/b")).unwrap().count(), 0, "the probe is removed");

        let file = tmp.path().join("file");
        std::fs::write(&file, "x").unwrap();
        c.apply_flags(&Overrides { data_dir: Some(file.clone()), ..Default::default() });
        assert_eq!(c.sources.get("server.data_dir"), &Source::Flag("--data-dir"));
        let err = c.prepare_data_dir().unwrap_err().0;
        assert_eq!(err, format!("--data-dir {:?}: is a file, not a directory", file.display().to_string()));
        c.server.data_dir = file.join("below");
        let err = c.prepare_data_dir().unwrap_err().0;
        assert!(err.ends_with(": a part of the path is a file"), "{err}");
    }
}
