//! The HTTP client: signing, the envelope, retries.

use crate::credentials::{ApiV1, ApiV2, Credentials};
use crate::error::ClientError;
use crate::retry::RetryPolicy;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use viewlog_protocol::codes::ErrorCode;
use viewlog_protocol::envelope::{Envelope, ErrorDetail};
use viewlog_protocol::secret::Secret;
use viewlog_protocol::{dates, signing};

/// A renewable API 2.0 bearer token.
#[derive(Debug, Clone)]
struct BearerToken {
    value: String,
    renew_at: Instant,
}

/// A client of one server (viewlog, or a Mimecast region) with one set of credentials.
#[derive(Debug)]
pub struct Client {
    http: reqwest::Client,
    base_url: String,
    credentials: Credentials,
    secret: Option<Vec<u8>>,
    retry: RetryPolicy,
    token: Mutex<Option<BearerToken>>,
    /// The server's clock minus ours, in seconds, from the last `Date` header seen.
    clock_offset: AtomicI64,
    /// The address and password that may refresh an expired binding (API 1.0).
    refresh: Option<(String, Secret)>,
}

#[derive(Debug, Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default = "default_expires_in")]
    expires_in: u64,
}

fn default_expires_in() -> u64 {
    1799
}

/// What one attempt came to.
enum Attempt<T> {
    Done(Result<T, ClientError>),
    Retry { wait: Duration, why: String, last: ClientError },
}

impl Client {
    /// A client for `base_url` (see [`crate::region`]) with these credentials and default retries.
    pub fn new(base_url: &str, credentials: Credentials) -> Result<Client, ClientError> {
        Self::with_retry(base_url, credentials, RetryPolicy::default())
    }

    /// A client with a given retry policy.
    pub fn with_retry(base_url: &str, credentials: Credentials, retry: RetryPolicy) -> Result<Client, ClientError> {
        let base_url = crate::region::normalize_base_url(base_url);
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(ClientError::Config(format!("the base URL {base_url:?} must start with http:// or https://")));
        }
        let secret = match &credentials {
            Credentials::V1(c) => Some(
                signing::decode_secret_key(c.secret_key.expose())
                    .map_err(|_| ClientError::Config("the secret key is not valid base64".into()))?,
            ),
            Credentials::V2(_) => None,
        };
        let http = reqwest::Client::builder()
            .timeout(retry.request_timeout)
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("viewlog/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Config(format!("HTTP client: {e}")))?;
        Ok(Client {
            http,
            base_url,
            credentials,
            secret,
            retry,
            token: Mutex::new(None),
            clock_offset: AtomicI64::new(0),
            refresh: None,
        })
    }

    /// The server's current time as far as this client can tell (its clock corrected by the
    /// last `Date` header the server sent), in Unix seconds. Collectors end their windows by
    /// this clock, so that a fast local clock never asks for the future.
    pub fn server_now(&self) -> i64 {
        unix_now() + self.clock_offset.load(Ordering::Relaxed)
    }

    /// Lets the client refresh its binding by itself when the server answers 418 (binding
    /// expired), by signing in again with this address and password (API 1.0 only).
    pub fn with_password_refresh(mut self, email: String, password: Secret) -> Self {
        self.refresh = Some((email, password));
        self
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Posts `body` to `path` and returns the envelope, retrying as the policy allows: on 429
    /// after `X-RateLimit-Reset` milliseconds, on 5xx, timeouts and dropped connections with
    /// exponential backoff. A 200 with a non-empty `fail` is an error.
    pub async fn call<T: DeserializeOwned>(&self, path: &str, body: &Value) -> Result<Envelope<T>, ClientError> {
        let body = serde_json::to_vec(body).map_err(|e| ClientError::Config(e.to_string()))?;
        let mut attempt = 0;
        let mut refreshed_token = false;
        let mut refreshed_binding = false;
        loop {
            attempt += 1;
            match self.attempt(path, &body, attempt).await {
                Attempt::Done(Err(ClientError::Status { status: 401, errors }))
                    if !refreshed_token
                        && matches!(self.credentials, Credentials::V2(_))
                        && errors.iter().any(|e| e.code == ErrorCode::TokenExpired.as_str()) =>
                {
                    tracing::info!("bearer token expired; fetching a new one");
                    *self.token.lock().await = None;
                    refreshed_token = true;
                    attempt -= 1;
                }
                Attempt::Done(Err(ClientError::BindingExpired)) if !refreshed_binding && self.refresh.is_some() => {
                    refreshed_binding = true;
                    self.refresh_binding().await?;
                    attempt -= 1;
                }
                Attempt::Done(result) => return result,
                Attempt::Retry { wait, why, last } => {
                    if attempt >= self.retry.max_attempts {
                        tracing::warn!(%path, attempt, %why, "giving up");
                        return Err(match last {
                            ClientError::Status { status: 429, .. } => ClientError::RateLimited { attempts: attempt },
                            ClientError::Transport { source, .. } => {
                                ClientError::Transport { attempts: attempt, source }
                            }
                            other => other,
                        });
                    }
                    tracing::warn!(%path, attempt, wait_ms = wait.as_millis() as u64, %why, "retrying");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    async fn attempt<T: DeserializeOwned>(&self, path: &str, body: &[u8], attempt: u32) -> Attempt<Envelope<T>> {
        let headers = match self.headers(path).await {
            Ok(h) => h,
            Err(e @ ClientError::Transport { .. }) => {
                return Attempt::Retry { wait: self.retry.backoff(attempt), why: e.to_string(), last: e }
            }
            Err(e) => return Attempt::Done(Err(e)),
        };
        let url = format!("{}{path}", self.base_url);
        let sent = self.http.post(&url).headers(headers).body(body.to_vec()).send().await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                return Attempt::Retry {
                    wait: self.retry.backoff(attempt),
                    why: format!("transport: {e}"),
                    last: ClientError::Transport { attempts: attempt, source: e },
                }
            }
        };
        let status = response.status().as_u16();
        if let Some(server_now) = response
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| dates::parse_header_date(v).ok())
        {
            self.clock_offset.store(server_now - unix_now(), Ordering::Relaxed);
        }
        let reset_ms = response
            .headers()
            .get("x-ratelimit-reset")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let bytes = match response.bytes().await {
            Ok(b) => b,
            Err(e) => {
                return Attempt::Retry {
                    wait: self.retry.backoff(attempt),
                    why: format!("reading the answer: {e}"),
                    last: ClientError::Transport { attempts: attempt, source: e },
                }
            }
        };
        let errors = || -> Vec<ErrorDetail> {
            serde_json::from_slice::<Envelope<Value>>(&bytes)
                .map(|e| e.fail.into_iter().flat_map(|f| f.errors).collect())
                .unwrap_or_default()
        };
        match status {
            200 => match serde_json::from_slice::<Envelope<T>>(&bytes) {
                Ok(envelope) if envelope.fail.is_empty() => Attempt::Done(Ok(envelope)),
                Ok(envelope) => {
                    let errors: Vec<ErrorDetail> = envelope.fail.into_iter().flat_map(|f| f.errors).collect();
                    Attempt::Done(Err(ClientError::Failed { errors }))
                }
                Err(e) => Attempt::Retry {
                    wait: self.retry.backoff(attempt),
                    why: format!("undecodable 200 answer: {e}"),
                    last: ClientError::Decode { status, reason: e.to_string() },
                },
            },
            429 => Attempt::Retry {
                wait: self.retry.rate_limit_wait(reset_ms, attempt),
                why: format!("rate limited; reset in {} ms", reset_ms.map(|m| m.to_string()).unwrap_or("?".into())),
                last: ClientError::Status { status, errors: errors() },
            },
            418 => Attempt::Done(Err(ClientError::BindingExpired)),
            500..=599 => Attempt::Retry {
                wait: self.retry.backoff(attempt),
                why: format!("HTTP {status}"),
                last: ClientError::Status { status, errors: errors() },
            },
            _ => {
                let errors = errors();
                if errors.is_empty() {
                    let text = String::from_utf8_lossy(&bytes).chars().take(200).collect::<String>();
                    Attempt::Done(Err(ClientError::Decode { status, reason: text }))
                } else {
                    Attempt::Done(Err(ClientError::Status { status, errors }))
                }
            }
        }
    }

    /// Signs in again to refresh the binding (same keys, new expiry).
    async fn refresh_binding(&self) -> Result<(), ClientError> {
        let (Some((email, password)), Credentials::V1(c)) = (&self.refresh, &self.credentials) else {
            return Err(ClientError::BindingExpired);
        };
        tracing::info!(access_key = %c.access_key, "binding expired; refreshing it by signing in again");
        let binding = crate::login::login(&self.base_url, &c.app_id, email, password, Some(&c.access_key)).await?;
        if binding.access_key != c.access_key {
            return Err(ClientError::Config("the server refreshed another binding than the one in use".into()));
        }
        Ok(())
    }

    async fn headers(&self, path: &str) -> Result<HeaderMap, ClientError> {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.insert(reqwest::header::ACCEPT, HeaderValue::from_static("application/json"));
        match &self.credentials {
            Credentials::V1(c) => self.sign_v1(c, path, &mut h)?,
            Credentials::V2(c) => {
                let token = self.bearer(c).await?;
                h.insert(AUTHORIZATION, value(&format!("Bearer {token}"))?);
            }
        }
        Ok(h)
    }

    fn sign_v1(&self, c: &ApiV1, path: &str, h: &mut HeaderMap) -> Result<(), ClientError> {
        let secret = self.secret.as_deref().ok_or_else(|| ClientError::Config("no secret key".into()))?;
        let date = dates::format_header_date(unix_now());
        let request_id = uuid::Uuid::new_v4().to_string();
        let sig = signing::signature(secret, &date, &request_id, path, c.app_key.expose());
        h.insert(AUTHORIZATION, value(&format!("MC {}:{sig}", c.access_key))?);
        h.insert("x-mc-app-id", value(&c.app_id)?);
        h.insert("x-mc-date", value(&date)?);
        h.insert("x-mc-req-id", value(&request_id)?);
        Ok(())
    }

    /// The current bearer token, fetched or renewed a minute before it expires.
    async fn bearer(&self, c: &ApiV2) -> Result<String, ClientError> {
        let mut cached = self.token.lock().await;
        if let Some(t) = cached.as_ref() {
            if Instant::now() < t.renew_at {
                return Ok(t.value.clone());
            }
        }
        let url = format!("{}/oauth/token", self.base_url);
        let form = [
            ("client_id", c.client_id.as_str()),
            ("client_secret", c.client_secret.expose()),
            ("grant_type", "client_credentials"),
        ];
        let response = self
            .http
            .post(&url)
            .form(&form)
            .send()
            .await
            .map_err(|source| ClientError::Transport { attempts: 1, source })?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|source| ClientError::Transport { attempts: 1, source })?;
        if status != 200 {
            let errors = serde_json::from_slice::<Envelope<Value>>(&bytes)
                .map(|e| e.fail.into_iter().flat_map(|f| f.errors).collect())
                .unwrap_or_default();
            return Err(ClientError::Status { status, errors });
        }
        let answer: TokenAnswer =
            serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode { status, reason: e.to_string() })?;
        let lifetime = Duration::from_secs(answer.expires_in);
        let renew_at = Instant::now() + lifetime.saturating_sub(Duration::from_secs(60));
        tracing::debug!(expires_in = answer.expires_in, "obtained a bearer token");
        *cached = Some(BearerToken { value: answer.access_token.clone(), renew_at });
        Ok(answer.access_token)
    }
}

fn value(s: &str) -> Result<HeaderValue, ClientError> {
    HeaderValue::from_str(s).map_err(|_| ClientError::Config(format!("{s:?} cannot be sent in a header")))
}

pub use viewlog_protocol::dates::unix_now;
