//! API 2.0: client-credentials tokens (PROTOCOL §3). Client secrets and tokens are random, so
//! they are kept as SHA-256 hashes: neither can be recovered from the database.

use crate::error::ApiError;
use crate::Service;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use viewlog_store::{AccessToken, Store, UnixTime};

/// How long a token lives by default (Mimecast answers `expires_in: 1799`).
pub const TOKEN_LIFETIME_SECS: i64 = 1800;

/// The hex SHA-256 of a token or client secret.
pub fn token_hash(value: &str) -> String {
    Sha256::digest(value.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh random token or client secret: 32 bytes, URL-safe base64.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// An issued token, as `/oauth/token` answers it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IssuedToken {
    /// The bearer token.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until it expires (one less than its lifetime, as Mimecast answers).
    pub expires_in: i64,
}

/// The fields of a token request.
#[derive(Debug, Clone, Default)]
pub struct TokenRequest {
    /// `client_id` (from the form or HTTP Basic).
    pub client_id: Option<String>,
    /// `client_secret` (from the form or HTTP Basic).
    pub client_secret: Option<String>,
    /// `grant_type`.
    pub grant_type: Option<String>,
}

impl<S: Store> Service<S> {
    /// `POST /oauth/token` with the client-credentials grant.
    pub async fn issue_token(&self, req: &TokenRequest, now: UnixTime) -> Result<IssuedToken, ApiError> {
        if req.grant_type.as_deref() != Some("client_credentials") {
            return Err(ApiError::UnsupportedGrantType);
        }
        let (Some(id), Some(secret)) = (req.client_id.as_deref(), req.client_secret.as_deref()) else {
            return Err(ApiError::InvalidClient);
        };
        let found = self.store.api_client(id).await?;
        let presented = token_hash(secret);
        // Compared in constant time; an unknown client is compared against a dummy so that both
        // refusals cost the same.
        let expected = found.as_ref().map(|(c, _, _)| c.secret_hash.clone()).unwrap_or_else(|| token_hash(""));
        let matches: bool = presented.as_bytes().ct_eq(expected.as_bytes()).into();
        let usable = matches && found.as_ref().is_some_and(|(c, a, _)| !c.revoked && !a.disabled);
        if !usable {
            return Err(ApiError::InvalidClient);
        }
        let lifetime = (self.config.token_lifetime.as_secs() as i64).max(2);
        let access_token = random_secret();
        self.store
            .store_token(AccessToken {
                token_hash: token_hash(&access_token),
                client_id: id.to_owned(),
                issued_at: now,
                expires_at: now + lifetime,
                revoked: false,
            })
            .await?;
        Ok(IssuedToken { access_token, token_type: "Bearer", expires_in: lifetime - 1 })
    }
}
