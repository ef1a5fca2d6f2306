//! Reading a get-view-logs request body into a query (PROTOCOL §1, §6), tolerantly: `null`
//! means absent, page sizes may be strings, unknown keys are ignored.

use crate::error::ApiError;
use serde_json::{Map, Value};
use viewlog_protocol::codes::ErrorCode;
use viewlog_protocol::dates::{self, Bound};
use viewlog_protocol::envelope::{ErrorDetail, Fail};
use viewlog_protocol::MAX_PAGE_SIZE;
use viewlog_store::UnixTime;

/// The filters of one query as the request gave them (before defaults).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryItem {
    /// The text filter; `None` or empty for none.
    pub text: Option<String>,
    /// The start bound, if given.
    pub start: Option<UnixTime>,
    /// The end bound, if given.
    pub end: Option<UnixTime>,
}

/// A get-view-logs request, read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ViewLogsRequest {
    /// The page size asked for, already clamped to the maximum.
    pub page_size: Option<u32>,
    /// The page token, if any.
    pub page_token: Option<String>,
    /// The first `data` item.
    pub item: QueryItem,
    /// The first `data` item as sent, echoed as the `key` of its failures.
    pub item_key: Option<Value>,
    /// `fail` entries for every further `data` item.
    pub extra_items: Vec<Fail>,
}

/// `null` and absence are the same.
fn field<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name).filter(|v| !v.is_null())
}

/// Reads the page size: a positive whole number, or a string of one; clamped to 500.
pub fn read_page_size(value: &Value) -> Result<u32, ErrorDetail> {
    let bad = || ErrorDetail::new(ErrorCode::ErrValidationInvalidPageSize).field("pageSize");
    let n: i128 = match value {
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i as i128,
            (None, Some(u), _) => u as i128,
            // A whole number written as a float (`25.0`), or one too large for 64 bits (JSON
            // reads those as floats); `as` saturates.
            (None, None, Some(f)) if f.fract() == 0.0 => f as i128,
            _ => return Err(bad()),
        },
        Value::String(s) => {
            let s = s.trim();
            let digits = s.strip_prefix('+').unwrap_or(s);
            match s.parse::<i128>() {
                Ok(n) => n,
                // Only digits, yet too many for any integer: a larger number, clamped below.
                Err(_) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => i128::MAX,
                Err(_) => return Err(bad()),
            }
        }
        _ => return Err(bad()),
    };
    if n <= 0 {
        return Err(bad());
    }
    Ok(n.min(MAX_PAGE_SIZE as i128) as u32)
}

fn read_date(obj: &Map<String, Value>, name: &str, bound: Bound, errors: &mut Vec<ErrorDetail>) -> Option<UnixTime> {
    match field(obj, name)? {
        Value::String(s) if s.trim().is_empty() => {
            errors
                .push(ErrorDetail::with_message(ErrorCode::ErrValidationBlank, format!("{name} is blank")).field(name));
            None
        }
        Value::String(s) => match dates::parse_body_date(s.trim(), bound) {
            Ok(t) => Some(t),
            Err(_) => {
                errors.push(
                    ErrorDetail::with_message(
                        ErrorCode::ErrValidationInvalidDate,
                        format!("{name} {s:?} is not a date such as 2016-12-01T00:00:00+0000"),
                    )
                    .field(name),
                );
                None
            }
        },
        _ => {
            errors.push(
                ErrorDetail::with_message(ErrorCode::ErrValidationInvalidDate, format!("{name} must be a date string"))
                    .field(name),
            );
            None
        }
    }
}

fn read_item(item: &Value) -> Result<QueryItem, Vec<ErrorDetail>> {
    let empty = Map::new();
    let obj = match item {
        Value::Object(obj) => obj,
        Value::Null => &empty,
        _ => {
            return Err(vec![ErrorDetail::with_message(
                ErrorCode::ErrValidationInvalidValue,
                "a data item must be an object",
            )])
        }
    };
    let mut errors = Vec::new();
    let text = match field(obj, "query") {
        None => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            errors.push(
                ErrorDetail::with_message(ErrorCode::ErrValidationInvalidValue, "query must be a string")
                    .field("query"),
            );
            None
        }
    };
    let start = read_date(obj, "start", Bound::Start, &mut errors);
    let end = read_date(obj, "end", Bound::End, &mut errors);
    if let (Some(s), Some(e)) = (start, end) {
        if s > e {
            errors.push(
                ErrorDetail::with_message(ErrorCode::ErrValidationDateRange, "start is after end").field("start"),
            );
        }
    }
    if errors.is_empty() {
        Ok(QueryItem { text, start, end })
    } else {
        Err(errors)
    }
}

/// Reads a get-view-logs body (already parsed by the tolerant reader).
pub fn read_view_logs_request(body: &Value) -> Result<ViewLogsRequest, ApiError> {
    let empty = Map::new();
    let top = match body {
        Value::Object(obj) => obj,
        Value::Null => &empty,
        _ => return Err(ApiError::MalformedBody("the body must be an object".into())),
    };
    let mut request = ViewLogsRequest::default();
    let mut top_errors = Vec::new();

    if let Some(meta) = field(top, "meta") {
        match meta {
            Value::Object(meta) => {
                if let Some(pagination) = field(meta, "pagination") {
                    match pagination {
                        Value::Object(p) => {
                            if let Some(size) = field(p, "pageSize") {
                                match read_page_size(size) {
                                    Ok(n) => request.page_size = Some(n),
                                    Err(e) => top_errors.push(e),
                                }
                            }
                            match field(p, "pageToken") {
                                None => {}
                                Some(Value::String(t)) if t.trim().is_empty() => {}
                                Some(Value::String(t)) => request.page_token = Some(t.clone()),
                                Some(_) => top_errors.push(
                                    ErrorDetail::new(ErrorCode::ErrValidationInvalidPageToken).field("pageToken"),
                                ),
                            }
                        }
                        _ => top_errors.push(
                            ErrorDetail::with_message(
                                ErrorCode::ErrValidationInvalidValue,
                                "pagination must be an object",
                            )
                            .field("pagination"),
                        ),
                    }
                }
            }
            _ => top_errors.push(
                ErrorDetail::with_message(ErrorCode::ErrValidationInvalidValue, "meta must be an object").field("meta"),
            ),
        }
    }

    let items: &[Value] = match field(top, "data") {
        None => &[],
        Some(Value::Array(items)) => items,
        Some(_) => {
            top_errors.push(
                ErrorDetail::with_message(ErrorCode::ErrValidationInvalidValue, "data must be a list").field("data"),
            );
            &[]
        }
    };
    if !top_errors.is_empty() {
        return Err(ApiError::invalid(None, top_errors));
    }
    if let Some(first) = items.first() {
        request.item_key = Some(first.clone());
        match read_item(first) {
            Ok(item) => request.item = item,
            Err(errors) => return Err(ApiError::invalid(Some(first.clone()), errors)),
        }
    }
    request.extra_items = items
        .iter()
        .skip(1)
        .map(|item| Fail::one(Some(item.clone()), ErrorDetail::new(ErrorCode::ErrValidationMultipleItems)))
        .collect();
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn codes(e: ApiError) -> Vec<String> {
        e.fails().into_iter().flat_map(|f| f.errors.into_iter().map(|e| e.code)).collect()
    }

    #[test]
    fn empty_forms_all_mean_defaults() {
        for body in [json!(null), json!({}), json!({"data": []}), json!({"data": [{}]}), json!({"data": null})] {
            let r = read_view_logs_request(&body).unwrap();
            assert_eq!(r.item, QueryItem::default(), "{body}");
            assert_eq!(r.page_size, None);
        }
    }

    #[test]
    fn page_size_is_lenient_and_clamped() {
        let r = read_view_logs_request(&json!({"meta": {"pagination": {"pageSize": "100"}}})).unwrap();
        assert_eq!(r.page_size, Some(100));
        let r = read_view_logs_request(&json!({"meta": {"pagination": {"pageSize": 9000}}})).unwrap();
        assert_eq!(r.page_size, Some(500));
        let r =
            read_view_logs_request(&json!({"meta": {"pagination": {"page_size": null, "pageToken": "x"}}})).unwrap();
        assert_eq!(r.page_token.as_deref(), Some("x"));
        let huge = format!("1{}", "0".repeat(40));
        for big in [json!(huge), serde_json::from_str::<Value>(&huge).unwrap(), json!(u64::MAX), json!(1e300)] {
            let r = read_view_logs_request(&json!({"meta": {"pagination": {"pageSize": big}}})).unwrap();
            assert_eq!(r.page_size, Some(500));
        }
        let r = read_view_logs_request(&json!({"meta": {"pagination": {"pageSize": 30.0}}})).unwrap();
        assert_eq!(r.page_size, Some(30));
        for bad in [
            json!(0),
            json!(-1),
            json!("ten"),
            json!(2.5),
            json!(true),
            json!(-0.0),
            json!(-1e300),
            json!("+"),
            json!("-1"),
        ] {
            let e = read_view_logs_request(&json!({"meta": {"pagination": {"pageSize": bad}}})).unwrap_err();
            assert_eq!(codes(e), vec!["err_validation_invalid_page_size"]);
        }
    }

    #[test]
    fn dates_and_ranges_are_checked() {
        let r = read_view_logs_request(&json!({"data": [{"start": "2016-12-01", "end": "2016-12-01"}]})).unwrap();
        assert_eq!(r.item.end.unwrap() - r.item.start.unwrap(), 86_399);
        let e = read_view_logs_request(&json!({"data": [{"start": "yesterday"}]})).unwrap_err();
        assert_eq!(codes(e), vec!["err_validation_invalid_date"]);
        let e = read_view_logs_request(&json!({"data": [{"start": "2016-12-02", "end": "2016-12-01"}]})).unwrap_err();
        assert_eq!(codes(e), vec!["err_validation_date_range"]);
    }

    #[test]
    fn further_items_each_get_a_fail_entry() {
        let r = read_view_logs_request(&json!({"data": [{"query": "a"}, {"query": "b"}, {"query": "c"}]})).unwrap();
        assert_eq!(r.item.text.as_deref(), Some("a"));
        assert_eq!(r.extra_items.len(), 2);
        assert_eq!(r.extra_items[0].key, Some(json!({"query": "b"})));
    }

    #[test]
    fn a_body_that_is_not_an_object_is_malformed() {
        assert!(matches!(read_view_logs_request(&json!([1])), Err(ApiError::MalformedBody(_))));
    }
}
