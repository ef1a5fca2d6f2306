//! The admin commands with `--json`: accounts, roles, users, applications and key bindings.

use crate::support::*;
use serde_json::{json, Value};
use viewlog_protocol::dates;

/// Every admin command's output, to check that no secret leaks into any of it.
#[derive(Default)]
struct Transcript(String);

impl Transcript {
    fn record(&mut self, out: &Out) {
        self.0.push_str(&out.stdout);
        self.0.push_str(&out.stderr);
    }
}

/// Runs `viewlog ARGS --json --db …`, which must succeed and print JSON.
#[track_caller]
fn admin(db: &Db, log: &mut Transcript, args: &[&str], stdin: Option<&str>) -> Value {
    let out = run(db.cmd(args).arg("--json"), stdin);
    log.record(&out);
    out.ok().json()
}

/// Runs an admin command that must fail; returns its standard error.
#[track_caller]
fn admin_fails(db: &Db, log: &mut Transcript, args: &[&str]) -> String {
    let out = run(db.cmd(args).arg("--json"), None);
    log.record(&out);
    out.failed().to_owned()
}

fn names(accounts: &Value) -> Vec<&str> {
    accounts.as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect()
}

#[test]
fn accounts_are_created_listed_disabled_and_enabled() {
    let db = Db::new();
    let log = &mut Transcript::default();
    let created = admin(&db, log, &["account", "create", "acme"], None);
    assert_eq!(created.as_array().unwrap().len(), 1, "{created}");
    assert_eq!(created[0]["name"], "acme");
    assert_eq!(created[0]["disabled"], false);
    admin(&db, log, &["account", "create", "globex"], None);
    assert_eq!(names(&admin(&db, log, &["account", "list"], None)), ["acme", "globex"]);

    let disabled = admin(&db, log, &["account", "disable", "acme"], None);
    assert_eq!(disabled[0]["disabled"], true);
    let listed = admin(&db, log, &["account", "list"], None);
    assert_eq!(listed.as_array().unwrap().iter().find(|a| a["name"] == "acme").unwrap()["disabled"], true);
    let enabled = admin(&db, log, &["account", "enable", "acme"], None);
    assert_eq!(enabled[0]["disabled"], false);

    let err = admin_fails(&db, log, &["account", "create", "acme"]);
    assert!(err.contains("already exists"), "{err}");
    let err = admin_fails(&db, log, &["account", "disable", "initech"]);
    assert!(err.contains("initech"), "{err}");
    assert_eq!(names(&admin(&db, log, &["account", "list"], None)), ["acme", "globex"]);
}

#[test]
fn roles_take_known_permissions_only() {
    let db = Db::new();
    let log = &mut Transcript::default();
    admin(&db, log, &["account", "create", "acme"], None);
    let builtin = admin(&db, log, &["role", "list", "--account", "acme"], None);
    let builtin: Vec<&str> = builtin.as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    for role in ["Full Administrator", "View Log Reader", "View Log Recorder"] {
        assert!(builtin.contains(&role), "{role} missing from {builtin:?}");
    }

    let role = admin(
        &db,
        log,
        &["role", "create", "--account", "acme", "Auditor", "--permission", "Archive | View Logs | Read"],
        None,
    );
    assert_eq!(role[0]["name"], "Auditor");
    assert_eq!(role[0]["permissions"], json!(["Archive | View Logs | Read"]));
    assert_eq!(role[0]["builtin"], false);

    let err =
        admin_fails(&db, log, &["role", "create", "--account", "acme", "Shredder", "--permission", "Archive | Shred"]);
    assert!(err.contains("unknown permission") && err.contains("Archive | Shred"), "{err}");
    let roles = admin(&db, log, &["role", "list", "--account", "acme"], None);
    assert!(roles.as_array().unwrap().iter().any(|r| r["name"] == "Auditor"));
    assert!(!roles.as_array().unwrap().iter().any(|r| r["name"] == "Shredder"));

    // A user with the new role.
    let user =
        admin(&db, log, &["user", "create", "--account", "acme", "audit@acme.example", "--role", "Auditor"], None);
    assert_eq!(user[0]["roleId"], role[0]["id"]);
    let err = admin_fails(&db, log, &["user", "create", "--account", "acme", "x@acme.example", "--role", "Nope"]);
    assert!(err.contains("Nope"), "{err}");
}

#[tokio::test]
async fn users_apps_and_keys_never_show_a_secret_twice() {
    let db = Db::new();
    let log = &mut Transcript::default();
    admin(&db, log, &["account", "create", "acme"], None);

    // A user with a password from standard input.
    let password = format!("correct horse {}", uuid::Uuid::new_v4().simple());
    let user = admin(
        &db,
        log,
        &[
            "user",
            "create",
            "--account",
            "acme",
            "Admin@Acme.example",
            "--role",
            "Full Administrator",
            "--password-stdin",
        ],
        Some(&format!("{password}\n")),
    );
    assert_eq!(user[0]["email"], "admin@acme.example", "addresses are stored lower-cased");
    assert_eq!(user[0]["hasPassword"], true);
    admin(
        &db,
        log,
        &["user", "create", "--account", "acme", "robot@acme.example", "--role", "View Log Recorder"],
        None,
    );
    let users = admin(&db, log, &["user", "list", "--account", "acme"], None);
    let has_password =
        |email: &str| users.as_array().unwrap().iter().find(|u| u["email"] == email).unwrap()["hasPassword"].clone();
    assert_eq!(has_password("admin@acme.example"), true);
    assert_eq!(has_password("robot@acme.example"), false);
    let err = admin_fails(&db, log, &["user", "create", "--account", "acme", "admin@acme.example"]);
    assert!(err.contains("already exists"), "{err}");

    // An application: its key shown once.
    let app = admin(&db, log, &["app", "create", "--account", "acme", "SIEM collector"], None);
    let app_id = app["appId"].as_str().unwrap().to_owned();
    let app_key = app["appKey"].as_str().unwrap().to_owned();
    assert_eq!(app["name"], "SIEM collector");
    let apps = admin(&db, log, &["app", "list", "--account", "acme"], None);
    assert!(apps.to_string().contains(&app_id));

    // A key binding with a time to live: its secret shown once.
    let before = now();
    let key =
        admin(&db, log, &["key", "create", "--user", "admin@acme.example", "--app-id", &app_id, "--ttl", "1h"], None);
    let expires = dates::parse_body_date(key["expiresAt"].as_str().unwrap(), dates::Bound::Start).unwrap();
    assert!(
        (before + 3600 - 5..=now() + 3600 + 5).contains(&expires),
        "expiresAt {} is not an hour ahead",
        key["expiresAt"]
    );
    let creds = Creds {
        app_id: app_id.clone(),
        app_key: app_key.clone(),
        access_key: key["accessKey"].as_str().unwrap().to_owned(),
        secret_key: key["secretKey"].as_str().unwrap().to_owned(),
    };
    let forever = admin(&db, log, &["key", "create", "--user", "admin@acme.example", "--app-id", &app_id], None);
    assert_eq!(forever["expiresAt"], Value::Null);
    let keys = admin(&db, log, &["key", "list", "--account", "acme"], None);
    assert_eq!(keys.as_array().unwrap().len(), 2);
    let keys_text = keys.to_string();
    assert!(keys_text.contains(&creds.access_key));
    let bad =
        admin_fails(&db, log, &["key", "create", "--user", "admin@acme.example", "--app-id", &app_id, "--ttl", "1w"]);
    assert!(bad.contains("ttl") || bad.contains("unit"), "{bad}");

    // The key signs requests until it is revoked.
    let server = db.serve(&[]).await;
    let all = json!({"data": [{"start": "2000-01-01", "end": "2099-12-31"}]});
    server.view_logs(&creds, &all).await.assert_ok();
    let revoked = admin(&db, log, &["key", "revoke", &creds.access_key], None);
    assert_eq!(revoked["revoked"], creds.access_key);
    let reply = server.view_logs(&creds, &all).await;
    assert_eq!(reply.status, 401, "{:#}", reply.body);
    assert_eq!(reply.code(), "err_xdk_invalid_signature", "{:#}", reply.body);
    let keys = admin(&db, log, &["key", "list", "--account", "acme"], None);
    let listed = keys.as_array().unwrap().iter().find(|k| k.to_string().contains(&creds.access_key)).unwrap();
    assert_eq!(listed["revoked"], true, "{listed}");
    // The other binding still works.
    let other = Creds {
        access_key: forever["accessKey"].as_str().unwrap().to_owned(),
        secret_key: forever["secretKey"].as_str().unwrap().to_owned(),
        ..creds.clone()
    };
    server.view_logs(&other, &all).await.assert_ok();

    // Users, applications and accounts switch off and on, and the running server follows.
    let user = admin(&db, log, &["user", "disable", "admin@acme.example"], None);
    assert_eq!(user[0]["disabled"], true);
    let reply = server.view_logs(&other, &all).await;
    assert_eq!((reply.status, reply.code()), (401, "err_xdk_invalid_signature"), "disabled user: {:#}", reply.body);
    assert_eq!(admin(&db, log, &["user", "enable", "admin@acme.example"], None)[0]["disabled"], false);
    server.view_logs(&other, &all).await.assert_ok();
    assert_eq!(admin(&db, log, &["app", "disable", &app_id], None)[0]["disabled"], true);
    let reply = server.view_logs(&other, &all).await;
    assert_eq!((reply.status, reply.code()), (200, "err_developer_key"), "disabled app: {:#}", reply.body);
    assert_eq!(admin(&db, log, &["app", "enable", &app_id], None)[0]["disabled"], false);
    server.view_logs(&other, &all).await.assert_ok();
    admin(&db, log, &["account", "disable", "acme"], None);
    let reply = server.view_logs(&other, &all).await;
    assert_eq!(reply.status, 401, "disabled account: {:#}", reply.body);
    admin(&db, log, &["account", "enable", "acme"], None);
    server.view_logs(&other, &all).await.assert_ok();

    // set-password (from standard input) and set-role.
    let new_password = format!("battery staple {}", uuid::Uuid::new_v4().simple());
    let robot = admin(&db, log, &["user", "set-password", "robot@acme.example"], Some(&format!("{new_password}\n")));
    assert_eq!(robot[0]["hasPassword"], true);
    let roles = admin(&db, log, &["role", "list", "--account", "acme"], None);
    let reader = roles.as_array().unwrap().iter().find(|r| r["name"] == "View Log Reader").unwrap()["id"].clone();
    let robot = admin(&db, log, &["user", "set-role", "robot@acme.example", "View Log Reader"], None);
    assert_eq!(robot[0]["roleId"], reader);

    // No secret appears anywhere but in the one output that issued it.
    let everything = &log.0;
    assert!(!everything.contains(&password), "the password was printed");
    assert!(!everything.contains(&new_password), "the new password was printed");
    assert_eq!(everything.matches(&app_key).count(), 1, "the application key was printed more than once");
    assert_eq!(everything.matches(&creds.secret_key).count(), 1, "the secret key was printed more than once");
    assert_eq!(everything.matches(other.secret_key.as_str()).count(), 1);
    let server_log = server.stderr.text();
    for secret in [&password, &app_key, &creds.secret_key, &other.secret_key] {
        assert!(!server_log.contains(secret.as_str()), "the server logged a secret");
    }
    let db_bytes = std::fs::read(&db.path).unwrap();
    assert!(!String::from_utf8_lossy(&db_bytes).contains(&password), "the password is stored in the clear");
}
