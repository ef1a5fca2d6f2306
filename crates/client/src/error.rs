//! The client's error type: one variant per way a call can fail, with Mimecast's code where
//! the server sent one.

use viewlog_protocol::codes::ErrorCode;
use viewlog_protocol::envelope::ErrorDetail;

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error status (after any retries).
    #[error("HTTP {status}: {}", describe(.errors))]
    Status {
        /// The HTTP status.
        status: u16,
        /// The errors of the `fail` array.
        errors: Vec<ErrorDetail>,
    },
    /// The server answered 200 with a non-empty `fail` array: the call did not succeed.
    #[error("the server refused the request: {}", describe(.errors))]
    Failed {
        /// The errors of the `fail` array.
        errors: Vec<ErrorDetail>,
    },
    /// The binding's time to live lapsed (418) and no password is configured to refresh it.
    #[error("the key binding expired (HTTP 418 err_xdk_binding_expired): sign in again with `viewlog login`, or ask an administrator for a new key with `viewlog key create`")]
    BindingExpired,
    /// The quota stayed used up through every retry.
    #[error("rate limit exceeded after {attempts} attempts")]
    RateLimited {
        /// How many attempts were made.
        attempts: u32,
    },
    /// The request could not be sent or its answer not received, after every retry.
    #[error("transport error after {attempts} attempts: {source}")]
    Transport {
        /// How many attempts were made.
        attempts: u32,
        /// The last transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The answer was not the JSON envelope expected.
    #[error("unexpected answer (HTTP {status}): {reason}")]
    Decode {
        /// The HTTP status.
        status: u16,
        /// What was wrong.
        reason: String,
    },
    /// The client is set up wrongly (a bad secret key, base URL…).
    #[error("client configuration: {0}")]
    Config(String),
}

fn describe(errors: &[ErrorDetail]) -> String {
    if errors.is_empty() {
        return "no details".into();
    }
    errors.iter().map(|e| format!("{} ({})", e.code, e.message)).collect::<Vec<_>>().join("; ")
}

impl ClientError {
    /// The first Mimecast code of the failure, when there is one this catalogue knows.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Status { errors, .. } | ClientError::Failed { errors } => {
                errors.first().and_then(|e| e.known_code())
            }
            ClientError::BindingExpired => Some(ErrorCode::ErrXdkBindingExpired),
            ClientError::RateLimited { .. } => Some(ErrorCode::ErrXdkRateLimitExceeded),
            _ => None,
        }
    }

    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Status { status, .. } | ClientError::Decode { status, .. } => Some(*status),
            ClientError::Failed { .. } => Some(200),
            ClientError::BindingExpired => Some(418),
            ClientError::RateLimited { .. } => Some(429),
            _ => None,
        }
    }

    /// Whether the page token of the request was refused (the caller may restart its query).
    pub fn is_invalid_page_token(&self) -> bool {
        matches!(self, ClientError::Failed { errors } | ClientError::Status { errors, .. }
            if errors.iter().any(|e| e.code == ErrorCode::ErrValidationInvalidPageToken.as_str()))
    }
}
