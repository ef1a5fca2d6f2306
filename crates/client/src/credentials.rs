//! What a client signs with.

use serde::Deserialize;
use viewlog_protocol::secret::Secret;

/// API 1.0 credentials: a registered application and a key binding.
#[derive(Debug, Clone)]
pub struct ApiV1 {
    /// The application id (`x-mc-app-id`).
    pub app_id: String,
    /// The application key (signed, never sent).
    pub app_key: Secret,
    /// The binding's access key.
    pub access_key: String,
    /// The binding's secret key (base64).
    pub secret_key: Secret,
}

/// API 2.0 credentials: an OAuth client.
#[derive(Debug, Clone)]
pub struct ApiV2 {
    /// The client id.
    pub client_id: String,
    /// The client secret.
    pub client_secret: Secret,
}

/// How a client authenticates.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// Signed API 1.0 requests.
    V1(ApiV1),
    /// Bearer tokens from `/oauth/token`.
    V2(ApiV2),
}

/// The credentials file `viewlog demo --credentials` writes (and a profile's fields).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsFile {
    /// The server's base URL.
    pub base_url: Option<String>,
    /// The application id.
    pub app_id: Option<String>,
    /// The application key.
    pub app_key: Option<String>,
    /// The access key.
    pub access_key: Option<String>,
    /// The secret key.
    pub secret_key: Option<String>,
    /// An API 2.0 client id.
    pub client_id: Option<String>,
    /// An API 2.0 client secret.
    pub client_secret: Option<String>,
    /// The user's address.
    pub email: Option<String>,
    /// The user's password.
    pub password: Option<String>,
}

impl std::fmt::Display for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::V1(c) => write!(f, "API 1.0 access key {} (app {})", c.access_key, c.app_id),
            Credentials::V2(c) => write!(f, "API 2.0 client {}", c.client_id),
        }
    }
}
