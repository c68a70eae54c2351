//! The journal's states as types: what the `status`, `kind`, `outcome` and `reason` text columns may hold.
//!
//! Each enum is stored as the text the migrations' `CHECK`s name (`migrations/0004_keeper.sql`); SQL in `db/` that
//! filters by a state (the open batches) writes the same words.

use std::{fmt, str::FromStr};

use sqlx::{
    Decode, Encode, Postgres, Type,
    encode::IsNull,
    error::BoxDynError,
    postgres::{PgArgumentBuffer, PgHasArrayType, PgTypeInfo, PgValueRef},
};

/// Where a batch of the journal is (`keeper_batches.status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub(crate) enum BatchStatus {
    /// Signed and journaled, maybe never sent.
    Pending,
    /// Sent to the node.
    Broadcast,
    /// A receipt seen, not yet `--keeper-confirmations` deep.
    Mined,
    /// Mined and deep enough: done.
    Confirmed,
    /// Its nonce went to another transaction (or to our self-transfer); its vouchers are claimable again.
    Cancelled,
    /// The settlement reverted.
    Failed,
}

/// What a batch is for (`keeper_batches.kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub(crate) enum BatchKind {
    /// A `settleBatch` of vouchers.
    Settle,
    /// A self-transfer filling a nonce gap; it settles nothing.
    Noop,
}

/// What one signed transaction of a batch is (`keeper_attempts.kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub(crate) enum AttemptKind {
    /// The batch's `settleBatch` (the first send or a fee bump).
    Settle,
    /// A zero-value self-transfer at the batch's nonce, which frees it.
    Cancel,
}

/// Why the vault skips an item: its `SkipReason`, by name (`keeper_holds.reason`, and the `skipped:<reason>`
/// outcomes of `keeper_batch_items`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub(crate) enum SkipReason {
    /// The item's ABI was malformed.
    Malformed,
    /// The grant's signature did not verify (or was left out for a grant not yet registered).
    InvalidGrantSignature,
    /// The voucher's signature did not verify.
    InvalidVoucherSignature,
    /// The grant's settlement window has passed.
    GrantExpired,
    /// The cumulative is not above what is settled: the indexer is behind.
    StaleVoucher,
    /// Settling it would pass the grant's cap.
    CapExceeded,
    /// The listener's spendable funds do not cover it.
    InsufficientFunds,
    /// The listener's revocation has taken effect: no voucher of the grant settles again.
    GrantRevoked,
    /// Too little gas was left for a wallet check or a split's recipients: not the item's fault.
    InsufficientGas,
    /// A tip's (grant, tip id) is settled already: it never settles again.
    TipAlreadySettled,
    /// A tip's message is over the vault's 280 bytes.
    MessageTooLong,
    /// A code this keeper does not know, or no event of the vault for the item.
    Unknown,
}

impl SkipReason {
    /// The reason of the vault's `SkipReason` code.
    pub(crate) fn from_code(code: u8) -> Self {
        match code {
            0 => Self::Malformed,
            1 => Self::InvalidGrantSignature,
            2 => Self::InvalidVoucherSignature,
            3 => Self::GrantExpired,
            4 => Self::StaleVoucher,
            5 => Self::CapExceeded,
            6 => Self::InsufficientFunds,
            7 => Self::GrantRevoked,
            8 => Self::InsufficientGas,
            9 => Self::TipAlreadySettled,
            10 => Self::MessageTooLong,
            _ => Self::Unknown,
        }
    }

    /// The name stored in the journal and the holds.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::InvalidGrantSignature => "invalid_grant_signature",
            Self::InvalidVoucherSignature => "invalid_voucher_signature",
            Self::GrantExpired => "grant_expired",
            Self::StaleVoucher => "stale_voucher",
            Self::CapExceeded => "cap_exceeded",
            Self::InsufficientFunds => "insufficient_funds",
            Self::GrantRevoked => "grant_revoked",
            Self::InsufficientGas => "insufficient_gas",
            Self::TipAlreadySettled => "tip_already_settled",
            Self::MessageTooLong => "message_too_long",
            Self::Unknown => "unknown",
        }
    }

    const ALL: [Self; 12] = [
        Self::Malformed,
        Self::InvalidGrantSignature,
        Self::InvalidVoucherSignature,
        Self::GrantExpired,
        Self::StaleVoucher,
        Self::CapExceeded,
        Self::InsufficientFunds,
        Self::GrantRevoked,
        Self::InsufficientGas,
        Self::TipAlreadySettled,
        Self::MessageTooLong,
        Self::Unknown,
    ];
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one item of a simulated or mined batch did (`keeper_batch_items.outcome` once mined).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// `Settled`: the only outcome that counts as settled.
    Settled,
    /// `SettlementSkipped` with the vault's reason (stored `skipped:<reason>`).
    Skipped(SkipReason),
    /// The vault stopped the batch before this item (`BatchCutShort`): not looked at, neither settled nor skipped.
    /// Not a failure; the voucher goes into a later batch.
    NotReached,
    /// No event of the vault lines up with the item. The vault emits one per item it looks at, in order, so this
    /// means the logs are not the vault's we know.
    Unmatched,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Settled => f.write_str("settled"),
            Self::Skipped(reason) => write!(f, "skipped:{reason}"),
            Self::NotReached => f.write_str("not_reached"),
            Self::Unmatched => f.write_str("unmatched"),
        }
    }
}

impl FromStr for Outcome {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "settled" => Self::Settled,
            "not_reached" => Self::NotReached,
            "unmatched" => Self::Unmatched,
            _ => {
                let reason = s
                    .strip_prefix("skipped:")
                    .and_then(|r| SkipReason::ALL.into_iter().find(|k| k.as_str() == r))
                    .ok_or_else(|| format!("not an item outcome: {s:?}"))?;
                Self::Skipped(reason)
            }
        })
    }
}

// An outcome carries a reason, so it is text written by `Display` and read by `FromStr` rather than a derived enum.
impl Type<Postgres> for Outcome {
    fn type_info() -> PgTypeInfo {
        <String as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <String as Type<Postgres>>::compatible(ty)
    }
}

impl PgHasArrayType for Outcome {
    fn array_type_info() -> PgTypeInfo {
        <String as PgHasArrayType>::array_type_info()
    }
}

impl Encode<'_, Postgres> for Outcome {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <String as Encode<Postgres>>::encode(self.to_string(), buf)
    }
}

impl Decode<'_, Postgres> for Outcome {
    fn decode(value: PgValueRef<'_>) -> Result<Self, BoxDynError> {
        Ok(<&str as Decode<Postgres>>::decode(value)?.parse()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_read_back_as_written() {
        let mut all = vec![Outcome::Settled, Outcome::NotReached, Outcome::Unmatched];
        all.extend(SkipReason::ALL.map(Outcome::Skipped));
        for outcome in all {
            assert_eq!(outcome.to_string().parse::<Outcome>(), Ok(outcome));
        }
        assert_eq!(Outcome::Skipped(SkipReason::GrantRevoked).to_string(), "skipped:grant_revoked");
        assert!("skipped:nonsense".parse::<Outcome>().is_err());
    }

    #[test]
    fn skip_reasons_by_the_vaults_codes() {
        assert_eq!(SkipReason::from_code(1), SkipReason::InvalidGrantSignature);
        assert_eq!(SkipReason::from_code(7).as_str(), "grant_revoked");
        assert_eq!(SkipReason::from_code(8).as_str(), "insufficient_gas");
        assert_eq!(SkipReason::from_code(200), SkipReason::Unknown);
        assert_eq!(SkipReason::from_code(9).as_str(), "tip_already_settled");
        assert_eq!(SkipReason::from_code(10).as_str(), "message_too_long");
        for (code, reason) in SkipReason::ALL[..11].iter().enumerate() {
            assert_eq!(SkipReason::from_code(code as u8), *reason);
        }
    }
}
