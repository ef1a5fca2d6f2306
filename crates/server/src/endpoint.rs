//! Requests are parsed into an [`Endpoint`] before anything else looks at them.

use axum::http::Method;
use viewlog_protocol::{GET_VIEW_LOGS_PATH, RECORD_VIEWS_PATH};

/// Every route the server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /api/archive/get-view-logs`.
    GetViewLogs,
    /// `POST /api/viewlog/record-views`.
    RecordViews,
    /// `GET /healthz`.
    Health,
    /// `POST /api/login/discover-authentication` (unsigned).
    DiscoverAuthentication,
    /// `POST /api/login/login` (Basic-Cloud).
    Login,
    /// `POST /api/login/logout` (signed).
    Logout,
    /// `POST /oauth/token` (API 2.0 client credentials).
    OAuthToken,
}

/// A request no endpoint takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoRoute {
    /// Unknown path (404).
    NotFound,
    /// Known path, wrong method (405); the allowed method.
    MethodNotAllowed(&'static str),
}

impl Endpoint {
    /// Parses method and path. A trailing slash is ignored.
    pub fn parse(method: &Method, path: &str) -> Result<Endpoint, NoRoute> {
        let path = if path.len() > 1 { path.trim_end_matches('/') } else { path };
        let (endpoint, allowed) = match path {
            GET_VIEW_LOGS_PATH => (Endpoint::GetViewLogs, "POST"),
            RECORD_VIEWS_PATH => (Endpoint::RecordViews, "POST"),
            "/healthz" => (Endpoint::Health, "GET"),
            "/api/login/discover-authentication" => (Endpoint::DiscoverAuthentication, "POST"),
            "/api/login/login" => (Endpoint::Login, "POST"),
            "/api/login/logout" => (Endpoint::Logout, "POST"),
            "/oauth/token" => (Endpoint::OAuthToken, "POST"),
            _ => return Err(NoRoute::NotFound),
        };
        let ok = match endpoint {
            Endpoint::Health => method == Method::GET || method == Method::HEAD,
            _ => method == Method::POST,
        };
        if ok {
            Ok(endpoint)
        } else {
            Err(NoRoute::MethodNotAllowed(allowed))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(Endpoint::parse(&Method::POST, "/api/archive/get-view-logs"), Ok(Endpoint::GetViewLogs));
        assert_eq!(Endpoint::parse(&Method::POST, "/api/archive/get-view-logs/"), Ok(Endpoint::GetViewLogs));
        assert_eq!(Endpoint::parse(&Method::GET, "/api/archive/get-view-logs"), Err(NoRoute::MethodNotAllowed("POST")));
        assert_eq!(Endpoint::parse(&Method::POST, "/api/nope"), Err(NoRoute::NotFound));
        assert_eq!(Endpoint::parse(&Method::GET, "/healthz"), Ok(Endpoint::Health));
    }
}
