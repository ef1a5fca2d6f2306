//! viewlog's embedded SQLite store.
