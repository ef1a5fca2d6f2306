//! API 1.0 sign-in (PROTOCOL §5): discover-authentication, login (create or refresh a binding)
//! and logout.

use crate::auth::{Caller, Verified};
use crate::credentials::{hash_password, new_access_key, new_secret_key, verify_password};
use crate::error::ApiError;
use crate::throttle::ThrottleKind;
use crate::{Secret, Service};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};
use std::sync::OnceLock;
use viewlog_protocol::codes::ErrorCode;
use viewlog_protocol::dates;
use viewlog_protocol::envelope::ErrorDetail;
use viewlog_store::{NewBinding, Store, UnixTime};

/// The authentication type viewlog offers.
pub const BASIC_CLOUD: &str = "Basic-Cloud";

/// The unsigned parts of a login request.
#[derive(Debug, Clone, Copy)]
pub struct LoginRequest<'a> {
    /// `Authorization: Basic-Cloud base64(email:password)`.
    pub authorization: Option<&'a str>,
    /// `x-mc-app-id`.
    pub app_id: Option<&'a str>,
    /// `x-mc-date`.
    pub date: Option<&'a str>,
    /// `x-mc-req-id`.
    pub request_id: Option<&'a str>,
    /// The client's address (throttling).
    pub client_addr: &'a str,
}

/// A binding issued or refreshed by login; the secret key travels back once.
#[derive(Debug)]
pub struct LoginAnswer {
    /// The user's address.
    pub user_name: String,
    /// The binding's access key.
    pub access_key: String,
    /// The binding's secret key.
    pub secret_key: Secret,
    /// When the binding lapses (`None`: never).
    pub expires_at: Option<UnixTime>,
    /// The binding's time to live in seconds (`None`: never).
    pub ttl: Option<i64>,
    /// Whether an existing binding was refreshed rather than a new one created.
    pub refreshed: bool,
    /// Bindings removed because the user was at the cap.
    pub removed: Vec<String>,
}

impl LoginAnswer {
    /// The `data[0]` of the answer.
    pub fn to_json(&self) -> Value {
        json!({
            "userName": self.user_name,
            "accessKey": self.access_key,
            "secretKey": self.secret_key.expose(),
            "bindingType": "one_step",
            "bindingExpires": self.expires_at.map(dates::format_date),
            "duration": self.ttl.map(|t| t * 1000),
            "extendOnValidate": false,
            "refreshed": self.refreshed,
        })
    }
}

/// A hash verified against for unknown users, so that an unknown address costs as much as a
/// known one.
fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| hash_password(&Secret::new("viewlog-dummy-password")).unwrap_or_default())
}

fn first_item(body: &Value) -> Option<&serde_json::Map<String, Value>> {
    body.get("data")?.as_array()?.first()?.as_object()
}

fn item_str<'a>(item: Option<&'a serde_json::Map<String, Value>>, name: &str) -> Option<&'a str> {
    item?.get(name)?.as_str().map(str::trim).filter(|s| !s.is_empty())
}

fn parse_basic_cloud(value: &str) -> Option<(String, Secret)> {
    let value = value.trim();
    let (scheme, encoded) = value.split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case(BASIC_CLOUD) {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (email, password) = text.split_once(':')?;
    (!email.is_empty()).then(|| (email.trim().to_lowercase(), Secret::new(password.to_owned())))
}

impl<S: Store> Service<S> {
    /// `discover-authentication`: how an address signs in, and where (its `region.api` is
    /// `base_url`). An unknown address (or one without a password) gets no region.
    pub async fn discover_authentication(&self, body: &Value, base_url: &str) -> Result<Value, ApiError> {
        let item = first_item(body);
        let Some(email) = item_str(item, "emailAddress") else {
            return Err(ApiError::invalid(
                body.get("data").and_then(|d| d.get(0)).cloned(),
                vec![ErrorDetail::with_message(ErrorCode::ErrValidationBlank, "emailAddress is required")
                    .field("emailAddress")],
            ));
        };
        let user = self.store.user_by_email(email).await?;
        let known = user.is_some_and(|u| !u.disabled && u.password_hash.is_some());
        let mut answer = json!({ "emailAddress": email, "authenticate": [BASIC_CLOUD] });
        if known {
            answer["region"] = json!({ "api": base_url });
        }
        Ok(answer)
    }

    async fn throttle_wait(&self, keys: &[(ThrottleKind, String)], now: UnixTime) -> Result<u64, ApiError> {
        let mut wait = 0;
        for (kind, key) in keys {
            if let Some(f) = self.store.login_failures(key).await? {
                wait = wait.max(self.config.login.wait(*kind, &f, now));
            }
        }
        Ok(wait)
    }

    async fn record_failure(&self, keys: &[(ThrottleKind, String)], now: UnixTime) -> Result<ApiError, ApiError> {
        let mut wait = 0;
        for (kind, key) in keys {
            if let Some(f) = self.store.login_failures(key).await? {
                if self.config.login.stale(&f, now) {
                    self.store.clear_login_failures(key).await?;
                }
            }
            let f = self.store.record_login_failure(key, now).await?;
            wait = wait.max(self.config.login.wait(*kind, &f, now));
        }
        Ok(ApiError::AuthenticationFailed { retry_after: (wait > 0).then_some(wait) })
    }

    /// `login`: checks the application, the date and the Basic-Cloud password (throttled), then
    /// creates a binding — or, when the item names an `accessKey` of this user and application,
    /// refreshes it.
    pub async fn login(&self, req: &LoginRequest<'_>, body: &Value, now: UnixTime) -> Result<LoginAnswer, ApiError> {
        // A blank header is a missing one (as for signed calls).
        fn present(v: Option<&str>) -> Option<&str> {
            v.filter(|v| !v.trim().is_empty())
        }
        let (Some(authorization), Some(app_id), Some(date), Some(_)) =
            (present(req.authorization), present(req.app_id), present(req.date), present(req.request_id))
        else {
            return Err(ApiError::MissingCredentials("Authorization, x-mc-app-id, x-mc-date and x-mc-req-id headers"));
        };
        let app = match self.store.application_by_app_id(app_id.trim()).await? {
            Some(app) if !app.disabled => app,
            _ => return Err(ApiError::DeveloperKey),
        };
        let date = dates::parse_header_date(date).map_err(|_| ApiError::RequestExpired)?;
        if date.abs_diff(now) > self.config.clock_skew.as_secs() {
            return Err(ApiError::RequestExpired);
        }
        let (email, password) = parse_basic_cloud(authorization)
            .ok_or(ApiError::MissingCredentials("Authorization header, expected Basic-Cloud base64(email:password)"))?;
        let item = first_item(body);
        if let Some(user_name) = item_str(item, "userName") {
            if user_name.to_lowercase() != email {
                return Err(ApiError::invalid(
                    body.get("data").and_then(|d| d.get(0)).cloned(),
                    vec![ErrorDetail::with_message(
                        ErrorCode::ErrValidationInvalidValue,
                        "userName differs from the address in the Authorization header",
                    )
                    .field("userName")],
                ));
            }
        }
        let keys = [
            (ThrottleKind::User, format!("user:{email}")),
            (ThrottleKind::Address, format!("addr:{}", req.client_addr)),
        ];
        let wait = self.throttle_wait(&keys, now).await?;
        if wait > 0 {
            return Err(ApiError::AuthenticationFailed { retry_after: Some(wait) });
        }
        let user = self.store.user_by_email(&email).await?;
        let hash = user.as_ref().and_then(|u| u.password_hash.clone());
        let ok = {
            let hash = hash.clone().unwrap_or_else(|| dummy_hash().to_owned());
            let password = password.clone();
            tokio::task::spawn_blocking(move || verify_password(&password, &hash))
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))?
        };
        let user = match user {
            Some(u) if u.password_hash.is_none() && !u.disabled => {
                return Err(ApiError::AuthenticationTypeNotSupported)
            }
            Some(u) if ok && !u.disabled && u.account_id == app.account_id => u,
            _ => return Err(self.record_failure(&keys, now).await?),
        };
        for (_, key) in &keys {
            self.store.clear_login_failures(key).await?;
        }
        let account = self
            .store
            .account(user.account_id)
            .await?
            .ok_or_else(|| ApiError::Internal("user without account".into()))?;
        if account.disabled {
            return Err(ApiError::AuthenticationFailed { retry_after: None });
        }
        let profile = self.store.auth_profile(account.id).await?;
        let expires_at = profile.binding_ttl.map(|t| now + t);
        if let Some(access_key) = item_str(item, "accessKey") {
            return self.refresh(access_key, &user, app.id, now, expires_at, profile.binding_ttl, body).await;
        }
        let access_key = new_access_key();
        let secret_key = new_secret_key();
        let new = NewBinding {
            secret_key_sealed: self.vault.seal_secret(&secret_key, &access_key),
            access_key,
            account_id: account.id,
            user_id: user.id,
            application_id: app.id,
            created_at: now,
            expires_at,
        };
        let (binding, removed) = self.store.create_binding_capped(new, profile.max_bindings_per_user).await?;
        if !removed.is_empty() {
            tracing::info!(user = %user.email, removed = removed.len(), "binding cap reached: oldest bindings removed");
        }
        Ok(LoginAnswer {
            user_name: user.email,
            access_key: binding.access_key,
            secret_key,
            expires_at,
            ttl: profile.binding_ttl,
            refreshed: false,
            removed,
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn refresh(
        &self,
        access_key: &str,
        user: &viewlog_store::User,
        app: viewlog_store::ApplicationKeyId,
        now: UnixTime,
        expires_at: Option<UnixTime>,
        ttl: Option<i64>,
        body: &Value,
    ) -> Result<LoginAnswer, ApiError> {
        let principal = self.store.principal(access_key).await?;
        let Some(p) =
            principal.filter(|p| p.user.id == user.id && p.binding.application_id == app && !p.binding.revoked)
        else {
            return Err(ApiError::invalid(
                body.get("data").and_then(|d| d.get(0)).cloned(),
                vec![ErrorDetail::with_message(
                    ErrorCode::ErrValidationInvalidValue,
                    "no binding with this accessKey for this user and application",
                )
                .field("accessKey")],
            ));
        };
        self.store.refresh_binding(access_key, now, expires_at).await?;
        let secret_key = self
            .vault
            .open_secret(&p.binding.secret_key_sealed, access_key)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        Ok(LoginAnswer {
            user_name: user.email.clone(),
            access_key: access_key.to_owned(),
            secret_key,
            expires_at,
            ttl,
            refreshed: true,
            removed: Vec::new(),
        })
    }

    /// `logout`: removes a binding of the signed-in user (by default the one that signed the
    /// request).
    pub async fn logout(&self, verified: &Verified, body: &Value) -> Result<String, ApiError> {
        let Caller::Binding { access_key: own, user_id } = verified.caller() else {
            return Err(ApiError::Forbidden("an API 1.0 key binding (logout ends a binding)"));
        };
        let item = first_item(body);
        let target = item_str(item, "accessKey").unwrap_or(own);
        let principal = self.store.principal(target).await?;
        if principal.is_none_or(|p| p.user.id != *user_id) {
            return Err(ApiError::invalid(
                body.get("data").and_then(|d| d.get(0)).cloned(),
                vec![ErrorDetail::with_message(
                    ErrorCode::ErrValidationInvalidValue,
                    "no binding with this accessKey for this user",
                )
                .field("accessKey")],
            ));
        }
        self.store.delete_binding(target).await?;
        Ok(target.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_cloud_reads_address_and_password() {
        let v = format!("Basic-Cloud {}", STANDARD.encode("Admin@X.com:pa:ss"));
        let (email, password) = parse_basic_cloud(&v).unwrap();
        assert_eq!(email, "admin@x.com");
        assert_eq!(password.expose(), "pa:ss");
        assert!(parse_basic_cloud("Basic abc").is_none());
        assert!(parse_basic_cloud("Basic-Cloud !!!").is_none());
    }
}
