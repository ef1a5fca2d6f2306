//! API 1.0 sign-in from the client side (PROTOCOL §5): discover where an address signs in,
//! sign in with a password to get (or refresh) a key binding, sign out.

use crate::client::{unix_now, Client};
use crate::error::ClientError;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};
use viewlog_protocol::dates;
use viewlog_protocol::envelope::Envelope;
use viewlog_protocol::secret::Secret;

/// The answer of discover-authentication.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Discovery {
    /// The address asked about.
    pub email_address: String,
    /// How it may sign in (`Basic-Cloud`).
    #[serde(default)]
    pub authenticate: Vec<String>,
    /// Where it signs in; absent for an unknown address.
    #[serde(default)]
    pub region: Option<DiscoveredRegion>,
}

/// `region` of a discovery answer.
#[derive(Debug, Clone, Deserialize)]
pub struct DiscoveredRegion {
    /// The API base URL to use.
    pub api: String,
}

/// A key binding obtained by signing in.
#[derive(Debug, Clone)]
pub struct Binding {
    /// The access key.
    pub access_key: String,
    /// The secret key.
    pub secret_key: Secret,
    /// When it lapses (`None`: never).
    pub expires: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LoginData {
    access_key: String,
    secret_key: String,
    #[serde(default)]
    binding_expires: Option<String>,
}

fn http() -> Result<reqwest::Client, ClientError> {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .map_err(|e| ClientError::Config(format!("HTTP client: {e}")))
}

async fn post_envelope<T: serde::de::DeserializeOwned>(
    req: reqwest::RequestBuilder,
) -> Result<Envelope<T>, ClientError> {
    let response = req.send().await.map_err(|source| ClientError::Transport { attempts: 1, source })?;
    let status = response.status().as_u16();
    let bytes = response.bytes().await.map_err(|source| ClientError::Transport { attempts: 1, source })?;
    let envelope: Envelope<Value> =
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode { status, reason: e.to_string() })?;
    let errors: Vec<_> = envelope.fail.iter().flat_map(|f| f.errors.clone()).collect();
    if status == 200 && errors.is_empty() {
        let data = envelope
            .data
            .into_iter()
            .map(serde_json::from_value)
            .collect::<Result<Vec<T>, _>>()
            .map_err(|e| ClientError::Decode { status, reason: e.to_string() })?;
        return Ok(Envelope { meta: envelope.meta, data, fail: Vec::new() });
    }
    if status == 200 {
        Err(ClientError::Failed { errors })
    } else {
        Err(ClientError::Status { status, errors })
    }
}

/// Asks where and how `email` signs in.
pub async fn discover(base_url: &str, email: &str) -> Result<Discovery, ClientError> {
    let url = format!("{}/api/login/discover-authentication", crate::region::normalize_base_url(base_url));
    let body = json!({"data": [{"emailAddress": email}]});
    let envelope = post_envelope::<Discovery>(http()?.post(url).json(&body)).await?;
    envelope.data.into_iter().next().ok_or(ClientError::Decode { status: 200, reason: "no data".into() })
}

/// Signs in with a password and returns a new binding, or refreshes `refresh` (an access key
/// of this user and application) and returns it with its new expiry.
pub async fn login(
    base_url: &str,
    app_id: &str,
    email: &str,
    password: &Secret,
    refresh: Option<&str>,
) -> Result<Binding, ClientError> {
    let url = format!("{}/api/login/login", crate::region::normalize_base_url(base_url));
    let basic = STANDARD.encode(format!("{email}:{}", password.expose()));
    let mut item = json!({"userName": email});
    if let Some(access_key) = refresh {
        item["accessKey"] = Value::String(access_key.to_owned());
    }
    let req = http()?
        .post(url)
        .header("Authorization", format!("Basic-Cloud {basic}"))
        .header("x-mc-app-id", app_id)
        .header("x-mc-date", dates::format_header_date(unix_now()))
        .header("x-mc-req-id", uuid::Uuid::new_v4().to_string())
        .json(&json!({ "data": [item] }));
    let envelope = post_envelope::<LoginData>(req).await?;
    let data = envelope.data.into_iter().next().ok_or(ClientError::Decode { status: 200, reason: "no data".into() })?;
    Ok(Binding { access_key: data.access_key, secret_key: Secret::new(data.secret_key), expires: data.binding_expires })
}

impl Client {
    /// Signs out: removes the binding `access_key` (by default the client's own).
    pub async fn logout(&self, access_key: &str) -> Result<(), ClientError> {
        self.call::<Value>("/api/login/logout", &json!({"data": [{"accessKey": access_key}]})).await.map(|_| ())
    }
}
