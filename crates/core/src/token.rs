//! Page tokens (PROTOCOL §2): self-contained, sealed, bound to the account.
//!
//! A token carries the query's filters, page size, snapshot bound and total, and the position
//! and direction to read from, so a follow-up request may send the token alone. It is the
//! JSON of [`TokenState`] sealed with XChaCha20-Poly1305 under a key derived from the master
//! key, with the account id as associated data, in URL-safe base64: a forged, altered or
//! foreign token does not open.

use crate::vault::Sealer;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use viewlog_store::{AccountId, Cursor, Direction, UnixTime};

/// The longest token accepted (a bound on work before the seal is checked).
const MAX_TOKEN_LEN: usize = 4096;

/// What a page token holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenState {
    /// The text filter.
    #[serde(rename = "q", default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Inclusive lower bound on `viewed`.
    #[serde(rename = "s")]
    pub start: UnixTime,
    /// Inclusive upper bound on `viewed`.
    #[serde(rename = "e")]
    pub end: UnixTime,
    /// The page size.
    #[serde(rename = "n")]
    pub page_size: u32,
    /// The snapshot bound fixed by the first page.
    #[serde(rename = "x")]
    pub snapshot: i64,
    /// The total of the snapshot, counted for the first page.
    #[serde(rename = "t")]
    pub total: u64,
    /// Where to read from (exclusive).
    #[serde(rename = "c")]
    pub cursor: Cursor,
    /// Which way to read.
    #[serde(rename = "d")]
    pub direction: Direction,
}

/// A token that did not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid page token")]
pub struct BadToken;

fn context(account: AccountId) -> Vec<u8> {
    format!("viewlog page token v1 account {}", account.0).into_bytes()
}

/// Seals a token for one account.
pub fn encode(sealer: &Sealer, account: AccountId, state: &TokenState) -> String {
    let json = serde_json::to_vec(state).expect("a token state always serializes");
    URL_SAFE_NO_PAD.encode(sealer.seal(&json, &context(account)))
}

/// Opens a token of this account.
pub fn decode(sealer: &Sealer, account: AccountId, token: &str) -> Result<TokenState, BadToken> {
    let token = token.trim();
    if token.len() > MAX_TOKEN_LEN {
        return Err(BadToken);
    }
    let sealed = URL_SAFE_NO_PAD.decode(token.trim_end_matches('=')).map_err(|_| BadToken)?;
    let json = sealer.open(&sealed, &context(account)).map_err(|_| BadToken)?;
    let state: TokenState = serde_json::from_slice(&json).map_err(|_| BadToken)?;
    if state.page_size == 0 || state.start > state.end {
        return Err(BadToken);
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::{MasterKey, Vault};

    fn state() -> TokenState {
        TokenState {
            text: Some("q".into()),
            start: 1,
            end: 2,
            page_size: 25,
            snapshot: 99,
            total: 1000,
            cursor: Cursor { viewed: 2, seq: 7 },
            direction: Direction::Older,
        }
    }

    #[test]
    fn round_trips_and_refuses_tampering_and_other_accounts() {
        let vault = Vault::new(&MasterKey::generate());
        let token = encode(&vault.tokens, AccountId(1), &state());
        assert!(token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(decode(&vault.tokens, AccountId(1), &token), Ok(state()));
        assert_eq!(decode(&vault.tokens, AccountId(2), &token), Err(BadToken));
        let mut chars: Vec<char> = token.chars().collect();
        let mid = chars.len() / 2;
        chars[mid] = if chars[mid] == 'A' { 'B' } else { 'A' };
        let altered: String = chars.into_iter().collect();
        assert_eq!(decode(&vault.tokens, AccountId(1), &altered), Err(BadToken));
        assert_eq!(decode(&vault.tokens, AccountId(1), "garbage!"), Err(BadToken));
        let other_server = Vault::new(&MasterKey::generate());
        assert_eq!(decode(&other_server.tokens, AccountId(1), &token), Err(BadToken));
    }
}
