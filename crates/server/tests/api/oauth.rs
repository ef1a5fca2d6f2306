//! API 2.0 (PROTOCOL §3; docs/protocol.md "API 2.0 tokens"): client-credentials tokens from
//! `POST /oauth/token`, bearer calls with no `x-mc-*` headers, the client's role, expiry,
//! revocation, and the client library renewing its token before it lapses.

use crate::helpers::*;
use crate::signin::{person, sign_in, LOGOUT};
use serde_json::{json, Value};
use std::time::Duration;
use viewlog_core::admin::IssuedApiClient;
use viewlog_core::permissions::{FULL_ADMINISTRATOR, VIEW_LOG_READER, VIEW_LOG_RECORDER};
use viewlog_store::{RatePolicy, Store};

const TOKEN: &str = "/oauth/token";

/// A registered client's id and secret.
struct Client {
    id: String,
    secret: String,
}

async fn client(app: &TestApp, account: &str, role: &str) -> Client {
    if app.admin.account(account).await.is_err() {
        app.admin.create_account(account).await.unwrap();
    }
    let IssuedApiClient { client, client_secret } = app.admin.create_api_client(account, "siem", role).await.unwrap();
    Client { id: client.client_id, secret: client_secret.expose().to_owned() }
}

/// `POST /oauth/token` with a form body and, optionally, HTTP Basic.
async fn token_call(app: &TestApp, form: &[(&str, &str)], basic: Option<(&str, &str)>) -> Reply {
    let mut req = app.http.post(format!("{}{TOKEN}", app.base_url)).form(form);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    read(req.send().await.unwrap()).await
}

/// A token for this client (asserting the answer's shape).
async fn token(app: &TestApp, c: &Client) -> String {
    let form =
        [("client_id", c.id.as_str()), ("client_secret", c.secret.as_str()), ("grant_type", "client_credentials")];
    let r = token_call(app, &form, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["access_token"].as_str().expect("access_token").to_owned()
}

/// A POST carrying only `Authorization: Bearer …` — no `x-mc-*` headers, no content type.
async fn bearer(app: &TestApp, token: &str, path: &str, body: &Value) -> Reply {
    let req = app
        .http
        .post(format!("{}{path}", app.base_url))
        .header("Authorization", format!("Bearer {token}"))
        .body(body.to_string());
    read(req.send().await.unwrap()).await
}

async fn read(r: reqwest::Response) -> Reply {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    Reply { status, headers, body }
}

fn last_day() -> Value {
    range(now() - 86_400, now() + 60, 25)
}

#[tokio::test]
async fn a_client_gets_a_token_and_calls_with_the_bearer_alone() {
    let mut config = test_config();
    // A bucket that does not refill within the test, so that every charge shows.
    config.core.rate = RatePolicy { capacity: 50, refill_per_sec: 0.001 };
    let app = TestApp::spawn_with(config).await;
    let c = client(&app, "acme", FULL_ADMINISTRATOR).await;

    // Form body.
    let form =
        [("client_id", c.id.as_str()), ("client_secret", c.secret.as_str()), ("grant_type", "client_credentials")];
    let r = token_call(&app, &form, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let obj = r.body.as_object().unwrap();
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["access_token", "expires_in", "token_type"], "{}", r.body);
    assert_eq!(r.body["token_type"], json!("Bearer"));
    assert_eq!(r.body["expires_in"], json!(1799));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let form_token = r.body["access_token"].as_str().unwrap().to_owned();
    assert!(form_token.len() >= 32, "{form_token}");
    // HTTP Basic for the client's id and secret.
    let r = token_call(&app, &[("grant_type", "client_credentials")], Some((&c.id, &c.secret))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let basic_token = r.body["access_token"].as_str().unwrap().to_owned();
    assert_ne!(form_token, basic_token);

    // Record and read with the bearer alone; the quota is one bucket per client, shared by
    // its tokens.
    let recorded = bearer(&app, &form_token, RECORD, &json!({ "data": [event_json(7, now() - 30)] })).await.ok();
    assert_eq!(recorded.data()[0]["inserted"], json!(1));
    let (limit, first_remaining, _) = recorded.rate();
    assert_eq!(limit, 50);
    let page = bearer(&app, &basic_token, VIEW_LOGS, &last_day()).await.ok();
    assert_eq!(page.subjects(), ["Subject number 7"]);
    assert_eq!(page.rate().1, first_remaining - 1, "both tokens draw from the client's bucket");
    // The scheme name is case-insensitive.
    let req = app
        .http
        .post(format!("{}{VIEW_LOGS}", app.base_url))
        .header("Authorization", format!("bearer {form_token}"))
        .body("{}");
    let lower = read(req.send().await.unwrap()).await.ok();
    assert_eq!(lower.rate().1, first_remaining - 2);
    // Another client has a bucket of its own.
    let other = client(&app, "acme", FULL_ADMINISTRATOR).await;
    let other_token = token(&app, &other).await;
    let theirs = bearer(&app, &other_token, VIEW_LOGS, &last_day()).await.ok();
    assert_eq!(theirs.rate().1, 49);
    // Refused bearer calls carry the rate-limit headers too.
    bearer(&app, "not-a-token", VIEW_LOGS, &last_day()).await.refused(401, "token_expired", false);
}

#[tokio::test]
async fn the_clients_role_decides_what_its_tokens_may_do() {
    let app = TestApp::spawn().await;
    let reader = token(&app, &client(&app, "acme", VIEW_LOG_READER).await).await;
    let recorder = token(&app, &client(&app, "acme", VIEW_LOG_RECORDER).await).await;
    let batch = json!({ "data": [event_json(1, now() - 30)] });

    bearer(&app, &reader, VIEW_LOGS, &last_day()).await.ok();
    let r = bearer(&app, &reader, RECORD, &batch).await;
    let e = r.refused(403, "err_xdk_operation_forbidden_for_address", false);
    assert!(e["message"].as_str().unwrap().starts_with("0003"), "{e}");
    assert_eq!(app.stored(app.creds.account).await, 0, "nothing stored");

    bearer(&app, &recorder, RECORD, &batch).await.ok();
    bearer(&app, &recorder, VIEW_LOGS, &last_day()).await.refused(
        403,
        "err_xdk_operation_forbidden_for_address",
        false,
    );

    // A token is scoped to its client's account.
    let other = token(&app, &client(&app, "globex", FULL_ADMINISTRATOR).await).await;
    let theirs = bearer(&app, &other, VIEW_LOGS, &last_day()).await.ok();
    assert!(theirs.data().is_empty(), "another account's records: {}", theirs.body);

    // Logout ends an API 1.0 binding; a bearer has none.
    let p = person(&app, "acme", FULL_ADMINISTRATOR).await;
    let binding = sign_in(&app, &p).await;
    let r = bearer(&app, &reader, LOGOUT, &json!({ "data": [{ "accessKey": binding.access_key }] })).await;
    r.refused(403, "err_xdk_operation_forbidden_for_address", false);
    app.view_logs_as(&binding, &last_day()).await.ok();
}

#[tokio::test]
async fn the_token_endpoint_refuses_wrong_clients_and_other_grants() {
    let app = TestApp::spawn().await;
    let c = client(&app, "acme", FULL_ADMINISTRATOR).await;
    let cc = "client_credentials";

    // A wrong secret and an unknown client get the same answer.
    let wrong = token_call(&app, &[("client_id", &c.id), ("client_secret", "nope"), ("grant_type", cc)], None).await;
    wrong.refused(401, "invalid_client", false);
    let unknown =
        token_call(&app, &[("client_id", "no-such-client"), ("client_secret", &c.secret), ("grant_type", cc)], None)
            .await;
    unknown.refused(401, "invalid_client", false);
    assert_eq!(wrong.body, unknown.body);
    token_call(&app, &[("client_id", &c.id), ("grant_type", cc)], None).await.refused(401, "invalid_client", false);
    token_call(&app, &[("grant_type", cc)], None).await.refused(401, "invalid_client", false);
    token_call(&app, &[("grant_type", cc)], Some((&c.id, "nope"))).await.refused(401, "invalid_client", false);

    // Any other grant type, or none.
    for grant in [Some("password"), Some("authorization_code"), Some(""), None] {
        let mut form = vec![("client_id", c.id.as_str()), ("client_secret", c.secret.as_str())];
        if let Some(g) = grant {
            form.push(("grant_type", g));
        }
        token_call(&app, &form, None).await.refused(400, "unsupported_grant_type", false);
    }

    // A revoked client, and a client of a disabled account.
    let revoked = client(&app, "acme", FULL_ADMINISTRATOR).await;
    app.admin.revoke_api_client(&revoked.id).await.unwrap();
    let form = [("client_id", revoked.id.as_str()), ("client_secret", revoked.secret.as_str()), ("grant_type", cc)];
    token_call(&app, &form, None).await.refused(401, "invalid_client", false);
    let disabled = client(&app, "initech", FULL_ADMINISTRATOR).await;
    app.admin.set_account_disabled("initech", true).await.unwrap();
    let form = [("client_id", disabled.id.as_str()), ("client_secret", disabled.secret.as_str()), ("grant_type", cc)];
    token_call(&app, &form, None).await.refused(401, "invalid_client", false);

    // The right client still gets its token.
    token(&app, &c).await;
}

#[tokio::test]
async fn an_unknown_token_is_token_expired() {
    let app = TestApp::spawn().await;
    let long = "A".repeat(43);
    for path in [VIEW_LOGS, RECORD] {
        for t in ["bogus", "Zm9vYmFy", long.as_str()] {
            let r = bearer(&app, t, path, &json!({})).await;
            r.refused(401, "token_expired", false);
        }
    }
    // An API 1.0 secret key is no bearer token.
    bearer(&app, &app.creds.secret_key, VIEW_LOGS, &json!({})).await.refused(401, "token_expired", false);
}

#[tokio::test]
async fn a_token_lapses_after_its_lifetime() {
    let mut config = test_config();
    config.core.token_lifetime = Duration::from_secs(2);
    let app = TestApp::spawn_with(config).await;
    let c = client(&app, "acme", FULL_ADMINISTRATOR).await;
    let form =
        [("client_id", c.id.as_str()), ("client_secret", c.secret.as_str()), ("grant_type", "client_credentials")];
    let r = token_call(&app, &form, None).await;
    assert_eq!(r.body["expires_in"], json!(1), "one less than the lifetime, as Mimecast answers");
    let t = r.body["access_token"].as_str().unwrap().to_owned();
    bearer(&app, &t, VIEW_LOGS, &last_day()).await.ok();

    tokio::time::sleep(Duration::from_millis(2200)).await;
    bearer(&app, &t, VIEW_LOGS, &last_day()).await.refused(401, "token_expired", false);
    bearer(&app, &t, RECORD, &json!({ "data": [event_json(1, now())] })).await.refused(401, "token_expired", false);
    assert_eq!(app.stored(app.creds.account).await, 0);
    // A new token works.
    let fresh = token(&app, &c).await;
    bearer(&app, &fresh, VIEW_LOGS, &last_day()).await.ok();
}

#[tokio::test]
async fn revoking_a_client_ends_its_live_tokens() {
    let app = TestApp::spawn().await;
    let c = client(&app, "acme", FULL_ADMINISTRATOR).await;
    let bystander = client(&app, "acme", FULL_ADMINISTRATOR).await;
    let (t1, t2) = (token(&app, &c).await, token(&app, &c).await);
    let other = token(&app, &bystander).await;
    bearer(&app, &t1, VIEW_LOGS, &last_day()).await.ok();

    app.admin.revoke_api_client(&c.id).await.unwrap();
    for t in [&t1, &t2] {
        bearer(&app, t, VIEW_LOGS, &last_day()).await.refused(401, "token_expired", false);
    }
    let form =
        [("client_id", c.id.as_str()), ("client_secret", c.secret.as_str()), ("grant_type", "client_credentials")];
    token_call(&app, &form, None).await.refused(401, "invalid_client", false);
    bearer(&app, &other, VIEW_LOGS, &last_day()).await.ok();
}

#[tokio::test]
async fn the_client_library_renews_its_token_a_minute_before_it_lapses() {
    use viewlog_client::{ApiV2, Client as ApiClient, Credentials};
    // 63 s tokens: the library renews a token when less than a minute remains, so after 3 s.
    let mut config = test_config();
    config.core.token_lifetime = Duration::from_secs(63);
    let app = TestApp::spawn_with(config).await;
    let c = client(&app, "acme", FULL_ADMINISTRATOR).await;
    let credentials = Credentials::V2(ApiV2 {
        client_id: c.id.clone(),
        client_secret: viewlog_protocol::secret::Secret::new(c.secret.clone()),
    });
    let lib = ApiClient::new(&app.base_url, credentials).unwrap();
    let empty = json!({});
    let call = || lib.call::<Value>(VIEW_LOGS, &empty);

    // Two calls in a row share one token; four seconds later the token has less than a minute
    // left, so the next call fetches a new one, which the call after it reuses.
    call().await.unwrap();
    call().await.unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    call().await.unwrap();
    call().await.unwrap();
    // Every token issued is still live (63 s), so none was refetched after a refusal: the
    // second was fetched ahead of expiry. Count them by purging everything issued.
    let issued = app.store.purge_tokens(now() + 3600).await.unwrap();
    assert_eq!(issued, 2, "tokens issued for four calls over four seconds");

    // A token the server no longer knows is answered token_expired; the library fetches a new
    // one and the call succeeds.
    call().await.unwrap();
    assert_eq!(app.store.purge_tokens(now() + 3600).await.unwrap(), 1);
}
