//! Browsers (docs/protocol.md "Browsers"): with a console origin configured, CORS preflights
//! from that origin only are answered, and its real calls may read the rate-limit headers;
//! without one, no cross-origin call is allowed.

use crate::helpers::*;
use reqwest::Method;
use serde_json::json;

const CONSOLE: &str = "http://console.test";

async fn console_app() -> TestApp {
    let mut config = test_config();
    config.console_origin = Some(CONSOLE.into());
    TestApp::spawn_with(config).await
}

/// An `OPTIONS` preflight for a POST with the signing headers.
async fn preflight(app: &TestApp, path: &str, origin: &str) -> reqwest::Response {
    app.http
        .request(Method::OPTIONS, format!("{}{path}", app.base_url))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "authorization, x-mc-date")
        .send()
        .await
        .unwrap()
}

fn header<'a>(r: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    r.headers().get(name).map(|v| v.to_str().unwrap())
}

/// A comma-separated header as lower-case names.
fn list(r: &reqwest::Response, name: &str) -> Vec<String> {
    header(r, name)
        .unwrap_or_else(|| panic!("{name} missing: {:?}", r.headers()))
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .collect()
}

/// Every `access-control-*` header of a response.
fn cors_headers(headers: &reqwest::header::HeaderMap) -> Vec<String> {
    headers.keys().map(|k| k.as_str().to_owned()).filter(|k| k.starts_with("access-control-")).collect()
}

#[tokio::test]
async fn a_preflight_from_the_console_origin_is_allowed() {
    let app = console_app().await;
    for path in [VIEW_LOGS, RECORD, "/api/login/login", "/oauth/token"] {
        let r = preflight(&app, path, CONSOLE).await;
        assert!(r.status().is_success(), "{path}: {}", r.status());
        assert_eq!(header(&r, "access-control-allow-origin"), Some(CONSOLE));
        let headers = list(&r, "access-control-allow-headers");
        for h in ["authorization", "content-type", "x-mc-app-id", "x-mc-date", "x-mc-req-id"] {
            assert!(headers.contains(&h.to_owned()), "{h} not allowed: {headers:?}");
        }
        let methods = list(&r, "access-control-allow-methods");
        assert!(methods.contains(&"post".to_owned()), "{methods:?}");
        assert!(methods.contains(&"get".to_owned()), "{methods:?}");
        // The console's credentials are headers, not cookies.
        assert_eq!(header(&r, "access-control-allow-credentials"), None);
    }
}

#[tokio::test]
async fn another_origin_is_not_allowed() {
    let app = console_app().await;
    for origin in ["http://evil.test", "https://console.test", "http://console.test.evil.test", "null"] {
        let r = preflight(&app, VIEW_LOGS, origin).await;
        assert_eq!(header(&r, "access-control-allow-origin"), None, "{origin}");
        let real = app
            .http
            .post(format!("{}{VIEW_LOGS}", app.base_url))
            .header("Origin", origin)
            .headers(to_map(&TestApp::headers(&app.creds, VIEW_LOGS)))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(real.status(), 200);
        assert_eq!(header(&real, "access-control-allow-origin"), None, "{origin}");
    }
}

fn to_map(headers: &[(String, String)]) -> reqwest::header::HeaderMap {
    let mut map = reqwest::header::HeaderMap::new();
    for (k, v) in headers {
        map.insert(reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
    }
    map
}

#[tokio::test]
async fn a_call_from_the_console_may_read_the_rate_limit_headers() {
    let app = console_app().await;
    app.insert(app.creds.account, &[event(1, now() - 60)]).await;
    let r = app
        .http
        .post(format!("{}{VIEW_LOGS}", app.base_url))
        .header("Origin", CONSOLE)
        .headers(to_map(&TestApp::headers(&app.creds, VIEW_LOGS)))
        .body(range(now() - 3600, now() + 60, 25).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "access-control-allow-origin"), Some(CONSOLE));
    let exposed = list(&r, "access-control-expose-headers");
    for h in ["x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "retry-after"] {
        assert!(exposed.contains(&h.to_owned()), "{h} not exposed: {exposed:?}");
    }
    assert!(header(&r, "x-ratelimit-remaining").is_some());
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["data"].as_array().unwrap().len(), 1, "{body}");

    // A refusal is readable by the console too (it must show the error).
    let refused = app
        .http
        .post(format!("{}{VIEW_LOGS}", app.base_url))
        .header("Origin", CONSOLE)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    assert_eq!(header(&refused, "access-control-allow-origin"), Some(CONSOLE));
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["fail"][0]["errors"][0]["code"], json!("err_xdk_missing_credentials"));
}

#[tokio::test]
async fn without_a_console_origin_there_are_no_cors_headers() {
    let app = TestApp::spawn().await;
    for origin in [CONSOLE, "http://evil.test"] {
        let r = preflight(&app, VIEW_LOGS, origin).await;
        assert!(cors_headers(r.headers()).is_empty(), "{:?}", r.headers());
        assert!(!r.status().is_success(), "a preflight is not allowed: {}", r.status());
        let real = app
            .http
            .post(format!("{}{VIEW_LOGS}", app.base_url))
            .header("Origin", origin)
            .headers(to_map(&TestApp::headers(&app.creds, VIEW_LOGS)))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(real.status(), 200);
        assert!(cors_headers(real.headers()).is_empty(), "{:?}", real.headers());
    }
}
