//! The domain's error type: every way an API call can fail, each variant knowing its wire code.
//! The HTTP server turns these into Mimecast envelopes in exactly one place.

use viewlog_protocol::codes::ErrorCode;
use viewlog_protocol::envelope::{ErrorDetail, Fail};
use viewlog_store::{RateDecision, StoreError};

/// Why an API call did not run or did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A required auth header is missing or malformed.
    #[error("missing or malformed credentials: {0}")]
    MissingCredentials(&'static str),
    /// The application id is unknown or disabled.
    #[error("unknown or disabled application id")]
    DeveloperKey,
    /// `x-mc-date` is unparseable or outside the skew window.
    #[error("request date unparseable or outside the allowed skew")]
    RequestExpired,
    /// Wrong signature, unknown access key, or a key that does not belong to the application.
    #[error("invalid signature")]
    InvalidSignature,
    /// The binding's time to live has lapsed.
    #[error("binding expired")]
    BindingExpired,
    /// The request id was used before within the window.
    #[error("duplicate request id")]
    DuplicateRequestId,
    /// The quota is used up.
    #[error("rate limit exceeded")]
    RateLimited(RateDecision),
    /// The user's role lacks the permission.
    #[error("forbidden: the role lacks {0}")]
    Forbidden(&'static str),
    /// The body parsed but its items are invalid; each `Fail` names its item and fields.
    #[error("invalid request: {}", summarize(.0))]
    Invalid(Vec<Fail>),
    /// The body could not be read at all.
    #[error("malformed body: {0}")]
    MalformedBody(String),
    /// The server is at its bound of concurrent queries, or a query passed its deadline.
    #[error("service unavailable: {0}")]
    Unavailable(&'static str),
    /// An API 2.0 bearer token is unknown, expired or revoked.
    #[error("token expired or revoked")]
    TokenExpired,
    /// A sign-in failed (wrong address or password), or is refused while throttled; the number
    /// of seconds to wait before the next attempt is worth making, if any.
    #[error("authentication failed")]
    AuthenticationFailed {
        /// Seconds until another attempt is considered (`Retry-After`).
        retry_after: Option<u64>,
    },
    /// The user has no password, so Basic-Cloud sign-in is impossible.
    #[error("authentication type not supported")]
    AuthenticationTypeNotSupported,
    /// Unknown or revoked API 2.0 client, or a wrong secret.
    #[error("invalid client")]
    InvalidClient,
    /// A grant type other than `client_credentials`.
    #[error("unsupported grant type")]
    UnsupportedGrantType,
    /// A fault on our side (details go to the log only).
    #[error("internal error: {0}")]
    Internal(String),
}

fn summarize(fails: &[Fail]) -> String {
    fails.iter().flat_map(|f| f.errors.iter().map(|e| e.code.as_str())).collect::<Vec<_>>().join(", ")
}

impl ApiError {
    /// The wire code this error answers with (for `Invalid`, the first item's first code).
    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::MissingCredentials(_) => ErrorCode::ErrXdkMissingCredentials,
            ApiError::DeveloperKey => ErrorCode::ErrDeveloperKey,
            ApiError::RequestExpired => ErrorCode::ErrXdkRequestExpired,
            ApiError::InvalidSignature => ErrorCode::ErrXdkInvalidSignature,
            ApiError::BindingExpired => ErrorCode::ErrXdkBindingExpired,
            ApiError::DuplicateRequestId => ErrorCode::ErrXdkDuplicateRequestId,
            ApiError::RateLimited(_) => ErrorCode::ErrXdkRateLimitExceeded,
            ApiError::Forbidden(_) => ErrorCode::ErrXdkOperationForbiddenForAddress,
            ApiError::Invalid(fails) => fails
                .first()
                .and_then(|f| f.errors.first())
                .and_then(|e| e.known_code())
                .unwrap_or(ErrorCode::ErrValidationInvalidValue),
            ApiError::MalformedBody(_) => ErrorCode::ErrValidationMalformedBody,
            ApiError::Unavailable(_) => ErrorCode::ErrServiceUnavailable,
            ApiError::Internal(_) => ErrorCode::ErrInternal,
            ApiError::TokenExpired => ErrorCode::TokenExpired,
            ApiError::AuthenticationFailed { .. } => ErrorCode::ErrXdkAuthenticationFailed,
            ApiError::AuthenticationTypeNotSupported => ErrorCode::ErrAuthenticationTypeNotSupported,
            ApiError::InvalidClient => ErrorCode::InvalidClient,
            ApiError::UnsupportedGrantType => ErrorCode::UnsupportedGrantType,
        }
    }

    /// The HTTP status of the answer.
    pub fn http_status(&self) -> u16 {
        self.code().http_status()
    }

    /// The `fail` entries of the answer. Internal details never leave the server.
    pub fn fails(&self) -> Vec<Fail> {
        match self {
            ApiError::Invalid(fails) => fails.clone(),
            ApiError::MissingCredentials(what) => vec![Fail::one(
                None,
                ErrorDetail::with_message(
                    ErrorCode::ErrXdkMissingCredentials,
                    format!("0001 Missing Credentials: {what}"),
                ),
            )],
            ApiError::DeveloperKey => {
                vec![Fail::one(
                    None,
                    ErrorDetail::with_message(
                        ErrorCode::ErrDeveloperKey,
                        "App ID is invalid: unknown or disabled application",
                    ),
                )]
            }
            ApiError::MalformedBody(reason) => vec![Fail::one(
                None,
                ErrorDetail::with_message(
                    ErrorCode::ErrValidationMalformedBody,
                    format!("The request body could not be parsed: {reason}"),
                ),
            )],
            ApiError::Forbidden(permission) => vec![Fail::one(
                None,
                ErrorDetail::with_message(
                    ErrorCode::ErrXdkOperationForbiddenForAddress,
                    format!("0003 Forbidden To Perform Operation For Address (requires {permission})"),
                ),
            )],
            ApiError::Unavailable(why) => vec![Fail::one(
                None,
                ErrorDetail::with_message(
                    ErrorCode::ErrServiceUnavailable,
                    format!("Service unavailable: {why}; try again"),
                ),
            )],
            ApiError::AuthenticationFailed { retry_after: Some(secs) } => vec![Fail::one(
                None,
                ErrorDetail::with_message(
                    ErrorCode::ErrXdkAuthenticationFailed,
                    format!("0009 Authentication failed; try again in {secs} seconds"),
                ),
            )],
            other => vec![Fail::one(None, ErrorDetail::new(other.code()))],
        }
    }

    /// Seconds a client should wait before trying again (`Retry-After`), where that is known.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::AuthenticationFailed { retry_after } => *retry_after,
            ApiError::RateLimited(rate) => Some(rate.reset_ms.div_ceil(1000)),
            _ => None,
        }
    }

    /// A validation error about one item.
    pub fn invalid(key: Option<serde_json::Value>, errors: Vec<ErrorDetail>) -> Self {
        ApiError::Invalid(vec![Fail { key, errors }])
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Interrupted => ApiError::Unavailable("the query passed its deadline"),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// What administration (from the command line) can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// A named record does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A name is taken, or input is invalid.
    #[error("{0}")]
    Invalid(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A sealed secret did not open or the key file failed.
    #[error(transparent)]
    Vault(#[from] crate::vault::VaultError),
    /// Hashing a password failed.
    #[error("password hashing failed: {0}")]
    Password(String),
}
