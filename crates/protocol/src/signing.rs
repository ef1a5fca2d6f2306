//! The API 1.0 request signature (PROTOCOL §3).
//!
//! `signature = base64(HMAC-SHA1(key = base64-decode(secretKey),
//! message = "{x-mc-date}:{x-mc-req-id}:{uri}:{applicationKey}"))`

/// A secret key that is not valid base64.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the secret key is not valid base64")]
pub struct BadSecretKey;

/// Decodes a base64 secret key (standard alphabet, padding optional).
pub fn decode_secret_key(secret_key: &str) -> Result<Vec<u8>, BadSecretKey> {
    let _ = secret_key;
    todo!()
}

/// Computes the base64 signature of one request with an already decoded secret key.
pub fn signature(secret: &[u8], date: &str, request_id: &str, uri: &str, app_key: &str) -> String {
    let _ = (secret, date, request_id, uri, app_key);
    todo!()
}

/// Computes the base64 signature of one request from the base64 secret key.
pub fn sign(secret_key: &str, date: &str, request_id: &str, uri: &str, app_key: &str) -> Result<String, BadSecretKey> {
    let _ = (secret_key, date, request_id, uri, app_key);
    todo!()
}

/// Checks a presented signature against each candidate URI (the path, the absolute URL…), in
/// constant time for each comparison. Surrounding whitespace in `presented` is ignored.
pub fn verify(secret: &[u8], date: &str, request_id: &str, uris: &[&str], app_key: &str, presented: &str) -> bool {
    let _ = (secret, date, request_id, uris, app_key, presented);
    todo!()
}

/// The two parts of an `Authorization: MC {accessKey}:{signature}` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McAuthorization<'a> {
    /// The access key.
    pub access_key: &'a str,
    /// The base64 signature, trimmed.
    pub signature: &'a str,
}

/// Reads `MC {accessKey}:{signature}`; tolerates whitespace after the colon (PowerShell) and
/// around the value; the scheme is matched case-insensitively. `None` if it is not that form
/// or either part is empty.
pub fn parse_authorization(value: &str) -> Option<McAuthorization<'_>> {
    let _ = value;
    todo!()
}
