//! One keeper step: follow every open transaction of the journal to its end (`follow.rs`), then settle what is due
//! (`settle.rs`), on the state in `state.rs`, which also holds what both halves share (signing, broadcasting, fees).
//! The files import `state.rs`, never this root.
//!
//! The journal is write-ahead (`db::journal`): a batch's items, nonce and signed transaction are committed before
//! anything is broadcast, so a crash at any point leaves either nothing sent or a journaled transaction the next step
//! finds, sends again if needed, and follows to its receipt. Nothing sent is ever unrecorded. `step/` is the I/O
//! around the decisions; the decisions themselves (what to batch, when, what fees) are `policy`.

mod follow;
mod settle;
mod state;

use tracing::instrument;

pub(crate) use state::Keeper;

use crate::Result;

impl Keeper {
    /// One step as the leader of `epoch`. Its span, and the span of each batch within it, carry the epoch, so
    /// `RUST_LOG=beatstream::keeper=debug` shows which leadership did what.
    #[instrument(target = "beatstream::keeper", name = "step", skip_all, fields(epoch = epoch))]
    pub(crate) async fn step(&mut self, epoch: i64) -> Result<()> {
        let open = self.reconcile(epoch).await?;
        if open < self.options.max_pending {
            self.settle(epoch).await?;
        }
        self.check_stall().await
    }
}
