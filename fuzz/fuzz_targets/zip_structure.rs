//! Structure-aware container fuzzing: the input picks an archive's members, names, zip64 end
//! records and locators, a second directory hidden in a stored member, local names,
//! duplicate entries, repeated `.npy` header keys and raw byte flips
//! (crates/pickleguard/tests/structure/mod.rs), and the scan must say what the structure
//! implies: a payload any reading lists is found, a split or tampered archive is reported, and
//! nothing panics. The stable test `structure_mutants.rs` replays the seeds and crashes.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../crates/pickleguard/tests/structure/mod.rs"]
mod structure;

fuzz_target!(|data: &[u8]| {
    structure::check(data);
});
