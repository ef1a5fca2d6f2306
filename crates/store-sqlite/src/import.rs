//! Storing an import ([`viewlog_store::Store::import_events`]): batches pulled from a stream by
//! the writer, committed in large transactions; into a store without events, in one
//! transaction that builds the event-id index once at the end.
//!
//! An index that grows one random entry at a time costs a b-tree descent and a page change per
//! event, about a third of an import's storing; built from all the rows at once it is a sort.
//! That is only worth it when the index holds nothing yet (it is rebuilt whole) and only right
//! when the ids do not repeat (the rows go in unchecked): a store with no events at all and an
//! import whose caller promises unique ids. A broken promise fails the index's creation and the
//! whole transaction rolls back.

use futures::StreamExt;
use futures_core::Stream;
use viewlog_store::{ImportOptions, InsertOutcome, StoreError, ViewEvent};

use crate::conn::{begin_write, commit, roll_back_open, Conn, Ctx, Durability};
use crate::error::{is_unique_violation, Fail};
use crate::events;

/// The event-id index as migration 1 creates it, to drop and build again.
pub(crate) const ID_INDEX: &str = "CREATE UNIQUE INDEX view_events_by_event_id ON view_events (account_id, event_id)";

/// Stores the import; on failure, rolls back the open transaction (earlier commits stay).
pub(crate) fn import<B>(
    conn: &mut Conn,
    ctx: &Ctx<'_>,
    account: i64,
    mut batches: B,
    options: ImportOptions,
) -> Result<InsertOutcome, Fail>
where
    B: Stream<Item = Vec<ViewEvent>> + Unpin,
{
    conn.set_durability(Durability::Full)?;
    let db = &conn.db;
    let done = store(db, ctx, account, &mut batches, options);
    if done.is_err() {
        roll_back_open(db);
    }
    done
}

fn store<B>(
    db: &rusqlite::Connection,
    ctx: &Ctx<'_>,
    account: i64,
    batches: &mut B,
    options: ImportOptions,
) -> Result<InsertOutcome, Fail>
where
    B: Stream<Item = Vec<ViewEvent>> + Unpin,
{
    begin_write(db)?;
    let bulk = options.unique_ids && !db.query_row("SELECT EXISTS (SELECT 1 FROM view_events)", [], |r| r.get(0))?;
    if bulk {
        db.execute_batch("DROP INDEX view_events_by_event_id")?;
    }
    let mut total = InsertOutcome::default();
    let mut since_commit = 0usize;
    // This thread is the writer's blocking thread: waiting here for the next batch is what it
    // is for.
    while let Some(batch) = futures::executor::block_on(batches.next()) {
        ctx.check()?;
        let outcome = events::insert(db, ctx, account, &batch)?;
        total.inserted += outcome.inserted;
        total.duplicates += outcome.duplicates;
        since_commit += batch.len();
        if !bulk && since_commit >= options.per_commit {
            commit(db)?;
            begin_write(db)?;
            since_commit = 0;
        }
    }
    if bulk {
        match db.execute_batch(ID_INDEX) {
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Conflict(
                    "an event id repeats within an import that promised unique ids; none of it was stored".into(),
                )
                .into())
            }
            other => other?,
        }
    }
    commit(db)?;
    Ok(total)
}
