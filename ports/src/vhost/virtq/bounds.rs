//! The bounds on a burst's work, kept the same way by both ring formats: a cap on the
//! descriptors one chain (or one mergeable frame) may read, a descriptor budget per burst,
//! and bursts sat out after a hostile one. Together they make the work of one burst bounded
//! whatever the driver wrote, and a ring that keeps posting chains over the cap cost about
//! what a benign full burst costs (`bench/benches/vring.rs`, `vring_hostile`).

use super::QueueError;

/// The most descriptors one chain may have, and one mergeable frame across all its chains,
/// counting every descriptor read: zero-length ones and the indirect one too. DPDK's vhost
/// library caps a packet at the same 256 buffers (`BUF_VECTOR_MAX`); Linux drivers use at
/// most `MAX_SKB_FRAGS + 2`. A chain over the cap is returned to the driver unused (used
/// length 0), counted in [`crate::vhost::RingCounters::guest_errors`], and never walked again.
pub const MAX_CHAIN_DESCS: u32 = 256;

/// Descriptor reads the general walk may make in one burst. A chain is walked only while at
/// least [`MAX_CHAIN_DESCS`] of the budget is left, so a burst reads fewer than
/// `BURST_DESC_BUDGET + MAX_CHAIN_DESCS` descriptors (plus one per frame for the common
/// one-descriptor chains, which the fast paths take without counting) whatever the driver
/// wrote, and a benign burst (32 frames of up to 24 descriptors each) never meets the bound.
/// What is left waits in the ring for the next burst.
pub const BURST_DESC_BUDGET: u32 = 1024;

/// Bursts a ring sits out after one that returned a chain over the bound. A benign driver
/// never meets the bound; a hostile one that keeps the whole ring full of such chains costs
/// its PMD one bounded burst in `COOLDOWN_BURSTS + 1`, about what a benign full burst costs
/// (`bench/benches/vring.rs`, `vring_hostile`).
pub const COOLDOWN_BURSTS: u32 = 15;

/// A ring's bound bookkeeping.
#[derive(Debug, Default)]
pub(crate) struct Bounds {
    /// Descriptor reads left in the current burst ([`BURST_DESC_BUDGET`]).
    budget: u32,
    /// Descriptors the chain being collected may still read ([`MAX_CHAIN_DESCS`]).
    chain_left: u32,
    /// Bursts left to sit out ([`COOLDOWN_BURSTS`]).
    cooldown: u32,
}

impl Bounds {
    /// Starts a burst: false (and one burst counted off) while the ring sits out bursts
    /// after a hostile one; otherwise refills the burst's budget.
    #[inline(always)]
    pub fn begin_burst(&mut self) -> bool {
        if self.cooldown > 0 {
            self.cooldown -= 1;
            return false;
        }
        self.budget = BURST_DESC_BUDGET;
        true
    }

    /// True while the burst's budget still covers a whole chain walk ([`MAX_CHAIN_DESCS`]);
    /// once false, the rest of the ring waits for the next burst.
    #[inline(always)]
    pub fn can_walk(&self) -> bool {
        self.budget >= MAX_CHAIN_DESCS
    }

    /// Starts the walk of one chain (or of one mergeable frame's chains): a fresh
    /// [`MAX_CHAIN_DESCS`].
    #[inline(always)]
    pub fn start_chain(&mut self) {
        self.chain_left = MAX_CHAIN_DESCS;
    }

    /// Accounts for one more descriptor read by the chain being collected: fails once the
    /// chain (or mergeable frame) has read [`MAX_CHAIN_DESCS`], and spends the burst's budget.
    #[inline(always)]
    pub fn step(&mut self) -> Result<(), QueueError> {
        if self.chain_left == 0 {
            return Err(QueueError::ChainOverCap);
        }
        self.chain_left -= 1;
        self.budget = self.budget.saturating_sub(1);
        Ok(())
    }

    /// Bursts the ring still sits out.
    pub fn sitting_out(&self) -> u32 {
        self.cooldown
    }

    /// Ends a burst: one that returned chains over the cap (`hostile`), or that spent its
    /// descriptor budget, makes the ring sit out the next [`COOLDOWN_BURSTS`] bursts. A
    /// benign burst never spends the budget (32 frames of up to 24 descriptors read at most
    /// 768), but chains just under the cap can (a transmit chain of 256 empty descriptors is
    /// legal and dropped for its length): without the cool-down a ring of them would cost
    /// its PMD a whole budget, about five benign bursts, every burst.
    #[inline(always)]
    pub fn end_burst(&mut self, hostile: bool) {
        if hostile || !self.can_walk() {
            self.cooldown = COOLDOWN_BURSTS;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bursts that begin while the ring sits out.
    fn sat_out(b: &mut Bounds) -> u32 {
        let mut n = 0;
        while !b.begin_burst() {
            n += 1;
        }
        n
    }

    /// A burst that returned a chain over the cap, or that spent its budget, makes the ring
    /// sit out the next `COOLDOWN_BURSTS` bursts; a burst that did neither does not.
    #[test]
    fn hostile_or_budget_spending_bursts_cool_down() {
        let mut b = Bounds::default();
        assert!(b.begin_burst());
        // A benign burst: 32 chains of 24 descriptors.
        for _ in 0..32 {
            b.start_chain();
            for _ in 0..24 {
                b.step().unwrap();
            }
        }
        assert!(b.can_walk());
        b.end_burst(false);
        assert_eq!(sat_out(&mut b), 0);

        // Chains of 256 descriptors (legal, under the cap) until the budget is spent, then
        // one more, which the cap stops.
        let mut chains = 0;
        while b.can_walk() {
            b.start_chain();
            for _ in 0..MAX_CHAIN_DESCS {
                b.step().unwrap();
            }
            chains += 1;
        }
        assert_eq!(chains, BURST_DESC_BUDGET / MAX_CHAIN_DESCS);
        b.start_chain();
        for _ in 0..MAX_CHAIN_DESCS {
            b.step().unwrap();
        }
        assert_eq!(b.step(), Err(QueueError::ChainOverCap));
        b.end_burst(false);
        assert_eq!(sat_out(&mut b), COOLDOWN_BURSTS);

        b.end_burst(true);
        assert_eq!(sat_out(&mut b), COOLDOWN_BURSTS);
    }
}
