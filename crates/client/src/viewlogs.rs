//! get-view-logs: one page, every page, every record.

use crate::client::Client;
use crate::error::ClientError;
use futures::stream::{self, Stream, TryStreamExt};
use serde_json::{json, Value};
use viewlog_protocol::dates::format_date;
use viewlog_protocol::records::{RecordViewsResult, ViewEventIn, ViewLogRecord};
use viewlog_protocol::{GET_VIEW_LOGS_PATH, RECORD_VIEWS_PATH};

/// Which records to ask for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ViewLogFilter {
    /// Inclusive lower bound on `viewed` (Unix seconds); the server's default (today) if `None`.
    pub start: Option<i64>,
    /// Inclusive upper bound on `viewed`; the server's default (end of today) if `None`.
    pub end: Option<i64>,
    /// Case-insensitive text filter.
    pub query: Option<String>,
    /// Records per page (the server clamps to 500); the server's default (25) if `None`.
    pub page_size: Option<u32>,
}

/// One page of records.
#[derive(Debug, Clone)]
pub struct Page {
    /// The records, newest first.
    pub records: Vec<ViewLogRecord>,
    /// The token of the next page, when there is one.
    pub next: Option<String>,
    /// The total the server reports, when it does.
    pub total_count: Option<u64>,
}

impl ViewLogFilter {
    /// The request body for this filter and, optionally, a page token. The filter is sent with
    /// every page (Mimecast wants it re-sent; viewlog follows the token's own).
    pub fn body(&self, page_token: Option<&str>) -> Value {
        let mut item = serde_json::Map::new();
        if let Some(s) = self.start {
            item.insert("start".into(), Value::String(format_date(s)));
        }
        if let Some(e) = self.end {
            item.insert("end".into(), Value::String(format_date(e)));
        }
        if let Some(q) = &self.query {
            item.insert("query".into(), Value::String(q.clone()));
        }
        let mut pagination = serde_json::Map::new();
        if let Some(n) = self.page_size {
            pagination.insert("pageSize".into(), json!(n));
        }
        if let Some(t) = page_token {
            pagination.insert("pageToken".into(), Value::String(t.to_owned()));
        }
        json!({"meta": {"pagination": pagination}, "data": [item]})
    }
}

impl Client {
    /// One page: the first (no token) or the one a token names.
    pub async fn view_logs_page(&self, filter: &ViewLogFilter, page_token: Option<&str>) -> Result<Page, ClientError> {
        let envelope = self.call::<ViewLogRecord>(GET_VIEW_LOGS_PATH, &filter.body(page_token)).await?;
        let pagination = envelope.meta.pagination;
        Ok(Page {
            records: envelope.data,
            next: pagination.as_ref().and_then(|p| p.next.clone()).filter(|t| !t.is_empty()),
            total_count: pagination.and_then(|p| p.total_count),
        })
    }

    /// Every page of a query, following `next` to the end; stops on an empty page too. Holds
    /// one page in memory at a time.
    pub fn view_logs_pages<'a>(&'a self, filter: ViewLogFilter) -> impl Stream<Item = Result<Page, ClientError>> + 'a {
        enum State {
            Start,
            Next(String),
            Done,
        }
        stream::try_unfold((State::Start, filter), move |(state, filter)| async move {
            let token = match state {
                State::Done => return Ok(None),
                State::Start => None,
                State::Next(t) => Some(t),
            };
            let page = self.view_logs_page(&filter, token.as_deref()).await?;
            let next = match (&page.next, page.records.is_empty()) {
                (Some(t), false) => State::Next(t.clone()),
                _ => State::Done,
            };
            Ok(Some((page, (next, filter))))
        })
    }

    /// Every record of a query, newest first.
    pub fn view_logs<'a>(
        &'a self,
        filter: ViewLogFilter,
    ) -> impl Stream<Item = Result<ViewLogRecord, ClientError>> + 'a {
        self.view_logs_pages(filter).map_ok(|p| stream::iter(p.records.into_iter().map(Ok))).try_flatten()
    }

    /// Records a batch of view events (viewlog's ingest endpoint).
    pub async fn record_views(&self, events: &[ViewEventIn]) -> Result<RecordViewsResult, ClientError> {
        let body = json!({ "data": events });
        let envelope = self.call::<RecordViewsResult>(RECORD_VIEWS_PATH, &body).await?;
        envelope
            .data
            .into_iter()
            .next()
            .ok_or_else(|| ClientError::Decode { status: 200, reason: "record-views answered no data".into() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_resends_the_filter_with_the_token() {
        let f = ViewLogFilter { start: Some(0), end: Some(86_399), query: Some("x".into()), page_size: Some(100) };
        let b = f.body(Some("tok"));
        assert_eq!(b["data"][0]["start"], "1970-01-01T00:00:00+0000");
        assert_eq!(b["data"][0]["end"], "1970-01-01T23:59:59+0000");
        assert_eq!(b["meta"]["pagination"]["pageToken"], "tok");
        assert_eq!(b["meta"]["pagination"]["pageSize"], 100);
        let b = ViewLogFilter::default().body(None);
        assert_eq!(b, json!({"meta": {"pagination": {}}, "data": [{}]}));
    }
}
