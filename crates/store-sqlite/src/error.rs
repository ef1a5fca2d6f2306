//! Mapping SQLite's errors into [`StoreError`].

use rusqlite::ffi;
use rusqlite::ErrorCode;
use viewlog_store::StoreError;

/// What the blocking half of an operation fails with: a driver error still to be classified, or
/// a store error decided already (`NotFound`, a `Conflict` with a good name, …).
#[derive(Debug)]
pub(crate) enum Fail {
    /// A SQLite error, mapped by [`Fail::into_store`].
    Db(rusqlite::Error),
    /// An error already in the store's terms.
    Store(StoreError),
}

impl From<rusqlite::Error> for Fail {
    fn from(e: rusqlite::Error) -> Self {
        Fail::Db(e)
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail::Store(e)
    }
}

impl Fail {
    /// Whether this is an interruption (SQLite's `SQLITE_INTERRUPT` or our own cancel check).
    pub(crate) fn is_interrupt(&self) -> bool {
        match self {
            Fail::Db(e) => e.sqlite_error_code() == Some(ErrorCode::OperationInterrupted),
            Fail::Store(e) => matches!(e, StoreError::Interrupted),
        }
    }

    /// The error in the store's terms.
    pub(crate) fn into_store(self) -> StoreError {
        match self {
            Fail::Store(e) => e,
            Fail::Db(e) => map_db(e),
        }
    }
}

/// Classifies a SQLite error: interrupts, constraint violations and damaged files get their own
/// variants, everything else is a backend failure.
pub(crate) fn map_db(e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(failure, message) = &e {
        let message = || message.clone().unwrap_or_else(|| failure.to_string());
        match failure.code {
            ErrorCode::OperationInterrupted => return StoreError::Interrupted,
            ErrorCode::ConstraintViolation => match failure.extended_code {
                ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                    return StoreError::Conflict(message())
                }
                ffi::SQLITE_CONSTRAINT_FOREIGNKEY => {
                    return StoreError::NotFound(format!("a record referenced ({})", message()))
                }
                _ => {}
            },
            ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt => return StoreError::Corrupt(message()),
            _ => {}
        }
    }
    StoreError::backend(e)
}

/// Whether `e` says that another connection holds a lock this one needs.
pub(crate) fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked))
}

/// Whether `e` is a UNIQUE or PRIMARY KEY violation.
pub(crate) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == ErrorCode::ConstraintViolation
                && matches!(f.extended_code, ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
    )
}

/// For `map_err`: a unique violation becomes `Conflict(what)`, anything else stays a driver error.
pub(crate) fn conflict_as(what: impl FnOnce() -> String) -> impl FnOnce(rusqlite::Error) -> Fail {
    move |e| {
        if is_unique_violation(&e) {
            Fail::Store(StoreError::Conflict(what()))
        } else {
            Fail::Db(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(ffi::Error::new(code), Some("msg".into()))
    }

    #[test]
    fn classifies_sqlite_errors() {
        assert!(matches!(map_db(failure(ffi::SQLITE_INTERRUPT)), StoreError::Interrupted));
        assert!(matches!(map_db(failure(ffi::SQLITE_CONSTRAINT_UNIQUE)), StoreError::Conflict(m) if m == "msg"));
        assert!(matches!(map_db(failure(ffi::SQLITE_CONSTRAINT_PRIMARYKEY)), StoreError::Conflict(_)));
        assert!(matches!(map_db(failure(ffi::SQLITE_CONSTRAINT_FOREIGNKEY)), StoreError::NotFound(_)));
        assert!(matches!(map_db(failure(ffi::SQLITE_NOTADB)), StoreError::Corrupt(_)));
        assert!(matches!(map_db(failure(ffi::SQLITE_CORRUPT)), StoreError::Corrupt(_)));
        assert!(matches!(map_db(failure(ffi::SQLITE_IOERR)), StoreError::Backend(_)));
        assert!(matches!(map_db(failure(ffi::SQLITE_CONSTRAINT_NOTNULL)), StoreError::Backend(_)));
        assert!(Fail::Db(failure(ffi::SQLITE_INTERRUPT)).is_interrupt());
        assert!(Fail::Store(StoreError::Interrupted).is_interrupt());
        assert!(!Fail::Db(failure(ffi::SQLITE_IOERR)).is_interrupt());
        let conflict = conflict_as(|| "user a@b".into())(failure(ffi::SQLITE_CONSTRAINT_UNIQUE));
        assert!(matches!(conflict.into_store(), StoreError::Conflict(m) if m == "user a@b"));
    }
}
