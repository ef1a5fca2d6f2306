//! The records that travel: a view-log record as get-view-logs answers it, and a view event as
//! record-views takes it.

use serde::{Deserialize, Serialize};

use crate::dates::{format_date, write_date, DATE_LEN};

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

/// A view-log record's fields, borrowed, with its dates as Unix seconds: what
/// [`write_record_json`] writes as one get-view-logs `data` item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordFields<'a> {
    /// The sender of the viewed message.
    pub from: &'a str,
    /// The recipient of the viewed message.
    pub to: &'a str,
    /// The address of the user who viewed the message.
    pub viewer: &'a str,
    /// Where the message was viewed from.
    pub source: &'a str,
    /// Whether the content was viewed.
    pub content_viewed: bool,
    /// Whether the message is part of a discovery case.
    pub discovery_case: bool,
    /// When the message was received (Unix seconds).
    pub message_date: i64,
    /// When the message was viewed (Unix seconds).
    pub viewed: i64,
    /// The subject of the viewed message.
    pub subject: &'a str,
}

impl Serialize for RecordFields<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        // The key order of `ViewLogRecord`, which is what Mimecast answers.
        let mut m = s.serialize_map(Some(9))?;
        m.serialize_entry("from", self.from)?;
        m.serialize_entry("to", self.to)?;
        m.serialize_entry("viewer", self.viewer)?;
        m.serialize_entry("source", self.source)?;
        m.serialize_entry("contentViewed", &self.content_viewed)?;
        m.serialize_entry("discoveryCase", &self.discovery_case)?;
        m.serialize_entry("messageDate", &WireDate(self.message_date))?;
        m.serialize_entry("viewed", &WireDate(self.viewed))?;
        m.serialize_entry("subject", self.subject)?;
        m.end()
    }
}

/// A date written as the protocol writes it, without allocating where it can.
struct WireDate(i64);

impl Serialize for WireDate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; DATE_LEN];
        match write_date(self.0, &mut buf) {
            Some(text) => s.serialize_str(text),
            None => s.serialize_str(&format_date(self.0)),
        }
    }
}

/// Appends the record's JSON object to `out`, exactly as get-view-logs writes it in `data`
/// (compact, the keys in Mimecast's order). It is also what the SQLite store keeps beside each
/// event, so that a page is answered by copying bytes.
pub fn write_record_json(out: &mut Vec<u8>, record: &RecordFields<'_>) {
    // Writing into a Vec cannot fail, and every value here is serialisable: a string, a bool
    // or a date.
    if let Err(e) = serde_json::to_writer(&mut *out, record) {
        unreachable!("a view-log record is always serialisable: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields<'a>(subject: &'a str) -> RecordFields<'a> {
        RecordFields {
            from: "a@example.com",
            to: "b@example.com",
            viewer: "c@example.com",
            source: "Message Tracking",
            content_viewed: true,
            discovery_case: false,
            message_date: 1_448_369_411,
            viewed: 1_448_373_011,
            subject,
        }
    }

    /// The written object reads back as the wire record, with the protocol's dates.
    #[test]
    fn a_written_record_reads_back_as_the_wire_record() {
        let mut out = Vec::new();
        write_record_json(&mut out, &fields("Q4 \"plan\" \u{1F600}\n"));
        let back: ViewLogRecord = serde_json::from_slice(&out).expect("valid JSON");
        assert_eq!(
            back,
            ViewLogRecord {
                from: "a@example.com".into(),
                to: "b@example.com".into(),
                viewer: "c@example.com".into(),
                source: "Message Tracking".into(),
                content_viewed: true,
                discovery_case: false,
                message_date: "2015-11-24T12:50:11+0000".into(),
                viewed: "2015-11-24T13:50:11+0000".into(),
                subject: "Q4 \"plan\" \u{1F600}\n".into(),
            }
        );
    }

    /// Keys in Mimecast's order, compact, appended after what `out` held.
    #[test]
    fn records_are_appended_compact_in_mimecast_key_order() {
        let mut out = b"[".to_vec();
        write_record_json(&mut out, &fields("s"));
        let text = String::from_utf8(out).expect("utf-8");
        assert_eq!(
            text,
            "[{\"from\":\"a@example.com\",\"to\":\"b@example.com\",\"viewer\":\"c@example.com\",\
             \"source\":\"Message Tracking\",\"contentViewed\":true,\"discoveryCase\":false,\
             \"messageDate\":\"2015-11-24T12:50:11+0000\",\"viewed\":\"2015-11-24T13:50:11+0000\",\
             \"subject\":\"s\"}"
        );
    }

    /// A date outside years 0–9999 is still written (with its extra digits).
    #[test]
    fn far_dates_are_written_too() {
        let mut out = Vec::new();
        let far = RecordFields { viewed: 400_000_000_000, ..fields("s") };
        write_record_json(&mut out, &far);
        let back: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
        assert_eq!(back["viewed"], crate::dates::format_date(400_000_000_000));
    }
}
