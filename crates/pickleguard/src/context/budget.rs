//! How many bytes one scan may produce by decompressing (and by re-reading overlapping archive
//! members): `min(max_decompressed, max(RATIO_FLOOR, max_ratio × input size))`, shared by every
//! nested container of the scan; and how many the analysis may produce by decoding call
//! arguments. A `Budget` is part of every scan's context (`super::ScanContext`), so no
//! decompression or decoding runs without one.

use std::cell::Cell;
use std::time::Instant;

use crate::limits::Limits;
use crate::report::Limit;

/// Below this many bytes the ratio bound does not apply (small files may decompress to this
/// much whatever their ratio: zero-filled arrays compress 1000:1 and more).
pub const RATIO_FLOOR: u64 = 128 << 20;

/// One scan's budget.
pub(crate) struct Budget {
    left: Cell<u64>,
    /// Which bound `left` came from, for the finding.
    what: Limit,
    /// Bytes the analysis may still produce while looking inside call arguments (copies of
    /// literals, str.join results, base64 / hex / zlib decodings), over the whole scan: one
    /// memoised literal handed to 100k calls, or 1 KB zlib bombs (64 MB each) repeated, must
    /// not multiply the work.
    decode_left: Cell<u64>,
    /// `decode_left` ran out (once).
    decode_spent: Cell<bool>,
    /// Set when `decode_left` ran out; cleared when the finding has been written.
    decode_unreported: Cell<bool>,
    /// When the scan must end its own work (`crate::Scan::deadline`).
    deadline: Option<Instant>,
}

/// How many bytes decompressing `input_len` bytes may produce, and the limit's name: the one
/// rule for the scan and for the Python loaders that decompress before they load.
pub fn allowance(input_len: u64, limits: &Limits) -> (u64, Limit) {
    let by_ratio = limits.max_ratio.saturating_mul(input_len).max(RATIO_FLOOR);
    if by_ratio < limits.max_decompressed {
        (by_ratio, Limit::CompressionRatio)
    } else {
        (limits.max_decompressed, Limit::DecompressedSize)
    }
}

impl Budget {
    /// The budget of a scan of `input_len` bytes.
    pub(crate) fn new(input_len: u64, limits: &Limits) -> Budget {
        let (left, what) = allowance(input_len, limits);
        Budget {
            left: Cell::new(left),
            what,
            decode_left: Cell::new(limits.max_decoded as u64),
            decode_spent: Cell::new(false),
            decode_unreported: Cell::new(false),
            deadline: None,
        }
    }

    /// This budget, for a scan that must end by `deadline`.
    pub(crate) fn until(self, deadline: Option<Instant>) -> Budget {
        Budget { deadline, ..self }
    }

    /// The scan's deadline, for the machine's own checks.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Whether the scan's deadline has passed: the work left is not done, and a
    /// `RESOURCE_LIMIT` finding names the time limit ([`Limit::Time`]). Asked between
    /// container members and for each piece of decompressed output, so it is cheap.
    pub(crate) fn out_of_time(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Take `n` bytes; `Err(limit name)` when they are not there (then the budget is spent),
    /// or when the scan's deadline has passed ([`Limit::Time`]).
    pub(crate) fn take(&self, n: u64) -> Result<(), Limit> {
        if self.out_of_time() {
            return Err(Limit::Time);
        }
        let left = self.left.get();
        if left < n {
            self.left.set(0);
            Err(self.what)
        } else {
            self.left.set(left - n);
            Ok(())
        }
    }

    /// Whether `n` more bytes would fit (nothing taken): a decoder about to reserve memory a
    /// header asks for checks here first. `Err(limit name)` when they would not.
    pub(crate) fn fits(&self, n: u64) -> Result<(), Limit> {
        if self.left.get() < n {
            Err(self.what)
        } else {
            Ok(())
        }
    }

    /// Take `n` bytes from the argument-decoding budget; false (and the budget spent) when
    /// they are not there.
    pub(crate) fn take_decoded(&self, n: u64) -> bool {
        let left = self.decode_left.get();
        if left < n {
            // Only the first refusal asks for a finding.
            if !self.decode_spent.replace(true) {
                self.decode_unreported.set(true);
            }
            self.decode_left.set(0);
            false
        } else {
            self.decode_left.set(left - n);
            true
        }
    }

    /// Bytes left in the argument-decoding budget.
    pub(crate) fn decoded_left(&self) -> u64 {
        self.decode_left.get()
    }

    /// True once after the argument-decoding budget ran out, so that one finding says so.
    pub(crate) fn decode_limit_unreported(&self) -> bool {
        self.decode_unreported.replace(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_decompressed: u64, max_decoded: usize) -> Limits {
        Limits {
            max_decompressed,
            max_ratio: 1,
            max_decoded,
            ..Limits::default()
        }
    }

    #[test]
    fn takes_until_spent_then_refuses() {
        let b = Budget::new(10, &limits(1000, 0));
        assert_eq!(b.fits(1000), Ok(()));
        assert_eq!(b.fits(1001), Err(Limit::DecompressedSize));
        assert_eq!(b.take(600), Ok(()));
        assert_eq!(b.fits(401), Err(Limit::DecompressedSize));
        assert_eq!(b.take(401), Err(Limit::DecompressedSize));
        // A refusal spends what was left: nothing more fits, not even a byte.
        assert_eq!(b.take(1), Err(Limit::DecompressedSize));
        assert_eq!(b.fits(1), Err(Limit::DecompressedSize));
    }

    #[test]
    fn the_ratio_bound_applies_above_its_floor() {
        let l = Limits {
            max_ratio: 2,
            ..Limits::default()
        };
        let b = Budget::new(RATIO_FLOOR, &l);
        assert_eq!(b.take(2 * RATIO_FLOOR), Ok(()));
        assert_eq!(b.take(1), Err(Limit::CompressionRatio));
    }

    #[test]
    fn a_passed_deadline_refuses_every_take() {
        let b = Budget::new(10, &limits(1000, 0)).until(Some(Instant::now()));
        assert!(b.out_of_time());
        assert_eq!(b.take(1), Err(Limit::Time));
        let later = Instant::now() + std::time::Duration::from_secs(3600);
        let b = Budget::new(10, &limits(1000, 0)).until(Some(later));
        assert!(!b.out_of_time());
        assert_eq!(b.take(1), Ok(()));
    }

    #[test]
    fn the_decoding_budget_refuses_once_with_one_report() {
        let b = Budget::new(0, &limits(1000, 100));
        assert!(b.take_decoded(60));
        assert_eq!(b.decoded_left(), 40);
        assert!(!b.decode_limit_unreported());
        assert!(!b.take_decoded(41));
        assert_eq!(b.decoded_left(), 0);
        assert!(b.decode_limit_unreported());
        assert!(!b.decode_limit_unreported());
        assert!(!b.take_decoded(1));
        assert!(
            !b.decode_limit_unreported(),
            "only the first refusal asks for a finding"
        );
    }
}
