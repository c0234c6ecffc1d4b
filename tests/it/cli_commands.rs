//! The operator's commands as a user types them: messages that name the app and the conflict,
//! the exit codes of the README (0 ok, 1 failed while running, 2 bad configuration or usage),
//! `apps show` and `apps update` against a running server, and `backup` while it runs.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use switchboard::store::Store;

use crate::support::binary::{Finished, command, run};
use crate::support::{APP_ID, spawn_server};

fn cli(data: &Path, args: &[&str]) -> Finished {
    let cwd = data.parent().unwrap();
    run(command(cwd, args).arg("--data-dir").arg(data))
}

#[test]
fn errors_name_the_app_and_the_conflict_with_their_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");

    for args in [
        &["apps", "show", "nosuch"][..],
        &["apps", "delete", "nosuch"],
        &["apps", "rotate-secret", "nosuch"],
        &["apps", "enable", "nosuch"],
        &["apps", "disable", "nosuch"],
        &["apps", "update", "nosuch", "--name", "x"],
    ] {
        let out = cli(&data, args);
        assert_eq!(out.code, Some(1), "{args:?}: {}", out.stderr);
        assert_eq!(out.error_line(), "app \"nosuch\" not found", "{args:?}");
    }

    let out = cli(&data, &["apps", "create", "--id", "100001", "--key", "k1"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let out = cli(&data, &["apps", "create", "--id", "100001"]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let line = out.error_line();
    assert!(line.contains("already exists") && line.contains("100001"), "{line}");
    let out = cli(&data, &["apps", "create", "--key", "k1"]);
    assert_eq!(out.code, Some(1));
    assert!(out.error_line().contains("already exists") && out.error_line().contains("k1"));

    // Usage mistakes are exit code 2: clap's own, and the ones only the apps service can tell.
    for (args, needle) in [
        (&["apps", "create", "--id", "has space"][..], "invalid id"),
        (&["apps", "update", "100001"], "nothing to change"),
        (&["apps", "update", "100001", "--limit", "max_conections=5"], "unknown limit \"max_conections\""),
        (&["apps", "update", "100001", "--switch", "subscription_count=maybe"], "is not on or off"),
        (&["apps", "update", "100001", "--limit", "max_message_bytes=0"], "max_message_bytes"),
        (&["apps", "update", "100001", "--allowed-origin", "a", "--clear-origins"], "cannot be used with"),
        (&["apps", "frobnicate"], "unrecognized subcommand"),
    ] {
        let out = cli(&data, args);
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(needle), "{args:?}: {}", out.stderr);
    }
}

#[tokio::test]
async fn apps_update_changes_a_running_servers_app() {
    let server = spawn_server().await;
    let data = server.dir.path();
    let out = cli(
        data,
        &[
            "apps",
            "update",
            APP_ID,
            "--name",
            "Renamed",
            "--allowed-origin",
            "https://good.example",
            "--allowed-origin",
            "*.example.org",
            "--limit",
            "max_connections=3",
            "--limit",
            "client_events_per_second=20",
            "--switch",
            "subscription_count=on",
        ],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let printed: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(printed["name"], "Renamed");
    assert_eq!(printed["settings"]["allowed_origins"], serde_json::json!(["https://good.example", "*.example.org"]));
    assert_eq!(printed["settings"]["limits"]["max_connections"], 3);
    assert_eq!(printed["settings"]["switches"]["subscription_count"], true);
    // Untouched settings keep their values.
    assert_eq!(printed["settings"]["limits"]["max_presence_members"], 100);

    // `apps show` prints the same, and the running server picks it up from the database.
    let shown = cli(data, &["apps", "show", APP_ID]);
    assert_eq!(serde_json::from_str::<Value>(&shown.stdout).unwrap(), printed);
    let mut seen = false;
    for _ in 0..50 {
        let app = server.state.apps.by_id(APP_ID).unwrap();
        if app.settings.limits.max_connections == 3 && app.switches().subscription_count && app.name == "Renamed" {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen, "the running server did not pick up the change");

    let cleared = cli(data, &["apps", "update", APP_ID, "--clear-origins", "--switch", "subscription_count=off"]);
    let cleared: Value = serde_json::from_str(&cleared.stdout).unwrap();
    assert_eq!(cleared["settings"]["allowed_origins"], serde_json::json!([]));
    assert_eq!(cleared["settings"]["switches"]["subscription_count"], false);
    assert_eq!(cleared["settings"]["limits"]["max_connections"], 3);
}

#[tokio::test]
async fn backup_copies_the_database_and_the_jwt_secret_while_the_server_runs() {
    let server = spawn_server().await;
    let data = server.dir.path();
    let created = cli(data, &["apps", "create", "--id", "kept", "--key", "kept-key"]);
    assert_eq!(created.code, Some(0), "{}", created.stderr);

    let out_dir = tempfile::tempdir().unwrap();
    let copy = out_dir.path().join("switchboard-backup.db");
    let out = cli(data, &["backup", "--to", copy.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("database copied to"), "{}", out.stdout);

    // The copy is a whole database on its own.
    let store = Store::connect(&format!("sqlite://{}", copy.display())).await.unwrap();
    let ids: Vec<String> = store.list_apps().await.unwrap().into_iter().map(|a| a.id).collect();
    assert!(ids.contains(&"kept".to_owned()) && ids.contains(&APP_ID.to_owned()), "{ids:?}");
    store.close().await;

    // The generated JWT secret goes beside it, readable by its owner only.
    let secret_copy = out_dir.path().join("switchboard-backup.db.jwt_secret");
    assert_eq!(std::fs::read(&secret_copy).unwrap(), std::fs::read(data.join("jwt_secret")).unwrap());
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&secret_copy).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    // So does the generated VAPID key, which browsers' push subscriptions are bound to.
    let vapid_copy = out_dir.path().join("switchboard-backup.db.vapid_private_key");
    assert_eq!(std::fs::read(&vapid_copy).unwrap(), std::fs::read(data.join("vapid_private_key")).unwrap());
    assert!(out.stdout.contains("VAPID key copied to"), "{}", out.stdout);

    // Restored as docs/operations.md says: the copy as switchboard.db, the secret as jwt_secret.
    let restored = out_dir.path().join("restored");
    std::fs::create_dir(&restored).unwrap();
    std::fs::copy(&copy, restored.join("switchboard.db")).unwrap();
    std::fs::copy(&secret_copy, restored.join("jwt_secret")).unwrap();
    let shown = cli(&restored, &["apps", "show", "kept"]);
    assert_eq!(shown.code, Some(0), "{}", shown.stderr);
    assert_eq!(serde_json::from_str::<Value>(&shown.stdout).unwrap()["key"], "kept-key");

    // The server kept running, and a backup never overwrites a file.
    assert_eq!(server.http().get("/health").await.0, 200);
    let again = cli(data, &["backup", "--to", copy.to_str().unwrap()]);
    assert_eq!(again.code, Some(1));
    assert_eq!(again.error_line(), format!("{}: already exists; a backup never overwrites a file", copy.display()));

    // PostgreSQL and MySQL have their own tools; nothing is connected to.
    let dir = tempfile::tempdir().unwrap();
    for (url, tool) in [("postgres://nobody@127.0.0.1:1/x", "pg_dump"), ("mysql://nobody@127.0.0.1:1/x", "mysqldump")] {
        let out = run(&mut command(dir.path(), &["backup", "--to", "x.sql", "--database-url", url]));
        assert_eq!(out.code, Some(2), "{}", out.stderr);
        assert_eq!(
            out.error_line(),
            format!("--database-url: switchboard backup copies SQLite only; use {tool} (docs/operations.md)")
        );
    }
}
