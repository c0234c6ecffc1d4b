//! Starting the binary as a new operator would, with the mistakes a first day brings: a bad log
//! level, a wrong TOML key, a busy port, a data dir that is a file or cannot be written, a
//! pinned default app that breaks the app rules. Each stops start-up with one line naming the
//! setting as it was given, and exit code 2; none prints or stores credentials first.

use std::path::Path;
use std::process::Command;

use crate::support::binary::{Finished, Running, command, run};

/// `switchboard serve` on loopback with its own data dir (`dir/data`), `extra` args appended.
fn serve(dir: &std::path::Path, extra: &[&str]) -> Command {
    let data = dir.join("data");
    let mut args = vec!["serve", "--bind", "127.0.0.1", "--data-dir", data.to_str().unwrap()];
    args.extend_from_slice(extra);
    command(dir, &args)
}

fn refused(mut cmd: Command) -> Finished {
    let out = run(&mut cmd);
    assert_eq!(out.code, Some(2), "expected exit code 2:\n{}", out.stderr);
    assert!(!out.stdout.contains("secret="), "credentials printed by a refused start:\n{}", out.stdout);
    out
}

const NOT_A_LEVEL: &str = "not a log level (use trace, debug, info, warn, error, off, or target=level)";

#[test]
fn a_bad_log_level_is_refused_wherever_it_was_set() {
    let dir = tempfile::tempdir().unwrap();
    let out = refused({
        let mut cmd = serve(dir.path(), &["--port", "0"]);
        cmd.env("LOG_LEVEL", "loud");
        cmd
    });
    assert_eq!(out.error_line(), format!("LOG_LEVEL=\"loud\": {NOT_A_LEVEL}"));

    let out = refused(serve(dir.path(), &["--port", "0", "--log-level", "nonsense"]));
    assert_eq!(out.error_line(), format!("--log-level \"nonsense\": {NOT_A_LEVEL}"));

    let file = dir.path().join("switchboard.toml");
    std::fs::write(&file, "# logging\n\n[log]\nlevel = \"loud\"\n").unwrap();
    let out = refused(serve(dir.path(), &["--port", "0", "--config", file.to_str().unwrap()]));
    assert_eq!(
        out.error_line(),
        format!("config file {}, line 4: log.level = \"loud\": {NOT_A_LEVEL}", file.display())
    );

    // A list of directives is fine, and so is a level in capitals.
    for ok in ["INFO", "warn,switchboard=info"] {
        let mut cmd = serve(dir.path(), &["--port", "0"]);
        cmd.env("LOG_LEVEL", ok);
        Running::start(&mut cmd).stop();
    }
}

#[test]
fn toml_errors_name_the_file_the_line_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("custom.toml");
    let config = ["--config", file.to_str().unwrap()];

    // The key starts its line: the line number used to be one too low there.
    std::fs::write(&file, "# first\n[server]\nprot = 6001\n").unwrap();
    let line = refused(serve(dir.path(), &config)).error_line().to_owned();
    assert!(
        line.starts_with(&format!("config file {}, line 3: server.prot: unknown field `prot`", file.display())),
        "{line}"
    );

    std::fs::write(&file, "[server]\nport = \"six\"\n").unwrap();
    let line = refused(serve(dir.path(), &config)).error_line().to_owned();
    assert!(line.starts_with(&format!("config file {}, line 2: server.port: invalid type", file.display())), "{line}");

    // A value that parses but is not allowed names the file too, not an environment variable.
    std::fs::write(&file, "[server]\nport = 0\n\n[pusher]\nactivity_timeout_secs = 0\n").unwrap();
    let out = refused(serve(dir.path(), &config));
    assert_eq!(
        out.error_line(),
        format!("config file {}, line 5: pusher.activity_timeout_secs = 0: must be at least 1 second", file.display())
    );

    // The environment overrides the file, and then it is the variable that is named.
    let mut cmd = serve(dir.path(), &config);
    cmd.env("SWITCHBOARD_ACTIVITY_TIMEOUT", "0");
    std::fs::write(&file, "[pusher]\nactivity_timeout_secs = 5\n").unwrap();
    assert_eq!(refused(cmd).error_line(), "SWITCHBOARD_ACTIVITY_TIMEOUT=\"0\": must be at least 1 second");
}

#[test]
fn a_busy_port_stops_startup_before_the_default_app_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();

    let out = refused(serve(dir.path(), &["--port", &port]));
    assert_eq!(out.error_line(), format!("--port {port}: cannot listen on 127.0.0.1:{port}: address in use"));
    for var in ["PORT", "SWITCHBOARD_PORT"] {
        let mut cmd = serve(dir.path(), &[]);
        cmd.env(var, &port);
        let out = refused(cmd);
        assert_eq!(out.error_line(), format!("{var}=\"{port}\": cannot listen on 127.0.0.1:{port}: address in use"));
    }
    // SWITCHBOARD_PORT wins over PORT (README): it is the one named, and the one used.
    let mut cmd = serve(dir.path(), &[]);
    cmd.env("PORT", "1").env("SWITCHBOARD_PORT", &port);
    assert!(refused(cmd).error_line().starts_with(&format!("SWITCHBOARD_PORT=\"{port}\"")));

    // Nothing was created by the refused starts, so the first real start prints the credentials.
    drop(busy);
    let server = Running::start(&mut serve(dir.path(), &["--port", "0"]));
    let (stdout, _) = server.stop();
    assert!(stdout.starts_with("Default app created: id="), "{stdout}");
}

#[test]
fn a_data_dir_that_is_a_file_is_named_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let path = file.to_str().unwrap();

    let out = refused(command(dir.path(), &["serve", "--port", "0", "--data-dir", path]));
    assert_eq!(out.error_line(), format!("--data-dir \"{path}\": is a file, not a directory"));

    let mut cmd = command(dir.path(), &["serve", "--port", "0"]);
    cmd.env("SWITCHBOARD_DATA_DIR", format!("{path}/below"));
    let out = refused(cmd);
    assert_eq!(out.error_line(), format!("SWITCHBOARD_DATA_DIR=\"{path}/below\": a part of the path is a file"));

    // The CLI's commands check it the same way.
    let out = run(&mut command(dir.path(), &["apps", "list", "--data-dir", path]));
    assert_eq!(out.code, Some(2));
    assert_eq!(out.error_line(), format!("--data-dir \"{path}\": is a file, not a directory"));
}

#[test]
fn an_unwritable_data_dir_is_named_with_its_path() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    // Root writes through mode bits; then a directory that refuses even root stands in.
    let target = if std::fs::write(locked.join("probe"), "x").is_err() {
        locked.clone()
    } else if std::fs::write("/sys/kernel/switchboard-probe", "x").is_err() && Path::new("/sys/kernel").is_dir() {
        Path::new("/sys/kernel").to_path_buf()
    } else {
        eprintln!("note: every directory is writable here (root without /sys): unwritable data dir not exercised");
        return;
    };
    let path = target.to_str().unwrap();
    let out = refused(command(dir.path(), &["serve", "--port", "0", "--data-dir", path]));
    assert_eq!(out.error_line(), format!("--data-dir \"{path}\": not writable (permission denied)"));
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn a_read_only_data_dir_is_named_with_its_path() {
    // A read-only bind mount in a private mount namespace: the real thing, where it is allowed.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ro");
    std::fs::create_dir(&data).unwrap();
    let bin = env!("CARGO_BIN_EXE_switchboard");
    let d = data.to_str().unwrap();
    let script = format!(
        "mount --bind {d} {d} && mount -o remount,bind,ro {d} {d} || exit 99; \
         exec {bin} serve --port 0 --data-dir {d}"
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", &script]).current_dir(dir.path());
    for (name, _, _) in switchboard::config::ENV_VARS {
        cmd.env_remove(name);
    }
    let out = run(&mut cmd);
    if out.code == Some(99) || out.stderr.contains("unshare:") {
        eprintln!("note: no private mount namespace here ({}): read-only data dir not exercised", out.stderr.trim());
        return;
    }
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert_eq!(out.error_line(), format!("--data-dir \"{d}\": not writable (read-only file system)"));
}

#[test]
fn a_pinned_default_app_follows_the_app_rules() {
    let dir = tempfile::tempdir().unwrap();
    let pinned = |vars: &[(&str, &str)]| {
        let mut cmd = serve(dir.path(), &["--port", "0"]);
        cmd.envs(vars.iter().copied());
        cmd
    };
    let line = refused(pinned(&[("SWITCHBOARD_APP_SECRET", "too-short")])).error_line().to_owned();
    assert_eq!(line, "SWITCHBOARD_APP_SECRET: must be at least 16 characters");
    let line = refused(pinned(&[("APP_SECRET", "too-short")])).error_line().to_owned();
    assert_eq!(line, "APP_SECRET: must be at least 16 characters");
    let line = refused(pinned(&[("SWITCHBOARD_APP_ID", "my app")])).error_line().to_owned();
    assert_eq!(line, "SWITCHBOARD_APP_ID=\"my app\": must be 1–64 characters of A-Z a-z 0-9 _ . -");
    let line = refused(pinned(&[("SWITCHBOARD_APP_KEY", "key/1")])).error_line().to_owned();
    assert_eq!(line, "SWITCHBOARD_APP_KEY=\"key/1\": must be 1–128 characters of A-Z a-z 0-9 _ . -");

    // A key another app already has: refused before the pinned app is written.
    let data = dir.path().join("data");
    let created =
        run(command(dir.path(), &["apps", "create", "--id", "other", "--key", "taken", "--data-dir"]).arg(&data));
    assert_eq!(created.code, Some(0), "{}", created.stderr);
    let line = refused(pinned(&[
        ("SWITCHBOARD_APP_ID", "main"),
        ("SWITCHBOARD_APP_KEY", "taken"),
        ("SWITCHBOARD_APP_SECRET", "0123456789abcdef"),
    ]))
    .error_line()
    .to_owned();
    assert_eq!(line, "SWITCHBOARD_APP_KEY=\"taken\": already the key of app \"other\"");
    let list = run(command(dir.path(), &["apps", "list", "--json", "--data-dir"]).arg(&data));
    let apps: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(apps.as_array().unwrap().len(), 1, "nothing written: {apps}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let server = Running::start(&mut serve(dir.path(), &["--port", "0", "--log-format", "json"]));
    let (_, lines) = server.stop();
    assert!(!lines.is_empty());
    for line in &lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(v["level"].is_string() && v["fields"]["message"].is_string(), "{line}");
    }
    assert!(lines.iter().any(|l| l.contains("listening on http://127.0.0.1:")));
}

/// At `debug`, the app poll (here every 50 ms) writes no line per query: statements are logged
/// at `trace`. The poll is seen to run: an app created by the CLI is picked up.
#[tokio::test]
async fn debug_logs_have_no_line_per_query() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut cmd = serve(dir.path(), &["--port", "0", "--log-level", "debug"]);
    cmd.env("SWITCHBOARD_APP_REFRESH_MS", "50");
    let server = Running::start(&mut cmd);
    let created =
        run(command(dir.path(), &["apps", "create", "--id", "polled", "--key", "polled-key", "--data-dir"]).arg(&data));
    assert_eq!(created.code, Some(0), "{}", created.stderr);
    let url = format!("ws://{}/app/polled-key?protocol=7&client=rust-test&version=1.0", server.addr);
    let mut picked_up = false;
    for _ in 0..50 {
        let mut ws = crate::support::Ws::connect_raw(&url).await;
        if matches!(ws.next().await, crate::support::ws::Frame::Json(v) if v["event"] == "pusher:connection_established")
        {
            picked_up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(picked_up, "the server never picked up the app created by the CLI");
    let (_, lines) = server.stop();
    let queries: Vec<&String> = lines.iter().filter(|l| l.contains("sqlx::query") || l.contains("SELECT")).collect();
    assert!(queries.is_empty(), "query lines at debug: {queries:#?}");
}

/// PostgreSQL answered `CREATE TABLE IF NOT EXISTS` with a NOTICE at every start; the
/// migrations table is looked up first instead.
#[tokio::test]
async fn a_second_start_on_postgres_logs_no_notice() {
    let Ok(admin_url) = std::env::var("TEST_POSTGRES_URL") else {
        eprintln!("TEST_POSTGRES_URL unset: PostgreSQL not exercised (scripts/test.sh sets it)");
        return;
    };
    use sqlx::Executor;
    sqlx::any::install_default_drivers();
    let name = format!("sb_start_{}_{}", std::process::id(), rand::random::<u32>());
    let admin = sqlx::AnyPool::connect(&admin_url).await.unwrap_or_else(|e| panic!("{admin_url}: {e}"));
    admin.execute(format!("CREATE DATABASE {name}").as_str()).await.unwrap();
    let url = format!("{}/{name}", admin_url.rsplit_once('/').unwrap().0);
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        let out = run(command(dir.path(), &["migrate", "--log-level", "info"]).env("DATABASE_URL", &url));
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        assert!(!out.stderr.contains("already exists"), "{}", out.stderr);
        assert!(!out.stderr.contains("notice"), "{}", out.stderr);
    }
    admin.execute(format!("DROP DATABASE {name}").as_str()).await.unwrap();
}

#[test]
fn a_bad_encryption_key_stops_startup_without_showing_it() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["abc", &"zz".repeat(32), &"0".repeat(63)] {
        let out = refused({
            let mut cmd = serve(dir.path(), &["--port", "0"]);
            cmd.env("ENCRYPTION_KEY", bad);
            cmd
        });
        assert!(out.error_line().starts_with("ENCRYPTION_KEY"), "{}", out.error_line());
        assert!(out.error_line().ends_with("must be 64 hex characters (a 256-bit key)"), "{}", out.error_line());
        assert!(!out.stderr.contains(bad), "the key is not shown: {}", out.stderr);
    }
    let mut cmd = serve(dir.path(), &["--port", "0"]);
    cmd.env("ENCRYPTION_KEY", "Ab".repeat(32));
    Running::start(&mut cmd).stop();
}
