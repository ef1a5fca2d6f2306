//! A record's stable fingerprint: a hash of its canonical form, the same for the same record
//! however often and through whichever window it is fetched.

use sha2::{Digest, Sha256};
use viewlog_protocol::records::ViewLogRecord;

/// The fingerprint of a record: hex SHA-256 (first 16 bytes) over its nine fields, each
/// length-prefixed, in a fixed order, dates as sent.
pub fn fingerprint(r: &ViewLogRecord) -> String {
    let mut h = Sha256::new();
    for field in [
        r.viewed.as_str(),
        r.viewer.as_str(),
        r.from.as_str(),
        r.to.as_str(),
        r.subject.as_str(),
        r.source.as_str(),
        r.message_date.as_str(),
        if r.content_viewed { "1" } else { "0" },
        if r.discovery_case { "1" } else { "0" },
    ] {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field.as_bytes());
    }
    h.finalize()[..16].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(subject: &str) -> ViewLogRecord {
        ViewLogRecord {
            from: "a".into(),
            to: "b".into(),
            viewer: "c".into(),
            source: "Message Tracking".into(),
            content_viewed: true,
            discovery_case: false,
            message_date: "2022-07-18T13:25:21+0000".into(),
            viewed: "2022-09-01T08:13:39+0000".into(),
            subject: subject.into(),
        }
    }

    #[test]
    fn same_record_same_print_and_fields_cannot_run_together() {
        assert_eq!(fingerprint(&rec("x")), fingerprint(&rec("x")));
        assert_ne!(fingerprint(&rec("x")), fingerprint(&rec("y")));
        let mut a = rec("");
        a.to = "bc".into();
        let mut b = rec("");
        b.to = "b".into();
        b.viewer = "cc".into();
        a.viewer = "c".into();
        assert_ne!(fingerprint(&a), fingerprint(&b));
        assert_eq!(fingerprint(&rec("x")).len(), 32);
    }
}
