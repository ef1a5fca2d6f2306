//! Recording view events (PROTOCOL §7): reading events, deriving ids, and storing batches
//! all-or-nothing.

use crate::auth::EditGrant;
use crate::error::ApiError;
use crate::event_fields::{Field, Fields, TypedEvent};
use crate::Service;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use viewlog_protocol::codes::ErrorCode;
use viewlog_protocol::dates::{self, Bound};
use viewlog_protocol::envelope::{ErrorDetail, Fail};
use viewlog_protocol::lenient;
use viewlog_protocol::MAX_INGEST_BATCH;
use viewlog_store::{InsertOutcome, Store, ViewEvent};

/// The longest a text field may be, in bytes.
pub const MAX_FIELD_LEN: usize = 4096;
/// The longest an event id may be, in bytes.
pub const MAX_ID_LEN: usize = 256;
/// The `source` of an event that names none.
pub const DEFAULT_SOURCE: &str = "Message Tracking";
/// The actions an event may name.
pub const ACTIONS: [&str; 4] = ["view", "download", "export", "print"];
/// At most this many failing items are listed in one answer.
const MAX_LISTED_FAILS: usize = 100;

fn invalid(code: ErrorCode, field: &str, message: impl Into<String>) -> ErrorDetail {
    ErrorDetail::with_message(code, message).field(field)
}

fn text(obj: &impl Fields, name: &str, required: bool, errors: &mut Vec<ErrorDetail>) -> Option<String> {
    match obj.field(name) {
        Field::Absent if required => {
            errors.push(invalid(ErrorCode::ErrValidationNull, name, format!("{name} is required")));
            None
        }
        Field::Absent => None,
        Field::Str(s) if s.len() > MAX_FIELD_LEN => {
            errors.push(invalid(
                ErrorCode::ErrValidationInvalidValue,
                name,
                format!("{name} is longer than {MAX_FIELD_LEN} bytes"),
            ));
            None
        }
        Field::Str(s) => Some(s.to_owned()),
        Field::Bool(_) | Field::Number(_) | Field::Other => {
            errors.push(invalid(ErrorCode::ErrValidationInvalidValue, name, format!("{name} must be a string")));
            None
        }
    }
}

fn boolean(obj: &impl Fields, name: &str, errors: &mut Vec<ErrorDetail>) -> bool {
    match obj.field(name) {
        Field::Absent => false,
        Field::Bool(b) => b,
        Field::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => true,
            "false" | "0" | "no" | "" => false,
            _ => {
                errors.push(invalid(
                    ErrorCode::ErrValidationInvalidValue,
                    name,
                    format!("{name} must be true or false"),
                ));
                false
            }
        },
        Field::Number(n) if n.as_u64() == Some(0) || n.as_u64() == Some(1) => n.as_u64() == Some(1),
        Field::Number(_) | Field::Other => {
            errors.push(invalid(ErrorCode::ErrValidationInvalidValue, name, format!("{name} must be true or false")));
            false
        }
    }
}

fn date(obj: &impl Fields, name: &str, errors: &mut Vec<ErrorDetail>) -> i64 {
    match text(obj, name, true, errors) {
        Some(s) => dates::parse_body_date(s.trim(), Bound::Start).unwrap_or_else(|_| {
            errors.push(invalid(
                ErrorCode::ErrValidationInvalidDate,
                name,
                format!("{name} {s:?} is not a date such as 2016-12-01T00:00:00+0000"),
            ));
            0
        }),
        None => 0,
    }
}

/// Reads one event (a record-views `data` item, an NDJSON line, or a CSV row turned into an
/// object with the same field names). Without an `id`, the event's id is derived from its content.
pub fn read_event(item: &Value) -> Result<ViewEvent, Vec<ErrorDetail>> {
    let Value::Object(obj) = item else {
        return Err(vec![ErrorDetail::with_message(
            ErrorCode::ErrValidationInvalidValue,
            "an event must be an object",
        )]);
    };
    read_fields(obj)
}

/// Why a JSON text is not an event: not JSON at all, or an object with bad fields.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonEventError {
    /// Not a JSON value (the parser's message).
    Syntax(String),
    /// A JSON value, but not a good event: each bad field.
    Invalid(Vec<ErrorDetail>),
}

/// Reads one event from JSON text (an NDJSON line), as `read_event` would read it once parsed.
/// Most lines are read straight into borrowed fields ([`TypedEvent`]); a line that does not fit
/// that shape (a numeric id, a flag written as a string, a repeated key…) is parsed into a
/// [`Value`] and read by [`read_event`], so both answer the same for every line.
pub fn read_json_event(text: &[u8]) -> Result<ViewEvent, JsonEventError> {
    if let Ok(ObjectOnly(typed)) = serde_json::from_slice::<ObjectOnly<TypedEvent<'_>>>(text) {
        return read_fields(&typed).map_err(JsonEventError::Invalid);
    }
    let value: Value = serde_json::from_slice(text).map_err(|e| JsonEventError::Syntax(e.to_string()))?;
    read_event(&value).map_err(JsonEventError::Invalid)
}

/// Reads one event from its fields, naming every bad one. Without an `id`, the event's id is
/// derived from its content.
pub fn read_fields(obj: &impl Fields) -> Result<ViewEvent, Vec<ErrorDetail>> {
    let mut errors = Vec::new();
    let id = match obj.field("id") {
        Field::Absent => None,
        Field::Str(s) if s.trim().is_empty() => {
            errors.push(invalid(ErrorCode::ErrValidationBlank, "id", "id is blank"));
            None
        }
        Field::Str(s) if s.len() > MAX_ID_LEN => {
            errors.push(invalid(
                ErrorCode::ErrValidationInvalidValue,
                "id",
                format!("id is longer than {MAX_ID_LEN} bytes"),
            ));
            None
        }
        Field::Str(s) => Some(s.to_owned()),
        Field::Number(n) => Some(n.to_string()),
        Field::Bool(_) | Field::Other => {
            errors.push(invalid(ErrorCode::ErrValidationInvalidValue, "id", "id must be a string"));
            None
        }
    };
    let from = text(obj, "from", true, &mut errors).unwrap_or_default();
    let to = text(obj, "to", true, &mut errors).unwrap_or_default();
    let viewer = text(obj, "viewer", true, &mut errors).unwrap_or_default();
    if viewer.trim().is_empty() && !errors.iter().any(|e| e.field.as_deref() == Some("viewer")) {
        errors.push(invalid(ErrorCode::ErrValidationBlank, "viewer", "viewer is blank"));
    }
    let source = text(obj, "source", false, &mut errors)
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_SOURCE.to_owned());
    let content_viewed = boolean(obj, "contentViewed", &mut errors);
    let discovery_case = boolean(obj, "discoveryCase", &mut errors);
    let message_date = date(obj, "messageDate", &mut errors);
    let viewed = date(obj, "viewed", &mut errors);
    let subject = text(obj, "subject", false, &mut errors).unwrap_or_default();
    let viewer_ip = text(obj, "viewerIp", false, &mut errors).filter(|s| !s.is_empty());
    let message_id = text(obj, "messageId", false, &mut errors).filter(|s| !s.is_empty());
    let action = text(obj, "action", false, &mut errors).filter(|s| !s.is_empty());
    if let Some(a) = &action {
        if !ACTIONS.contains(&a.as_str()) {
            errors.push(invalid(
                ErrorCode::ErrValidationInvalidValue,
                "action",
                format!("action must be one of {}", ACTIONS.join(", ")),
            ));
        }
    }
    let case_id = text(obj, "caseId", false, &mut errors).filter(|s| !s.is_empty());
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut event = ViewEvent {
        event_id: String::new(),
        from,
        to,
        viewer,
        source,
        content_viewed,
        discovery_case,
        message_date,
        viewed,
        subject,
        viewer_ip,
        message_id,
        action,
        case_id,
    };
    event.event_id = id.unwrap_or_else(|| derived_id(&event));
    Ok(event)
}

/// The id of an event sent without one: a hash of its content, so that sending the same event
/// again stores it once. (Two truly identical views in the same second are one event then;
/// archives that can tell them apart send ids.)
pub fn derived_id(e: &ViewEvent) -> String {
    let mut h = Sha256::new();
    let opt = |o: &Option<String>| o.clone().unwrap_or_default();
    for part in [
        e.from.clone(),
        e.to.clone(),
        e.viewer.clone(),
        e.source.clone(),
        e.content_viewed.to_string(),
        e.discovery_case.to_string(),
        e.message_date.to_string(),
        e.viewed.to_string(),
        e.subject.clone(),
        opt(&e.viewer_ip),
        opt(&e.message_id),
        opt(&e.action),
        opt(&e.case_id),
    ] {
        h.update(part.as_bytes());
        h.update([0x1f]);
    }
    let digest = h.finalize();
    format!("sha256:{}", hex_lower(&digest[..16]))
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads a whole batch; on any bad item, every bad item's errors (up to a bound).
pub fn read_batch(items: &[Value]) -> Result<Vec<ViewEvent>, Vec<Fail>> {
    let mut events = Vec::with_capacity(items.len());
    let mut fails = Vec::new();
    for item in items {
        match read_event(item) {
            Ok(e) => events.push(e),
            Err(errors) if fails.len() < MAX_LISTED_FAILS => fails.push(Fail { key: Some(item.clone()), errors }),
            Err(_) => {}
        }
    }
    if fails.is_empty() {
        Ok(events)
    } else {
        Err(fails)
    }
}

/// A record-views body whose every event has its usual field types, read straight into
/// borrowed fields ([`TypedEvent`]) without building a [`Value`] of the whole body (its tree was
/// about a quarter of a server storing 10,000-event batches: building it, walking it, freeing
/// it). `data` must be a list of objects, `null` or absent; any other key is ignored.
#[derive(Deserialize)]
struct TypedBody<'a> {
    #[serde(borrow, default)]
    data: Option<Vec<ObjectOnly<TypedEvent<'a>>>>,
}

/// A value that deserializes only from a JSON object: a derived struct would also read an
/// array, which [`read_event`] and the tolerant reader's bodies refuse.
struct ObjectOnly<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ObjectOnly<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Objects<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Objects<T> {
            type Value = ObjectOnly<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(ObjectOnly)
            }
        }
        d.deserialize_map(Objects(std::marker::PhantomData))
    }
}

/// The events of a record-views body, read without a [`Value`], if the body takes that path: a
/// JSON object (after an optional byte-order mark) whose `data` is a list of at most
/// [`MAX_INGEST_BATCH`] objects, each a good event whose fields have their usual types. `None`
/// for any other body: [`Service::record_views_body`] then reads it as the tolerant reader
/// does, which accepts what this refuses (single quotes, a numeric id, a repeated key…) and
/// names what is wrong. Where this answers, it answers what that would.
pub fn read_typed_body(bytes: &[u8]) -> Option<Vec<ViewEvent>> {
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let ObjectOnly(typed) = serde_json::from_slice::<ObjectOnly<TypedBody<'_>>>(body).ok()?;
    let items = typed.data.unwrap_or_default();
    if items.len() > MAX_INGEST_BATCH {
        return None;
    }
    items.iter().map(|item| read_fields(&item.0).ok()).collect()
}

impl<S: Store> Service<S> {
    /// Stores a record-views body given as its bytes: read without building a tree of it when
    /// it takes that path ([`read_typed_body`]), else parsed by the tolerant reader and stored
    /// by [`Service::record_views`]. The bytes are dropped before the events are stored.
    pub async fn record_views_body<B: AsRef<[u8]> + Send>(
        &self,
        grant: &EditGrant,
        bytes: B,
    ) -> Result<InsertOutcome, ApiError> {
        let body = match read_typed_body(bytes.as_ref()) {
            Some(events) => {
                drop(bytes);
                return self.store_events(grant, events).await;
            }
            None => lenient::parse_body(bytes.as_ref()).map_err(|e| ApiError::MalformedBody(e.to_string()))?,
        };
        drop(bytes);
        self.record_views(grant, &body).await
    }

    /// Stores the events of a batch that read without errors, all of them or none.
    async fn store_events(&self, grant: &EditGrant, events: Vec<ViewEvent>) -> Result<InsertOutcome, ApiError> {
        if events.is_empty() {
            return Ok(InsertOutcome::default());
        }
        // Not under the query deadline: once started, a write runs to its commit.
        Ok(self.store.insert_events(grant.account(), &events).await?)
    }

    /// Stores a record-views body: all its events or, if any is invalid, none.
    pub async fn record_views(&self, grant: &EditGrant, body: &Value) -> Result<InsertOutcome, ApiError> {
        let events = batch_of(body)?;
        self.store_events(grant, events).await
    }
}

/// The events of a record-views body parsed by the tolerant reader, or why it is refused.
fn batch_of(body: &Value) -> Result<Vec<ViewEvent>, ApiError> {
    let items: &[Value] = match body {
        Value::Object(obj) => match obj.get("data") {
            Some(Value::Array(items)) => items,
            None | Some(Value::Null) => &[],
            Some(_) => {
                return Err(ApiError::invalid(
                    None,
                    vec![invalid(ErrorCode::ErrValidationInvalidValue, "data", "data must be a list of events")],
                ))
            }
        },
        Value::Null => &[],
        _ => return Err(ApiError::MalformedBody("the body must be an object".into())),
    };
    if items.len() > MAX_INGEST_BATCH {
        return Err(ApiError::invalid(
            None,
            vec![invalid(
                ErrorCode::ErrValidationInvalidValue,
                "data",
                format!("a batch holds at most {MAX_INGEST_BATCH} events; this one has {}", items.len()),
            )],
        ));
    }
    read_batch(items).map_err(ApiError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event_fields::FIELD_NAMES;
    use proptest::prelude::*;
    use serde_json::json;

    fn event() -> Value {
        json!({"from": "a@x.com", "to": "b@y.com", "viewer": "admin@x.com", "contentViewed": true,
               "messageDate": "2022-07-18T13:25:21+0000", "viewed": "2022-09-01T08:13:39Z", "subject": "Hi"})
    }

    #[test]
    fn an_event_reads_with_defaults_and_a_derived_id() {
        let e = read_event(&event()).unwrap();
        assert_eq!(e.source, DEFAULT_SOURCE);
        assert!(e.content_viewed && !e.discovery_case);
        assert!(e.event_id.starts_with("sha256:"));
        assert_eq!(e.event_id, read_event(&event()).unwrap().event_id);
        let mut other = event();
        other["subject"] = json!("Other");
        assert_ne!(e.event_id, read_event(&other).unwrap().event_id);
    }

    /// JSON text for one field's value: every shape the readers treat differently.
    fn value_text() -> impl Strategy<Value = String> {
        let strings = prop_oneof![
            Just(String::new()),
            Just("  ".to_owned()),
            Just("a@x.com".to_owned()),
            Just("2024-03-01T10:00:00+0000".to_owned()),
            Just("2024-03-01".to_owned()),
            Just("not a date".to_owned()),
            Just("view".to_owned()),
            Just("yes".to_owned()),
            Just("FALSE".to_owned()),
            Just("1".to_owned()),
            Just("x".repeat(MAX_ID_LEN + 1)),
            Just("y".repeat(MAX_FIELD_LEN + 1)),
            "[a-zA-Z0-9 @.é\\\"\n\u{1F600}]{0,12}",
        ]
        .prop_map(|s| serde_json::to_string(&s).unwrap());
        let escaped = Just(r#""a\u0040x.com""#.to_owned());
        let others = prop_oneof![
            Just("null".to_owned()),
            Just("true".to_owned()),
            Just("false".to_owned()),
            Just("0".to_owned()),
            Just("1".to_owned()),
            Just("2".to_owned()),
            Just("1.5".to_owned()),
            Just("-7".to_owned()),
            Just("[]".to_owned()),
            Just(r#"{"a": 1}"#.to_owned()),
        ];
        prop_oneof![4 => strings, 1 => escaped, 2 => others]
    }

    /// Every field an event has, one no event has, and one spelt with an escape.
    fn names() -> Vec<&'static str> {
        FIELD_NAMES.iter().copied().chain(["extra", "vi\\u0065wed"]).collect()
    }

    /// A field's value as it usually comes (a string, or a boolean for the flags), often, and
    /// any other shape sometimes.
    fn field_text(name: &str) -> BoxedStrategy<String> {
        let usual = if name.ends_with("Viewed") || name.ends_with("Case") {
            prop_oneof![Just("true".to_owned()), Just("false".to_owned())].boxed()
        } else {
            value_text().prop_filter("a string", |t| t.starts_with('"')).boxed()
        };
        prop_oneof![6 => usual, 1 => value_text()].boxed()
    }

    /// An object's text: each field present or not (the required ones usually present), then
    /// sometimes one field repeated.
    fn object_text() -> impl Strategy<Value = String> {
        let required = ["from", "to", "viewer", "messageDate", "viewed"];
        let names = names();
        let fields: Vec<_> = names
            .iter()
            .map(|&name| {
                let present = if required.contains(&name) { 0.9 } else { 0.5 };
                proptest::option::weighted(present, field_text(name)).prop_map(move |v| v.map(|v| (name, v)))
            })
            .collect();
        let repeat = proptest::option::weighted(0.1, (0..names.len(), value_text()));
        (fields, repeat).prop_map(move |(fields, repeat)| {
            let mut parts: Vec<String> = fields.into_iter().flatten().map(|(k, v)| format!("\"{k}\": {v}")).collect();
            if let Some((i, v)) = repeat {
                parts.push(format!("\"{}\": {v}", names[i]));
            }
            format!("{{{}}}", parts.join(", "))
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]
        /// The fast path answers exactly what parsing into a `Value` and `read_event` answer.
        #[test]
        fn json_lines_read_the_same_by_both_paths(
            text in prop_oneof![8 => object_text(), 1 => value_text(), 1 => Just("{\"from\": ".to_owned())],
            pad in prop_oneof![Just(""), Just(" "), Just("\t")],
        ) {
            let text = format!("{pad}{text}{pad}");
            let slow = match serde_json::from_str::<Value>(&text) {
                Ok(v) => read_event(&v).map_err(JsonEventError::Invalid),
                Err(e) => Err(JsonEventError::Syntax(e.to_string())),
            };
            prop_assert_eq!(read_json_event(text.as_bytes()), slow, "{}", text);
        }
    }

    #[test]
    fn the_fast_path_reads_a_typical_line_and_refuses_an_array() {
        let line = serde_json::to_vec(&event()).unwrap();
        assert_eq!(read_json_event(&line), Ok(read_event(&event()).unwrap()));
        let array = br#"["i", "a@x.com", "b@y.com", "admin@x.com"]"#;
        let Err(JsonEventError::Invalid(errors)) = read_json_event(array) else { panic!("an array is not an event") };
        assert_eq!(errors[0].message, "an event must be an object");
    }

    /// A record-views body's text: usually an object with `data`, a list of event objects or
    /// other values; sometimes another key, `data` null or not a list, a byte-order mark, or no
    /// object at all.
    fn body_text() -> impl Strategy<Value = String> {
        let item = prop_oneof![8 => object_text(), 1 => value_text()];
        let items = proptest::collection::vec(item, 0..5).prop_map(|items| format!("[{}]", items.join(", ")));
        let data = prop_oneof![8 => items, 1 => value_text()];
        let other = proptest::option::weighted(0.2, value_text());
        let bom = prop_oneof![6 => Just(""), 1 => Just("\u{feff}")];
        let object = (data, other, bom).prop_map(|(data, other, bom)| match other {
            Some(v) => format!("{bom}{{\"extra\": {v}, \"data\": {data}}}"),
            None => format!("{bom} {{\"data\": {data}}} "),
        });
        prop_oneof![10 => object, 1 => value_text(), 1 => Just("{\"data\": [".to_owned()), 1 => Just(" ".to_owned())]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]
        /// Where the typed reader answers a body, the tolerant reader and `batch_of` answer the
        /// same events; it answers every body of good, typically typed events.
        #[test]
        fn record_views_bodies_read_the_same_by_both_paths(text in body_text()) {
            let typed = read_typed_body(text.as_bytes());
            let slow = lenient::parse_body(text.as_bytes()).ok().map(|v| batch_of(&v));
            if let Some(events) = typed {
                match slow {
                    Some(Ok(slow)) => prop_assert_eq!(events, slow, "{}", text),
                    other => prop_assert!(false, "typed read {} events, tolerant reader {:?}: {}", events.len(), other, text),
                }
            }
        }
    }

    #[test]
    fn typical_bodies_take_the_typed_path() {
        let body = json!({"data": [event(), event(), {"id": "e-3", "from": "a", "to": "b", "viewer": "v",
            "messageDate": "2022-07-18T13:25:21+0000", "viewed": "2022-09-01T08:13:39Z", "discoveryCase": false}]});
        let bytes = serde_json::to_vec(&body).unwrap();
        let typed = read_typed_body(&bytes).expect("typed");
        assert_eq!(typed, batch_of(&body).unwrap());
        assert_eq!(typed.len(), 3);
        assert_eq!(read_typed_body(b"{}"), Some(vec![]));
        assert_eq!(read_typed_body(br#"{"data": null}"#), Some(vec![]));
        // What the typed path leaves to the tolerant reader.
        for refused in [
            &br#"{'data': []}"#[..],
            br#"[{"data": []}]"#,
            br#"{"data": [["i", "a", "b"]]}"#,
            br#"{"data": [null]}"#,
            br#"{"data": [], "data": []}"#,
            br#"{"data": [{"from": 1}]}"#,
            br#"{"data": [{"from": "a"}]}"#,
        ] {
            assert_eq!(read_typed_body(refused), None, "{}", String::from_utf8_lossy(refused));
        }
        let over: Vec<Value> = (0..=MAX_INGEST_BATCH).map(|_| event()).collect();
        assert_eq!(read_typed_body(&serde_json::to_vec(&json!({ "data": over })).unwrap()), None);
    }

    #[test]
    fn bad_fields_are_each_named() {
        let bad = json!({"from": "a", "to": 3, "viewer": "", "messageDate": "x", "viewed": null, "action": "peek"});
        let errors = read_event(&bad).unwrap_err();
        let fields: Vec<_> = errors.iter().filter_map(|e| e.field.as_deref()).collect();
        assert_eq!(fields, vec!["to", "viewer", "messageDate", "viewed", "action"]);
    }
}
