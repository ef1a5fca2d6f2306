//! Writing successful answers, and the rate-limit headers every answer carries.

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Serialize, Serializer};
use viewlog_core::query::ViewLogsPage;
use viewlog_protocol::dates::{format_date, write_date, DATE_LEN};
use viewlog_protocol::envelope::Meta;
use viewlog_store::{RateDecision, StoredEvent};

/// A stored event written as a wire record, without building an intermediate record.
struct RecordRef<'a>(&'a StoredEvent);

impl Serialize for RecordRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = &self.0.event;
        let mut m = s.serialize_map(Some(9))?;
        m.serialize_entry("from", &e.from)?;
        m.serialize_entry("to", &e.to)?;
        m.serialize_entry("viewer", &e.viewer)?;
        m.serialize_entry("source", &e.source)?;
        m.serialize_entry("contentViewed", &e.content_viewed)?;
        m.serialize_entry("discoveryCase", &e.discovery_case)?;
        m.serialize_entry("messageDate", &Date(e.message_date))?;
        m.serialize_entry("viewed", &Date(e.viewed))?;
        m.serialize_entry("subject", &e.subject)?;
        m.end()
    }
}

/// A date written as the protocol writes it, without allocating where it can.
struct Date(i64);

impl Serialize for Date {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; DATE_LEN];
        match write_date(self.0, &mut buf) {
            Some(text) => s.serialize_str(text),
            None => s.serialize_str(&format_date(self.0)),
        }
    }
}

struct Records<'a>(&'a [StoredEvent]);

impl Serialize for Records<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(RecordRef))
    }
}

struct PageBody<'a>(&'a ViewLogsPage);

impl Serialize for PageBody<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Envelope", 3)?;
        st.serialize_field("meta", &Meta { status: 200, pagination: Some(self.0.pagination.clone()) })?;
        st.serialize_field("data", &Records(&self.0.records))?;
        st.serialize_field("fail", &self.0.fail)?;
        st.end()
    }
}

/// A JSON 200 response from bytes.
pub fn json_ok(body: Vec<u8>) -> Response {
    let mut response = Response::new(axum::body::Body::from(body));
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The answer to get-view-logs.
pub fn view_logs(page: &ViewLogsPage) -> Response {
    let mut body = Vec::with_capacity(512 + page.records.len() * 320);
    match serde_json::to_writer(&mut body, &PageBody(page)) {
        Ok(()) => json_ok(body),
        Err(e) => crate::error::HttpError::Api(viewlog_core::ApiError::Internal(e.to_string())).into_response(),
    }
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
