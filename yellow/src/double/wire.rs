//! Requests as the node decodes them: every field optional (Go zero values), amounts and ids as raw strings;
//! updates and decimals as the node reads them.

use super::*;

pub(super) const INTENT_OPERATE: u8 = 0;
pub(super) const INTENT_DEPOSIT: u8 = 1;
pub(super) const INTENT_WITHDRAW: u8 = 2;
pub(super) const INTENT_CLOSE: u8 = 3;

/// `AppStateUpdateIntent.String()`.
pub(super) fn intent_name(code: u8) -> String {
    match code {
        INTENT_OPERATE => "operate".into(),
        INTENT_DEPOSIT => "deposit".into(),
        INTENT_WITHDRAW => "withdraw".into(),
        INTENT_CLOSE => "close".into(),
        4 => "rebalance".into(),
        other => format!("unknown({other})"),
    }
}

/// Go decodes `null` into a slice as an empty one.
pub(super) fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub(super) struct RawParticipant {
    pub(super) wallet_address: String,
    pub(super) signature_weight: u8,
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub(super) struct RawDefinition {
    pub(super) application_id: String,
    #[serde(deserialize_with = "null_as_empty")]
    pub(super) participants: Vec<RawParticipant>,
    pub(super) quorum: u8,
    pub(super) nonce: String,
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub(super) struct CreateRequest {
    pub(super) definition: RawDefinition,
    pub(super) session_data: String,
    #[serde(deserialize_with = "null_as_empty")]
    pub(super) quorum_sigs: Vec<String>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub(super) struct RawAllocation {
    pub(super) participant: String,
    pub(super) asset: String,
    pub(super) amount: String,
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub(super) struct RawUpdate {
    pub(super) app_session_id: String,
    pub(super) intent: u8,
    pub(super) version: String,
    #[serde(deserialize_with = "null_as_empty")]
    pub(super) allocations: Vec<RawAllocation>,
    pub(super) session_data: String,
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub(super) struct SubmitRequest {
    pub(super) app_state_update: RawUpdate,
    #[serde(deserialize_with = "null_as_empty")]
    pub(super) quorum_sigs: Vec<String>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub(super) struct DepositRequest {
    pub(super) app_state_update: RawUpdate,
    #[serde(deserialize_with = "null_as_empty")]
    pub(super) quorum_sigs: Vec<String>,
    pub(super) user_state: RawUserState,
}

/// A transition type: a number in the newer `core` (`TransitionType uint8`, commit = 40), its name in an older
/// one (`TransitionType string`). The double takes both.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum RawTransitionType {
    Code(u8),
    Name(String),
}

impl Default for RawTransitionType {
    /// Go's zero value: void.
    fn default() -> Self {
        Self::Code(0)
    }
}

impl RawTransitionType {
    /// `TransitionType.String()`.
    pub(super) fn name(&self) -> String {
        let name = match self {
            Self::Name(name) => return name.clone(),
            Self::Code(0) => "void",
            Self::Code(1) => "acknowledgement",
            Self::Code(10) => "home_deposit",
            Self::Code(11) => "home_withdrawal",
            Self::Code(20) => "escrow_deposit",
            Self::Code(21) => "escrow_withdraw",
            Self::Code(30) => "transfer_send",
            Self::Code(31) => "transfer_receive",
            Self::Code(40) => "commit",
            Self::Code(41) => "release",
            Self::Code(100) => "migrate",
            Self::Code(110) => "escrow_lock",
            Self::Code(120) => "mutual_lock",
            Self::Code(other) => return format!("unknown({other})"),
        };
        name.into()
    }
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub(super) struct RawTransition {
    #[serde(rename = "type")]
    pub(super) kind: RawTransitionType,
    pub(super) account_id: String,
    pub(super) amount: String,
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub(super) struct RawLedger {
    pub(super) blockchain_id: String,
    pub(super) user_balance: String,
    pub(super) user_net_flow: String,
    pub(super) node_balance: String,
    pub(super) node_net_flow: String,
}

impl RawLedger {
    /// `unmapLedgerV1`'s parsing.
    pub(super) fn parses(&self) -> bool {
        parse_u64(&self.blockchain_id).is_some()
            && [&self.user_balance, &self.user_net_flow, &self.node_balance, &self.node_net_flow]
                .iter()
                .all(|amount| Decimal::parse(amount).is_some())
    }
}

/// `StateV1`, the fields the double reads.
#[derive(Default, Deserialize)]
#[serde(default)]
pub(super) struct RawUserState {
    pub(super) transition: RawTransition,
    pub(super) asset: String,
    pub(super) user_wallet: String,
    pub(super) epoch: String,
    pub(super) version: String,
    pub(super) home_ledger: RawLedger,
    pub(super) escrow_ledger: Option<RawLedger>,
    pub(super) user_sig: Option<String>,
}

/// What a deposit checks of the depositor's channel state.
pub(super) struct UserState {
    pub(super) transition: String,
    pub(super) account_id: String,
    pub(super) amount: Decimal,
    pub(super) asset: String,
    pub(super) signed: bool,
}

impl UserState {
    /// `unmapStateV1`: amounts, epoch, version and ledgers must parse (`failed to parse user state`).
    pub(super) fn parse(raw: &RawUserState) -> Result<Self, String> {
        let fail = || "failed to parse user state".to_owned();
        let amount = Decimal::parse(&raw.transition.amount).ok_or_else(fail)?;
        let numbers = parse_u64(&raw.epoch).and(parse_u64(&raw.version));
        let ledgers =
            raw.home_ledger.parses() && raw.escrow_ledger.as_ref().is_none_or(RawLedger::parses);
        if numbers.is_none() || !ledgers {
            return Err(fail());
        }
        Ok(Self {
            transition: raw.transition.kind.name(),
            account_id: raw.transition.account_id.clone(),
            amount,
            asset: raw.asset.clone(),
            signed: raw.user_sig.is_some(),
        })
    }
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub(super) struct RawKeyState {
    pub(super) user_address: String,
    pub(super) session_key: String,
    pub(super) version: String,
    #[serde(deserialize_with = "null_as_empty")]
    pub(super) application_ids: Vec<String>,
    #[serde(deserialize_with = "null_as_empty")]
    pub(super) app_session_ids: Vec<String>,
    pub(super) expires_at: String,
    pub(super) user_sig: String,
    pub(super) session_key_sig: String,
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub(super) struct RawPagination {
    pub(super) offset: Option<u32>,
    pub(super) limit: Option<u32>,
    pub(super) sort: Option<String>,
}

impl RawPagination {
    /// Offset and limit: a missing or zero limit, or one above the page limit, is the page limit.
    pub(super) fn window(&self) -> (u32, u32) {
        let limit = self.limit.filter(|l| (1..=PAGE_LIMIT).contains(l)).unwrap_or(PAGE_LIMIT);
        (self.offset.unwrap_or(0), limit)
    }
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub(super) struct GetSessionsRequest {
    pub(super) app_session_id: Option<String>,
    pub(super) participant: Option<String>,
    pub(super) status: Option<String>,
    pub(super) pagination: Option<RawPagination>,
}

/// An update as `unmapAppStateUpdateV1` leaves it: amounts parsed but kept as sent, participants lower-cased.
pub(super) struct Update {
    /// The id as sent (compared as text with a deposit's `account_id`).
    pub(super) raw_id: String,
    pub(super) id: Option<B256>,
    pub(super) intent: u8,
    pub(super) version: u64,
    pub(super) allocations: Vec<Alloc>,
    pub(super) session_data: String,
}

pub(super) struct Alloc {
    /// Lower-cased, not validated.
    pub(super) participant: String,
    pub(super) asset: String,
    pub(super) amount: Decimal,
}

/// `(bytes32 appSessionId, uint8 intent, uint64 version, (address,string,string)[] allocations, string data)`.
type UpdateAbi = (
    sol_data::FixedBytes<32>,
    sol_data::Uint<8>,
    sol_data::Uint<64>,
    sol_data::Array<(sol_data::Address, sol_data::String, sol_data::String)>,
    sol_data::String,
);

impl Update {
    pub(super) fn parse(raw: &RawUpdate) -> Result<Self, String> {
        let fail = || "failed to parse app state update".to_owned();
        let allocations = raw
            .allocations
            .iter()
            .map(|a| {
                Some(Alloc {
                    participant: a.participant.to_lowercase(),
                    asset: a.asset.clone(),
                    amount: Decimal::parse(&a.amount)?,
                })
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(fail)?;
        Ok(Self {
            raw_id: raw.app_session_id.clone(),
            id: B256::from_str(&raw.app_session_id).ok(),
            intent: raw.intent,
            version: parse_u64(&raw.version).ok_or_else(fail)?,
            allocations,
            session_data: raw.session_data.clone(),
        })
    }

    /// `PackAppStateUpdateV1`, computed here from the amounts as sent (in their shortest form, sign kept) rather
    /// than through [`crate::AppStateUpdate::hash`], which cannot carry the negative amounts the node must still
    /// verify before refusing them.
    pub(super) fn hash(&self, id: B256) -> B256 {
        let allocations: Vec<(Address, String, String)> = self
            .allocations
            .iter()
            .map(|a| {
                // go-ethereum's `HexToAddress` never fails; an unparsable participant hashes as some address
                // that no participant signed, which is what the double's zero address stands for.
                let participant = Address::from_str(&a.participant).unwrap_or(Address::ZERO);
                (participant, a.asset.clone(), a.amount.to_string())
            })
            .collect();
        let fields = (id, self.intent, self.version, allocations, self.session_data.clone());
        keccak256(UpdateAbi::abi_encode_params(&fields))
    }
}

impl Alloc {
    pub(super) fn non_negative(&self) -> Result<Amount, String> {
        if self.amount.is_negative() {
            return Err(format!("negative allocation: {} for asset {}", self.amount, self.asset));
        }
        Ok(self.amount.value)
    }

    /// `invalid amount for allocation with asset X and participant Y: <precision error>`.
    pub(super) fn check_precision(&self, decimals: u8) -> Result<(), String> {
        self.amount.check_precision(decimals).map_err(|e| {
            format!(
                "invalid amount for allocation with asset {} and participant {}: {e}",
                self.asset, self.participant
            )
        })
    }

    pub(super) fn non_participant(&self) -> String {
        format!("allocation to non-participant {}", self.participant)
    }

    pub(super) fn duplicate(&self) -> String {
        format!("duplicate allocation for participant {}, asset {}", self.participant, self.asset)
    }
}

/// A decimal as shopspring's `NewFromString` reads it: sign, digits, optional fraction and exponent. The value is
/// kept exactly; the exponent is the one written, so `"1.5000000"` has exponent −7 although it equals 1.5.
#[derive(Clone, Copy, Debug)]
pub(super) struct Decimal {
    pub(super) negative: bool,
    pub(super) value: Amount,
    pub(super) exponent: i64,
}

impl Decimal {
    pub(super) fn parse(text: &str) -> Option<Self> {
        let (negative, unsigned) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let (mantissa, exp) = match unsigned.find(['e', 'E']) {
            Some(at) => (&unsigned[..at], unsigned[at + 1..].parse::<i64>().ok()?),
            None => (unsigned, 0),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let digits = format!("{int}{frac}");
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let exponent = exp.checked_sub(i64::try_from(frac.len()).ok()?)?;
        let integer_digits = i64::try_from(digits.len()).ok()?.checked_add(exponent)?;
        if integer_digits > MAX_INTEGER_DIGITS || -exponent > MAX_FRACTION_DIGITS {
            return None;
        }
        let mut units = U256::from_str_radix(&digits, 10).ok()?;
        let scale = if exponent >= 0 {
            units *= U256::from(10).pow(U256::from(exponent.unsigned_abs()));
            0
        } else {
            u8::try_from(-exponent).ok()?
        };
        Some(Self { negative, value: Amount::from_base_units(units, scale), exponent })
    }

    pub(super) fn is_negative(&self) -> bool {
        self.negative && !self.value.is_zero()
    }

    /// `core.ValidateDecimalPrecision`.
    pub(super) fn check_precision(&self, decimals: u8) -> Result<(), String> {
        if self.exponent < -i64::from(decimals) {
            return Err(format!(
                "amount exceeds maximum decimal precision: max {decimals} decimals allowed, got {}",
                -self.exponent
            ));
        }
        Ok(())
    }
}

impl fmt::Display for Decimal {
    /// shopspring's `String()`: the shortest form, with its sign.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_negative() {
            f.write_str("-")?;
        }
        fmt::Display::fmt(&self.value, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AppStateUpdate, Intent};

    #[test]
    fn decimals_keep_the_written_exponent() {
        for (text, shown, exponent) in [
            ("1.5000000", "1.5", -7),
            ("0.90", "0.9", -2),
            ("-0.5", "-0.5", -1),
            ("-0", "0", 0),
            ("1e-7", "0.0000001", -7),
            ("25e3", "25000", 3),
            (".5", "0.5", -1),
            ("7.", "7", 0),
        ] {
            let d = Decimal::parse(text).unwrap();
            assert_eq!(d.to_string(), shown, "{text}");
            assert_eq!(d.exponent, exponent, "{text}");
        }
        for bad in ["", "-", ".", "1.2.3", "abc", "1e", "0x10", "1e40"] {
            assert!(Decimal::parse(bad).is_none(), "{bad}");
        }
        assert!(Decimal::parse("1.5000000").unwrap().check_precision(6).is_err());
        assert!(Decimal::parse("1.500000").unwrap().check_precision(6).is_ok());
    }

    #[test]
    fn update_hash_matches_the_client() {
        let id = B256::repeat_byte(7);
        let (a, b) = (Address::repeat_byte(1), Address::repeat_byte(2));
        let client = AppStateUpdate {
            app_session_id: id,
            intent: Intent::Operate,
            version: U64String(3),
            allocations: vec![
                Allocation {
                    participant: a,
                    asset: "usdc".into(),
                    amount: "0.35".parse().unwrap(),
                },
                Allocation { participant: b, asset: "usdc".into(), amount: "0.9".parse().unwrap() },
            ],
            session_data: "{}".into(),
        };
        let raw: RawUpdate =
            serde_json::from_value(serde_json::to_value(&client).unwrap()).unwrap();
        let mut update = Update::parse(&raw).unwrap();
        assert_eq!(update.hash(id), client.hash());
        // Trailing zeros as sent do not change what is signed.
        update.allocations[1].amount = Decimal::parse("0.900").unwrap();
        assert_eq!(update.hash(id), client.hash());
    }
}
