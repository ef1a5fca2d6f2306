//! Health for operators (PROTOCOL §7).

use crate::helpers::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn healthz_answers_200_ok() {
    let app = TestApp::spawn().await;
    let reply = app.request(Method::GET, "/healthz", &[], None).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, json!({"status": "ok"}));
    assert_eq!(reply.header("content-type"), Some("application/json"));
    // No credentials needed, and the trailing slash is the same path.
    let reply = app.request(Method::GET, "/healthz/", &[], None).await;
    assert_eq!((reply.status, &reply.body), (200, &json!({"status": "ok"})));
}
