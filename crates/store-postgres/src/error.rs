//! Mapping PostgreSQL's errors into [`StoreError`].

use tokio_postgres::error::SqlState;
use viewlog_store::StoreError;

/// What an operation fails with before it reaches the caller: a driver error still to be
/// classified, or a store error decided already (`NotFound`, a `Conflict` with a good name, …).
#[derive(Debug)]
pub(crate) enum Fail {
    /// A PostgreSQL or driver error, mapped by [`Fail::into_store`].
    Db(tokio_postgres::Error),
    /// An error already in the store's terms.
    Store(StoreError),
}

impl From<tokio_postgres::Error> for Fail {
    fn from(e: tokio_postgres::Error) -> Self {
        Fail::Db(e)
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail::Store(e)
    }
}

impl Fail {
    /// The error in the store's terms.
    pub(crate) fn into_store(self) -> StoreError {
        match self {
            Fail::Store(e) => e,
            Fail::Db(e) => map_db(e),
        }
    }
}

/// Classifies a PostgreSQL error: a cancelled statement, constraint violations and data the
/// schema does not expect get their own variants; everything else is a backend failure.
pub(crate) fn map_db(e: tokio_postgres::Error) -> StoreError {
    let Some(db) = e.as_db_error() else { return StoreError::backend(e) };
    let code = db.code();
    if *code == SqlState::QUERY_CANCELED {
        StoreError::Interrupted
    } else if *code == SqlState::UNIQUE_VIOLATION {
        StoreError::Conflict(db.constraint().map_or_else(|| db.message().to_owned(), |c| format!("a record ({c})")))
    } else if *code == SqlState::FOREIGN_KEY_VIOLATION {
        StoreError::NotFound(format!(
            "a record referenced ({})",
            db.constraint().map_or_else(|| db.message().to_owned(), str::to_owned)
        ))
    } else if *code == SqlState::DATA_CORRUPTED || *code == SqlState::INDEX_CORRUPTED {
        StoreError::Corrupt(db.message().to_owned())
    } else {
        StoreError::backend(e)
    }
}

/// Whether `e` is a UNIQUE (or PRIMARY KEY) violation.
pub(crate) fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

/// For `map_err`: a unique violation becomes `Conflict(what)`, anything else stays a driver
/// error.
pub(crate) fn conflict_as(what: impl FnOnce() -> String) -> impl FnOnce(tokio_postgres::Error) -> Fail {
    move |e| if is_unique_violation(&e) { Fail::Store(StoreError::Conflict(what())) } else { Fail::Db(e) }
}

/// For `map_err`: a unique violation becomes `Conflict(what)`, a foreign key violation
/// `NotFound(missing)`, anything else stays a driver error.
pub(crate) fn conflict_or_missing(
    what: impl FnOnce() -> String,
    missing: impl FnOnce() -> String,
) -> impl FnOnce(tokio_postgres::Error) -> Fail {
    move |e| {
        if is_unique_violation(&e) {
            Fail::Store(StoreError::Conflict(what()))
        } else if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) {
            Fail::Store(StoreError::NotFound(missing()))
        } else {
            Fail::Db(e)
        }
    }
}
