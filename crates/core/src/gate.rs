//! The bound on concurrent queries and their deadline, so that slow searches cannot starve the
//! server. A query that passes its deadline, or whose caller goes away, is dropped, and dropping
//! a store future stops its statement.

use crate::error::ApiError;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use viewlog_store::StoreResult;

/// Admits at most a fixed number of queries at once, each under a deadline.
#[derive(Debug, Clone)]
pub struct QueryGate {
    permits: Arc<Semaphore>,
    deadline: Duration,
}

impl QueryGate {
    /// A gate for `concurrency` queries at once (at least one), each given `deadline`.
    pub fn new(concurrency: usize, deadline: Duration) -> Self {
        QueryGate { permits: Arc::new(Semaphore::new(concurrency.max(1))), deadline }
    }

    /// Runs `query` once a place is free. The wait and the run share one deadline; past it the
    /// query is dropped (which interrupts it) and the caller gets `Unavailable`.
    pub async fn run<T>(&self, query: impl Future<Output = StoreResult<T>>) -> Result<T, ApiError> {
        let work = async {
            let _permit = self.permits.acquire().await.map_err(|_| ApiError::Internal("query gate closed".into()))?;
            query.await.map_err(ApiError::from)
        };
        match tokio::time::timeout(self.deadline, work).await {
            Ok(result) => result,
            Err(_) => Err(ApiError::Unavailable("the query passed its deadline")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_slow_query_is_cut_at_the_deadline_and_frees_its_place() {
        let gate = QueryGate::new(1, Duration::from_millis(50));
        let slow = gate.run(async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(())
        });
        assert!(matches!(slow.await, Err(ApiError::Unavailable(_))));
        let fast = gate.run(async { Ok(7) }).await.unwrap();
        assert_eq!(fast, 7);
    }
}
