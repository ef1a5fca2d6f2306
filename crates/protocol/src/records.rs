//! The records that travel: a view-log record as get-view-logs answers it, and a view event as
//! record-views takes it.

use serde::{Deserialize, Serialize};

/// One view-log record, as get-view-logs answers it. Dates are wire strings
/// (`yyyy-MM-ddTHH:mm:ss+0000`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ViewLogRecord {
    /// The sender of the viewed message.
    pub from: String,
    /// The recipient of the viewed message.
    pub to: String,
    /// The address of the user who viewed the message.
    pub viewer: String,
    /// Where the message was viewed from.
    pub source: String,
    /// Whether the content was viewed.
    pub content_viewed: bool,
    /// Whether the message is part of a discovery case.
    pub discovery_case: bool,
    /// When the message was received.
    pub message_date: String,
    /// When the message was viewed.
    pub viewed: String,
    /// The subject of the viewed message.
    pub subject: String,
}

/// One view event as record-views takes it (PROTOCOL §7). Unknown keys are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ViewEventIn {
    /// The idempotency key; when absent the server derives one from the event's content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The sender of the viewed message.
    pub from: String,
    /// The recipient of the viewed message.
    pub to: String,
    /// Who viewed it.
    pub viewer: String,
    /// Where it was viewed from; `Message Tracking` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Whether the content was viewed; `false` when absent.
    #[serde(default)]
    pub content_viewed: bool,
    /// Whether the message is part of a discovery case; `false` when absent.
    #[serde(default)]
    pub discovery_case: bool,
    /// When the message was received (any body date layout).
    pub message_date: String,
    /// When it was viewed (any body date layout).
    pub viewed: String,
    /// The subject; empty when absent.
    #[serde(default)]
    pub subject: String,
    /// The viewer's IP address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub viewer_ip: Option<String>,
    /// The message's Message-ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// `view`, `download`, `export` or `print`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The discovery case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_id: Option<String>,
}

/// The `data[0]` of a record-views answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordViewsResult {
    /// Events newly stored.
    pub inserted: u64,
    /// Events already stored under the same id.
    pub duplicates: u64,
}
