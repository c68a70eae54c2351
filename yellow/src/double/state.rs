//! The node's state (wallets, app sessions, session keys), the method dispatch and the read-only methods.

use super::*;

pub(super) struct State {
    pub(super) config: DoubleConfig,
    pub(super) node_address: Address,
    pub(super) sessions: HashMap<B256, Session>,
    /// Session ids in creation order.
    pub(super) created: Vec<B256>,
    pub(super) wallets: HashMap<(Address, String), Wallet>,
    /// The latest state of each app session key (a key belongs to one wallet).
    pub(super) keys: HashMap<Address, KeyEntry>,
    /// Orders key states by submission.
    pub(super) key_counter: u64,
    pub(super) failures: HashMap<String, (String, usize)>,
    pub(super) accepted: HashMap<String, usize>,
}

#[derive(Default)]
pub(super) struct Wallet {
    pub(super) balance: Amount,
    /// An active home channel for this asset.
    pub(super) channel: bool,
}

pub(super) struct KeyEntry {
    pub(super) state: AppSessionKeyState,
    pub(super) submitted: u64,
}

pub(super) struct Session {
    pub(super) definition: AppDefinition,
    pub(super) version: u64,
    pub(super) open: bool,
    /// Holdings by (asset, participant); an entry stays once written, even at zero, like the node's ledger sums.
    pub(super) ledger: BTreeMap<(String, Address), Amount>,
    pub(super) session_data: String,
}

/// The outcome of an accepted update, applied only once every check passed.
pub(super) struct Plan {
    pub(super) ledger: BTreeMap<(String, Address), Amount>,
    /// Funds leaving the session, to each participant's balance.
    pub(super) releases: Vec<(Address, String, Amount)>,
    pub(super) close: bool,
}

impl Session {
    pub(super) fn view(&self) -> SessionView {
        SessionView {
            definition: self.definition.clone(),
            version: self.version,
            status: self.status().into(),
            allocations: self
                .ledger
                .iter()
                .map(|((asset, participant), amount)| Allocation {
                    participant: *participant,
                    asset: asset.clone(),
                    amount: *amount,
                })
                .collect(),
            session_data: self.session_data.clone(),
        }
    }

    pub(super) fn status(&self) -> &'static str {
        if self.open { "open" } else { "closed" }
    }

    /// The participant an allocation names: the node compares the lower-cased string with the lower-case `0x`
    /// form of each participant.
    pub(super) fn member(&self, participant: &str) -> Option<Address> {
        self.definition
            .participants
            .iter()
            .map(|p| p.wallet_address)
            .find(|wallet| hex(wallet) == participant)
    }

    pub(super) fn amount(&self, participant: Address, asset: &str) -> Amount {
        self.ledger.get(&(asset.to_owned(), participant)).copied().unwrap_or(Amount::ZERO)
    }

    /// Non-zero holdings by participant, then asset (the node's order where it sorts).
    pub(super) fn holdings(&self) -> Vec<(Address, &str, Amount)> {
        let mut held: Vec<_> = self
            .ledger
            .iter()
            .filter(|(_, amount)| !amount.is_zero())
            .map(|((asset, participant), amount)| (*participant, asset.as_str(), *amount))
            .collect();
        held.sort();
        held
    }

    /// Per-asset totals.
    pub(super) fn balances(&self) -> BTreeMap<&str, Amount> {
        let mut totals = BTreeMap::new();
        for ((asset, _), amount) in &self.ledger {
            let total: &mut Amount = totals.entry(asset.as_str()).or_default();
            *total = add(*total, *amount);
        }
        totals
    }

    /// `AppSessionInfoV1`.
    pub(super) fn info(&self) -> Value {
        let allocations: Vec<_> = self
            .ledger
            .iter()
            .map(|((asset, participant), amount)| {
                json!({ "participant": hex(participant), "asset": asset, "amount": amount.to_string() })
            })
            .collect();
        let mut info = json!({
            "app_session_id": hex(self.definition.session_id()),
            "status": self.status(),
            "app_definition": self.definition,
            "version": self.version.to_string(),
            "allocations": allocations,
        });
        if !self.session_data.is_empty() {
            info["session_data"] = json!(self.session_data);
        }
        info
    }
}

/// Sum of amounts the double parsed or was credited (bounded far below overflow).
pub(super) fn add(a: Amount, b: Amount) -> Amount {
    a.checked_add(b).expect("amounts are bounded")
}

impl State {
    pub(super) fn new(config: DoubleConfig) -> Self {
        Self {
            config,
            node_address: PrivateKeySigner::random().address(),
            sessions: HashMap::new(),
            created: Vec::new(),
            wallets: HashMap::new(),
            keys: HashMap::new(),
            key_counter: 0,
            failures: HashMap::new(),
            accepted: HashMap::new(),
        }
    }

    /// Runs one request: an injected failure, or the method.
    pub(super) fn call(&mut self, method: &str, payload: Value) -> Result<Value, String> {
        if let Some((message, left)) = self.failures.get_mut(method) {
            let message = message.clone();
            *left -= 1;
            if *left == 0 {
                self.failures.remove(method);
            }
            return Err(message);
        }
        let result = match method {
            methods::PING => Ok(json!({})),
            methods::GET_CONFIG => Ok(self.get_config()),
            methods::GET_ASSETS => Ok(self.get_assets()),
            methods::CREATE_APP_SESSION => self.create_app_session(payload),
            methods::SUBMIT_DEPOSIT_STATE => self.submit_deposit_state(payload),
            methods::SUBMIT_APP_STATE => self.submit_app_state(payload),
            methods::GET_APP_SESSIONS => self.get_app_sessions(payload),
            methods::GET_APP_DEFINITION => self.get_app_definition(payload),
            methods::GET_BALANCES => self.get_balances(payload),
            methods::SUBMIT_SESSION_KEY_STATE => self.submit_session_key_state(payload),
            methods::GET_LAST_KEY_STATES => self.get_last_key_states(payload),
            _ => Err(format!("unknown method: {method}")),
        };
        if result.is_ok() {
            *self.accepted.entry(method.to_owned()).or_default() += 1;
        }
        result
    }

    pub(super) fn balance(&self, wallet: Address, asset: &str) -> Amount {
        self.wallets.get(&(wallet, asset.to_owned())).map_or(Amount::ZERO, |w| w.balance)
    }

    pub(super) fn add_balance(&mut self, wallet: Address, asset: &str, amount: Amount) {
        let entry = self.wallets.entry((wallet, asset.to_owned())).or_default();
        entry.balance = add(entry.balance, amount);
    }

    /// `failed to get asset decimals: asset 'x' is not supported`.
    pub(super) fn decimals(&self, asset: &str) -> Result<u8, String> {
        self.config
            .assets
            .iter()
            .find(|(symbol, _)| symbol == asset)
            .map(|(_, decimals)| *decimals)
            .ok_or_else(|| {
                format!("failed to get asset decimals: asset '{asset}' is not supported")
            })
    }

    pub(super) fn check_session_data(&self, data: &str) -> Result<(), String> {
        if data.len() > self.config.max_session_data {
            return Err(format!(
                "session_data exceeds maximum length of {}",
                self.config.max_session_data
            ));
        }
        Ok(())
    }

    /// `node.v1.get_config`.
    pub(super) fn get_config(&self) -> Value {
        json!({
            "node_address": hex(self.node_address),
            "node_version": NODE_VERSION,
            "supported_sig_validators": SIG_VALIDATORS,
            "blockchains": [],
        })
    }

    /// `node.v1.get_assets` (no tokens, so a `blockchain_id` filter changes nothing).
    pub(super) fn get_assets(&self) -> Value {
        let assets: Vec<_> = self
            .config
            .assets
            .iter()
            .map(|(symbol, decimals)| {
                json!({
                    "name": symbol.to_uppercase(),
                    "symbol": symbol,
                    "decimals": decimals,
                    "suggested_blockchain_id": "1",
                    "tokens": [],
                })
            })
            .collect();
        json!({ "assets": assets })
    }

    /// `app_sessions.v1.get_app_sessions`, in creation order (`"sort": "desc"` reverses it).
    pub(super) fn get_app_sessions(&self, payload: Value) -> Result<Value, String> {
        let req: GetSessionsRequest = parse(payload)?;
        let by_id = req.app_session_id.filter(|id| !id.is_empty());
        let by_participant = req.participant.filter(|p| !p.is_empty()).map(|p| p.to_lowercase());
        if by_id.is_none() && by_participant.is_none() {
            return Err("either app_session_id or participant must be provided".into());
        }
        let status = req.status.filter(|s| !s.is_empty());
        if let Some(status) = &status
            && status != "open"
            && status != "closed"
        {
            return Err(format!("invalid status: {status}"));
        }
        let wanted_id = by_id.map(|id| B256::from_str(&id).ok());
        let mut found: Vec<&Session> = self
            .created
            .iter()
            .filter(|id| wanted_id.is_none_or(|wanted| wanted == Some(**id)))
            .map(|id| &self.sessions[id])
            .filter(|s| {
                by_participant.as_ref().is_none_or(|p| s.member(p).is_some())
                    && status.as_ref().is_none_or(|status| s.status() == status.as_str())
            })
            .collect();
        let page = req.pagination.unwrap_or_default();
        if page.sort.as_deref() == Some("desc") {
            found.reverse();
        }
        let (offset, limit) = page.window();
        let sessions: Vec<_> =
            found.iter().skip(offset as usize).take(limit as usize).map(|s| s.info()).collect();
        Ok(
            json!({ "app_sessions": sessions, "metadata": page_metadata(found.len(), offset, limit) }),
        )
    }

    /// `app_sessions.v1.get_app_definition`.
    pub(super) fn get_app_definition(&self, payload: Value) -> Result<Value, String> {
        #[derive(Default, Deserialize)]
        #[serde(default)]
        struct Req {
            app_session_id: String,
        }
        let req: Req = parse(payload)?;
        let session = B256::from_str(&req.app_session_id)
            .ok()
            .and_then(|id| self.sessions.get(&id))
            .ok_or("app session not found")?;
        Ok(json!({ "definition": session.definition }))
    }

    /// `user.v1.get_balances`; `enforced` mirrors `amount` (the double has no on-chain side).
    pub(super) fn get_balances(&self, payload: Value) -> Result<Value, String> {
        #[derive(Default, Deserialize)]
        #[serde(default)]
        struct Req {
            wallet: String,
        }
        let req: Req = parse(payload)?;
        let wallet = normalize_address(&req.wallet).map_err(|e| format!("invalid wallet: {e}"))?;
        let mut balances: Vec<_> = self
            .wallets
            .iter()
            .filter(|((owner, _), _)| *owner == wallet)
            .map(|((_, asset), w)| (asset, w.balance))
            .collect();
        balances.sort();
        let balances: Vec<_> = balances
            .into_iter()
            .map(|(asset, amount)| {
                json!({ "asset": asset, "amount": amount.to_string(), "enforced": amount.to_string() })
            })
            .collect();
        Ok(json!({ "balances": balances }))
    }
}
