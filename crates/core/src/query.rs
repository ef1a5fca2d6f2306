//! Answering get-view-logs: defaults, snapshot, keyset paging and page tokens (PROTOCOL §1, §2).

use crate::auth::ReadGrant;
use crate::error::ApiError;
use crate::request::{read_view_logs_request, ViewLogsRequest};
use crate::token::{self, TokenState};
use crate::Service;
use serde_json::Value;
use viewlog_protocol::codes::ErrorCode;
use viewlog_protocol::envelope::{ErrorDetail, Fail, Pagination};
use viewlog_protocol::DEFAULT_PAGE_SIZE;
use viewlog_store::{Cursor, Direction, EventFilter, PageRequest, Store, UnixTime, WireRecords};

/// One page of view logs, ready to be written.
#[derive(Debug)]
pub struct ViewLogsPage {
    /// The records, newest first, as the wire writes them.
    pub records: WireRecords,
    /// `meta.pagination`.
    pub pagination: Pagination,
    /// `fail` entries for `data` items that were not answered.
    pub fail: Vec<Fail>,
}

/// The first and last second of the UTC day that holds `now`.
pub fn today(now: UnixTime) -> (UnixTime, UnixTime) {
    let start = now.div_euclid(86_400) * 86_400;
    (start, start + 86_399)
}

impl<S: Store> Service<S> {
    /// Answers a get-view-logs body for the account the grant is for.
    pub async fn get_view_logs(
        &self,
        grant: &ReadGrant,
        body: &Value,
        now: UnixTime,
    ) -> Result<ViewLogsPage, ApiError> {
        let request = read_view_logs_request(body)?;
        let account = grant.account();
        let mut page = match &request.page_token {
            Some(t) => {
                let mut state = token::decode(&self.vault.tokens, account, t).map_err(|_| {
                    ApiError::invalid(
                        None,
                        vec![ErrorDetail::new(ErrorCode::ErrValidationInvalidPageToken).field("pageToken")],
                    )
                })?;
                if let Some(n) = request.page_size {
                    state.page_size = n;
                }
                self.read_page(account, state).await?
            }
            None => self.first_page(account, &request, now).await?,
        };
        page.fail = request.extra_items;
        Ok(page)
    }

    /// A query's first page: the snapshot, the total and the records read together.
    async fn first_page(
        &self,
        account: viewlog_store::AccountId,
        request: &ViewLogsRequest,
        now: UnixTime,
    ) -> Result<ViewLogsPage, ApiError> {
        let (day_start, day_end) = today(now);
        let start = request.item.start.unwrap_or(day_start);
        let end = request.item.end.unwrap_or(day_end);
        if start > end {
            let key = request.item_key.clone();
            return Err(ApiError::invalid(
                key,
                vec![ErrorDetail::with_message(
                    ErrorCode::ErrValidationDateRange,
                    "start is after end (an omitted end means the end of today)",
                )
                .field("start")],
            ));
        }
        let page_size = request.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
        // The filter's snapshot is the store's to fix.
        let filter = EventFilter { start, end, text: request.item.text.clone(), snapshot: i64::MAX };
        let first = self.gate.run(self.store.first_wire_page(account, &filter, page_size + 1)).await?;
        let state = TokenState {
            text: filter.text,
            start,
            end,
            page_size,
            snapshot: first.snapshot,
            total: first.total,
            cursor: Cursor { viewed: i64::MAX, seq: i64::MAX },
            direction: Direction::Older,
        };
        Ok(self.finish_page(account, state, true, first.records))
    }

    /// A page that follows a token.
    async fn read_page(&self, account: viewlog_store::AccountId, state: TokenState) -> Result<ViewLogsPage, ApiError> {
        let request = PageRequest {
            filter: EventFilter {
                start: state.start,
                end: state.end,
                text: state.text.clone(),
                snapshot: state.snapshot,
            },
            cursor: Some(state.cursor),
            direction: state.direction,
            limit: state.page_size + 1,
        };
        let records = self.gate.run(self.store.wire_page(account, &request)).await?;
        Ok(self.finish_page(account, state, false, records))
    }

    /// The page of `records` (read with one more than the page size, to tell whether more
    /// exist) with its pagination and tokens.
    fn finish_page(
        &self,
        account: viewlog_store::AccountId,
        state: TokenState,
        first: bool,
        mut records: WireRecords,
    ) -> ViewLogsPage {
        let n = state.page_size as usize;
        let more = records.len() > n;
        let (has_next, has_previous) = match state.direction {
            Direction::Older => {
                records.truncate(n);
                (more, !first)
            }
            Direction::Newer => {
                if more {
                    // The extra record is the newest one, furthest from the cursor.
                    records.remove_first();
                }
                (true, more)
            }
        };
        let make = |cursor: Cursor, direction: Direction| {
            token::encode(&self.vault.tokens, account, &TokenState { cursor, direction, ..state.clone() })
        };
        let next = has_next.then(|| records.last_cursor().unwrap_or(state.cursor)).map(|c| make(c, Direction::Older));
        let previous =
            has_previous.then(|| records.first_cursor().unwrap_or(state.cursor)).map(|c| make(c, Direction::Newer));
        ViewLogsPage {
            records,
            pagination: Pagination { page_size: state.page_size, total_count: Some(state.total), next, previous },
            fail: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn today_covers_the_utc_day() {
        // 2015-11-24T12:50:11Z
        let (s, e) = super::today(1_448_369_411);
        assert_eq!(s, 1_448_323_200);
        assert_eq!(e, 1_448_323_200 + 86_399);
    }
}
