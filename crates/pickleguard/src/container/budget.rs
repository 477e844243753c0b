//! How many bytes one scan may produce by decompressing (and by re-reading overlapping archive
//! members): `min(max_decompressed, max(RATIO_FLOOR, max_ratio × input size))`, shared by every
//! nested container of the scan. The first scan on a thread opens the budget, nested scans
//! share it.

use crate::limits::Limits;
use std::cell::RefCell;

/// Below this many bytes the ratio bound does not apply (small files may decompress to this
/// much whatever their ratio: zero-filled arrays compress 1000:1 and more).
pub const RATIO_FLOOR: u64 = 128 << 20;

struct State {
    left: u64,
    /// Which bound `left` came from, for the finding.
    what: &'static str,
    /// Bytes the analysis may still produce while looking inside call arguments (copies of
    /// literals, str.join results, base64 / hex / zlib decodings), over the whole scan: one
    /// memoised literal handed to 100k calls, or 1 KB zlib bombs (64 MB each) repeated, must
    /// not multiply the work.
    decode_left: u64,
    /// `decode_left` ran out (once).
    decode_spent: bool,
    /// Set when `decode_left` ran out; cleared when the finding has been written.
    decode_unreported: bool,
}

thread_local! {
    static BUDGET: RefCell<Option<State>> = const { RefCell::new(None) };
}

/// Opens the budget for a scan if none is open on this thread; closes it when dropped.
pub struct Scope {
    owner: bool,
}

impl Scope {
    pub fn enter(input_len: u64, limits: &Limits) -> Scope {
        BUDGET.with(|b| {
            let mut b = b.borrow_mut();
            if b.is_some() {
                return Scope { owner: false };
            }
            let (left, what) = allowance(input_len, limits);
            *b = Some(State {
                left,
                what,
                decode_left: limits.max_decoded as u64,
                decode_spent: false,
                decode_unreported: false,
            });
            Scope { owner: true }
        })
    }
}

/// How many bytes decompressing `input_len` bytes may produce, and the limit's name: the one
/// rule for the scan and for the Python loaders that decompress before they load.
pub fn allowance(input_len: u64, limits: &Limits) -> (u64, &'static str) {
    let by_ratio = limits.max_ratio.saturating_mul(input_len).max(RATIO_FLOOR);
    if by_ratio < limits.max_decompressed {
        (by_ratio, "compression ratio")
    } else {
        (limits.max_decompressed, "decompressed size")
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        if self.owner {
            BUDGET.with(|b| *b.borrow_mut() = None);
        }
    }
}

/// Take `n` bytes from the budget; `Err(limit name)` when they are not there (nothing taken).
pub fn take(n: u64) -> Result<(), &'static str> {
    BUDGET.with(|b| match b.borrow_mut().as_mut() {
        Some(s) => {
            if s.left < n {
                s.left = 0;
                Err(s.what)
            } else {
                s.left -= n;
                Ok(())
            }
        }
        // No scan open (a direct call into a container function): nothing to bound against.
        None => Ok(()),
    })
}

/// Whether `n` more bytes would fit in the budget (nothing taken): a decoder about to reserve
/// memory a header asks for checks here first. `Err(limit name)` when they would not.
pub fn fits(n: u64) -> Result<(), &'static str> {
    BUDGET.with(|b| match b.borrow().as_ref() {
        Some(s) if s.left < n => Err(s.what),
        Some(_) => Ok(()),
        // No scan open: the default ceiling still keeps a header from sizing an allocation.
        None if n > Limits::default().max_decompressed => Err("decompressed size"),
        None => Ok(()),
    })
}

/// Take `n` bytes from the argument-decoding budget; false (and the budget spent) when they
/// are not there. Without an open scan nothing is bounded.
pub fn take_decoded(n: u64) -> bool {
    BUDGET.with(|b| match b.borrow_mut().as_mut() {
        Some(s) => {
            if s.decode_left < n {
                // Only the first refusal asks for a finding.
                if !s.decode_spent {
                    s.decode_spent = true;
                    s.decode_unreported = true;
                }
                s.decode_left = 0;
                false
            } else {
                s.decode_left -= n;
                true
            }
        }
        None => true,
    })
}

/// Bytes left in the argument-decoding budget.
pub fn decoded_left() -> u64 {
    BUDGET.with(|b| {
        b.borrow()
            .as_ref()
            .map(|s| s.decode_left)
            .unwrap_or(u64::MAX)
    })
}

/// True once after the argument-decoding budget ran out, so that one finding says so.
pub fn decode_limit_unreported() -> bool {
    BUDGET.with(|b| match b.borrow_mut().as_mut() {
        Some(s) if s.decode_unreported => {
            s.decode_unreported = false;
            true
        }
        _ => false,
    })
}
