//! One `viewlog serve` per SQLite database: a second server on the same file is refused at
//! its start, while the admin commands keep working beside the running server.

use crate::support::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_the_same_sqlite_file_is_refused() {
    let db = Db::new();
    let creds = db.tenant("acme", "Full Administrator");
    let server = db.serve(&[]).await;
    let body = json!({"data": [{"start": "2024-01-01T00:00:00+0000", "end": "2024-12-31T23:59:59+0000"}]});
    server.view_logs(&creds, &body).await.assert_ok();

    let out = run(&mut db.cmd(&["serve", "--listen", "127.0.0.1:0"]), None);
    let stderr = out.failed();
    assert!(stderr.contains("held by another process"), "{stderr}");
    assert!(stderr.contains("one viewlog server per SQLite database"), "{stderr}");

    // Administering the database beside the server still works, and the server still answers.
    let other = db.tenant("globex", "Full Administrator");
    server.view_logs(&other, &body).await.assert_ok();
    server.view_logs(&creds, &body).await.assert_ok();
    server.kill();
    // Once it has stopped, the next server starts.
    let next = db.serve(&[]).await;
    next.view_logs(&creds, &body).await.assert_ok();
}
