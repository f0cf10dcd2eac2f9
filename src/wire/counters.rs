//! Counters of dropped datagrams, one per reason, so operators see attacks and misconfiguration.

/// Why a datagram was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DropReason {
    TooShort,
    TooLong,
    UnknownVersion,
    /// No accepted key opens it: forged, corrupted, or sealed with a key we don't hold.
    Unauthenticated,
    /// Authentic, but the body is not a value we understand.
    Undecodable,
}

/// Dropped datagrams by reason. Saturating: counting never panics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DropCounters {
    pub too_short: u64,
    pub too_long: u64,
    pub unknown_version: u64,
    pub unauthenticated: u64,
    pub undecodable: u64,
}

impl DropCounters {
    pub fn count(&mut self, reason: DropReason) {
        let slot = match reason {
            DropReason::TooShort => &mut self.too_short,
            DropReason::TooLong => &mut self.too_long,
            DropReason::UnknownVersion => &mut self.unknown_version,
            DropReason::Unauthenticated => &mut self.unauthenticated,
            DropReason::Undecodable => &mut self.undecodable,
        };
        *slot = slot.saturating_add(1);
    }

    pub fn total(&self) -> u64 {
        [
            self.too_short,
            self.too_long,
            self.unknown_version,
            self.unauthenticated,
            self.undecodable,
        ]
        .iter()
        .fold(0u64, |a, b| a.saturating_add(*b))
    }
}
