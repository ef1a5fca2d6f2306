//! `viewlog login` and `viewlog logout` against a real `viewlog serve`: the binding kept in a
//! private profile, used by `viewlog logs`, refreshed by itself after a 418 when the password
//! was saved (and an error that says to sign in again when it was not), and ended by logout.

use crate::support::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A database with one account, a user who has a password, and an application.
struct Setup {
    db: Db,
    email: String,
    password: String,
    app_id: String,
    app_key: String,
    profiles: PathBuf,
}

impl Setup {
    /// With `binding_ttl` (`viewlog auth-profile set --binding-ttl`) when given.
    fn new(binding_ttl: Option<&str>) -> Setup {
        let db = Db::new();
        db.admin(&["account", "create", "acme"]);
        let email = format!("{}@acme.example", uuid::Uuid::new_v4().simple());
        let password = format!("correct horse {}", uuid::Uuid::new_v4().simple());
        let mut create = db.cmd(&[
            "user",
            "create",
            "--account",
            "acme",
            &email,
            "--role",
            "Full Administrator",
            "--password-stdin",
            "--json",
        ]);
        run(&mut create, Some(&format!("{password}\n"))).ok();
        let app = db.admin(&["app", "create", "--account", "acme", "console"]);
        if let Some(ttl) = binding_ttl {
            let profile = db.admin(&["auth-profile", "set", "--account", "acme", "--binding-ttl", ttl]);
            assert!(profile["bindingTtl"].is_number(), "{profile}");
        }
        let profiles = db.dir.path().join("conf").join("profiles.toml");
        Setup {
            email,
            password,
            app_id: app["appId"].as_str().unwrap().to_owned(),
            app_key: app["appKey"].as_str().unwrap().to_owned(),
            db,
            profiles,
        }
    }

    /// `viewlog login --profile p …` with the password on standard input.
    fn login(&self, server: &Server, extra: &[&str], password: &str) -> Out {
        let mut cmd = viewlog(self.db.dir.path());
        cmd.arg("login")
            .arg("--profiles-file")
            .arg(&self.profiles)
            .args(["--profile", "p", "--base-url", &server.base_url, "--app-id", &self.app_id])
            .args(["--app-key", &self.app_key, "--email", &self.email, "--password-stdin"])
            .args(extra);
        run(&mut cmd, Some(&format!("{password}\n")))
    }

    /// `viewlog ARGS… --profiles-file F --profile p`.
    fn with_profile(&self, args: &[&str]) -> Command {
        let mut cmd = viewlog(self.db.dir.path());
        cmd.args(args).arg("--profiles-file").arg(&self.profiles).args(["--profile", "p"]);
        cmd
    }

    /// `viewlog logs --profile p` over the last day, as NDJSON.
    fn logs(&self) -> Out {
        run(&mut self.with_profile(&["logs", "--format", "ndjson", "--start", "1d", "--end", "now"]), None)
    }

    /// The stored profile `p`.
    fn profile(&self) -> toml::Table {
        let text = std::fs::read_to_string(&self.profiles).unwrap();
        let file: toml::Table = text.parse().unwrap();
        file["profiles"]["p"].as_table().unwrap_or_else(|| panic!("no profile p: {text}")).clone()
    }

    /// The profile's binding as signing credentials.
    fn creds(&self) -> Creds {
        let p = self.profile();
        let get =
            |k: &str| p.get(k).and_then(|v| v.as_str()).unwrap_or_else(|| panic!("{k} missing: {p:?}")).to_owned();
        Creds {
            app_id: get("app_id"),
            app_key: get("app_key"),
            access_key: get("access_key"),
            secret_key: get("secret_key"),
        }
    }

    /// The binding's `expiresAt`, as `viewlog key list` shows it.
    fn expires_at(&self, access_key: &str) -> i64 {
        let keys = self.db.admin(&["key", "list", "--account", "acme"]);
        let key = keys.as_array().unwrap().iter().find(|k| k["accessKey"] == access_key);
        let key = key.unwrap_or_else(|| panic!("no binding {access_key}: {keys}"));
        key["expiresAt"].as_i64().unwrap_or_else(|| panic!("no expiry: {key}"))
    }

    /// Asserts that no secret shows in what a command printed.
    #[track_caller]
    fn assert_quiet(&self, out: &Out, secrets: &[&str]) {
        for secret in secrets.iter().chain([&self.password.as_str(), &self.app_key.as_str()]) {
            assert!(!out.stdout.contains(secret), "a secret on stdout of {}:\n{}", out.what_short(), out.stdout);
            assert!(!out.stderr.contains(secret), "a secret on stderr of {}:\n{}", out.what_short(), out.stderr);
        }
    }
}

trait Short {
    fn what_short(&self) -> String;
}

impl Short for Out {
    /// The command without its arguments (which hold secrets themselves).
    fn what_short(&self) -> String {
        self.what.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
    }
}

#[track_caller]
fn assert_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{} has mode {mode:o}", path.display());
}

fn event(subject: &str) -> Value {
    let viewed = dates(now() - 60);
    json!({"data": [{"from": "a@outside.example", "to": "b@acme.example", "viewer": "admin@acme.example",
                     "messageDate": dates(now() - 3600), "viewed": viewed, "subject": subject}]})
}

fn dates(t: i64) -> String {
    viewlog_protocol::dates::format_date(t)
}

#[tokio::test]
async fn login_keeps_the_binding_in_a_private_profile_and_logout_ends_it() {
    let s = Setup::new(None);
    let server = s.db.serve(&[]).await;

    // A wrong password signs nobody in and stores nothing.
    let out = s.login(&server, &[], "not the password");
    let err = out.failed();
    assert!(err.contains("err_xdk_authentication_failed"), "{err}");
    assert!(!s.profiles.exists(), "a failed sign-in wrote the profiles file");
    // Discovery of an address that cannot sign in here stops before asking for anything.
    let mut cmd = viewlog(s.db.dir.path());
    cmd.arg("login").arg("--profiles-file").arg(&s.profiles);
    cmd.args(["--profile", "p", "--base-url", &server.base_url, "--app-id", &s.app_id, "--app-key", &s.app_key]);
    cmd.args(["--email", "nobody@acme.example", "--password-stdin", "--discover"]);
    let err = run(&mut cmd, Some("whatever\n")).failed().to_owned();
    assert!(err.contains("cannot sign in"), "{err}");

    // Discover, sign in, store.
    let out = s.login(&server, &["--discover"], &s.password);
    out.ok();
    assert!(out.stdout.contains("signed in as"), "{}", out.stdout);
    assert_private(&s.profiles);
    let creds = s.creds();
    s.assert_quiet(&out, &[&creds.secret_key]);
    let p = s.profile();
    assert_eq!(p["email"].as_str(), Some(s.email.as_str()));
    assert_eq!(p["base_url"].as_str(), Some(server.base_url.as_str()), "the discovered region.api");
    assert!(p.get("password").is_none(), "the password is kept only with --save-password: {p:?}");

    // The binding works, from `viewlog logs` and for any signed call.
    server.post(&creds, "/api/viewlog/record-views", &event("signed in from the CLI")).await.assert_ok();
    let out = s.logs();
    out.ok();
    assert!(out.stdout.contains("signed in from the CLI"), "{}", out.stdout);
    s.assert_quiet(&out, &[&creds.secret_key]);

    // Signing in again into the same profile refreshes that binding rather than making another.
    s.login(&server, &[], &s.password).ok();
    assert_eq!(s.creds().access_key, creds.access_key);
    assert_eq!(s.db.admin(&["key", "list", "--account", "acme"]).as_array().unwrap().len(), 1);

    // Logout ends the binding on the server and forgets it locally.
    let out = run(&mut s.with_profile(&["logout"]), None);
    out.ok();
    s.assert_quiet(&out, &[&creds.secret_key]);
    assert_private(&s.profiles);
    let p = s.profile();
    assert!(p.get("access_key").is_none() && p.get("secret_key").is_none(), "{p:?}");
    let refused = server.view_logs(&creds, &json!({})).await;
    assert_eq!((refused.status, refused.code()), (401, "err_xdk_invalid_signature"));
    assert!(s.db.admin(&["key", "list", "--account", "acme"]).as_array().unwrap().is_empty());
    s.logs().failed();
    // Nothing left to end.
    run(&mut s.with_profile(&["logout"]), None).failed();
}

/// Waits until the binding of `creds` answers 418.
async fn until_lapsed(server: &Server, creds: &Creds, ttl: Duration) {
    tokio::time::sleep(ttl + Duration::from_millis(300)).await;
    let r = server.view_logs(creds, &json!({})).await;
    assert_eq!((r.status, r.code()), (418, "err_xdk_binding_expired"), "{}", r.body);
}

#[tokio::test]
async fn a_saved_password_refreshes_an_expired_binding_by_itself() {
    let s = Setup::new(Some("3s"));
    let server = s.db.serve(&[]).await;
    let out = s.login(&server, &["--save-password"], &s.password);
    out.ok();
    assert_private(&s.profiles);
    let creds = s.creds();
    s.assert_quiet(&out, &[&creds.secret_key]);
    assert_eq!(s.profile()["password"].as_str(), Some(s.password.as_str()), "kept for refreshing");
    server.post(&creds, "/api/viewlog/record-views", &event("before the binding lapsed")).await.assert_ok();
    let expired_at = s.expires_at(&creds.access_key);

    until_lapsed(&server, &creds, Duration::from_secs(3)).await;
    let out = s.logs();
    out.ok();
    assert!(out.stdout.contains("before the binding lapsed"), "{}", out.stdout);
    assert!(out.stderr.contains("refreshing"), "the refresh is logged:\n{}", out.stderr);
    s.assert_quiet(&out, &[&creds.secret_key]);
    // The same binding, with a later expiry.
    assert_eq!(s.creds().access_key, creds.access_key);
    let refreshed_at = s.expires_at(&creds.access_key);
    assert!(refreshed_at > expired_at, "expiry {expired_at} -> {refreshed_at}");
    assert_eq!(s.db.admin(&["key", "list", "--account", "acme"]).as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn without_a_saved_password_an_expired_binding_says_to_sign_in_again() {
    let s = Setup::new(Some("2s"));
    let server = s.db.serve(&[]).await;
    s.login(&server, &[], &s.password).ok();
    let creds = s.creds();
    let expires = s.expires_at(&creds.access_key);

    until_lapsed(&server, &creds, Duration::from_secs(2)).await;
    let out = s.logs();
    let err = out.failed();
    assert!(err.contains("sign in again"), "{err}");
    assert!(err.contains("viewlog login"), "{err}");
    s.assert_quiet(&out, &[&creds.secret_key]);
    assert_eq!(s.expires_at(&creds.access_key), expires, "nothing refreshed the binding");

    // Signing in again (the same profile) refreshes that binding back to life.
    s.login(&server, &[], &s.password).ok();
    assert_eq!(s.creds().access_key, creds.access_key);
    server.view_logs(&creds, &json!({})).await.assert_ok();
    assert!(s.expires_at(&creds.access_key) > expires);
}
