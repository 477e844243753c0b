//! Local file headers, the data descriptors after a member's data, and where a member whose
//! header defers its sizes ends.

use super::bytes::{memfind, u16_at, u32_at, u64_at, DESCRIPTOR_SIG, LOCAL_SIG};
use super::central::zip64_extra;
use crate::container::compress;
use crate::context::budget::Budget;

/// A local file header.
#[derive(Clone, Debug)]
pub(super) struct Local {
    pub(super) pos: usize,
    pub(super) name: Vec<u8>,
    pub(super) flags: u16,
    pub(super) method: u16,
    pub(super) csize: u64,
    pub(super) usize: u64,
    pub(super) data: usize,
    pub(super) zip64: bool,
}

impl Local {
    /// Sizes left to the data descriptor (bit 3 with zeroed sizes).
    pub(super) fn deferred(&self) -> bool {
        self.flags & 8 != 0 && self.csize == 0 && self.usize == 0
    }
}

pub(super) fn parse_local(d: &[u8], p: usize) -> Option<Local> {
    if d.get(p..p + 4)? != LOCAL_SIG {
        return None;
    }
    let flags = u16_at(d, p + 6)?;
    let method = u16_at(d, p + 8)?;
    let mut csize = u64::from(u32_at(d, p + 18)?);
    let mut usize_ = u64::from(u32_at(d, p + 22)?);
    let nlen = u16_at(d, p + 26)? as usize;
    let elen = u16_at(d, p + 28)? as usize;
    let name = d.get(p + 30..p + 30 + nlen)?.to_vec();
    let extra = d.get(p + 30 + nlen..(p + 30 + nlen + elen).min(d.len()))?;
    let zip64 = usize_ == 0xffff_ffff || csize == 0xffff_ffff;
    if zip64 {
        // The local zip64 field holds both sizes.
        let z = zip64_extra(extra, true, true, false);
        usize_ = z[0].unwrap_or(usize_);
        csize = z[1].unwrap_or(csize);
    }
    Some(Local {
        pos: p,
        name,
        flags,
        method,
        csize,
        usize: usize_,
        data: p + 30 + nlen + elen,
        zip64,
    })
}

/// Length of a data descriptor at `p` (after a member's data), if one is there.
pub(super) fn descriptor_len(d: &[u8], p: usize, zip64: bool) -> usize {
    let sig = d.get(p..p + 4) == Some(DESCRIPTOR_SIG);
    let body = if zip64 { 20 } else { 12 };
    let n = if sig { 4 + body } else { body };
    n.min(d.len().saturating_sub(p))
}

/// Where a member's data ends when the local header defers its sizes and no central entry
/// tells: a descriptor whose compressed size matches, or the end of the deflate stream.
pub(super) fn find_deferred_end(budget: &Budget, d: &[u8], l: &Local) -> Option<u64> {
    let mut from = l.data;
    while let Some(off) = memfind(&d[from.min(d.len())..], DESCRIPTOR_SIG) {
        let q = from + off;
        let size = if l.zip64 {
            u64_at(d, q + 8)
        } else {
            u32_at(d, q + 8).map(u64::from)
        };
        if size == Some((q - l.data) as u64) {
            return Some((q - l.data) as u64);
        }
        from = q + 1;
    }
    if l.method == 8 {
        let dec = compress::inflate(budget, &d[l.data.min(d.len())..], u64::MAX);
        if dec.error.is_none() && dec.limit.is_none() {
            return Some(dec.consumed as u64);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::testzip::{local_header, Entry};
    use super::*;
    use crate::limits::Limits;

    #[test]
    fn a_local_header_reads_its_fields_and_where_its_data_starts() {
        let e = Entry::stored("m.pkl", b"N.");
        let mut d = local_header(&e, 2, 2);
        d.extend(&e.data);
        let l = parse_local(&d, 0).unwrap();
        assert_eq!(l.name, b"m.pkl");
        assert_eq!((l.csize, l.usize, l.data), (2, 2, 30 + 5));
        assert!(!l.deferred() && !l.zip64);
        assert!(parse_local(&d, 1).is_none());
    }

    #[test]
    fn descriptors_are_measured_with_or_without_their_signature() {
        let with = [DESCRIPTOR_SIG, &[0u8; 12]].concat();
        assert_eq!(descriptor_len(&with, 0, false), 16);
        assert_eq!(descriptor_len(&[0u8; 30], 0, false), 12);
        assert_eq!(descriptor_len(&[0u8; 30], 0, true), 20);
        assert_eq!(descriptor_len(&[0u8; 5], 0, false), 5, "cut at the end");
    }

    #[test]
    fn deferred_sizes_end_at_a_matching_descriptor_or_the_deflate_end() {
        let budget = Budget::new(0, &Limits::default());
        let mut e = Entry::stored("d", b"");
        e.flags = 8;
        let mut d = local_header(&e, 0, 0);
        d.extend(b"hello");
        d.extend(DESCRIPTOR_SIG);
        d.extend([0u8; 4]);
        d.extend(5u32.to_le_bytes());
        d.extend(5u32.to_le_bytes());
        let l = parse_local(&d, 0).unwrap();
        assert!(l.deferred());
        assert_eq!(find_deferred_end(&budget, &d, &l), Some(5));

        let mut e = super::super::testzip::Entry::deflated("z", &[b'N'; 1000]);
        e.flags = 8;
        let mut d = local_header(&e, 0, 0);
        d.extend(&e.data);
        d.extend(b"trailing bytes, no descriptor");
        let l = parse_local(&d, 0).unwrap();
        assert_eq!(
            find_deferred_end(&budget, &d, &l),
            Some(e.data.len() as u64)
        );
        // A stored member with no descriptor cannot be measured.
        let mut e = Entry::stored("s", b"");
        e.flags = 8;
        let mut d = local_header(&e, 0, 0);
        d.extend(b"abc");
        assert_eq!(
            find_deferred_end(&budget, &d, &parse_local(&d, 0).unwrap()),
            None
        );
    }
}
