//! The fee decisions as pure functions: the fees of a new transaction under `--keeper-max-fee-gwei`, the fees of a
//! replacement, and whether a stuck batch is bumped or its nonce freed with a self-transfer.

use crate::db::{AttemptKind, BatchKind};

/// The node's suggested (max fee, priority fee), neither above `ceiling`.
pub(crate) fn capped(suggested: (u128, u128), ceiling: u128) -> (u128, u128) {
    (suggested.0.min(ceiling), suggested.1.min(ceiling))
}

/// The fees of a replacement: both at least `percent` above the previous attempt's, and at least what the node
/// suggests now; `None` when that would pass `ceiling`.
pub(crate) fn bumped_fees(
    previous: (u128, u128),
    suggested: (u128, u128),
    percent: f64,
    ceiling: u128,
) -> Option<(u128, u128)> {
    // Integer arithmetic in thousandths of a percent, rounded up, so 12.5% is exact.
    let raise = |fee: u128| -> u128 {
        let factor = 100_000 + (percent * 1000.0).ceil() as u128;
        fee.saturating_mul(factor).div_ceil(100_000).max(fee + 1)
    };
    let priority = raise(previous.1).max(suggested.1);
    let max_fee = raise(previous.0).max(suggested.0).max(priority);
    (max_fee <= ceiling).then_some((max_fee, priority))
}

/// What replaces a stuck attempt: the batch's settlement again with raised fees, or, once the batch has had
/// `max_attempts` settlement sends (or is a gap filler, or is already being cancelled), a self-transfer that frees
/// the nonce.
pub(crate) fn replacement(
    batch: BatchKind,
    latest: AttemptKind,
    settle_attempts: usize,
    max_attempts: u32,
) -> AttemptKind {
    if batch == BatchKind::Noop
        || latest == AttemptKind::Cancel
        || settle_attempts >= max_attempts as usize
    {
        AttemptKind::Cancel
    } else {
        AttemptKind::Settle
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn bumps_both_fees_by_at_least_the_percentage() {
        let (max, prio) = bumped_fees((1_000, 100), (0, 0), 12.5, u128::MAX).unwrap();
        assert_eq!((max, prio), (1_125, 113));
        // The node's suggestion wins when higher.
        let (max, prio) = bumped_fees((1_000, 100), (5_000, 400), 12.5, u128::MAX).unwrap();
        assert_eq!((max, prio), (5_000, 400));
        // Tiny fees still rise.
        assert_eq!(bumped_fees((1, 0), (0, 0), 12.5, u128::MAX), Some((2, 1)));
        // Never above the ceiling.
        assert_eq!(bumped_fees((1_000, 100), (0, 0), 12.5, 1_100), None);
    }

    #[test]
    fn a_batch_is_bumped_until_its_last_attempt_then_its_nonce_freed() {
        use AttemptKind::{Cancel, Settle};
        assert_eq!(replacement(BatchKind::Settle, Settle, 1, 6), Settle);
        assert_eq!(replacement(BatchKind::Settle, Settle, 5, 6), Settle);
        assert_eq!(replacement(BatchKind::Settle, Settle, 6, 6), Cancel);
        // Once cancelling, always cancelling; a gap filler is a self-transfer from the start.
        assert_eq!(replacement(BatchKind::Settle, Cancel, 1, 6), Cancel);
        assert_eq!(replacement(BatchKind::Noop, Cancel, 0, 6), Cancel);
        assert_eq!(capped((700, 50), 500), (500, 50));
    }

    /// Fees as they are on chains: far below where `u128` arithmetic could saturate.
    fn fee() -> impl Strategy<Value = u128> {
        prop_oneof![0u128..1_000, 0u128..1_000_000_000_000_000_000_000_000]
    }

    /// (max fee, priority fee) with the priority fee at most the max fee, as every attempt is signed.
    fn fees() -> impl Strategy<Value = (u128, u128)> {
        (fee(), fee()).prop_map(|(a, b)| (a.max(b), a.min(b)))
    }

    proptest! {
        /// A replacement never lowers a fee, raises both by at least 12.5% (above the 10% a node such as geth
        /// requires of a replacement), takes at least what the node suggests, keeps the priority fee within the
        /// max fee, and never passes the ceiling; the ceiling only ever refuses a replacement, never changes one.
        #[test]
        fn a_bump_raises_both_fees_past_the_nodes_replacement_minimum(
            previous in fees(),
            suggested in fees(),
            percent in 12.5f64..1000.0,
            ceiling in fee(),
        ) {
            let unbounded = bumped_fees(previous, suggested, percent, u128::MAX).expect("no ceiling");
            let (max_fee, priority) = unbounded;
            prop_assert!(max_fee > previous.0 && priority > previous.1);
            prop_assert!(max_fee * 100 >= previous.0 * 110 && priority * 100 >= previous.1 * 110);
            prop_assert!(max_fee * 1000 >= previous.0 * 1125 && priority * 1000 >= previous.1 * 1125);
            prop_assert!(max_fee >= suggested.0 && priority >= suggested.1);
            prop_assert!(priority <= max_fee);
            match bumped_fees(previous, suggested, percent, ceiling) {
                Some(bounded) => prop_assert_eq!(bounded, unbounded),
                None => prop_assert!(max_fee > ceiling),
            }
        }

        /// A batch has at most `max_attempts` settlement sends: from then on every replacement frees the nonce.
        #[test]
        fn settlement_sends_stop_at_the_last_attempt(max_attempts in 1u32..20, extra in 0usize..5) {
            let mut settles = 1;
            let mut latest = AttemptKind::Settle;
            for _ in 0..(max_attempts as usize + extra) {
                latest = replacement(BatchKind::Settle, latest, settles, max_attempts);
                if latest == AttemptKind::Settle {
                    settles += 1;
                }
            }
            prop_assert_eq!(settles, max_attempts as usize);
            prop_assert_eq!(latest, AttemptKind::Cancel);
        }

        /// New transactions never pay above the ceiling.
        #[test]
        fn new_fees_stay_under_the_ceiling(suggested in fees(), ceiling in fee()) {
            let (max_fee, priority) = capped(suggested, ceiling);
            prop_assert!(max_fee <= ceiling && priority <= ceiling);
            prop_assert!(max_fee <= suggested.0 && priority <= suggested.1);
        }
    }
}
