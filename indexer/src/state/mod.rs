//! Derived state: folds events, in chain order, into the derived tables, exactly as the contracts change their own
//! state, and records what it overwrote inside the unfinalised window so a reorg can be undone.

use crate::{
    db::{
        BatchTx, Changed,
        entities::*,
        entity::{Cache, Known},
        sql::clamp_time,
    },
    events::{Event, EventKind, SplitSource, TrackDetails, split_source},
};
use alloy::primitives::{Address, B256, U256, keccak256};
use beatstream_primitives::contracts::{
    BeatStreamRegistry::BeatStreamRegistryEvents as Registry,
    BeatStreamVault::BeatStreamVaultEvents as Vault, ENSRegistry::ENSRegistryEvents as Ens,
};

/// The name artists are registered under.
#[derive(Clone, Debug)]
pub(crate) struct Root {
    pub(crate) node: B256,
    pub(crate) name: String,
}

/// The derived rows one batch touches.
#[derive(Default)]
pub(crate) struct Derived {
    accounts: Cache<ListenerAccount>,
    earnings: Cache<PayeeEarnings>,
    grants: Cache<GrantSpend>,
    pairs: Cache<SettledPair>,
    artists: Cache<Artist>,
    texts: Cache<ArtistText>,
    tracks: Cache<Track>,
    hourly: Cache<SettlementHourly>,
    revocations: Cache<GrantRevocation>,
    floors: Cache<NonceFloor>,
    splits: Cache<Split>,
    in_force: Cache<SplitInForce>,
    split_earnings: Cache<SplitEarnings>,
    /// Events whose effect could not be applied as the contract would have (a bug somewhere); logged and counted.
    pub(crate) inconsistencies: u64,
}

/// The derived rows kept across batches (see [`Known`]).
#[derive(Default)]
pub(crate) struct Remembered {
    accounts: Known<ListenerAccount>,
    earnings: Known<PayeeEarnings>,
    grants: Known<GrantSpend>,
    pairs: Known<SettledPair>,
    artists: Known<Artist>,
    texts: Known<ArtistText>,
    tracks: Known<Track>,
    hourly: Known<SettlementHourly>,
    revocations: Known<GrantRevocation>,
    floors: Known<NonceFloor>,
    splits: Known<Split>,
    in_force: Known<SplitInForce>,
    split_earnings: Known<SplitEarnings>,
}

impl Remembered {
    /// Forgets everything: after a failure (a commit may or may not have happened) and a rollback.
    pub(crate) fn clear(&mut self) {
        *self = Self::default();
    }
}

fn hour(unix: u64) -> i64 {
    clamp_time(unix - unix % 3600)
}

impl Derived {
    /// Loads every row `events` will touch that `known` lacks, in one query per table.
    pub(crate) async fn prefetch(
        &mut self,
        tx: &mut BatchTx,
        chain_id: i64,
        root: &Root,
        known: &Remembered,
        events: &[Event],
    ) -> crate::Result<()> {
        let mut accounts = Vec::new();
        let mut earnings = Vec::new();
        let mut grants = Vec::new();
        let mut pairs = Vec::new();
        let mut artists = Vec::new();
        let mut texts = Vec::new();
        let mut tracks = Vec::new();
        let mut hourly = Vec::new();
        let mut revocations = Vec::new();
        let mut floors = Vec::new();
        let mut splits = Vec::new();
        let mut in_force = Vec::new();
        // Recipients of the splits set in this batch; the others' come from their `splits` rows.
        let mut set_here: std::collections::HashMap<Address, Vec<Address>> = Default::default();
        let mut paid = Vec::new();
        for event in events {
            match &event.kind {
                EventKind::Vault(e) => match e {
                    Vault::Deposited(e) => accounts.push(e.listener),
                    Vault::WithdrawalRequested(e) => accounts.push(e.listener),
                    Vault::WithdrawalCancelled(e) => accounts.push(e.listener),
                    Vault::Withdrawn(e) => accounts.push(e.listener),
                    Vault::GrantRegistered(e) => grants.push(e.grantId),
                    Vault::Settled(e) => {
                        accounts.push(e.listener);
                        earnings.push(e.payee);
                        grants.push(e.grantId);
                        pairs.push((e.grantId, e.payee));
                        hourly.push((hour(event.at.block_time), e.payee));
                    }
                    Vault::EarningsWithdrawn(e) => earnings.push(e.payee),
                    Vault::GrantRevoked(e) => revocations.push((e.grantId, e.listener)),
                    Vault::NonceFloorRaised(e) => floors.push(e.listener),
                    Vault::Tipped(e) => {
                        accounts.push(e.listener);
                        earnings.push(e.payee);
                        grants.push(e.grantId);
                    }
                    Vault::SplitSet(e) => {
                        splits.push(e.split);
                        in_force.push((e.node, e.trackId));
                        set_here.insert(e.split, e.recipients.clone());
                    }
                    Vault::SplitCleared(e) => {
                        splits.push(e.split);
                        in_force.push((e.node, e.trackId));
                    }
                    Vault::SplitPaid(e) => {
                        splits.push(e.split);
                        earnings.push(e.split);
                        paid.push(e.split);
                    }
                    Vault::SettlementSkipped(_)
                    | Vault::TipSkipped(_)
                    | Vault::FeeScheduled(_)
                    | Vault::SettlerUpdated(_)
                    | Vault::BatchCutShort(_)
                    | Vault::TipsCutShort(_)
                    | Vault::TreasuryUpdated(_)
                    | Vault::FeesCollected(_)
                    | Vault::OwnershipTransferred(_)
                    | Vault::OwnershipTransferStarted(_)
                    | Vault::EIP712DomainChanged(_) => {}
                },
                EventKind::Registry(e) => match e {
                    Registry::ArtistRegistered(e) => artists.push(e.node),
                    Registry::ArtistRateChanged(e) => artists.push(e.node),
                    Registry::AddrChanged(e) => artists.push(e.node),
                    Registry::TextChanged(e) => {
                        artists.push(e.node);
                        texts.push((e.node, e.key.clone()));
                    }
                    Registry::TrackPublished(e) => tracks.push(e.trackId),
                    Registry::TrackUpdated(e) => tracks.push(e.trackId),
                    Registry::TrackUnpublished(e) => tracks.push(e.trackId),
                    Registry::Transfer(e) => artists.push(B256::from(e.tokenId)),
                    Registry::Approval(_) | Registry::ApprovalForAll(_) => {}
                },
                // For `in_subtree`: whether the name an ENS event is about is an artist's.
                EventKind::Ens(e) => match e {
                    Ens::NewOwner(e) => artists.push(e.node),
                    Ens::Transfer(e) => artists.push(e.node),
                    Ens::NewResolver(e) => artists.push(e.node),
                    Ens::NewTTL(e) => artists.push(e.node),
                    Ens::ApprovalForAll(_) => {}
                },
            }
        }
        artists.retain(|n| *n != root.node);
        self.accounts.prefetch(tx, chain_id, &known.accounts, accounts).await?;
        self.grants.prefetch(tx, chain_id, &known.grants, grants).await?;
        self.pairs.prefetch(tx, chain_id, &known.pairs, pairs).await?;
        self.artists.prefetch(tx, chain_id, &known.artists, artists).await?;
        self.texts.prefetch(tx, chain_id, &known.texts, texts).await?;
        self.tracks.prefetch(tx, chain_id, &known.tracks, tracks).await?;
        self.hourly.prefetch(tx, chain_id, &known.hourly, hourly).await?;
        self.revocations.prefetch(tx, chain_id, &known.revocations, revocations).await?;
        self.floors.prefetch(tx, chain_id, &known.floors, floors).await?;
        self.splits.prefetch(tx, chain_id, &known.splits, splits).await?;
        self.in_force.prefetch(tx, chain_id, &known.in_force, in_force).await?;
        // A payment's recipients are known once its split is: set in this batch, or loaded above.
        let mut shares = Vec::new();
        for split in paid {
            let recipients = match set_here.get(&split) {
                Some(r) => r.clone(),
                None => self.splits.get(&split).map(|s| s.recipients.clone()).unwrap_or_default(),
            };
            for r in recipients {
                earnings.push(r);
                shares.push((split, r));
            }
        }
        self.earnings.prefetch(tx, chain_id, &known.earnings, earnings).await?;
        self.split_earnings.prefetch(tx, chain_id, &known.split_earnings, shares).await?;
        Ok(())
    }

    /// Whether an ENS registry event belongs to the `beatstream.eth` subtree and is mirrored. Must be asked in
    /// event order, since a name joins the subtree when its `ArtistRegistered` is applied.
    pub(crate) fn in_subtree(&self, root: &Root, e: &Ens) -> bool {
        let node = match e {
            Ens::NewOwner(e) => e.node,
            Ens::Transfer(e) => e.node,
            Ens::NewResolver(e) => e.node,
            Ens::NewTTL(e) => e.node,
            Ens::ApprovalForAll(_) => return false,
        };
        node == root.node || self.artists.get(&node).is_some()
    }

    /// Applies `events[i]` (the events before it in its block name what a `SplitPaid` pays out). `undo` says whether
    /// its block is inside the unfinalised window.
    pub(crate) fn apply(
        &mut self,
        root: &Root,
        events: &[Event],
        i: usize,
        undo: bool,
        changed: &mut Changed,
    ) {
        let event = &events[i];
        let block = event.at.block_number;
        let b = block as i64;
        match &event.kind {
            EventKind::Vault(e) => match e {
                Vault::Deposited(e) => {
                    changed.accounts = true;
                    self.accounts.update(block, undo, e.listener, |a| {
                        let mut a = a.unwrap_or_default();
                        a.available += e.amount;
                        a.deposited_total += e.amount;
                        a.updated_block = b;
                        Some(a)
                    });
                }
                Vault::WithdrawalRequested(e) => {
                    changed.accounts = true;
                    let mut bad = false;
                    self.accounts.update(block, undo, e.listener, |a| {
                        let mut a = a.unwrap_or_default();
                        bad = a.available < e.amount;
                        a.available = a.available.saturating_sub(e.amount);
                        a.thawing = e.thawing;
                        a.thaw_end = Some(clamp_time(e.thawEnd));
                        a.updated_block = b;
                        Some(a)
                    });
                    self.inconsistent(bad, event);
                }
                Vault::WithdrawalCancelled(e) => {
                    changed.accounts = true;
                    self.accounts.update(block, undo, e.listener, |a| {
                        let mut a = a.unwrap_or_default();
                        a.available += e.amount;
                        a.thawing = U256::ZERO;
                        a.thaw_end = None;
                        a.updated_block = b;
                        Some(a)
                    });
                }
                Vault::Withdrawn(e) => {
                    changed.accounts = true;
                    self.accounts.update(block, undo, e.listener, |a| {
                        let mut a = a.unwrap_or_default();
                        a.thawing = U256::ZERO;
                        a.thaw_end = None;
                        a.withdrawn_total += e.amount;
                        a.updated_block = b;
                        Some(a)
                    });
                }
                Vault::GrantRegistered(e) => {
                    changed.grants = true;
                    self.grants.update(block, undo, e.grantId, |g| {
                        Some(g.unwrap_or(GrantSpend {
                            listener: e.listener,
                            session_key: e.sessionKey,
                            cap: e.cap,
                            expires_at: clamp_time(e.expiresAt),
                            spent: U256::ZERO,
                            updated_block: b,
                        }))
                    });
                }
                Vault::Settled(e) => self.settled(event, e, undo, changed),
                Vault::EarningsWithdrawn(e) => {
                    changed.earnings = true;
                    let mut bad = false;
                    self.earnings.update(block, undo, e.payee, |p| {
                        let mut p = p.unwrap_or_default();
                        bad = p.withdrawable < e.amount;
                        p.withdrawable = p.withdrawable.saturating_sub(e.amount);
                        p.withdrawn_total += e.amount;
                        p.updated_block = b;
                        Some(p)
                    });
                    self.inconsistent(bad, event);
                }
                Vault::GrantRevoked(e) => {
                    changed.revocations = true;
                    let mut bad = false;
                    // The vault refuses to revoke a grant twice, and never moves a revocation's time.
                    self.revocations.update(block, undo, (e.grantId, e.listener), |r| {
                        bad = r.is_some();
                        r.or(Some(GrantRevocation {
                            revoked_at: clamp_time(event.at.block_time),
                            effective_at: clamp_time(e.effectiveAt),
                            updated_block: b,
                        }))
                    });
                    self.inconsistent(bad, event);
                }
                Vault::NonceFloorRaised(e) => {
                    changed.revocations = true;
                    let mut bad = false;
                    let now = clamp_time(event.at.block_time);
                    self.floors.update(block, undo, e.listener, |f| {
                        let mut f = f.unwrap_or_default();
                        bad = e.nonceFloor <= f.floor;
                        // As `revokeGrantsBelow`: a floor that took effect becomes the one in force meanwhile; a raise
                        // still pending is replaced, and the floor in force stays the one before it.
                        if now >= f.floor_from {
                            f.previous = f.floor;
                        }
                        f.floor = e.nonceFloor;
                        f.floor_from = clamp_time(e.effectiveAt);
                        f.updated_block = b;
                        Some(f)
                    });
                    self.inconsistent(bad, event);
                }
                Vault::Tipped(e) => self.tipped(event, e, undo, changed),
                Vault::SplitSet(e) => {
                    changed.splits = true;
                    let mut bad = false;
                    self.splits.update(block, undo, e.split, |s| {
                        // The vault derives a new payee for every version: one cannot be set twice.
                        bad = s.is_some();
                        Some(Split {
                            node: e.node,
                            track_id: e.trackId,
                            version: e.version,
                            recipients: e.recipients.clone(),
                            shares: e.shares.clone(),
                            set_at: clamp_time(event.at.block_time),
                            set_block: b,
                            cleared_at: None,
                            cleared_block: None,
                            updated_block: b,
                        })
                    });
                    self.in_force.update(block, undo, (e.node, e.trackId), |_| {
                        Some(SplitInForce { split: e.split, updated_block: b })
                    });
                    self.inconsistent(bad, event);
                }
                Vault::SplitCleared(e) => {
                    changed.splits = true;
                    let mut bad = false;
                    self.splits.update(block, undo, e.split, |s| {
                        bad = s.is_none();
                        s.map(|mut s| {
                            s.cleared_at = Some(clamp_time(event.at.block_time));
                            s.cleared_block = Some(b);
                            s.updated_block = b;
                            s
                        })
                    });
                    // Only the version in force is cleared; a row naming another would be a mirror gone wrong.
                    let mut other = false;
                    self.in_force.update(block, undo, (e.node, e.trackId), |f| match f {
                        Some(f) if f.split == e.split => None,
                        f => {
                            other = true;
                            f
                        }
                    });
                    self.inconsistent(bad || other, event);
                }
                Vault::SplitPaid(e) => {
                    let source = split_source(events, i).map(|(s, _)| s);
                    self.split_paid(event, e, source, undo, changed)
                }
                Vault::SettlementSkipped(_)
                | Vault::TipSkipped(_)
                | Vault::FeeScheduled(_)
                | Vault::SettlerUpdated(_)
                | Vault::BatchCutShort(_)
                | Vault::TipsCutShort(_)
                | Vault::TreasuryUpdated(_)
                | Vault::FeesCollected(_)
                | Vault::OwnershipTransferred(_)
                | Vault::OwnershipTransferStarted(_)
                | Vault::EIP712DomainChanged(_) => {}
            },
            EventKind::Registry(e) => match e {
                Registry::ArtistRegistered(e) => {
                    changed.artists = true;
                    let name = format!("{}.{}", e.label, root.name);
                    self.artists.update(block, undo, e.node, |_| {
                        Some(Artist {
                            label: e.label.clone(),
                            name,
                            owner: e.owner,
                            addr: None,
                            rate_per_second: e.ratePerSecond,
                            registered_at: clamp_time(event.at.block_time),
                            registered_block: b,
                            updated_block: b,
                        })
                    });
                }
                Registry::ArtistRateChanged(e) => {
                    self.update_artist(event, e.node, undo, changed, |a| {
                        a.rate_per_second = e.ratePerSecond;
                    })
                }
                Registry::AddrChanged(e) => {
                    self.update_artist(event, e.node, undo, changed, |a| a.addr = Some(e.a))
                }
                Registry::TextChanged(e) => {
                    if self.artists.get(&e.node).is_some() {
                        changed.artists = true;
                        self.texts.update(block, undo, (e.node, e.key.clone()), |_| {
                            Some(ArtistText { value: e.value.clone(), updated_block: b })
                        });
                    }
                }
                Registry::TrackPublished(e) => {
                    self.put_track(event, undo, changed, e.clone().into())
                }
                Registry::TrackUpdated(e) => self.put_track(event, undo, changed, e.clone().into()),
                Registry::TrackUnpublished(e) => {
                    changed.tracks = true;
                    self.tracks.update(block, undo, e.trackId, |t| {
                        t.map(|mut t| {
                            t.published = false;
                            t.updated_block = b;
                            t
                        })
                    });
                }
                // The artist belongs to whoever holds its name token (minted right after `ArtistRegistered`).
                Registry::Transfer(e) => {
                    let node = B256::from(e.tokenId);
                    self.update_artist(event, node, undo, changed, |a| a.owner = e.to)
                }
                Registry::Approval(_) | Registry::ApprovalForAll(_) => {}
            },
            // ENS events are mirrored raw only. The registry owns every artist's subname; who owns it in ENS decides
            // nothing in BeatStream (docs/DECISIONS.md, "Authority over an artist is its name token").
            EventKind::Ens(_) => {}
        }
    }

    fn settled(
        &mut self,
        event: &Event,
        e: &beatstream_primitives::contracts::BeatStreamVault::Settled,
        undo: bool,
        changed: &mut Changed,
    ) {
        let block = event.at.block_number;
        let b = block as i64;
        changed.accounts = true;
        changed.settlements = true;
        changed.earnings = true;
        let bad = self.debit(block, undo, e.listener, e.amount);
        self.credit(block, undo, e.payee, e.amount, e.fee, 1);
        self.pairs.update(block, undo, (e.grantId, e.payee), |_| {
            Some(SettledPair { listener: e.listener, cumulative: e.cumulative, updated_block: b })
        });
        let unknown_grant = self.spend(block, undo, e.grantId, e.amount);
        self.hourly.update(block, undo, (hour(event.at.block_time), e.payee), |h| {
            let mut h = h.unwrap_or_default();
            h.amount += e.amount;
            h.fees += e.fee;
            h.settlements += 1;
            Some(h)
        });
        self.inconsistent(bad || unknown_grant, event);
    }

    /// A tip: debited from the listener's funds as a settlement is (available first, then thawing), counted in the
    /// grant's spend (the vault's `grantSpent`), and credited to the payee after the fee. A split payee's credit
    /// moves on to its recipients with the `SplitPaid` that follows.
    fn tipped(
        &mut self,
        event: &Event,
        e: &beatstream_primitives::contracts::BeatStreamVault::Tipped,
        undo: bool,
        changed: &mut Changed,
    ) {
        let block = event.at.block_number;
        changed.accounts = true;
        changed.earnings = true;
        changed.grants = true;
        changed.tips = true;
        let bad = self.debit(block, undo, e.listener, e.amount);
        self.credit(block, undo, e.payee, e.amount, e.fee, 0);
        let unknown_grant = self.spend(block, undo, e.grantId, e.amount);
        self.inconsistent(bad || unknown_grant, event);
    }

    /// Credits `payee` with `amount` less `fee`, as the vault does at a settlement or tip; `settlements` counts it
    /// (1 for a settlement, 0 for a tip).
    fn credit(
        &mut self,
        block: u64,
        undo: bool,
        payee: Address,
        amount: U256,
        fee: U256,
        settlements: i64,
    ) {
        let net = amount.saturating_sub(fee);
        self.earnings.update(block, undo, payee, |p| {
            let mut p = p.unwrap_or_default();
            p.earned_total += net;
            p.withdrawable += net;
            p.fees_total += fee;
            p.settlements += settlements;
            p.updated_block = block as i64;
            Some(p)
        });
    }

    /// Adds `amount` to the grant's spend (the vault's `grantSpent`). Returns whether the grant is unknown to the
    /// mirror (it and the vault disagree).
    fn spend(&mut self, block: u64, undo: bool, grant: B256, amount: U256) -> bool {
        let mut unknown = false;
        self.grants.update(block, undo, grant, |g| {
            unknown = g.is_none();
            g.map(|mut g| {
                g.spent += amount;
                g.updated_block = block as i64;
                g
            })
        });
        unknown
    }

    /// Takes `amount` from `listener`'s funds as the vault's `_debit` does: available first, then thawing. Returns
    /// whether the funds fell short (the mirror and the vault disagree).
    fn debit(&mut self, block: u64, undo: bool, listener: Address, amount: U256) -> bool {
        let mut bad = false;
        self.accounts.update(block, undo, listener, |a| {
            let mut a = a.unwrap_or_default();
            if amount <= a.available {
                a.available -= amount;
            } else {
                let rest = amount - a.available;
                bad = rest > a.thawing;
                a.available = U256::ZERO;
                a.thawing = a.thawing.saturating_sub(rest);
            }
            a.spent_total += amount;
            a.updated_block = block as i64;
            Some(a)
        });
        bad
    }

    /// A split payee's payment passed on to its recipients: the credit its `Settled` or `Tipped` gave the split
    /// payee (or, for a `SplitSet`, what it was paid before the split existed) moves to them, part by part, so
    /// `payee_earnings` stays the vault's `earningsOf` (zero for a split payee). The split payee keeps its fees
    /// and settlement count.
    fn split_paid(
        &mut self,
        event: &Event,
        e: &beatstream_primitives::contracts::BeatStreamVault::SplitPaid,
        source: Option<SplitSource>,
        undo: bool,
        changed: &mut Changed,
    ) {
        let block = event.at.block_number;
        let b = block as i64;
        changed.earnings = true;
        changed.splits = true;
        let recipients =
            self.splits.get(&e.split).map(|s| s.recipients.clone()).unwrap_or_default();
        let total: U256 = e.parts.iter().copied().fold(U256::ZERO, |a, p| a.saturating_add(p));
        let mut bad = source.is_none() || recipients.len() != e.parts.len() || total != e.amount;
        self.earnings.update(block, undo, e.split, |p| {
            let mut p = p.unwrap_or_default();
            bad |= p.withdrawable < e.amount || p.earned_total < e.amount;
            p.earned_total = p.earned_total.saturating_sub(e.amount);
            p.withdrawable = p.withdrawable.saturating_sub(e.amount);
            p.updated_block = b;
            Some(p)
        });
        let tip = source == Some(SplitSource::Tipped);
        for (recipient, part) in recipients.into_iter().zip(e.parts.iter().copied()) {
            self.earnings.update(block, undo, recipient, |p| {
                let mut p = p.unwrap_or_default();
                p.earned_total += part;
                p.withdrawable += part;
                p.updated_block = b;
                Some(p)
            });
            self.split_earnings.update(block, undo, (e.split, recipient), |s| {
                let mut s = s.unwrap_or_default();
                s.earned += part;
                if tip {
                    s.from_tips += part;
                }
                s.payments += 1;
                s.updated_block = b;
                Some(s)
            });
        }
        self.inconsistent(bad, event);
    }

    /// A published or updated track; an update keeps the first publication time.
    fn put_track(&mut self, event: &Event, undo: bool, changed: &mut Changed, d: TrackDetails) {
        changed.tracks = true;
        let b = event.at.block_number as i64;
        self.tracks.update(event.at.block_number, undo, d.track_id, |t| {
            Some(Track {
                artist_node: d.artist_node,
                title: d.title,
                duration: i64::from(d.duration),
                rate_per_second: d.rate_per_second,
                content_hash: d.content_hash,
                metadata_uri: d.metadata_uri,
                published: true,
                published_at: t.map_or(clamp_time(event.at.block_time), |t| t.published_at),
                updated_block: b,
            })
        });
    }

    fn update_artist(
        &mut self,
        event: &Event,
        node: B256,
        undo: bool,
        changed: &mut Changed,
        f: impl FnOnce(&mut Artist),
    ) {
        if self.artists.get(&node).is_none() {
            return;
        }
        changed.artists = true;
        let b = event.at.block_number as i64;
        self.artists.update(event.at.block_number, undo, node, |a| {
            a.map(|mut a| {
                f(&mut a);
                a.updated_block = b;
                a
            })
        });
    }

    fn inconsistent(&mut self, bad: bool, event: &Event) {
        if bad {
            self.inconsistencies += 1;
            tracing::error!(
                target: "beatstream::indexer",
                block = event.at.block_number,
                log_index = event.at.log_index,
                "event does not fit the mirrored state (mirror and contract disagree)"
            );
        }
    }

    /// Writes every changed row and the undo log.
    pub(crate) async fn flush(&mut self, tx: &mut BatchTx, chain_id: i64) -> crate::Result<()> {
        self.accounts.flush(tx, chain_id).await?;
        self.earnings.flush(tx, chain_id).await?;
        self.grants.flush(tx, chain_id).await?;
        self.pairs.flush(tx, chain_id).await?;
        self.artists.flush(tx, chain_id).await?;
        self.texts.flush(tx, chain_id).await?;
        self.tracks.flush(tx, chain_id).await?;
        self.hourly.flush(tx, chain_id).await?;
        self.revocations.flush(tx, chain_id).await?;
        self.floors.flush(tx, chain_id).await?;
        self.splits.flush(tx, chain_id).await?;
        self.in_force.flush(tx, chain_id).await?;
        self.split_earnings.flush(tx, chain_id).await
    }

    /// Hands the batch's rows to `known`: call only once the batch has committed.
    pub(crate) fn remember(self, known: &mut Remembered) {
        self.accounts.remember(&mut known.accounts);
        self.earnings.remember(&mut known.earnings);
        self.grants.remember(&mut known.grants);
        self.pairs.remember(&mut known.pairs);
        self.artists.remember(&mut known.artists);
        self.texts.remember(&mut known.texts);
        self.tracks.remember(&mut known.tracks);
        self.hourly.remember(&mut known.hourly);
        self.revocations.remember(&mut known.revocations);
        self.floors.remember(&mut known.floors);
        self.splits.remember(&mut known.splits);
        self.in_force.remember(&mut known.in_force);
        self.split_earnings.remember(&mut known.split_earnings);
    }
}

/// namehash step: the node of `label` (a labelhash) under `parent`.
pub(crate) fn subnode(parent: B256, label: B256) -> B256 {
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(parent.as_slice());
    buf[32..].copy_from_slice(label.as_slice());
    keccak256(buf)
}

/// namehash of a dotted name.
pub(crate) fn namehash(name: &str) -> B256 {
    name.rsplit('.')
        .filter(|l| !l.is_empty())
        .fold(B256::ZERO, |node, label| subnode(node, keccak256(label)))
}
