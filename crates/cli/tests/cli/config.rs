//! Configuration layering: defaults < TOML file < `VIEWLOG_*` environment < flags, seen through a
//! real server's `X-RateLimit-Limit` header and bound address.

use crate::support::*;
use serde_json::json;
use std::path::PathBuf;

/// A port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn config_file(db: &Db, name: &str, text: &str) -> PathBuf {
    let path = db.dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

async fn rate_limit(server: &Server, creds: &Creds) -> u64 {
    let reply = server.view_logs(creds, &json!({})).await;
    reply.assert_ok();
    let limit =
        reply.header("x-ratelimit-limit").unwrap_or_else(|| panic!("no X-RateLimit-Limit: {:?}", reply.headers));
    limit.parse().unwrap()
}

#[tokio::test]
async fn the_file_sets_the_environment_overrides_it_and_a_flag_overrides_both() {
    let db = Db::new();
    let creds = db.tenant("acme", "View Log Reader");

    // The file alone: its listen address and its rate capacity.
    let port = free_port();
    let file = config_file(&db, "a.toml", &format!("listen = \"127.0.0.1:{port}\"\nrate_capacity = 7\n"));
    let mut cmd = db.cmd(&["serve", "--config"]);
    cmd.arg(&file);
    let server = Server::serve(cmd).await;
    assert_eq!(server.addr.port(), port, "listen from the file");
    assert_eq!(rate_limit(&server, &creds).await, 7, "rate_capacity from the file");
    drop(server);

    // The file named by VIEWLOG_CONFIG; VIEWLOG_RATE_CAPACITY beats it.
    let port = free_port();
    let file = config_file(&db, "b.toml", &format!("listen = \"127.0.0.1:{port}\"\nrate_capacity = 7\n"));
    let mut cmd = db.cmd(&["serve"]);
    cmd.env("VIEWLOG_CONFIG", &file).env("VIEWLOG_RATE_CAPACITY", "11");
    let server = Server::serve(cmd).await;
    assert_eq!(server.addr.port(), port, "listen from the file named by VIEWLOG_CONFIG");
    assert_eq!(rate_limit(&server, &creds).await, 11, "VIEWLOG_RATE_CAPACITY overrides the file");
    drop(server);

    // Flags beat both.
    let port = free_port();
    let file = config_file(&db, "c.toml", &format!("listen = \"127.0.0.1:{port}\"\nrate_capacity = 7\n"));
    let mut cmd = db.cmd(&["serve", "--config"]);
    cmd.arg(&file).args(["--rate-capacity", "13", "--listen", "127.0.0.1:0"]).env("VIEWLOG_RATE_CAPACITY", "11");
    let server = Server::serve(cmd).await;
    assert_ne!(server.addr.port(), port, "--listen overrides the file");
    assert_eq!(rate_limit(&server, &creds).await, 13, "--rate-capacity overrides the environment and the file");
    // The limit is the user's bucket: the remaining count goes down.
    let reply = server.view_logs(&creds, &json!({})).await;
    let remaining: u64 = reply.header("x-ratelimit-remaining").unwrap().parse().unwrap();
    assert!(remaining < 13, "X-RateLimit-Remaining {remaining}");
}

#[test]
fn an_unknown_key_in_the_file_is_a_clear_error() {
    let db = Db::new();
    let file = config_file(&db, "bad.toml", "listen = \"127.0.0.1:0\"\ncolour = \"blue\"\n");
    for args in [&["serve"][..], &["account", "list"][..]] {
        let mut cmd = db.cmd(args);
        cmd.arg("--config").arg(&file);
        let out = run(&mut cmd, None);
        let err = out.failed();
        assert!(err.contains("colour") && err.contains("unknown field"), "{err}");
        assert!(err.contains("bad.toml"), "the error names the file: {err}");
    }
    // A value of the wrong type is refused too.
    let file = config_file(&db, "type.toml", "listen = \"127.0.0.1:0\"\nrate_capacity = \"lots\"\n");
    let mut cmd = db.cmd(&["serve", "--config"]);
    cmd.arg(&file);
    let err = run(&mut cmd, None).failed().to_owned();
    assert!(err.contains("rate_capacity"), "{err}");
    // And a bad environment value.
    let mut cmd = db.cmd(&["serve", "--listen", "127.0.0.1:0"]);
    cmd.env("VIEWLOG_RATE_CAPACITY", "lots");
    let err = run(&mut cmd, None).failed().to_owned();
    assert!(err.contains("rate-capacity") || err.contains("RATE_CAPACITY"), "{err}");
}
