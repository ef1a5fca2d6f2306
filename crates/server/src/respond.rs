//! Writing successful answers, and the rate-limit headers every answer carries.

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use serde::Serialize;
use viewlog_core::query::ViewLogsPage;
use viewlog_protocol::envelope::Meta;
use viewlog_store::RateDecision;

/// The answer to get-view-logs: the envelope around the page's records, copied as they are.
pub fn view_logs(page: &ViewLogsPage) -> Response {
    let mut body = Vec::with_capacity(512 + page.records.len() * viewlog_store::wire::RECORD_BYTES);
    let meta = Meta { status: 200, pagination: Some(page.pagination.clone()) };
    body.extend_from_slice(b"{\"meta\":");
    let written = serde_json::to_writer(&mut body, &meta).and_then(|()| {
        body.extend_from_slice(b",\"data\":");
        page.records.write_array(&mut body);
        body.extend_from_slice(b",\"fail\":");
        serde_json::to_writer(&mut body, &page.fail)
    });
    match written {
        Ok(()) => {
            body.push(b'}');
            json_ok(body)
        }
        Err(e) => crate::error::HttpError::Api(viewlog_core::ApiError::Internal(e.to_string())).into_response(),
    }
}

/// A JSON 200 response from bytes.
pub fn json_ok(body: Vec<u8>) -> Response {
    let mut response = Response::new(axum::body::Body::from(body));
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A success envelope around arbitrary data items.
pub fn envelope<T: Serialize>(data: Vec<T>) -> Response {
    let envelope = viewlog_protocol::envelope::Envelope::ok(data, None);
    match serde_json::to_vec(&envelope) {
        Ok(body) => json_ok(body),
        Err(e) => crate::error::HttpError::Api(viewlog_core::ApiError::Internal(e.to_string())).into_response(),
    }
}

/// Adds `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` (milliseconds).
pub fn rate_headers(headers: &mut HeaderMap, rate: &RateDecision) {
    headers.insert("x-ratelimit-limit", HeaderValue::from(rate.limit));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(rate.remaining));
    headers.insert("x-ratelimit-reset", HeaderValue::from(rate.reset_ms));
}
