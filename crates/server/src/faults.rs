//! Fault injection (`viewlog serve --faults`), for testing collectors: a share of API requests
//! is answered 429, 500 or 418, slowed down, or has its connection dropped mid-answer.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use rand::Rng;
use std::time::Duration;
use viewlog_core::ApiError;
use viewlog_store::RateDecision;

/// The share of requests (0.0 to 1.0) each fault hits.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Faults {
    /// Answered 429 with `X-RateLimit-Reset` (the request does not run).
    pub rate_limited: f64,
    /// Answered 500 (the request does not run).
    pub internal: f64,
    /// Answered 418 binding expired (the request does not run).
    pub binding_expired: f64,
    /// Delayed by `slow_ms` before running.
    pub slow: f64,
    /// How long a slow request is delayed, in milliseconds.
    pub slow_ms: u64,
    /// Run, then the connection is dropped in the middle of the answer.
    pub drop: f64,
}

/// What to do with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this error instead of running.
    Refuse(u16),
    /// Sleep, then run.
    Slow(Duration),
    /// Run, then cut the answer off.
    Drop,
}

impl Faults {
    /// Reads `429=0.1,500=0.05,418=0.01,slow=0.1,slow-ms=2000,drop=0.05` (any subset).
    pub fn parse(spec: &str) -> Result<Faults, String> {
        let mut f = Faults { slow_ms: 2000, ..Default::default() };
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part.split_once('=').ok_or_else(|| format!("{part:?}: expected NAME=VALUE"))?;
            if key.trim() == "slow-ms" {
                f.slow_ms = value.trim().parse().map_err(|_| format!("{part:?}: slow-ms takes milliseconds"))?;
                continue;
            }
            let rate: f64 = value.trim().parse().map_err(|_| format!("{part:?}: the rate must be a number"))?;
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{part:?}: the rate must be between 0 and 1"));
            }
            match key.trim() {
                "429" => f.rate_limited = rate,
                "500" => f.internal = rate,
                "418" => f.binding_expired = rate,
                "slow" => f.slow = rate,
                "drop" => f.drop = rate,
                other => return Err(format!("unknown fault {other:?}; faults are 429, 500, 418, slow, slow-ms, drop")),
            }
        }
        if f.rate_limited + f.internal + f.binding_expired + f.slow + f.drop > 1.0 {
            return Err("the fault rates add up to more than 1".into());
        }
        Ok(f)
    }

    /// Whether any fault is on.
    pub fn any(&self) -> bool {
        self.rate_limited + self.internal + self.binding_expired + self.slow + self.drop > 0.0
    }

    /// Draws the fault for one request, if any.
    pub fn draw(&self) -> Option<Fault> {
        if !self.any() {
            return None;
        }
        let roll: f64 = rand::thread_rng().gen();
        let mut edge = 0.0;
        for (rate, fault) in [
            (self.rate_limited, Fault::Refuse(429)),
            (self.internal, Fault::Refuse(500)),
            (self.binding_expired, Fault::Refuse(418)),
            (self.slow, Fault::Slow(Duration::from_millis(self.slow_ms))),
            (self.drop, Fault::Drop),
        ] {
            edge += rate;
            if roll < edge {
                return Some(fault);
            }
        }
        None
    }
}

/// The error answer of a refusing fault.
pub fn refusal(status: u16) -> Response {
    let error = match status {
        429 => ApiError::RateLimited(RateDecision { allowed: false, limit: 1000, remaining: 0, reset_ms: 250 }),
        418 => ApiError::BindingExpired,
        _ => ApiError::Internal("injected fault".into()),
    };
    let mut response = crate::error::HttpError::Api(error).into_response();
    if status == 429 {
        crate::respond::rate_headers(
            response.headers_mut(),
            &RateDecision { allowed: false, limit: 1000, remaining: 0, reset_ms: 250 },
        );
    }
    response
}

/// Replaces an answer's body with its first bytes followed by a broken stream, so the client
/// sees the connection drop in the middle of the answer.
pub fn cut_off(response: Response) -> Response {
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    parts.headers.insert("x-viewlog-fault", HeaderValue::from_static("drop"));
    parts.status = StatusCode::OK;
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = vec![
        Ok(bytes::Bytes::from_static(b"{\"meta\":{\"status\":200,")),
        Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "injected fault: connection dropped")),
    ];
    Response::from_parts(parts, Body::from_stream(futures::stream::iter(chunks)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_are_checked() {
        let f = Faults::parse("429=0.1, 500=0.05,slow=0.2,slow-ms=1500,drop=0.05").unwrap();
        assert_eq!((f.rate_limited, f.internal, f.slow, f.slow_ms, f.drop), (0.1, 0.05, 0.2, 1500, 0.05));
        assert!(Faults::parse("404=0.1").is_err());
        assert!(Faults::parse("429=2").is_err());
        assert!(Faults::parse("429=0.6,500=0.6").is_err());
        assert!(Faults::parse("").unwrap().draw().is_none());
        let always = Faults::parse("500=1").unwrap();
        assert_eq!(always.draw(), Some(Fault::Refuse(500)));
    }
}
