//! The fields of one event as read, whatever they were read from: a parsed JSON object (a
//! record-views item), a JSON line read straight into borrowed fields (`viewlog import`'s fast
//! path), or a CSV row (`viewlog import`'s own [`Fields`]). [`crate::ingest::read_fields`]
//! validates all of them the same way.

use serde::Deserialize;
use serde_json::{Map, Number, Value};
use std::borrow::Cow;

/// The names of an event's fields on the wire (record-views items, NDJSON lines, CSV headers).
pub const FIELD_NAMES: [&str; 14] = [
    "id",
    "from",
    "to",
    "viewer",
    "source",
    "contentViewed",
    "discoveryCase",
    "messageDate",
    "viewed",
    "subject",
    "viewerIp",
    "messageId",
    "action",
    "caseId",
];

/// One field of an event, as its source holds it.
#[derive(Debug, Clone, Copy)]
pub enum Field<'a> {
    /// Not there, or `null`.
    Absent,
    /// A string.
    Str(&'a str),
    /// `true` or `false`.
    Bool(bool),
    /// A JSON number.
    Number(&'a Number),
    /// An array or an object.
    Other,
}

/// Where an event's fields are looked up by their wire names (`from`, `viewed`, …).
pub trait Fields {
    /// The field named `name`.
    fn field(&self, name: &str) -> Field<'_>;
}

impl Fields for Map<String, Value> {
    fn field(&self, name: &str) -> Field<'_> {
        match self.get(name) {
            None | Some(Value::Null) => Field::Absent,
            Some(Value::String(s)) => Field::Str(s),
            Some(Value::Bool(b)) => Field::Bool(*b),
            Some(Value::Number(n)) => Field::Number(n),
            Some(_) => Field::Other,
        }
    }
}

/// An event object whose fields all have their usual types (strings, and booleans for the two
/// flags), read without building a [`Value`]: strings borrow from the input unless they hold
/// escapes. Anything else (a numeric id, `"contentViewed": "yes"`, a repeated key, a field of
/// the wrong type) fails to deserialize, and the caller reads the line as a [`Value`] instead,
/// which accepts what the lenient reader accepts and names each bad field.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TypedEvent<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    from: Option<Cow<'a, str>>,
    #[serde(borrow)]
    to: Option<Cow<'a, str>>,
    #[serde(borrow)]
    viewer: Option<Cow<'a, str>>,
    #[serde(borrow)]
    source: Option<Cow<'a, str>>,
    #[serde(rename = "contentViewed")]
    content_viewed: Option<bool>,
    #[serde(rename = "discoveryCase")]
    discovery_case: Option<bool>,
    #[serde(borrow, rename = "messageDate")]
    message_date: Option<Cow<'a, str>>,
    #[serde(borrow)]
    viewed: Option<Cow<'a, str>>,
    #[serde(borrow)]
    subject: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "viewerIp")]
    viewer_ip: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "messageId")]
    message_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    action: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "caseId")]
    case_id: Option<Cow<'a, str>>,
}

impl Fields for TypedEvent<'_> {
    fn field(&self, name: &str) -> Field<'_> {
        let s = match name {
            "id" => &self.id,
            "from" => &self.from,
            "to" => &self.to,
            "viewer" => &self.viewer,
            "source" => &self.source,
            "messageDate" => &self.message_date,
            "viewed" => &self.viewed,
            "subject" => &self.subject,
            "viewerIp" => &self.viewer_ip,
            "messageId" => &self.message_id,
            "action" => &self.action,
            "caseId" => &self.case_id,
            "contentViewed" => return self.content_viewed.map_or(Field::Absent, Field::Bool),
            "discoveryCase" => return self.discovery_case.map_or(Field::Absent, Field::Bool),
            _ => return Field::Absent,
        };
        s.as_deref().map_or(Field::Absent, Field::Str)
    }
}
