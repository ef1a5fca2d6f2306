//! The response envelope: `{"meta": {...}, "data": [...], "fail": [...]}` (PROTOCOL §1, §4).

use crate::codes::ErrorCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A whole response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// Status and pagination.
    pub meta: Meta,
    /// The records (empty on failure).
    #[serde(default = "Vec::new")]
    pub data: Vec<T>,
    /// Failures; always present, empty on success.
    #[serde(default = "Vec::new")]
    pub fail: Vec<Fail>,
}

impl<T> Envelope<T> {
    /// A successful response.
    pub fn ok(data: Vec<T>, pagination: Option<Pagination>) -> Self {
        Envelope { meta: Meta { status: 200, pagination }, data, fail: Vec::new() }
    }

    /// An error response: no data, the given failures.
    pub fn failed(status: u16, fail: Vec<Fail>) -> Self {
        Envelope { meta: Meta { status, pagination: None }, data: Vec::new(), fail }
    }
}

/// The `meta` object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// The HTTP status, repeated.
    pub status: u16,
    /// Paging state, on paged answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagination: Option<Pagination>,
}

/// The `meta.pagination` object of an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pagination {
    /// The effective page size.
    pub page_size: u32,
    /// How many records the whole query matches (in its snapshot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_count: Option<u64>,
    /// The token of the next (older) page, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// The token of the previous (newer) page, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
}

/// One `fail` entry: the offending `data` item (where there is one) and its errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fail {
    /// The `data` item the errors are about; absent for auth, rate-limit and body errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Value>,
    /// What went wrong.
    pub errors: Vec<ErrorDetail>,
}

impl Fail {
    /// A failure with one error.
    pub fn one(key: Option<Value>, error: ErrorDetail) -> Self {
        Fail { key, errors: vec![error] }
    }
}

/// One error inside a `fail` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// The wire code (`err_xdk_invalid_signature`, …). Kept as a string so that a client can
    /// read codes this catalogue does not know.
    pub code: String,
    /// A human-readable message.
    pub message: String,
    /// Whether sending the same request again later may succeed.
    pub retryable: bool,
    /// The offending field, for validation errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ErrorDetail {
    /// An error with the code's default message.
    pub fn new(code: ErrorCode) -> Self {
        Self::with_message(code, code.default_message())
    }

    /// An error with a specific message.
    pub fn with_message(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorDetail {
            code: code.as_str().to_owned(),
            message: message.into(),
            retryable: code.retryable(),
            field: None,
        }
    }

    /// Names the offending field.
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// The code, if this catalogue knows it.
    pub fn known_code(&self) -> Option<ErrorCode> {
        ErrorCode::parse(&self.code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_envelope_always_has_fail() {
        let env: Envelope<Value> = Envelope::ok(vec![], None);
        let text = serde_json::to_string(&env).unwrap();
        assert_eq!(text, r#"{"meta":{"status":200},"data":[],"fail":[]}"#);
    }

    #[test]
    fn error_envelope_has_the_documented_shape() {
        let env: Envelope<Value> =
            Envelope::failed(401, vec![Fail::one(None, ErrorDetail::new(ErrorCode::ErrXdkInvalidSignature))]);
        let text = serde_json::to_string(&env).unwrap();
        assert_eq!(
            text,
            r#"{"meta":{"status":401},"data":[],"fail":[{"errors":[{"code":"err_xdk_invalid_signature","message":"0004 Invalid Signature","retryable":false}]}]}"#
        );
    }
}
