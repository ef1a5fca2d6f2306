//! Connections from the pool, and cancellation.
//!
//! An operation takes a connection from the pool as a [`Lease`] and gives it back with
//! [`Lease::finish`] once it has its answer (success or failure). A lease dropped before that —
//! the operation's future was dropped, because a deadline passed or the client went away — may
//! leave a statement running on the server. Such a connection is never handed out again: it
//! is taken out of the pool, a cancel request is sent for it (PostgreSQL's protocol-level
//! `CancelRequest`, over a short-lived side connection), and then it is closed. Since nobody else
//! uses that connection any more, the cancel cannot hit a later operation's statement. A
//! transaction left open is rolled back by the server when the connection closes.

use deadpool_postgres::{Object, Pool};
use viewlog_store::{StoreError, StoreResult};

use crate::error::Fail;
use crate::tls::Tls;

/// A pooled connection held by one operation.
pub(crate) struct Lease {
    object: Option<Object>,
    /// How to reach the server for a cancel request.
    tls: Tls,
}

impl Lease {
    /// Takes a connection from the pool, waiting for one if all are busy.
    pub(crate) async fn take(pool: &Pool, tls: &Tls) -> StoreResult<Lease> {
        let object = pool.get().await.map_err(|e| StoreError::Backend(Box::new(e)))?;
        Ok(Lease { object: Some(object), tls: tls.clone() })
    }

    /// The connection.
    pub(crate) fn client(&mut self) -> &mut Object {
        // Only `finish` and `drop` take the object out, and both consume the lease.
        self.object.as_mut().unwrap_or_else(|| unreachable!("a lease holds its connection"))
    }

    /// Ends the operation: the connection goes back to the pool and the result is put in the
    /// store's terms.
    pub(crate) fn finish<T>(mut self, result: Result<T, Fail>) -> StoreResult<T> {
        // Back to the pool as is: the driver has read every answer of the operation.
        drop(self.object.take());
        result.map_err(Fail::into_store)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(object) = self.object.take() else { return };
        // The operation was abandoned: detach the connection from the pool, cancel whatever it
        // still runs, and close it.
        let client = Object::take(object);
        let token = client.cancel_token();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let tls = self.tls.clone();
                runtime.spawn(async move {
                    if let Err(e) = tls.cancel(token).await {
                        tracing::debug!(error = %e, "could not cancel an abandoned statement");
                    }
                    drop(client);
                });
            }
            // No runtime (shutting down): closing the connection is all there is left to do;
            // the server stops the statement when it next writes to the closed socket.
            Err(_) => drop(client),
        }
    }
}
