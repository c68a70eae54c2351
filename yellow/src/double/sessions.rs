//! The app-session methods: create, submit (operate, withdraw, close), deposit, with the quorum and version
//! rules, in the node's order of checks.

use super::*;

impl State {
    /// `app_sessions.v1.create_app_session`, checks in the node's order. The total weight is summed in `u32`: the
    /// older stored handler sums in `uint8` and wraps past 255, which is a bug (the newer one widened it).
    pub(super) fn create_app_session(&mut self, payload: Value) -> Result<Value, String> {
        let req: CreateRequest = parse(payload)?;
        let def = &req.definition;
        if def.participants.len() > self.config.max_participants {
            return Err(format!(
                "participants array exceeds maximum length of {}",
                self.config.max_participants
            ));
        }
        if req.quorum_sigs.len() > def.participants.len() {
            return Err(format!(
                "quorum_sigs count ({}) exceeds participants count ({})",
                req.quorum_sigs.len(),
                def.participants.len()
            ));
        }
        self.check_session_data(&req.session_data)?;
        if def.application_id.is_empty() {
            return Err("application id is required".into());
        }
        if !is_application_id(&def.application_id) {
            return Err(format!("invalid application id: must match {APPLICATION_ID_PATTERN}"));
        }
        let nonce = parse_u64(&def.nonce).ok_or("invalid app definition")?;
        // The newer stored handler says "nonce must be non-zero".
        if nonce == 0 {
            return Err("nonce is zero or not provided".into());
        }
        if def.quorum == 0 {
            return Err("quorum must be greater than zero".into());
        }
        let mut participants: Vec<Participant> = Vec::with_capacity(def.participants.len());
        let mut total_weight = 0u32;
        for p in &def.participants {
            let wallet = normalize_address(&p.wallet_address).map_err(|e| {
                format!("invalid participant wallet_address {:?}: {e}", p.wallet_address)
            })?;
            if participants.iter().any(|q| q.wallet_address == wallet) {
                return Err(format!("duplicate participant address: {}", p.wallet_address));
            }
            total_weight += u32::from(p.signature_weight);
            participants
                .push(Participant { wallet_address: wallet, signature_weight: p.signature_weight });
        }
        if u32::from(def.quorum) > total_weight {
            return Err(format!(
                "target quorum ({}) cannot be greater than total sum of weights ({total_weight})",
                def.quorum
            ));
        }
        if req.quorum_sigs.is_empty() {
            return Err("no signatures provided".into());
        }
        let definition = AppDefinition {
            application_id: def.application_id.clone(),
            participants,
            quorum: def.quorum,
            nonce: U64String(nonce),
        };
        let id = definition.session_id();
        let hash = definition.creation_hash(&req.session_data);
        self.verify_quorum(id, &definition, hash, &req.quorum_sigs)?;
        if self.sessions.contains_key(&id) {
            // The node fails on the database insert; the exact text past the prefix is not known.
            return Err(format!(
                "failed to create app session: app session {} already exists",
                hex(id)
            ));
        }
        self.sessions.insert(
            id,
            Session {
                definition,
                version: 1,
                open: true,
                ledger: BTreeMap::new(),
                session_data: req.session_data,
            },
        );
        self.created.push(id);
        Ok(json!({ "app_session_id": hex(id), "version": "1", "status": "open" }))
    }

    /// `app_sessions.v1.submit_app_state`: operate, withdraw or close.
    pub(super) fn submit_app_state(&mut self, payload: Value) -> Result<Value, String> {
        let req: SubmitRequest = parse(payload)?;
        self.check_session_data(&req.app_state_update.session_data)?;
        let update = Update::parse(&req.app_state_update)?;
        match update.intent {
            INTENT_DEPOSIT => {
                return Err("deposit intent must use submit_deposit_state endpoint".into());
            }
            INTENT_OPERATE | INTENT_WITHDRAW | INTENT_CLOSE => {}
            other => return Err(format!("invalid intent: {}", intent_name(other))),
        }
        let (id, session) = self.find_session(&update)?;
        if !session.open {
            return Err("app session is already closed".into());
        }
        check_sig_count(&req.quorum_sigs, session)?;
        check_version(&update, session)?;
        if req.quorum_sigs.is_empty() {
            return Err("no signatures provided".into());
        }
        self.verify_quorum(id, &session.definition, update.hash(id), &req.quorum_sigs)?;
        let plan = match update.intent {
            INTENT_OPERATE => self.plan_operate(session, &update)?,
            INTENT_WITHDRAW => self.plan_withdraw(session, &update)?,
            _ => plan_close(session, &update)?,
        };
        self.apply(id, plan, update.session_data);
        Ok(json!({}))
    }

    /// `app_sessions.v1.submit_deposit_state`. The order follows the stored handler; the channel check uses the
    /// research's text ("active"; a newer stored handler says "open"), and every current non-zero allocation must
    /// be restated (a newer stored handler skips that check for the deposited asset).
    pub(super) fn submit_deposit_state(&mut self, payload: Value) -> Result<Value, String> {
        let req: DepositRequest = parse(payload)?;
        self.check_session_data(&req.app_state_update.session_data)?;
        let update = Update::parse(&req.app_state_update)?;
        let user_wallet = normalize_address(&req.user_state.user_wallet)
            .map_err(|e| format!("invalid user_wallet: {e}"))?;
        let user_state = UserState::parse(&req.user_state)?;
        let (id, session) = self.find_session(&update)?;
        check_sig_count(&req.quorum_sigs, session)?;
        if !session.open {
            return Err("app session is already closed".into());
        }
        check_version(&update, session)?;
        if update.intent != INTENT_DEPOSIT {
            return Err(format!(
                "invalid intent: expected 'deposit', got '{}'",
                intent_name(update.intent)
            ));
        }
        if req.quorum_sigs.is_empty() {
            return Err("no signatures provided".into());
        }
        if user_state.transition != "commit" {
            return Err(format!(
                "user state transition must have 'commit' type, got '{}'",
                user_state.transition
            ));
        }
        let asset = user_state.asset.as_str();
        if !self.wallets.get(&(user_wallet, asset.to_owned())).is_some_and(|w| w.channel) {
            return Err("user has no active channel".into());
        }
        if user_state.account_id != update.raw_id {
            return Err(format!(
                "user state transition account ID '{}' does not match app session ID '{}'",
                user_state.account_id, update.raw_id
            ));
        }
        if !user_state.signed {
            return Err("missing user signature on user state".into());
        }
        // Where the node validates the state's advancement; the texts past the prefix are the double's.
        let committed = user_state.amount;
        if committed.is_negative() || committed.value.is_zero() {
            return Err("invalid state transitions: commit amount must be positive".into());
        }
        let available = self.balance(user_wallet, asset);
        if available < committed.value {
            return Err(format!(
                "invalid state transitions: insufficient balance: available {available}, required {}",
                committed.value
            ));
        }
        self.verify_quorum(id, &session.definition, update.hash(id), &req.quorum_sigs)?;

        let mut ledger = session.ledger.clone();
        let mut incoming: HashSet<(&str, &str)> = HashSet::new();
        let mut total = Amount::ZERO;
        for alloc in &update.allocations {
            let amount = alloc.non_negative()?;
            let decimals = self.decimals(&alloc.asset)?;
            alloc.check_precision(decimals)?;
            if !incoming.insert((alloc.participant.as_str(), alloc.asset.as_str())) {
                return Err(alloc.duplicate());
            }
            let member = session.member(&alloc.participant);
            let current =
                member.map_or(Amount::ZERO, |wallet| session.amount(wallet, &alloc.asset));
            if amount < current {
                return Err(format!(
                    "decreased allocation for {} for participant {}",
                    alloc.asset, alloc.participant
                ));
            }
            if amount > current {
                let wallet = member.ok_or_else(|| alloc.non_participant())?;
                if alloc.asset != user_state.asset {
                    return Err(format!(
                        "app session deposit allocation for asset '{}' does not match user channel state asset '{}'",
                        alloc.asset, user_state.asset
                    ));
                }
                total = add(total, amount.checked_sub(current).expect("amount > current"));
                ledger.insert((alloc.asset.clone(), wallet), amount);
            }
        }
        for (wallet, asset, current) in session.holdings() {
            if !incoming.contains(&(hex(wallet).as_str(), asset)) {
                return Err(format!(
                    "deposit intent missing allocation for participant {}, asset {asset} with current amount {current}",
                    hex(wallet)
                ));
            }
        }
        if total != committed.value {
            return Err(format!(
                "total deposit amount {total} does not match transition amount {committed}"
            ));
        }
        let wallet = self.wallets.get_mut(&(user_wallet, asset.to_owned())).expect("has a channel");
        wallet.balance = wallet.balance.checked_sub(committed.value).expect("balance checked");
        self.apply(id, Plan { ledger, releases: Vec::new(), close: false }, update.session_data);
        // The node answers with its signature on the user state; the double signs nothing.
        Ok(json!({ "signature": zero_sig(65) }))
    }

    /// The session an update names (`app session not found`).
    pub(super) fn find_session(&self, update: &Update) -> Result<(B256, &Session), String> {
        update
            .id
            .and_then(|id| self.sessions.get(&id).map(|session| (id, session)))
            .ok_or_else(|| "app session not found".to_owned())
    }

    /// Operate (`handleOperateIntent`): any redistribution among participants that conserves every asset's total;
    /// every current non-zero holding restated.
    pub(super) fn plan_operate(&self, session: &Session, update: &Update) -> Result<Plan, String> {
        let mut incoming: BTreeMap<(String, Address), Amount> = BTreeMap::new();
        let mut sums: BTreeMap<&str, Amount> = BTreeMap::new();
        for alloc in &update.allocations {
            let wallet =
                session.member(&alloc.participant).ok_or_else(|| alloc.non_participant())?;
            let amount = alloc.non_negative()?;
            let decimals = self.decimals(&alloc.asset)?;
            alloc.check_precision(decimals)?;
            if incoming.insert((alloc.asset.clone(), wallet), amount).is_some() {
                return Err(alloc.duplicate());
            }
            let sum = sums.entry(alloc.asset.as_str()).or_default();
            *sum = add(*sum, amount);
        }
        for (wallet, asset, current) in session.holdings() {
            if !incoming.contains_key(&(asset.to_owned(), wallet)) {
                return Err(format!(
                    "operate intent missing allocation for participant {}, asset {asset} with current amount {current}",
                    hex(wallet)
                ));
            }
        }
        let balances = session.balances();
        for (asset, total) in &sums {
            let balance = balances.get(asset).copied().unwrap_or(Amount::ZERO);
            if *total != balance {
                return Err(format!(
                    "operate intent allocation mismatch for asset {asset}: total allocations {total}, session balance {balance}"
                ));
            }
        }
        for (asset, balance) in &balances {
            if !balance.is_zero() && !sums.contains_key(asset) {
                return Err(format!(
                    "operate intent missing allocations for asset {asset} with balance {balance}"
                ));
            }
        }
        let mut ledger = session.ledger.clone();
        for (key, amount) in incoming {
            if !amount.is_zero() || ledger.contains_key(&key) {
                ledger.insert(key, amount);
            }
        }
        Ok(Plan { ledger, releases: Vec::new(), close: false })
    }

    /// Withdraw (`handleWithdrawIntent`): holdings only fall; each decrease is released to its participant. The
    /// precision check applies to decreased allocations only, as on the node.
    pub(super) fn plan_withdraw(&self, session: &Session, update: &Update) -> Result<Plan, String> {
        let mut incoming: BTreeMap<(String, Address), &Decimal> = BTreeMap::new();
        for alloc in &update.allocations {
            let wallet =
                session.member(&alloc.participant).ok_or_else(|| alloc.non_participant())?;
            let amount = alloc.non_negative()?;
            if incoming.contains_key(&(alloc.asset.clone(), wallet)) {
                return Err(alloc.duplicate());
            }
            if !amount.is_zero() && session.amount(wallet, &alloc.asset).is_zero() {
                return Err(format!(
                    "withdraw intent cannot add new allocation for participant {}, asset {}",
                    alloc.participant, alloc.asset
                ));
            }
            incoming.insert((alloc.asset.clone(), wallet), &alloc.amount);
        }
        let mut ledger = session.ledger.clone();
        let mut releases = Vec::new();
        for (wallet, asset, current) in session.holdings() {
            let Some(new) = incoming.get(&(asset.to_owned(), wallet)) else {
                return Err(format!(
                    "withdraw intent missing allocation for participant {}, asset {asset} with current amount {current}",
                    hex(wallet)
                ));
            };
            if new.value > current {
                return Err(format!(
                    "withdraw intent cannot increase allocations: participant {}, asset {asset}",
                    hex(wallet)
                ));
            }
            if new.value < current {
                let decimals = self.decimals(asset)?;
                new.check_precision(decimals).map_err(|e| {
                    format!(
                        "invalid withdraw amount for allocation with asset {asset} and participant {}: {e}",
                        hex(wallet)
                    )
                })?;
                releases.push((
                    wallet,
                    asset.to_owned(),
                    current.checked_sub(new.value).expect("decrease"),
                ));
                ledger.insert((asset.to_owned(), wallet), new.value);
            }
        }
        Ok(Plan { ledger, releases, close: false })
    }

    pub(super) fn apply(&mut self, id: B256, plan: Plan, session_data: String) {
        for (wallet, asset, amount) in plan.releases {
            self.add_balance(wallet, &asset, amount);
        }
        let session = self.sessions.get_mut(&id).expect("checked");
        session.ledger = plan.ledger;
        session.version += 1;
        if plan.close {
            session.open = false;
        }
        if !session_data.is_empty() {
            session.session_data = session_data;
        }
    }

    /// `verifyQuorum`: every signature must come from a participant (directly, `0xA1`, or through an active app
    /// session key, `0xA2`); distinct wallets' weights add up to at least the quorum.
    pub(super) fn verify_quorum(
        &self,
        session_id: B256,
        definition: &AppDefinition,
        hash: B256,
        signatures: &[String],
    ) -> Result<(), String> {
        let mut signed = HashSet::new();
        let mut achieved = 0u32;
        for (index, signature) in signatures.iter().enumerate() {
            let bytes = hexutil_decode(signature)
                .map_err(|e| format!("failed to decode signature: {e}"))?;
            if bytes.is_empty() {
                return Err(format!("empty signature after decode at index {index}"));
            }
            let wallet = self
                .recover_signer(&bytes, hash, session_id, &definition.application_id)
                .map_err(|e| format!("failed to recover user wallet: {e}"))?;
            let participant = definition
                .participant(wallet)
                .ok_or_else(|| format!("signature from non-participant: {}", hex(wallet)))?;
            if signed.insert(wallet) {
                achieved += u32::from(participant.signature_weight);
            }
        }
        if achieved < u32::from(definition.quorum) {
            return Err(format!(
                "quorum not met: achieved {achieved}, required {}",
                definition.quorum
            ));
        }
        Ok(())
    }
}

/// Close (`handleCloseIntent`): the allocations repeat the current holdings exactly; everything is released and
/// the session ends.
pub(super) fn plan_close(session: &Session, update: &Update) -> Result<Plan, String> {
    let mut incoming: BTreeMap<(String, Address), Amount> = BTreeMap::new();
    for alloc in &update.allocations {
        let wallet = session.member(&alloc.participant).ok_or_else(|| alloc.non_participant())?;
        let amount = alloc.non_negative()?;
        if incoming.insert((alloc.asset.clone(), wallet), amount).is_some() {
            return Err(alloc.duplicate());
        }
    }
    let holdings = session.holdings();
    for &(wallet, asset, current) in &holdings {
        let Some(provided) = incoming.get(&(asset.to_owned(), wallet)) else {
            return Err(format!(
                "close intent missing allocation for participant {}, asset {asset} with current amount {current}",
                hex(wallet)
            ));
        };
        if *provided != current {
            return Err(format!(
                "close intent requires allocations to match current state: participant {}, asset {asset}, current {current}, provided {provided}",
                hex(wallet)
            ));
        }
    }
    for ((asset, wallet), amount) in &incoming {
        if !amount.is_zero() && session.amount(*wallet, asset).is_zero() {
            return Err(format!(
                "close intent contains unexpected allocation for participant {}, asset {asset} with amount {amount}",
                hex(wallet)
            ));
        }
    }
    let ledger = session.ledger.keys().map(|key| (key.clone(), Amount::ZERO)).collect();
    let releases = holdings
        .into_iter()
        .map(|(wallet, asset, amount)| (wallet, asset.to_owned(), amount))
        .collect();
    Ok(Plan { ledger, releases, close: true })
}

pub(super) fn check_sig_count(signatures: &[String], session: &Session) -> Result<(), String> {
    let participants = session.definition.participants.len();
    if signatures.len() > participants {
        return Err(format!(
            "quorum_sigs count ({}) exceeds participants count ({participants})",
            signatures.len()
        ));
    }
    Ok(())
}

pub(super) fn check_version(update: &Update, session: &Session) -> Result<(), String> {
    if update.version != session.version + 1 {
        return Err(format!(
            "invalid app session version: expected {}, got {}",
            session.version + 1,
            update.version
        ));
    }
    Ok(())
}
