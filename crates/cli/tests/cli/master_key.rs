//! The master key: created 0600 next to the database on first use, and a different key makes
//! the old bindings fail without bringing the server down.

use crate::support::*;
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

#[tokio::test]
async fn the_key_file_is_made_on_first_use_and_another_key_fails_safely() {
    let db = Db::new();
    let key_file = db.dir.path().join("viewlog.db.key");
    assert!(!key_file.exists());
    db.admin(&["account", "create", "acme"]);
    assert!(key_file.exists(), "no master key file next to the database");
    assert_eq!(mode(&key_file), 0o600, "the master key file must be private");
    let key = std::fs::read(&key_file).unwrap();
    let creds = db.tenant("acme", "Full Administrator");
    assert_eq!(std::fs::read(&key_file).unwrap(), key, "later commands reuse the key");
    let everything = json!({"data": [{"start": "2000-01-01", "end": "2099-12-31"}]});

    let server = db.serve(&[]).await;
    server.view_logs(&creds, &everything).await.assert_ok();
    drop(server);

    // Another, fresh key: made on first use too, and the old binding does not verify.
    let other_key = db.dir.path().join("other.key");
    let mut server = db.serve(&["--master-key-file", other_key.to_str().unwrap()]).await;
    assert_eq!(mode(&other_key), 0o600);
    assert_ne!(std::fs::read(&other_key).unwrap(), key);
    let mut answers = Vec::new();
    for _ in 0..3 {
        let reply = server.view_logs(&creds, &everything).await;
        assert!(
            reply.status == 401 || reply.status == 500,
            "a binding sealed under another key must not verify: {} {:#}",
            reply.status,
            reply.body
        );
        assert!(reply.body["data"].as_array().is_some_and(|d| d.is_empty()), "{:#}", reply.body);
        answers.push((reply.status, reply.code().to_owned()));
    }
    eprintln!("a binding sealed under another master key gets: {:?}", answers[0]);
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    assert!(server.running(), "the server crashed:\n{}", server.stderr.text());
    if answers[0].0 == 500 {
        assert_eq!(answers[0].1, "err_internal");
        // The operator learns why from the log; the client learns nothing about keys.
        let log = server.stderr.text();
        assert!(log.contains("master key"), "the log does not point at the master key:\n{log}");
    }
    assert_eq!(server.http.get(format!("{}/healthz", server.base_url)).send().await.unwrap().status(), 200);
    drop(server);

    // The key from the environment wins over any file, which is then neither read nor made.
    let text = String::from_utf8(key.clone()).unwrap();
    let unused = db.dir.path().join("unused.key");
    let mut cmd = db.cmd(&["serve", "--listen", "127.0.0.1:0", "--master-key-file"]);
    cmd.arg(&unused).env("VIEWLOG_MASTER_KEY", text.trim());
    let server = Server::serve(cmd).await;
    server.view_logs(&creds, &everything).await.assert_ok();
    assert!(!unused.exists(), "VIEWLOG_MASTER_KEY set, yet a key file was made");
    drop(server);

    // The right key again: nothing was damaged.
    let server = db.serve(&[]).await;
    server.view_logs(&creds, &everything).await.assert_ok();
    assert_eq!(std::fs::read(&key_file).unwrap(), key);
}
