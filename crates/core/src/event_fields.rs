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
    #[serde(borrow, deserialize_with = "borrowed")]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "borrowed")]
    from: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "borrowed")]
    to: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "borrowed")]
    viewer: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "borrowed")]
    source: Option<Cow<'a, str>>,
    #[serde(rename = "contentViewed")]
    content_viewed: Option<bool>,
    #[serde(rename = "discoveryCase")]
    discovery_case: Option<bool>,
    #[serde(borrow, rename = "messageDate", deserialize_with = "borrowed")]
    message_date: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "borrowed")]
    viewed: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "borrowed")]
    subject: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "viewerIp", deserialize_with = "borrowed")]
    viewer_ip: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "messageId", deserialize_with = "borrowed")]
    message_id: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "borrowed")]
    action: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "caseId", deserialize_with = "borrowed")]
    case_id: Option<Cow<'a, str>>,
}

/// An optional string borrowed from the input where it has no escapes. serde's `#[serde(borrow)]`
/// reaches a `Cow<str>` field but not one inside an `Option`: without this, every field of every
/// line was copied into a new `String` (~7% of `viewlog import` pinned to one CPU).
fn borrowed<'de: 'a, 'a, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Cow<'a, str>>, D::Error> {
    #[derive(Deserialize)]
    struct Borrowed<'a>(#[serde(borrow)] Cow<'a, str>);
    Ok(Option::<Borrowed<'a>>::deserialize(d)?.map(|b| b.0))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Strings without escapes are borrowed from the line, not copied; escaped ones are
    /// unescaped into their own; `null` and absent fields are `None`.
    #[test]
    fn typed_fields_borrow_from_the_line() {
        let line = br#"{"id":"e1","subject":"Tab\there","viewer":null,"contentViewed":true,"caseId":"C-1"}"#;
        let typed: TypedEvent<'_> = serde_json::from_slice(line).expect("typed");
        assert!(matches!(typed.id, Some(Cow::Borrowed("e1"))), "{:?}", typed.id);
        assert!(matches!(typed.case_id, Some(Cow::Borrowed("C-1"))), "{:?}", typed.case_id);
        assert!(matches!(&typed.subject, Some(Cow::Owned(s)) if s == "Tab\there"), "{:?}", typed.subject);
        assert_eq!(typed.viewer, None);
        assert_eq!(typed.from, None);
        assert_eq!(typed.content_viewed, Some(true));
    }
}
