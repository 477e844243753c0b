//! Shared by the integration tests.

/// A fixed-seed generator (Knuth's MMIX LCG): mutation tests that replay the same inputs on
/// every run and machine.
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}
