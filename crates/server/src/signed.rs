//! Lifting the signed parts out of an HTTP request, for the domain's signature check.

use crate::config::ServerConfig;
use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Request};
use std::net::SocketAddr;
use viewlog_core::auth::SignedRequest;

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The client's address: the peer, or with `trust_forwarded` the first `X-Forwarded-For` entry.
pub fn client_address(request: &Request<Body>, peer: SocketAddr, trust_forwarded: bool) -> String {
    if trust_forwarded {
        if let Some(first) = header(request.headers(), "x-forwarded-for").and_then(|v| v.split(',').next()) {
            let first = first.trim();
            if !first.is_empty() {
                return first.to_owned();
            }
        }
    }
    peer.ip().to_string()
}

/// Every URI the client may have signed: the path; the absolute URL as the `Host` header (or,
/// behind a trusted proxy, `X-Forwarded-Host`/`-Proto`) spells it, in both schemes; and the
/// configured public base URL with the path.
pub fn candidate_uris(parts: &Parts, config: &ServerConfig) -> Vec<String> {
    let path = parts.uri.path();
    let mut uris = vec![path.to_owned()];
    let forwarded_host = config.trust_forwarded.then(|| header(&parts.headers, "x-forwarded-host")).flatten();
    let host = forwarded_host.or_else(|| header(&parts.headers, "host")).or(parts.uri.authority().map(|a| a.as_str()));
    if let Some(host) = host {
        let proto = config.trust_forwarded.then(|| header(&parts.headers, "x-forwarded-proto")).flatten();
        match proto {
            Some(p) => uris.push(format!("{p}://{host}{path}")),
            None => {
                uris.push(format!("http://{host}{path}"));
                uris.push(format!("https://{host}{path}"));
            }
        }
    }
    if let Some(base) = &config.public_base_url {
        uris.push(format!("{}{path}", base.trim_end_matches('/')));
    }
    uris
}

/// The signed request the domain checks.
pub fn signed_request<'a>(headers: &'a HeaderMap, uris: &'a [String], client: &'a str) -> SignedRequest<'a> {
    SignedRequest {
        date: header(headers, "x-mc-date"),
        request_id: header(headers, "x-mc-req-id"),
        app_id: header(headers, "x-mc-app-id"),
        authorization: header(headers, "authorization"),
        uris,
        client_addr: client,
    }
}

/// This server's base URL as the client reached it: the configured public base URL, or the
/// `Host` (and, behind a trusted proxy, `X-Forwarded-*`) header.
pub fn base_url(parts: &Parts, config: &ServerConfig) -> String {
    if let Some(base) = &config.public_base_url {
        return base.trim_end_matches('/').to_owned();
    }
    let forwarded_host = config.trust_forwarded.then(|| header(&parts.headers, "x-forwarded-host")).flatten();
    let host = forwarded_host.or_else(|| header(&parts.headers, "host")).unwrap_or("localhost");
    let proto = config.trust_forwarded.then(|| header(&parts.headers, "x-forwarded-proto")).flatten().unwrap_or("http");
    format!("{proto}://{host}")
}

/// The fields of an `/oauth/token` request: the form body, with the client id and secret also
/// accepted from HTTP Basic authentication (RFC 6749 §2.3.1).
pub fn token_request(parts: &Parts, body: &[u8]) -> viewlog_core::oauth::TokenRequest {
    use base64::Engine;
    let mut req = viewlog_core::oauth::TokenRequest::default();
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
    for (k, v) in fields {
        match k.as_str() {
            "client_id" => req.client_id = Some(v),
            "client_secret" => req.client_secret = Some(v),
            "grant_type" => req.grant_type = Some(v),
            _ => {}
        }
    }
    if let Some(basic) = header(&parts.headers, "authorization").and_then(|v| v.strip_prefix("Basic ")) {
        if let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(basic.trim()) {
            if let Some((id, secret)) = String::from_utf8(decoded).ok().as_deref().and_then(|s| s.split_once(':')) {
                req.client_id.get_or_insert_with(|| id.to_owned());
                req.client_secret.get_or_insert_with(|| secret.to_owned());
            }
        }
    }
    req
}
