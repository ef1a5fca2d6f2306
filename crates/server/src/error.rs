//! The HTTP layer's error type, and the one place where any failure becomes a Mimecast
//! envelope with its status.

use crate::endpoint::NoRoute;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use viewlog_core::ApiError;
use viewlog_protocol::codes::ErrorCode;
use viewlog_protocol::envelope::{Envelope, ErrorDetail, Fail};

/// Why a request failed at the HTTP layer.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The domain refused or failed the call.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// No endpoint at this path.
    #[error("no such endpoint")]
    NotFound,
    /// The endpoint takes another method.
    #[error("method not allowed; use {0}")]
    MethodNotAllowed(&'static str),
    /// The body is over the endpoint's limit.
    #[error("body over {0} bytes")]
    TooLarge(usize),
}

impl From<NoRoute> for HttpError {
    fn from(r: NoRoute) -> Self {
        match r {
            NoRoute::NotFound => HttpError::NotFound,
            NoRoute::MethodNotAllowed(m) => HttpError::MethodNotAllowed(m),
        }
    }
}

impl HttpError {
    fn code(&self) -> ErrorCode {
        match self {
            HttpError::Api(e) => e.code(),
            HttpError::NotFound => ErrorCode::ErrNotFound,
            HttpError::MethodNotAllowed(_) => ErrorCode::ErrMethodNotAllowed,
            HttpError::TooLarge(_) => ErrorCode::ErrRequestTooLarge,
        }
    }

    fn fails(&self) -> Vec<Fail> {
        match self {
            HttpError::Api(e) => e.fails(),
            HttpError::TooLarge(limit) => vec![Fail::one(
                None,
                ErrorDetail::with_message(
                    ErrorCode::ErrRequestTooLarge,
                    format!("Request body larger than {limit} bytes"),
                ),
            )],
            HttpError::MethodNotAllowed(m) => vec![Fail::one(
                None,
                ErrorDetail::with_message(ErrorCode::ErrMethodNotAllowed, format!("Method not allowed; use {m}")),
            )],
            other => vec![Fail::one(None, ErrorDetail::new(other.code()))],
        }
    }

    /// The response: the code's HTTP status and the error envelope. Internal details are logged
    /// here and never sent.
    pub fn into_response(self) -> Response {
        let code = self.code();
        if code == ErrorCode::ErrInternal {
            tracing::error!(error = %self, "internal error");
        } else {
            tracing::debug!(error = %self, "request refused");
        }
        let status = code.http_status();
        let envelope: Envelope<()> = Envelope::failed(status, self.fails());
        let body = serde_json::to_vec(&envelope).unwrap_or_else(|_| b"{}".to_vec());
        let mut response = Response::new(axum::body::Body::from(body));
        *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(secs) = match &self {
            HttpError::Api(e) => e.retry_after(),
            _ => None,
        } {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let HttpError::MethodNotAllowed(m) = self {
            response.headers_mut().insert(header::ALLOW, HeaderValue::from_static(m));
        }
        response
    }
}
