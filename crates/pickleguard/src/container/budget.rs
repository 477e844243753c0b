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
            let by_ratio = limits.max_ratio.saturating_mul(input_len).max(RATIO_FLOOR);
            let (left, what) = if by_ratio < limits.max_decompressed {
                (by_ratio, "compression ratio")
            } else {
                (limits.max_decompressed, "decompressed size")
            };
            *b = Some(State { left, what });
            Scope { owner: true }
        })
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
