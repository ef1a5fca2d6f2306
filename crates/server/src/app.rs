//! The request pipeline: route, authenticate, read the body, run the operation, answer.

use crate::config::ServerConfig;
use crate::endpoint::Endpoint;
use crate::error::HttpError;
use crate::faults::{self, Fault};
use crate::respond;
use crate::signed;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::Request;
use axum::response::Response;
use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;
use viewlog_core::auth::Verified;
use viewlog_core::Service;
use viewlog_protocol::lenient;
use viewlog_protocol::records::RecordViewsResult;
use viewlog_store::{RateDecision, Store};

/// What every request handler shares.
#[derive(Debug)]
pub struct AppState<S> {
    /// The domain service.
    pub service: Service<S>,
    /// The server's settings.
    pub config: ServerConfig,
}

/// The whole HTTP application over a store.
pub fn router<S: Store>(state: Arc<AppState<S>>) -> Router {
    let cors = state.config.console_origin.as_deref().and_then(cors_layer);
    let router = Router::new().fallback(dispatch::<S>).with_state(state);
    let router = match cors {
        Some(cors) => router.layer(cors),
        None => router,
    };
    router.layer(tower_http::trace::TraceLayer::new_for_http())
}

/// CORS for the web console's origin only: methods GET and POST; headers `Authorization`,
/// `Content-Type` and `x-mc-*`; the rate-limit headers and `Retry-After` exposed. An origin that
/// cannot be a header value allows no cross-origin call.
fn cors_layer(origin: &str) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::{header, HeaderName, HeaderValue, Method};
    let origin = match HeaderValue::from_str(origin.trim().trim_end_matches('/')) {
        Ok(origin) => origin,
        Err(_) => {
            tracing::warn!(%origin, "the console origin is not a valid header value; cross-origin calls stay refused");
            return None;
        }
    };
    Some(
        tower_http::cors::CorsLayer::new()
            // A list, not an exact value: only a request from this origin gets the header.
            .allow_origin(tower_http::cors::AllowOrigin::list([origin]))
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("x-mc-app-id"),
                HeaderName::from_static("x-mc-date"),
                HeaderName::from_static("x-mc-req-id"),
            ])
            .expose_headers([
                HeaderName::from_static("x-ratelimit-limit"),
                HeaderName::from_static("x-ratelimit-remaining"),
                HeaderName::from_static("x-ratelimit-reset"),
                header::RETRY_AFTER,
            ])
            .max_age(std::time::Duration::from_secs(600)),
    )
}

async fn dispatch<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request<Body>,
) -> Response {
    let client = signed::client_address(&request, peer, state.config.trust_forwarded);
    let (rate, result) = match Endpoint::parse(request.method(), request.uri().path()) {
        Ok(Endpoint::Health) => return health(&state).await,
        Ok(endpoint) => match state.config.faults.draw() {
            Some(Fault::Refuse(status)) => return faults::refusal(status),
            Some(Fault::Slow(delay)) => {
                tokio::time::sleep(delay).await;
                handle(&state, endpoint, request, &client).await
            }
            Some(Fault::Drop) => {
                let (_, result) = handle(&state, endpoint, request, &client).await;
                return faults::cut_off(result.unwrap_or_else(HttpError::into_response));
            }
            None => handle(&state, endpoint, request, &client).await,
        },
        Err(no_route) => (state.service.charge_address(&client).await.ok(), Err(HttpError::from(no_route))),
    };
    let mut response = match result {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    if let Some(rate) = rate {
        respond::rate_headers(response.headers_mut(), &rate);
    }
    response
}

async fn health<S: Store>(state: &AppState<S>) -> Response {
    if state.service.healthy().await {
        respond::json_ok(br#"{"status":"ok"}"#.to_vec())
    } else {
        HttpError::Api(viewlog_core::ApiError::Unavailable("the database does not answer")).into_response()
    }
}

async fn handle<S: Store>(
    state: &AppState<S>,
    endpoint: Endpoint,
    request: Request<Body>,
    client: &str,
) -> (Option<RateDecision>, Result<Response, HttpError>) {
    let (parts, body) = request.into_parts();
    let now = viewlog_core::now();
    match endpoint {
        Endpoint::DiscoverAuthentication | Endpoint::Login | Endpoint::OAuthToken => {
            let rate = match state.service.charge_address(client).await {
                Ok(rate) => rate,
                Err(e) => return (None, Err(e.into())),
            };
            if !rate.allowed {
                return (Some(rate), Err(viewlog_core::ApiError::RateLimited(rate).into()));
            }
            let result = unsigned(state, endpoint, &parts, body, client, now).await;
            return (Some(rate), result);
        }
        _ => {}
    }
    let uris = signed::candidate_uris(&parts, &state.config);
    let signed = signed::signed_request(&parts.headers, &uris, client);
    let outcome = state.service.authenticate(&signed, now).await;
    let verified = match outcome.result {
        Ok(v) => v,
        Err(e) => return (outcome.rate, Err(e.into())),
    };
    let limit = match endpoint {
        Endpoint::RecordViews => state.config.ingest_body_limit,
        _ => state.config.query_body_limit,
    };
    let result = run(state, endpoint, &verified, body, limit, now).await;
    (outcome.rate, result)
}

async fn run<S: Store>(
    state: &AppState<S>,
    endpoint: Endpoint,
    verified: &Verified,
    body: Body,
    limit: usize,
    now: viewlog_store::UnixTime,
) -> Result<Response, HttpError> {
    match endpoint {
        Endpoint::GetViewLogs => {
            let grant = verified.grant_read()?;
            let body = read_body(body, limit).await?;
            let page = state.service.get_view_logs(&grant, &body, now).await?;
            Ok(respond::view_logs(&page))
        }
        Endpoint::RecordViews => {
            let grant = verified.grant_edit()?;
            let bytes = read_bytes(body, limit).await?;
            let large = bytes.len() >= crate::memory::TRIM_AFTER_BYTES;
            // Read without a tree of the body when it takes that path; the bytes are dropped
            // before the events are stored.
            let outcome = state.service.record_views_body(&grant, bytes).await.map_err(HttpError::from);
            if large {
                // The body, its tree and its events are freed by now.
                crate::memory::trim_soon();
            }
            let outcome = outcome?;
            Ok(respond::envelope(vec![RecordViewsResult {
                inserted: outcome.inserted,
                duplicates: outcome.duplicates,
            }]))
        }
        Endpoint::Logout => {
            let body = read_body(body, limit).await?;
            let access_key = state.service.logout(verified, &body).await?;
            Ok(respond::envelope(vec![serde_json::json!({ "accessKey": access_key })]))
        }
        Endpoint::Health => Ok(health(state).await),
        Endpoint::DiscoverAuthentication | Endpoint::Login | Endpoint::OAuthToken => Err(HttpError::NotFound),
    }
}

/// The calls that carry no signature: discovery, sign-in and the token endpoint.
async fn unsigned<S: Store>(
    state: &AppState<S>,
    endpoint: Endpoint,
    parts: &axum::http::request::Parts,
    body: Body,
    client: &str,
    now: viewlog_store::UnixTime,
) -> Result<Response, HttpError> {
    let limit = state.config.query_body_limit;
    match endpoint {
        Endpoint::DiscoverAuthentication => {
            let body = read_body(body, limit).await?;
            let base = signed::base_url(parts, &state.config);
            let answer = state.service.discover_authentication(&body, &base).await?;
            Ok(respond::envelope(vec![answer]))
        }
        Endpoint::Login => {
            let body = read_body(body, limit).await?;
            let h = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
            let req = viewlog_core::login::LoginRequest {
                authorization: h("authorization"),
                app_id: h("x-mc-app-id"),
                date: h("x-mc-date"),
                request_id: h("x-mc-req-id"),
                client_addr: client,
            };
            let answer = state.service.login(&req, &body, now).await?;
            Ok(respond::envelope(vec![answer.to_json()]))
        }
        Endpoint::OAuthToken => {
            let bytes = read_bytes(body, limit).await?;
            let req = signed::token_request(parts, &bytes);
            let token = state.service.issue_token(&req, now).await?;
            let mut response = respond::json_ok(serde_json::to_vec(&token).unwrap_or_default());
            response
                .headers_mut()
                .insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
            Ok(response)
        }
        _ => Err(HttpError::NotFound),
    }
}

/// Reads the body within `limit` and parses it tolerantly.
async fn read_body(body: Body, limit: usize) -> Result<serde_json::Value, HttpError> {
    parse_body(&read_bytes(body, limit).await?)
}

/// A body read by the tolerant reader.
fn parse_body(bytes: &[u8]) -> Result<serde_json::Value, HttpError> {
    lenient::parse_body(bytes).map_err(|e| HttpError::Api(viewlog_core::ApiError::MalformedBody(e.to_string())))
}

/// Reads the body within `limit`.
async fn read_bytes(body: Body, limit: usize) -> Result<bytes::Bytes, HttpError> {
    match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => Ok(bytes),
        Err(e) => {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.downcast_ref::<http_body_util::LengthLimitError>().is_some());
            Err(if too_large {
                HttpError::TooLarge(limit)
            } else {
                HttpError::Api(viewlog_core::ApiError::MalformedBody(format!("the body could not be read: {e}")))
            })
        }
    }
}
