//! The API 1.0 authentication pipeline (PROTOCOL §3, §4).
//!
//! The checks run in the documented order and the first that fails answers: the four headers,
//! the application id, the date and skew, the access key and signature, the binding's time to
//! live, the request id's freshness, the user's quota, and (in [`Verified::grant`]) the
//! permission. A request that passes gets a [`Verified`]; only a `Verified` hands out the grants
//! that the query and ingest operations require, so no handler can reach the store's view
//! events before these checks.

use crate::error::ApiError;
use crate::permissions;
use crate::vault::Vault;
use crate::Service;
use viewlog_protocol::{dates, signing};
use viewlog_store::{AccountId, Principal, RateDecision, RateKey, Store, UnixTime};

/// The parts of a request the signature check reads, as the client sent them.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// `x-mc-date`.
    pub date: Option<&'a str>,
    /// `x-mc-req-id`.
    pub request_id: Option<&'a str>,
    /// `x-mc-app-id`.
    pub app_id: Option<&'a str>,
    /// `Authorization`.
    pub authorization: Option<&'a str>,
    /// Every URI the client may have signed: the path, and the absolute URLs it may have used.
    pub uris: &'a [String],
    /// The client's address, whose bucket pays for requests refused before a user is known.
    pub client_addr: &'a str,
}

/// The outcome of authentication: the quota that was charged (for the `X-RateLimit-*` headers)
/// and the verified principal or the reason for refusal.
#[derive(Debug)]
pub struct AuthOutcome {
    /// The bucket charged for this request, when the rate limiter answered.
    pub rate: Option<RateDecision>,
    /// The verified caller, or why the request is refused.
    pub result: Result<Verified, ApiError>,
}

/// Who a verified request acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// An API 1.0 key binding of a user.
    Binding {
        /// The binding's access key.
        access_key: String,
        /// The user it acts for.
        user_id: viewlog_store::UserId,
    },
    /// An API 2.0 client with a bearer token.
    ApiClient {
        /// The client id.
        client_id: String,
    },
}

/// A caller whose credentials, request id (API 1.0) and quota were checked.
#[derive(Debug)]
pub struct Verified {
    account: viewlog_store::Account,
    permissions: Vec<String>,
    caller: Caller,
}
/// Permission to read one account's view logs.
#[derive(Debug, Clone, Copy)]
pub struct ReadGrant {
    account: AccountId,
}

/// Permission to record view events into one account.
#[derive(Debug, Clone, Copy)]
pub struct EditGrant {
    account: AccountId,
}

impl ReadGrant {
    /// The account the grant is for.
    pub fn account(&self) -> AccountId {
        self.account
    }
}

impl EditGrant {
    /// The account the grant is for.
    pub fn account(&self) -> AccountId {
        self.account
    }
}

impl Verified {
    /// Who the request acts for.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// The caller's account.
    pub fn account(&self) -> &viewlog_store::Account {
        &self.account
    }

    fn require(&self, permission: &'static str) -> Result<AccountId, ApiError> {
        if self.permissions.iter().any(|p| p == permission) {
            Ok(self.account.id)
        } else {
            Err(ApiError::Forbidden(permission))
        }
    }

    /// The grant to read view logs, if the caller's role holds `Archive | View Logs | Read`.
    pub fn grant_read(&self) -> Result<ReadGrant, ApiError> {
        self.require(permissions::VIEW_LOGS_READ).map(|account| ReadGrant { account })
    }

    /// The grant to record view events, if the caller's role holds `Archive | View Logs | Edit`.
    pub fn grant_edit(&self) -> Result<EditGrant, ApiError> {
        self.require(permissions::VIEW_LOGS_EDIT).map(|account| EditGrant { account })
    }
}

fn present<'a>(value: Option<&'a str>, name: &'static str) -> Result<&'a str, ApiError> {
    match value.map(str::trim) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(ApiError::MissingCredentials(name)),
    }
}

/// The headers' values, checked for presence and form.
struct Headers<'a> {
    date: &'a str,
    request_id: &'a str,
    app_id: &'a str,
    access_key: &'a str,
    signature: &'a str,
}

fn read_headers<'a>(req: &SignedRequest<'a>) -> Result<Headers<'a>, ApiError> {
    let authorization = present(req.authorization, "Authorization header")?;
    let date = present(req.date, "x-mc-date header")?;
    let request_id = present(req.request_id, "x-mc-req-id header")?;
    let app_id = present(req.app_id, "x-mc-app-id header")?;
    if request_id.len() > 128 {
        return Err(ApiError::MissingCredentials("x-mc-req-id header longer than 128 characters"));
    }
    let auth = signing::parse_authorization(authorization)
        .ok_or(ApiError::MissingCredentials("Authorization header, expected MC accessKey:signature"))?;
    // The date and the request id are signed as the raw header strings.
    Ok(Headers {
        date: req.date.unwrap_or(date),
        request_id: req.request_id.unwrap_or(request_id),
        app_id,
        access_key: auth.access_key,
        signature: auth.signature,
    })
}

impl<S: Store> Service<S> {
    /// Authenticates a signed request (everything but the permission, which the operation asks
    /// for with [`Verified::grant_read`] or [`Verified::grant_edit`]).
    pub async fn authenticate(&self, req: &SignedRequest<'_>, now: UnixTime) -> AuthOutcome {
        if let Some(token) = req.authorization.and_then(bearer_token) {
            return self.authenticate_bearer(token, req.client_addr, now).await;
        }
        match self.verify_signature(req, now).await {
            Ok(principal) => self.after_signature(principal, req, now).await,
            Err(error) => {
                // Refused before a user is known: the client address pays, so that a flood of
                // bad signatures is throttled too.
                match self.charge(RateKey::Address(req.client_addr.to_owned())).await {
                    Ok(rate) if !rate.allowed => {
                        AuthOutcome { rate: Some(rate), result: Err(ApiError::RateLimited(rate)) }
                    }
                    Ok(rate) => AuthOutcome { rate: Some(rate), result: Err(error) },
                    Err(e) => AuthOutcome { rate: None, result: Err(e) },
                }
            }
        }
    }

    /// Charges one request to a client address (for requests that are refused before any
    /// authentication, such as an unknown path).
    pub async fn charge_address(&self, client_addr: &str) -> Result<RateDecision, ApiError> {
        self.charge(RateKey::Address(client_addr.to_owned())).await
    }

    async fn charge(&self, key: RateKey) -> Result<RateDecision, ApiError> {
        let now_ms = now_millis();
        Ok(self.store.take_rate_token(&key, self.config.rate, now_ms).await?)
    }

    async fn verify_signature(&self, req: &SignedRequest<'_>, now: UnixTime) -> Result<Principal, ApiError> {
        let h = read_headers(req)?;
        // Both lookups in one round trip; the checks below still run in the order of §4.
        let (app, principal) = self.store.signed_lookup(h.app_id, h.access_key).await?;
        let app = match app {
            Some(app) if !app.disabled => app,
            _ => return Err(ApiError::DeveloperKey),
        };
        let date = dates::parse_header_date(h.date).map_err(|_| ApiError::RequestExpired)?;
        if date.abs_diff(now) > self.config.clock_skew.as_secs() {
            return Err(ApiError::RequestExpired);
        }
        let principal = principal.ok_or(ApiError::InvalidSignature)?;
        let usable = !principal.binding.revoked
            && !principal.user.disabled
            && !principal.account.disabled
            && principal.application.app_id == app.app_id;
        if !usable {
            return Err(ApiError::InvalidSignature);
        }
        let secret = open(&self.vault, &principal.binding.secret_key_sealed, &principal.binding.access_key)?;
        let app_key = open(&self.vault, &app.app_key_sealed, &app.app_id)?;
        let secret = signing::decode_secret_key(secret.expose())
            .map_err(|_| ApiError::Internal("stored secret key is not base64".into()))?;
        let uris: Vec<&str> = req.uris.iter().map(String::as_str).collect();
        if !signing::verify(&secret, h.date, h.request_id, &uris, app_key.expose(), h.signature) {
            return Err(ApiError::InvalidSignature);
        }
        Ok(principal)
    }

    async fn after_signature(&self, principal: Principal, req: &SignedRequest<'_>, now: UnixTime) -> AuthOutcome {
        let rate = match self.charge(RateKey::User(principal.user.id)).await {
            Ok(rate) => rate,
            Err(e) => return AuthOutcome { rate: None, result: Err(e) },
        };
        let result = self.after_charge(principal, req, now, rate).await;
        AuthOutcome { rate: Some(rate), result }
    }

    async fn after_charge(
        &self,
        principal: Principal,
        req: &SignedRequest<'_>,
        now: UnixTime,
        rate: RateDecision,
    ) -> Result<Verified, ApiError> {
        if principal.binding.expires_at.is_some_and(|t| t <= now) {
            return Err(ApiError::BindingExpired);
        }
        let (Some(date), Some(request_id)) = (req.date, req.request_id) else {
            return Err(ApiError::MissingCredentials("x-mc-date or x-mc-req-id header"));
        };
        // The date parsed before the signature was checked.
        let date = dates::parse_header_date(date).unwrap_or(now);
        let keep_until = date.max(now) + self.config.clock_skew.as_secs() as i64;
        let fresh =
            self.store.remember_request(&principal.binding.access_key, request_id.trim(), keep_until, now).await?;
        if !fresh {
            return Err(ApiError::DuplicateRequestId);
        }
        if !rate.allowed {
            return Err(ApiError::RateLimited(rate));
        }
        Ok(Verified {
            caller: Caller::Binding { access_key: principal.binding.access_key.clone(), user_id: principal.user.id },
            account: principal.account,
            permissions: principal.permissions,
        })
    }

    /// API 2.0: `Authorization: Bearer {token}`. An unknown, expired or revoked token (or one of a
    /// revoked client or disabled account) is `token_expired`; the client's bucket pays.
    async fn authenticate_bearer(&self, token: &str, client_addr: &str, now: UnixTime) -> AuthOutcome {
        let found = match self.store.token_principal(&crate::oauth::token_hash(token)).await {
            Ok(found) => found,
            Err(e) => return AuthOutcome { rate: None, result: Err(e.into()) },
        };
        let Some(tp) = found
            .filter(|tp| !tp.token.revoked && tp.token.expires_at > now && !tp.client.revoked && !tp.account.disabled)
        else {
            return match self.charge(RateKey::Address(client_addr.to_owned())).await {
                Ok(rate) if !rate.allowed => AuthOutcome { rate: Some(rate), result: Err(ApiError::RateLimited(rate)) },
                Ok(rate) => AuthOutcome { rate: Some(rate), result: Err(ApiError::TokenExpired) },
                Err(e) => AuthOutcome { rate: None, result: Err(e) },
            };
        };
        let rate = match self.charge(RateKey::ApiClient(tp.client.client_id.clone())).await {
            Ok(rate) => rate,
            Err(e) => return AuthOutcome { rate: None, result: Err(e) },
        };
        if !rate.allowed {
            return AuthOutcome { rate: Some(rate), result: Err(ApiError::RateLimited(rate)) };
        }
        let verified = Verified {
            caller: Caller::ApiClient { client_id: tp.client.client_id.clone() },
            account: tp.account,
            permissions: tp.permissions,
        };
        AuthOutcome { rate: Some(rate), result: Ok(verified) }
    }
}

/// The token of `Authorization: Bearer {token}`, if that is the scheme.
fn bearer_token(authorization: &str) -> Option<&str> {
    let value = authorization.trim();
    let (scheme, token) = value.split_once(char::is_whitespace)?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim())
}

fn open(vault: &Vault, sealed: &[u8], context: &str) -> Result<crate::Secret, ApiError> {
    vault
        .open_secret(sealed, context)
        .map_err(|e| ApiError::Internal(format!("{e} (is this the master key the keys were issued under?)")))
}

/// The current time in milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
