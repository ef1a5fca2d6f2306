//! The error-code catalogue (PROTOCOL §4): every code with its HTTP status, whether a client
//! may retry, and its default message.

use serde::{Deserialize, Serialize};

/// Every error code viewlog answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// A required auth header is missing or malformed (400).
    ErrXdkMissingCredentials,
    /// Wrong signature or unknown access key (401).
    ErrXdkInvalidSignature,
    /// `x-mc-date` unparseable or outside the skew window (401).
    ErrXdkRequestExpired,
    /// A replayed `x-mc-req-id` (401).
    ErrXdkDuplicateRequestId,
    /// Unknown or disabled application id (200, as the real API answers).
    ErrDeveloperKey,
    /// The user lacks the permission (403).
    ErrXdkOperationForbiddenForAddress,
    /// The binding's time to live has lapsed (418).
    ErrXdkBindingExpired,
    /// The user's quota is used up (429).
    ErrXdkRateLimitExceeded,
    /// Unknown path (404).
    ErrNotFound,
    /// Not POST (405).
    ErrMethodNotAllowed,
    /// Body over the limit (413).
    ErrRequestTooLarge,
    /// A required field is null (200).
    ErrValidationNull,
    /// A required field is blank (200).
    ErrValidationBlank,
    /// A date no layout reads (200).
    ErrValidationInvalidDate,
    /// `start` after `end` (200).
    ErrValidationDateRange,
    /// A page size that is not a positive number (200).
    ErrValidationInvalidPageSize,
    /// A forged, altered, foreign or unreadable page token (200).
    ErrValidationInvalidPageToken,
    /// A second and further `data` item (200).
    ErrValidationMultipleItems,
    /// A field of the wrong type or value (200).
    ErrValidationInvalidValue,
    /// A body no tolerant reading parses (400).
    ErrValidationMalformedBody,
    /// The sign-in is not possible with this authentication type (200).
    ErrAuthenticationTypeNotSupported,
    /// An API 2.0 bearer token expired or was revoked (401).
    TokenExpired,
    /// A sign-in with a wrong address or password, or one refused while throttled (401).
    ErrXdkAuthenticationFailed,
    /// Unknown or revoked API 2.0 client, or a wrong client secret (401).
    InvalidClient,
    /// `/oauth/token` with a grant type other than `client_credentials` (400).
    UnsupportedGrantType,
    /// A fault on our side (500).
    ErrInternal,
    /// The server is shedding load or a query passed its deadline (503).
    ErrServiceUnavailable,
}

impl ErrorCode {
    /// Every code, for tests and documentation.
    pub const ALL: [ErrorCode; 27] = [
        ErrorCode::ErrXdkMissingCredentials,
        ErrorCode::ErrXdkInvalidSignature,
        ErrorCode::ErrXdkRequestExpired,
        ErrorCode::ErrXdkDuplicateRequestId,
        ErrorCode::ErrDeveloperKey,
        ErrorCode::ErrXdkOperationForbiddenForAddress,
        ErrorCode::ErrXdkBindingExpired,
        ErrorCode::ErrXdkRateLimitExceeded,
        ErrorCode::ErrNotFound,
        ErrorCode::ErrMethodNotAllowed,
        ErrorCode::ErrRequestTooLarge,
        ErrorCode::ErrValidationNull,
        ErrorCode::ErrValidationBlank,
        ErrorCode::ErrValidationInvalidDate,
        ErrorCode::ErrValidationDateRange,
        ErrorCode::ErrValidationInvalidPageSize,
        ErrorCode::ErrValidationInvalidPageToken,
        ErrorCode::ErrValidationMultipleItems,
        ErrorCode::ErrValidationInvalidValue,
        ErrorCode::ErrValidationMalformedBody,
        ErrorCode::ErrAuthenticationTypeNotSupported,
        ErrorCode::TokenExpired,
        ErrorCode::ErrXdkAuthenticationFailed,
        ErrorCode::InvalidClient,
        ErrorCode::UnsupportedGrantType,
        ErrorCode::ErrInternal,
        ErrorCode::ErrServiceUnavailable,
    ];

    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::ErrXdkMissingCredentials => "err_xdk_missing_credentials",
            ErrorCode::ErrXdkInvalidSignature => "err_xdk_invalid_signature",
            ErrorCode::ErrXdkRequestExpired => "err_xdk_request_expired",
            ErrorCode::ErrXdkDuplicateRequestId => "err_xdk_duplicate_request_id",
            ErrorCode::ErrDeveloperKey => "err_developer_key",
            ErrorCode::ErrXdkOperationForbiddenForAddress => "err_xdk_operation_forbidden_for_address",
            ErrorCode::ErrXdkBindingExpired => "err_xdk_binding_expired",
            ErrorCode::ErrXdkRateLimitExceeded => "err_xdk_rate_limit_exceeded",
            ErrorCode::ErrNotFound => "err_not_found",
            ErrorCode::ErrMethodNotAllowed => "err_method_not_allowed",
            ErrorCode::ErrRequestTooLarge => "err_request_too_large",
            ErrorCode::ErrValidationNull => "err_validation_null",
            ErrorCode::ErrValidationBlank => "err_validation_blank",
            ErrorCode::ErrValidationInvalidDate => "err_validation_invalid_date",
            ErrorCode::ErrValidationDateRange => "err_validation_date_range",
            ErrorCode::ErrValidationInvalidPageSize => "err_validation_invalid_page_size",
            ErrorCode::ErrValidationInvalidPageToken => "err_validation_invalid_page_token",
            ErrorCode::ErrValidationMultipleItems => "err_validation_multiple_items",
            ErrorCode::ErrValidationInvalidValue => "err_validation_invalid_value",
            ErrorCode::ErrValidationMalformedBody => "err_validation_malformed_body",
            ErrorCode::ErrAuthenticationTypeNotSupported => "err_authentication_type_not_supported",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::ErrXdkAuthenticationFailed => "err_xdk_authentication_failed",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::ErrInternal => "err_internal",
            ErrorCode::ErrServiceUnavailable => "err_service_unavailable",
        }
    }

    /// Reads a wire code; `None` for a code this catalogue does not hold.
    pub fn parse(code: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == code)
    }

    /// The HTTP status a response carrying this code (alone) has.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::ErrXdkMissingCredentials
            | ErrorCode::ErrValidationMalformedBody
            | ErrorCode::UnsupportedGrantType => 400,
            ErrorCode::ErrXdkInvalidSignature
            | ErrorCode::ErrXdkRequestExpired
            | ErrorCode::ErrXdkDuplicateRequestId
            | ErrorCode::TokenExpired
            | ErrorCode::ErrXdkAuthenticationFailed
            | ErrorCode::InvalidClient => 401,
            ErrorCode::ErrXdkOperationForbiddenForAddress => 403,
            ErrorCode::ErrNotFound => 404,
            ErrorCode::ErrMethodNotAllowed => 405,
            ErrorCode::ErrRequestTooLarge => 413,
            ErrorCode::ErrXdkBindingExpired => 418,
            ErrorCode::ErrXdkRateLimitExceeded => 429,
            ErrorCode::ErrInternal => 500,
            ErrorCode::ErrServiceUnavailable => 503,
            ErrorCode::ErrDeveloperKey
            | ErrorCode::ErrValidationNull
            | ErrorCode::ErrValidationBlank
            | ErrorCode::ErrValidationInvalidDate
            | ErrorCode::ErrValidationDateRange
            | ErrorCode::ErrValidationInvalidPageSize
            | ErrorCode::ErrValidationInvalidPageToken
            | ErrorCode::ErrValidationMultipleItems
            | ErrorCode::ErrValidationInvalidValue
            | ErrorCode::ErrAuthenticationTypeNotSupported => 200,
        }
    }

    /// Whether the same request may succeed if sent again later.
    pub fn retryable(self) -> bool {
        matches!(self, ErrorCode::ErrXdkRateLimitExceeded | ErrorCode::ErrInternal | ErrorCode::ErrServiceUnavailable)
    }

    /// The message sent when no more specific one is given. Auth and platform messages begin with
    /// their four-digit sub-code.
    pub fn default_message(self) -> &'static str {
        match self {
            ErrorCode::ErrXdkMissingCredentials => "0001 Missing Credentials",
            ErrorCode::ErrXdkInvalidSignature => "0004 Invalid Signature",
            ErrorCode::ErrXdkRequestExpired => "0005 Request Expired",
            ErrorCode::ErrXdkDuplicateRequestId => "0006 Duplicate Request Id",
            ErrorCode::ErrDeveloperKey => "App ID is invalid",
            ErrorCode::ErrXdkOperationForbiddenForAddress => "0003 Forbidden To Perform Operation For Address",
            ErrorCode::ErrXdkBindingExpired => "0007 Binding Expired",
            ErrorCode::ErrXdkRateLimitExceeded => "0008 Rate Limit Exceeded",
            ErrorCode::ErrNotFound => "No such endpoint",
            ErrorCode::ErrMethodNotAllowed => "Method not allowed; use POST",
            ErrorCode::ErrRequestTooLarge => "Request body too large",
            ErrorCode::ErrValidationNull => "A required value is null",
            ErrorCode::ErrValidationBlank => "A required value is blank",
            ErrorCode::ErrValidationInvalidDate => "Invalid date",
            ErrorCode::ErrValidationDateRange => "start is after end",
            ErrorCode::ErrValidationInvalidPageSize => "pageSize must be a positive whole number",
            ErrorCode::ErrValidationInvalidPageToken => "Invalid page token",
            ErrorCode::ErrValidationMultipleItems => "Only one data item is allowed per request",
            ErrorCode::ErrValidationInvalidValue => "Invalid value",
            ErrorCode::ErrValidationMalformedBody => "The request body could not be parsed",
            ErrorCode::ErrAuthenticationTypeNotSupported => "Authentication type not supported",
            ErrorCode::TokenExpired => "The access token expired or was revoked",
            ErrorCode::ErrXdkAuthenticationFailed => "0009 Authentication failed",
            ErrorCode::InvalidClient => "Invalid client credentials",
            ErrorCode::UnsupportedGrantType => "Only the client_credentials grant is supported",
            ErrorCode::ErrInternal => "Internal error",
            ErrorCode::ErrServiceUnavailable => "Service unavailable; try again",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_its_wire_name() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }

    #[test]
    fn only_platform_faults_and_quota_are_retryable() {
        let retryable: Vec<_> = ErrorCode::ALL.into_iter().filter(|c| c.retryable()).collect();
        assert_eq!(
            retryable,
            vec![ErrorCode::ErrXdkRateLimitExceeded, ErrorCode::ErrInternal, ErrorCode::ErrServiceUnavailable]
        );
    }
}
