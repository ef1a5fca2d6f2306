//! The storage layer's error type.

/// What a store operation can fail with. Backends map their driver errors into these.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The named record does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A unique name or key is taken already.
    #[error("{0} already exists")]
    Conflict(String),
    /// The operation was stopped: its deadline passed or its caller went away.
    #[error("query interrupted")]
    Interrupted,
    /// The stored data or schema is not what this version understands.
    #[error("corrupt or incompatible store: {0}")]
    Corrupt(String),
    /// The database failed (I/O, driver, connection).
    #[error("database error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

impl StoreError {
    /// Wraps a driver error.
    pub fn backend<E: std::error::Error + Send + Sync + 'static>(e: E) -> Self {
        StoreError::Backend(Box::new(e))
    }
}

/// The result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;
