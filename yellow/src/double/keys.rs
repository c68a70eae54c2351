//! App session keys: submitting key states, listing them, and recovering who signed through a key.

use super::*;

impl State {
    /// `AppSessionKeyValidatorV1.Recover`: the wallet behind a prefixed quorum signature.
    pub(super) fn recover_signer(
        &self,
        signature: &[u8],
        hash: B256,
        session_id: B256,
        application_id: &str,
    ) -> Result<Address, String> {
        let (kind, rest) = signature.split_first().expect("not empty");
        match kind {
            0xA1 => recover_eip191(hash, rest)
                .map_err(|e| format!("failed to recover wallet address: {e}")),
            0xA2 => {
                let key = recover_eip191(hash, rest)
                    .map_err(|e| format!("failed to recover session key address: {e}"))?;
                self.session_key_owner(key, session_id, application_id)
            }
            other => Err(format!("invalid signature: unknown signer type {other}")),
        }
    }

    /// `GetAppSessionKeyOwner`: the latest state of `key`, unexpired, scoped to the session or its application
    /// (the three-argument form, so an application-scoped key also signs the creation).
    pub(super) fn session_key_owner(
        &self,
        key: Address,
        session_id: B256,
        application_id: &str,
    ) -> Result<Address, String> {
        let session = hex(session_id);
        self.keys
            .get(&key)
            .map(|entry| &entry.state)
            .filter(|state| state.is_active(unix_now()))
            .filter(|state| {
                state.app_session_ids.iter().any(|id| id.eq_ignore_ascii_case(&session))
                    || state
                        .application_ids
                        .iter()
                        .any(|id| id.eq_ignore_ascii_case(application_id))
            })
            .map(|state| state.user_address)
            .ok_or_else(|| {
                format!(
                    "no active session key found for key {} and app session {session}",
                    hex(key)
                )
            })
    }

    /// `app_sessions.v1.submit_session_key_state` (newest stored handler, texts prefixed
    /// `invalid_session_key_state:`). A state with `expires_at` in the past revokes the key and needs only
    /// `user_sig`; any other needs `session_key_sig` too. Both sign [`AppSessionKeyState::pack`].
    pub(super) fn submit_session_key_state(&mut self, payload: Value) -> Result<Value, String> {
        #[derive(Default, Deserialize)]
        #[serde(default)]
        struct Req {
            state: RawKeyState,
        }
        let invalid = |why: String| format!("invalid_session_key_state: {why}");
        let raw = parse::<Req>(payload)?.state;
        let version = parse_u64(&raw.version).ok_or_else(|| {
            invalid(format!("invalid version: {:?} is not a uint64", raw.version))
        })?;
        let expires_at = parse_i64(&raw.expires_at).ok_or_else(|| {
            invalid(format!("invalid expires_at: {:?} is not an int64", raw.expires_at))
        })?;
        let user = normalize_address(&raw.user_address)
            .map_err(|e| invalid(format!("invalid user_address: {e}")))?;
        let key = normalize_address(&raw.session_key)
            .map_err(|e| invalid(format!("invalid session_key: {e}")))?;
        if user == key {
            return Err(invalid("session_key must differ from user_address".into()));
        }
        if version == 0 {
            return Err(invalid("version must be greater than 0".into()));
        }
        let expires_at = u64::try_from(expires_at)
            .map_err(|_| invalid("expires_at must be non-negative".into()))?;
        for (field, ids) in
            [("application_ids", &raw.application_ids), ("app_session_ids", &raw.app_session_ids)]
        {
            if let Some(id) = ids.iter().find(|id| **id != id.to_lowercase()) {
                return Err(invalid(format!("{field} must be lowercase, got: {id}")));
            }
        }
        if raw.user_sig.is_empty() {
            return Err(invalid("user_sig is required".into()));
        }
        let state = AppSessionKeyState {
            user_address: user,
            session_key: key,
            version: U64String(version),
            application_ids: raw.application_ids,
            app_session_ids: raw.app_session_ids,
            expires_at: U64String(expires_at),
            user_sig: raw.user_sig,
            session_key_sig: Some(raw.session_key_sig).filter(|sig| !sig.is_empty()),
        };
        let revoking = !state.is_active(unix_now());
        if !revoking && state.session_key_sig.is_none() {
            return Err(invalid("session_key_sig is required".into()));
        }
        check_key_sig(state.recover_user_sig(), user, "user_sig", "user_address")
            .map_err(invalid)?;
        if !revoking {
            check_key_sig(state.recover_session_key_sig(), key, "session_key_sig", "session_key")
                .map_err(invalid)?;
        }
        let latest = self.keys.get(&key).map(|entry| &entry.state);
        if latest.is_some_and(|latest| latest.user_address != user) {
            return Err(invalid("session_key not allowed".into()));
        }
        let expected = latest.map_or(0, |latest| latest.version.0) + 1;
        if version != expected {
            return Err(invalid(format!("expected version {expected}, got {version}")));
        }
        self.key_counter += 1;
        self.keys.insert(key, KeyEntry { state, submitted: self.key_counter });
        Ok(json!({}))
    }

    /// `app_sessions.v1.get_last_key_states`: the latest state of each key of a wallet, newest first, active
    /// ones only unless `include_inactive`.
    pub(super) fn get_last_key_states(&self, payload: Value) -> Result<Value, String> {
        #[derive(Default, Deserialize)]
        #[serde(default)]
        struct Req {
            user_address: String,
            session_key: Option<String>,
            include_inactive: Option<bool>,
            pagination: Option<RawPagination>,
        }
        let req: Req = parse(payload)?;
        if req.user_address.is_empty() {
            return Err("user_address is required".into());
        }
        let page = req.pagination.unwrap_or_default();
        if page.sort.as_deref().is_some_and(|sort| !sort.is_empty()) {
            return Err("invalid_pagination: sort is not supported by get_last_key_states".into());
        }
        let user = req.user_address.to_lowercase();
        let key = req.session_key.filter(|k| !k.is_empty()).map(|k| k.to_lowercase());
        let now = unix_now();
        let mut entries: Vec<&KeyEntry> = self
            .keys
            .values()
            .filter(|entry| hex(entry.state.user_address) == user)
            .filter(|entry| key.as_ref().is_none_or(|key| hex(entry.state.session_key) == *key))
            .filter(|entry| req.include_inactive == Some(true) || entry.state.is_active(now))
            .collect();
        entries.sort_by_key(|entry| std::cmp::Reverse(entry.submitted));
        let (offset, limit) = page.window();
        let states: Vec<_> = entries
            .iter()
            .skip(offset as usize)
            .take(limit as usize)
            .map(|entry| &entry.state)
            .collect();
        Ok(json!({ "states": states, "metadata": page_metadata(entries.len(), offset, limit) }))
    }
}

/// `user_sig` / `session_key_sig` must recover to `expected`.
pub(super) fn check_key_sig(
    recovered: Result<Address, KeySigError>,
    expected: Address,
    field: &str,
    owner: &str,
) -> Result<(), String> {
    match recovered {
        Ok(signer) if signer == expected => Ok(()),
        Ok(_) => Err(format!("{field} does not match {owner}")),
        Err(e @ KeySigError::Hex) => Err(format!("failed to decode {field}: {e}")),
        Err(e) => Err(format!("failed to recover {field}: {e}")),
    }
}

/// The address whose key signed the 32 bytes of `hash` with EIP-191.
pub(super) fn recover_eip191(hash: B256, signature: &[u8]) -> Result<Address, String> {
    if signature.len() != 65 {
        return Err(format!("invalid signature length: {}", signature.len()));
    }
    Signature::from_raw(signature)
        .and_then(|sig| sig.recover_address_from_prehash(&eip191_hash_message(hash)))
        .map_err(|e| e.to_string())
}
