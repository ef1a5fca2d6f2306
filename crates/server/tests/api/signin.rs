//! Signing in (PROTOCOL §5; docs/protocol.md "Signing in"): discover-authentication, login
//! (create and refresh a binding), the binding's time to live, the cap on bindings per user,
//! logout, and the throttling of failed sign-ins — every flow over real HTTP.

use crate::helpers::*;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use viewlog_core::permissions::{FULL_ADMINISTRATOR, VIEW_LOG_READER};
use viewlog_core::throttle::LoginThrottle;
use viewlog_core::Secret;
use viewlog_protocol::dates;
use viewlog_store::{AccountId, AuthProfile, Store};

pub const DISCOVER: &str = "/api/login/discover-authentication";
pub const LOGIN: &str = "/api/login/login";
pub const LOGOUT: &str = "/api/login/logout";

/// A user who signs in with a password, and an application of their account.
#[derive(Debug, Clone)]
pub struct Person {
    pub email: String,
    pub password: String,
    pub app_id: String,
    pub app_key: String,
    pub account: AccountId,
}

/// Creates (in `account`, made if needed) a user with `role` and a password, and an application.
pub async fn person(app: &TestApp, account: &str, role: &str) -> Person {
    let acct = match app.admin.account(account).await {
        Ok(a) => a,
        Err(_) => app.admin.create_account(account).await.unwrap(),
    };
    let email = format!("{}@{account}.example", uuid::Uuid::new_v4().simple());
    let password = format!("correct horse {}", uuid::Uuid::new_v4().simple());
    app.admin.create_user(account, &email, Some(role), Some(&Secret::new(password.clone()))).await.unwrap();
    let issued = app.admin.create_application(account, "sign-in").await.unwrap();
    Person {
        email,
        password,
        app_id: issued.application.app_id.clone(),
        app_key: issued.app_key.expose().to_owned(),
        account: acct.id,
    }
}

/// `Basic-Cloud base64(email:password)`.
pub fn basic_cloud(email: &str, password: &str) -> String {
    format!("Basic-Cloud {}", STANDARD.encode(format!("{email}:{password}")))
}

/// The four headers of a login call (and a JSON content type).
pub fn login_headers(app_id: &str, email: &str, password: &str) -> Vec<(String, String)> {
    vec![
        ("Authorization".into(), basic_cloud(email, password)),
        ("x-mc-app-id".into(), app_id.to_owned()),
        ("x-mc-date".into(), dates::format_header_date(now())),
        ("x-mc-req-id".into(), uuid::Uuid::new_v4().to_string()),
        ("Content-Type".into(), "application/json".into()),
    ]
}

/// The body of a login call for `item`.
fn login_body(item: &Value) -> String {
    json!({ "data": [item] }).to_string()
}

/// A login call with this person's application and `password`.
pub async fn login_with(app: &TestApp, p: &Person, password: &str, item: &Value) -> Reply {
    app.send(LOGIN, &login_headers(&p.app_id, &p.email, password), login_body(item)).await
}

/// A login call with this person's application and password.
pub async fn login(app: &TestApp, p: &Person, item: &Value) -> Reply {
    login_with(app, p, &p.password, item).await
}

/// The binding a successful login answered, as signing credentials.
pub fn signed_in(p: &Person, reply: &Reply) -> Creds {
    let d = &reply.data()[0];
    Creds {
        app_id: p.app_id.clone(),
        app_key: p.app_key.clone(),
        access_key: d["accessKey"].as_str().expect("accessKey").to_owned(),
        secret_key: d["secretKey"].as_str().expect("secretKey").to_owned(),
        email: p.email.clone(),
        account: p.account,
    }
}

/// Signs in for a new binding.
pub async fn sign_in(app: &TestApp, p: &Person) -> Creds {
    let reply = login(app, p, &json!({ "userName": p.email })).await.ok();
    signed_in(p, &reply)
}

/// An unsigned JSON POST (discovery).
async fn discover(app: &TestApp, body: &str) -> Reply {
    app.send(DISCOVER, &[("Content-Type".to_owned(), "application/json".to_owned())], body.to_owned()).await
}

/// `Retry-After` in seconds, if present.
pub fn retry_after(reply: &Reply) -> Option<u64> {
    reply.header("retry-after").map(|v| v.parse().expect("Retry-After is whole seconds"))
}

/// A query over the last day.
fn last_day() -> Value {
    range(now() - 86_400, now() + 60, 25)
}

/// A `bindingExpires` date as Unix seconds.
fn expires(reply: &Reply) -> i64 {
    let text = reply.data()[0]["bindingExpires"].as_str().expect("bindingExpires is a date");
    dates::parse_body_date(text, dates::Bound::Start).unwrap_or_else(|e| panic!("bindingExpires {text:?}: {e}"))
}

fn sleep(d: Duration) -> tokio::time::Sleep {
    tokio::time::sleep(d)
}

/// Waits out a `Retry-After` (and a little more, so that the server's clock has passed it).
async fn wait_out(secs: u64) {
    sleep(Duration::from_secs(secs) + Duration::from_millis(150)).await;
}

#[tokio::test]
async fn discover_tells_where_a_known_address_signs_in_and_nothing_for_others() {
    let app = TestApp::spawn().await;
    let p = person(&app, "acme", FULL_ADMINISTRATOR).await;

    let found = discover(&app, &json!({"data": [{"emailAddress": p.email}]}).to_string()).await.ok();
    found.rate();
    let d = &found.data()[0];
    assert_eq!(d["emailAddress"], json!(p.email));
    assert_eq!(d["authenticate"], json!(["Basic-Cloud"]));
    assert_eq!(d["region"], json!({ "api": app.base_url }), "region.api is this server's base URL");

    // Addresses are matched without regard to case.
    let upper = p.email.to_uppercase();
    let found = discover(&app, &json!({"data": [{"emailAddress": upper}]}).to_string()).await.ok();
    assert_eq!(found.data()[0]["region"], json!({ "api": app.base_url }));

    // An unknown address, and a user who has no password, learn no region.
    for email in ["nobody@acme.example", app.creds.email.as_str()] {
        let other = discover(&app, &json!({"data": [{"emailAddress": email}]}).to_string()).await.ok();
        let d = &other.data()[0];
        assert_eq!(d["emailAddress"], json!(email));
        assert_eq!(d["authenticate"], json!(["Basic-Cloud"]));
        assert!(d.get("region").is_none(), "no region for {email}: {d}");
    }

    // No address: a validation error, keyed by the item when there is one.
    for (body, key) in [
        (r#"{"data":[{}]}"#, Some(json!({}))),
        (r#"{"data":[{"emailAddress":"  "}]}"#, Some(json!({"emailAddress": "  "}))),
        (r#"{"data":[{"emailAddress":null}]}"#, Some(json!({"emailAddress": null}))),
        ("", None),
    ] {
        let r = discover(&app, body).await;
        r.invalid(key.as_ref(), "err_validation_blank", Some("emailAddress"));
    }

    // Behind a public base URL, that is the region's address.
    let mut config = test_config();
    config.public_base_url = Some("https://viewlog.example.com/".into());
    let public = TestApp::spawn_with(config).await;
    let q = person(&public, "acme", FULL_ADMINISTRATOR).await;
    let found = discover(&public, &json!({"data": [{"emailAddress": q.email}]}).to_string()).await.ok();
    assert_eq!(found.data()[0]["region"]["api"], json!("https://viewlog.example.com"));
}

#[tokio::test]
async fn a_login_binding_is_used_refreshed_lapses_is_refreshed_again_and_ends_with_logout() {
    let app = TestApp::spawn().await;
    let p = person(&app, "acme", FULL_ADMINISTRATOR).await;
    app.insert(p.account, &[event(1, now() - 60)]).await;
    let profile = |ttl| AuthProfile { binding_ttl: Some(ttl), max_bindings_per_user: 10 };
    let default_ttl = AuthProfile::default().binding_ttl.unwrap();

    // Discover, then sign in where discovery says.
    let found = discover(&app, &json!({"data": [{"emailAddress": p.email}]}).to_string()).await.ok();
    assert_eq!(found.data()[0]["region"]["api"], json!(app.base_url));
    let before = now();
    let first = login(&app, &p, &json!({ "userName": p.email })).await.ok();
    let after = now();
    first.rate();
    let d = first.data()[0].clone();
    assert_eq!(d["userName"], json!(p.email));
    assert!(d["accessKey"].as_str().is_some_and(|k| k.len() >= 16), "{d}");
    let secret = STANDARD.decode(d["secretKey"].as_str().expect("secretKey")).expect("secretKey is base64");
    assert!(secret.len() >= 16, "a secret key of {} bytes", secret.len());
    assert_eq!(d["duration"], json!(default_ttl * 1000), "duration in milliseconds (three days by default)");
    assert_eq!(d["refreshed"], json!(false));
    let expires1 = expires(&first);
    assert!((before..=after).contains(&(expires1 - default_ttl)), "expires {expires1}, signed in {before}..{after}");
    let creds = signed_in(&p, &first);

    // The new binding signs requests.
    let page = app.view_logs_as(&creds, &last_day()).await.ok();
    assert_eq!(page.data().len(), 1);

    // Refresh: login with the binding's accessKey answers the same keys with a later expiry.
    sleep(Duration::from_millis(1100)).await;
    let item = json!({ "userName": p.email, "accessKey": creds.access_key });
    let refreshed = login(&app, &p, &item).await.ok();
    let r = &refreshed.data()[0];
    assert_eq!(r["accessKey"], json!(creds.access_key));
    assert_eq!(r["secretKey"], json!(creds.secret_key));
    assert_eq!(r["refreshed"], json!(true));
    let expires2 = expires(&refreshed);
    assert!(expires2 > expires1, "a refresh moves the expiry later: {expires1} -> {expires2}");
    app.view_logs_as(&creds, &last_day()).await.ok();

    // With a one-second time to live, a refresh makes the binding lapse a second later: 418,
    // whatever the request.
    app.admin.set_auth_profile("acme", profile(1)).await.unwrap();
    let short = login(&app, &p, &item).await.ok();
    assert_eq!(short.data()[0]["duration"], json!(1000));
    let lapses = expires(&short);
    while now() < lapses {
        sleep(Duration::from_millis(100)).await;
    }
    let lapsed = app.view_logs_as(&creds, &last_day()).await;
    let e = lapsed.refused(418, "err_xdk_binding_expired", false);
    assert!(e["message"].as_str().unwrap().starts_with("0007"), "{e}");
    let lapsed = app.record_as(&creds, &[event_json(2, now())]).await;
    lapsed.refused(418, "err_xdk_binding_expired", false);
    assert_eq!(app.stored(p.account).await, 1, "nothing recorded through a lapsed binding");

    // A refresh brings the lapsed binding back, keys unchanged.
    app.admin.set_auth_profile("acme", profile(default_ttl)).await.unwrap();
    let again = login(&app, &p, &item).await.ok();
    assert_eq!(again.data()[0]["accessKey"], json!(creds.access_key));
    assert_eq!(again.data()[0]["secretKey"], json!(creds.secret_key));
    assert!(expires(&again) > lapses);
    app.view_logs_as(&creds, &last_day()).await.ok();

    // Logout removes the binding; a request signed with it afterwards is refused as any
    // unknown key is.
    let out = app.post_as(&creds, LOGOUT, &json!({"data": [{"accessKey": creds.access_key}]})).await.ok();
    assert_eq!(out.data()[0]["accessKey"], json!(creds.access_key));
    out.rate();
    assert!(app.store.principal(&creds.access_key).await.unwrap().is_none(), "the binding is gone");
    let after = app.view_logs_as(&creds, &last_day()).await;
    after.refused(401, "err_xdk_invalid_signature", false);
    app.post_as(&creds, LOGOUT, &json!({})).await.refused(401, "err_xdk_invalid_signature", false);
    // And it cannot be refreshed back into being.
    login(&app, &p, &item).await.invalid(Some(&item), "err_validation_invalid_value", Some("accessKey"));
}

#[tokio::test]
async fn login_refusals_each_answer_with_their_own_code() {
    let app = TestApp::spawn().await;
    let p = person(&app, "acme", FULL_ADMINISTRATOR).await;
    let item = json!({ "userName": p.email });
    let body = login_body(&item);
    let headers = || login_headers(&p.app_id, &p.email, &p.password);

    // Each of the four headers missing or blank: 400.
    for name in ["Authorization", "x-mc-app-id", "x-mc-date", "x-mc-req-id"] {
        for value in [None, Some(" ")] {
            let r = app.send(LOGIN, &with_header(&headers(), name, value), body.clone()).await;
            let e = r.refused(400, "err_xdk_missing_credentials", false);
            assert!(e["message"].as_str().unwrap().starts_with("0001"), "{e}");
        }
    }
    // An Authorization header of another scheme, or undecodable: 400 too.
    let mc = format!("MC {}:sig", app.creds.access_key);
    for auth in ["Basic dXNlcjpwYXNz", "Basic-Cloud %%%", mc.as_str()] {
        let r = app.send(LOGIN, &with_header(&headers(), "Authorization", Some(auth)), body.clone()).await;
        r.refused(400, "err_xdk_missing_credentials", false);
    }

    // Unknown or disabled application: 200 err_developer_key.
    let r = app.send(LOGIN, &with_header(&headers(), "x-mc-app-id", Some("no-such-app")), body.clone()).await;
    r.refused(200, "err_developer_key", false);
    let spare = app.admin.create_application("acme", "spare").await.unwrap();
    app.admin.set_application_disabled(&spare.application.app_id, true).await.unwrap();
    let r = app.send(LOGIN, &login_headers(&spare.application.app_id, &p.email, &p.password), body.clone()).await;
    r.refused(200, "err_developer_key", false);

    // Unparseable or skewed date: 401.
    let skewed = dates::format_header_date(now() - 3600);
    for date in ["yesterday", skewed.as_str()] {
        let r = app.send(LOGIN, &with_header(&headers(), "x-mc-date", Some(date)), body.clone()).await;
        r.refused(401, "err_xdk_request_expired", false);
    }

    // Wrong password: 401, no delay yet.
    let r = login_with(&app, &p, "not the password", &item).await;
    r.refused(401, "err_xdk_authentication_failed", false);
    assert_eq!(retry_after(&r), None, "the first failure is not delayed");

    // A user of another account, with its own password, through this account's application:
    // refused as a wrong password is.
    let stranger = person(&app, "globex", FULL_ADMINISTRATOR).await;
    let r =
        app.send(LOGIN, &login_headers(&p.app_id, &stranger.email, &stranger.password), login_body(&json!({}))).await;
    r.refused(401, "err_xdk_authentication_failed", false);

    // A user without a password cannot use Basic-Cloud.
    let r =
        app.send(LOGIN, &login_headers(&app.creds.app_id, &app.creds.email, "anything"), login_body(&json!({}))).await;
    r.refused(200, "err_authentication_type_not_supported", false);

    // userName must be the address of the Authorization header.
    let other_name = json!({ "userName": "someone.else@acme.example" });
    login(&app, &p, &other_name).await.invalid(Some(&other_name), "err_validation_invalid_value", Some("userName"));
    // (Case does not matter.)
    login(&app, &p, &json!({ "userName": p.email.to_uppercase() })).await.ok();

    // Refreshing someone else's binding, or one of another application, is a validation error
    // and leaves that binding as it was.
    let q = person(&app, "acme", VIEW_LOG_READER).await;
    let theirs = sign_in(&app, &q).await;
    let before = app.store.principal(&theirs.access_key).await.unwrap().unwrap().binding;
    let steal = json!({ "userName": p.email, "accessKey": theirs.access_key });
    login(&app, &p, &steal).await.invalid(Some(&steal), "err_validation_invalid_value", Some("accessKey"));
    let after = app.store.principal(&theirs.access_key).await.unwrap().unwrap().binding;
    assert_eq!((before.created_at, before.expires_at), (after.created_at, after.expires_at));
    app.view_logs_as(&theirs, &last_day()).await.ok();
    let mine = sign_in(&app, &p).await;
    let other_app = app.admin.create_application("acme", "other").await.unwrap();
    let p_other = Person {
        app_id: other_app.application.app_id.clone(),
        app_key: other_app.app_key.expose().to_owned(),
        ..p.clone()
    };
    let cross = json!({ "userName": p.email, "accessKey": mine.access_key });
    login(&app, &p_other, &cross).await.invalid(Some(&cross), "err_validation_invalid_value", Some("accessKey"));
    let unknown = json!({ "userName": p.email, "accessKey": "no-such-key" });
    login(&app, &p, &unknown).await.invalid(Some(&unknown), "err_validation_invalid_value", Some("accessKey"));

    // Two failures from this address stay under the free attempts: the right password works.
    sign_in(&app, &p).await;
}

#[tokio::test]
async fn at_the_cap_a_new_login_deletes_the_users_oldest_binding() {
    let app = TestApp::spawn().await;
    let p = person(&app, "acme", FULL_ADMINISTRATOR).await;
    let q = person(&app, "acme", VIEW_LOG_READER).await;
    app.admin
        .set_auth_profile("acme", AuthProfile { binding_ttl: Some(3 * 86_400), max_bindings_per_user: 2 })
        .await
        .unwrap();
    let bystander = sign_in(&app, &q).await;
    // A second apart: of bindings made in the same second, the store cannot tell the oldest.
    let oldest = sign_in(&app, &p).await;
    sleep(Duration::from_millis(1100)).await;
    let middle = sign_in(&app, &p).await;
    app.view_logs_as(&oldest, &last_day()).await.ok();
    sleep(Duration::from_millis(1100)).await;
    let newest = sign_in(&app, &p).await;

    let gone = app.view_logs_as(&oldest, &last_day()).await;
    gone.refused(401, "err_xdk_invalid_signature", false);
    assert!(app.store.principal(&oldest.access_key).await.unwrap().is_none());
    app.view_logs_as(&middle, &last_day()).await.ok();
    app.view_logs_as(&newest, &last_day()).await.ok();
    // Another user's binding does not count towards this user's cap.
    app.view_logs_as(&bystander, &last_day()).await.ok();
    // Refreshing at the cap does not create a binding, so removes none.
    let item = json!({ "userName": p.email, "accessKey": middle.access_key });
    login(&app, &p, &item).await.ok();
    app.view_logs_as(&middle, &last_day()).await.ok();
    app.view_logs_as(&newest, &last_day()).await.ok();
}

#[tokio::test]
async fn logout_ends_only_the_callers_own_bindings() {
    let app = TestApp::spawn().await;
    let p = person(&app, "acme", FULL_ADMINISTRATOR).await;
    let q = person(&app, "acme", FULL_ADMINISTRATOR).await;
    let p1 = sign_in(&app, &p).await;
    let p2 = sign_in(&app, &p).await;
    let q1 = sign_in(&app, &q).await;

    // Another user's binding, or an unknown key: a validation error, and nothing removed.
    for key in [q1.access_key.as_str(), "no-such-key"] {
        let item = json!({ "accessKey": key });
        let r = app.post_as(&p1, LOGOUT, &json!({ "data": [item] })).await;
        r.invalid(Some(&item), "err_validation_invalid_value", Some("accessKey"));
    }
    app.view_logs_as(&q1, &last_day()).await.ok();
    // An administrator-issued binding of another user is no more the caller's.
    let item = json!({ "accessKey": app.creds.access_key });
    app.post_as(&p1, LOGOUT, &json!({ "data": [item] })).await.invalid(
        Some(&item),
        "err_validation_invalid_value",
        Some("accessKey"),
    );
    app.view_logs(&last_day()).await.ok();

    // One of the caller's other bindings.
    let out = app.post_as(&p1, LOGOUT, &json!({ "data": [{ "accessKey": p2.access_key }] })).await.ok();
    assert_eq!(out.data()[0]["accessKey"], json!(p2.access_key));
    app.view_logs_as(&p2, &last_day()).await.refused(401, "err_xdk_invalid_signature", false);
    app.view_logs_as(&p1, &last_day()).await.ok();

    // No item: the binding that signed the request.
    let out = app.post_as(&p1, LOGOUT, &json!({})).await.ok();
    assert_eq!(out.data()[0]["accessKey"], json!(p1.access_key));
    app.view_logs_as(&p1, &last_day()).await.refused(401, "err_xdk_invalid_signature", false);
    app.view_logs_as(&q1, &last_day()).await.ok();

    // Logout is signed like any call.
    let unsigned = app.send(LOGOUT, &[], json!({ "data": [{ "accessKey": q1.access_key }] }).to_string()).await;
    unsigned.refused(400, "err_xdk_missing_credentials", false);
    app.view_logs_as(&q1, &last_day()).await.ok();
}

/// Small numbers, so that the whole progression fits in a few seconds.
fn quick_throttle() -> LoginThrottle {
    LoginThrottle { free_attempts: 2, base_delay: 1, max_user_delay: 2, lockout_after: 4, lockout: 4 }
}

/// A login attempt from `addr` (sent as `X-Forwarded-For`, which only a server that trusts
/// forwarding headers believes).
async fn attempt_from(app: &TestApp, p: &Person, password: &str, addr: Option<&str>) -> Reply {
    let mut headers = login_headers(&p.app_id, &p.email, password);
    if let Some(addr) = addr {
        headers.push(("X-Forwarded-For".into(), addr.to_owned()));
    }
    app.send(LOGIN, &headers, login_body(&json!({ "userName": p.email }))).await
}

/// Four wrong passwords from `addr`, each sent once the previous delay has passed; returns the
/// `Retry-After` of each.
async fn four_failures(app: &TestApp, p: &Person, addr: Option<&str>) -> Vec<Option<u64>> {
    let mut waits = Vec::new();
    for n in 1..=4 {
        let r = attempt_from(app, p, "a wrong guess", addr).await;
        r.refused(401, "err_xdk_authentication_failed", false);
        let wait = retry_after(&r);
        if let Some(secs) = wait {
            assert!(r.error()["message"].as_str().unwrap().contains(&format!("try again in {secs} seconds")));
            if n < 4 {
                wait_out(secs).await;
            }
        }
        waits.push(wait);
    }
    waits
}

#[tokio::test]
async fn repeated_failures_are_delayed_more_and_more_then_the_address_is_locked_out() {
    let mut config = test_config();
    config.core.login = quick_throttle();
    let app = TestApp::spawn_with(config).await;
    let p = person(&app, "acme", FULL_ADMINISTRATOR).await;
    let r_user = person(&app, "acme", FULL_ADMINISTRATOR).await;

    // Two free failures, then a delay that doubles, then (at the fourth) the address's lock-out.
    assert_eq!(four_failures(&app, &p, None).await, [None, Some(1), Some(2), Some(4)]);

    // Inside the lock-out window even the correct password is refused, with Retry-After — and
    // so is another user's correct password from this address: the address is locked.
    let locked = attempt_from(&app, &p, &p.password, None).await;
    locked.refused(401, "err_xdk_authentication_failed", false);
    let wait = retry_after(&locked).expect("Retry-After while locked out");
    assert!((1..=4).contains(&wait), "{wait}");
    let other = attempt_from(&app, &r_user, &r_user.password, None).await;
    other.refused(401, "err_xdk_authentication_failed", false);
    assert!(retry_after(&other).is_some());
    // X-Forwarded-For is not believed unless configured: it does not get around the lock.
    let spoofed = attempt_from(&app, &r_user, &r_user.password, Some("198.51.100.77")).await;
    spoofed.refused(401, "err_xdk_authentication_failed", false);
    // A refusal while locked out is not counted as a failure: it does not extend the lock.
    let wait = retry_after(&spoofed).unwrap();
    assert!(wait <= 4, "{wait}");

    // After the window the correct password is accepted.
    wait_out(wait).await;
    attempt_from(&app, &p, &p.password, None).await.ok();
    attempt_from(&app, &r_user, &r_user.password, None).await.ok();
    // A success forgets the failures: the next wrong guess is a first failure again.
    let fresh = attempt_from(&app, &p, "a wrong guess", None).await;
    fresh.refused(401, "err_xdk_authentication_failed", false);
    assert_eq!(retry_after(&fresh), None);
}

#[tokio::test]
async fn an_address_locked_out_does_not_lock_the_user_out_from_another_address() {
    let throttle = quick_throttle();
    let mut config = test_config();
    config.core.login = throttle;
    config.trust_forwarded = true;
    let app = TestApp::spawn_with(config).await;
    let p = person(&app, "acme", FULL_ADMINISTRATOR).await;
    let attacker = "203.0.113.7";
    let home = "198.51.100.9";

    assert_eq!(four_failures(&app, &p, Some(attacker)).await, [None, Some(1), Some(2), Some(4)]);
    let locked = attempt_from(&app, &p, &p.password, Some(attacker)).await;
    locked.refused(401, "err_xdk_authentication_failed", false);
    let attacker_wait = retry_after(&locked).expect("the attacker's address is locked out");

    // The real user, from their own address, right after: at most delayed by the user's own
    // bound, which is shorter than the attacker's lock — then let in.
    let started = Instant::now();
    let mut user_wait = None;
    let mut tries = 0;
    loop {
        tries += 1;
        let r = attempt_from(&app, &p, &p.password, Some(home)).await;
        if r.status == 200 {
            r.ok();
            break;
        }
        r.refused(401, "err_xdk_authentication_failed", false);
        let wait = retry_after(&r).expect("a delay says how long");
        assert!(
            wait <= throttle.max_user_delay,
            "the user is only delayed, at most {}s: {wait}",
            throttle.max_user_delay
        );
        user_wait.get_or_insert(wait);
        assert!(tries < 3, "the user was refused {tries} times");
        wait_out(wait).await;
    }
    if let Some(user_wait) = user_wait {
        assert!(user_wait < attacker_wait, "user delayed {user_wait}s, attacker locked {attacker_wait}s");
    }
    assert!(
        started.elapsed() < Duration::from_secs(throttle.max_user_delay + 2),
        "the user got in within the delay bound: {:?}",
        started.elapsed()
    );

    // The attacker's address is released only when its window has passed; then the right
    // password works from there too.
    sleep(Duration::from_secs(throttle.lockout) + Duration::from_millis(150)).await;
    attempt_from(&app, &p, &p.password, Some(attacker)).await.ok();
}

/// A login answer's status, `Retry-After` and body, byte for byte.
async fn raw_attempt(app: &TestApp, app_id: &str, email: &str, addr: &str) -> (u16, Option<String>, Vec<u8>) {
    let mut req = app.http.post(format!("{}{LOGIN}", app.base_url));
    for (k, v) in login_headers(app_id, email, "a wrong guess") {
        req = req.header(k, v);
    }
    let r = req.header("X-Forwarded-For", addr).body(login_body(&json!({ "userName": email }))).send().await.unwrap();
    let status = r.status().as_u16();
    let retry = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    (status, retry, r.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn an_unknown_address_is_refused_exactly_as_a_wrong_password() {
    let mut config = test_config();
    config.trust_forwarded = true;
    let app = TestApp::spawn_with(config).await;
    let p = person(&app, "acme", FULL_ADMINISTRATOR).await;
    let unknown = "nobody.here@acme.example";

    // Step by step, from two fresh client addresses (default throttle: the third failure is
    // delayed), the answers are the same bytes.
    for step in 1..=3 {
        let a = raw_attempt(&app, &p.app_id, unknown, "192.0.2.1").await;
        let b = raw_attempt(&app, &p.app_id, &p.email, "192.0.2.2").await;
        assert_eq!(a.0, 401);
        assert_eq!((a.0, &a.1), (b.0, &b.1), "status and Retry-After at step {step}");
        assert_eq!(
            String::from_utf8_lossy(&a.2),
            String::from_utf8_lossy(&b.2),
            "the bodies are the same bytes at step {step}"
        );
        assert_eq!(a.1.is_some(), step == 3, "delayed from the third failure");
    }
}

#[tokio::test]
async fn an_unknown_address_takes_as_long_to_refuse_as_a_wrong_password() {
    // No throttling in the way: only the password check's cost is measured.
    let mut config = test_config();
    config.core.login = LoginThrottle { free_attempts: 1000, lockout_after: 1000, ..LoginThrottle::default() };
    config.trust_forwarded = true;
    let app = TestApp::spawn_with(config).await;
    let p = person(&app, "acme", FULL_ADMINISTRATOR).await;
    let unknown = "nobody.here@acme.example";

    async fn timed(app: &TestApp, app_id: &str, email: &str) -> Duration {
        let started = Instant::now();
        let (status, _, _) = raw_attempt(app, app_id, email, "192.0.2.50").await;
        assert_eq!(status, 401);
        started.elapsed()
    }
    // Warm up both paths (the dummy hash is made on first use).
    timed(&app, &p.app_id, unknown).await;
    timed(&app, &p.app_id, &p.email).await;
    let (mut unknown_times, mut known_times) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        unknown_times.push(timed(&app, &p.app_id, unknown).await);
        known_times.push(timed(&app, &p.app_id, &p.email).await);
    }
    unknown_times.sort();
    known_times.sort();
    let (u, k) = (unknown_times[2], known_times[2]);
    assert!(u.as_secs_f64() >= 0.4 * k.as_secs_f64(), "unknown {u:?} vs known {k:?}: the password check was skipped");
    assert!(k.as_secs_f64() >= 0.4 * u.as_secs_f64(), "unknown {u:?} vs known {k:?}");
}
