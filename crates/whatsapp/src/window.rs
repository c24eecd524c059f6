//! The 24-hour customer service window, as a pure function of two timestamps.
//!
//! Each message from a customer opens (or restarts) a 24-hour window in which any message type may
//! be sent; outside it only approved templates work, and a free-form send fails with 131047. Status
//! updates and reactions do not refresh it (so callers should pass the time of the last real
//! inbound message). This module stores nothing: tracking `last_inbound_at` per contact is the
//! store's job, refusing the send is the sender's.

/// The length of the window, in seconds.
pub const WINDOW_SECONDS: i64 = 24 * 60 * 60;

/// Whether a free-form message may be sent at `now`, given the customer's last inbound message at
/// `last_inbound_at` (both Unix seconds). A timestamp slightly in the future (clock skew between
/// Meta and us) counts as open.
pub fn is_open(last_inbound_at: i64, now: i64) -> bool {
    now.saturating_sub(last_inbound_at) < WINDOW_SECONDS
}

/// When the window opened by a message at `last_inbound_at` closes (Unix seconds, exclusive).
pub fn closes_at(last_inbound_at: i64) -> i64 {
    last_inbound_at.saturating_add(WINDOW_SECONDS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_until_just_before_24_hours() {
        let last = 1_796_289_300;
        assert!(is_open(last, last));
        assert!(is_open(last, last + WINDOW_SECONDS - 1));
        assert!(!is_open(last, last + WINDOW_SECONDS));
        assert!(!is_open(last, last + 3 * WINDOW_SECONDS));
        assert_eq!(closes_at(last), last + WINDOW_SECONDS);
    }

    #[test]
    fn clock_skew_counts_as_open() {
        assert!(is_open(1_796_289_300, 1_796_289_290));
    }

    #[test]
    fn extreme_values_do_not_overflow() {
        assert!(!is_open(i64::MIN, i64::MAX));
        assert!(is_open(i64::MAX, i64::MIN));
    }
}
