//! Permissions and the built-in roles every account starts with.

pub use viewlog_protocol::{PERMISSION_VIEW_LOGS_EDIT as VIEW_LOGS_EDIT, PERMISSION_VIEW_LOGS_READ as VIEW_LOGS_READ};

/// Every permission viewlog knows.
pub const ALL: [&str; 2] = [VIEW_LOGS_READ, VIEW_LOGS_EDIT];

/// The built-in role holding every permission.
pub const FULL_ADMINISTRATOR: &str = "Full Administrator";
/// The built-in role that may read view logs.
pub const VIEW_LOG_READER: &str = "View Log Reader";
/// The built-in role that may record view events (for archives that push them).
pub const VIEW_LOG_RECORDER: &str = "View Log Recorder";

/// The built-in roles and their permissions.
pub fn builtin_roles() -> [(&'static str, Vec<&'static str>); 3] {
    [
        (FULL_ADMINISTRATOR, ALL.to_vec()),
        (VIEW_LOG_READER, vec![VIEW_LOGS_READ]),
        (VIEW_LOG_RECORDER, vec![VIEW_LOGS_EDIT]),
    ]
}

/// The canonical spelling of a permission, matched ignoring case and spacing around `|`;
/// `None` if viewlog does not know it.
pub fn canonical(name: &str) -> Option<&'static str> {
    let squash = |s: &str| s.split('|').map(|p| p.trim().to_lowercase()).collect::<Vec<_>>().join("|");
    let wanted = squash(name);
    ALL.into_iter().find(|p| squash(p) == wanted)
}

#[cfg(test)]
mod tests {
    #[test]
    fn permissions_are_matched_loosely() {
        assert_eq!(super::canonical("archive|view logs|read"), Some(super::VIEW_LOGS_READ));
        assert_eq!(super::canonical("Archive | View Logs | Edit "), Some(super::VIEW_LOGS_EDIT));
        assert_eq!(super::canonical("Archive | Search | Read"), None);
    }
}
