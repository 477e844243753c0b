//! Central directory entries: one record each, sizes and offsets completed from the zip64
//! extra field.

use super::bytes::{u16_at, u32_at, u64_at, CENTRAL_SIG};

/// One central directory entry.
#[derive(Clone, Debug)]
pub(super) struct Central {
    pub(super) pos: usize,
    pub(super) name: Vec<u8>,
    pub(super) flags: u16,
    pub(super) method: u16,
    pub(super) csize: u64,
    pub(super) usize: u64,
    pub(super) local: u64,
}

/// Fields of a zip64 extended information extra field that replace 0xFFFFFFFF values.
pub(super) fn zip64_extra(
    extra: &[u8],
    want_usize: bool,
    want_csize: bool,
    want_local: bool,
) -> [Option<u64>; 3] {
    let mut out = [None; 3];
    let mut p = 0usize;
    while p + 4 <= extra.len() {
        let id = u16::from_le_bytes([extra[p], extra[p + 1]]);
        let len = u16::from_le_bytes([extra[p + 2], extra[p + 3]]) as usize;
        let body = &extra[p + 4..(p + 4 + len).min(extra.len())];
        if id == 1 {
            let mut q = 0usize;
            for (i, want) in [want_usize, want_csize, want_local].into_iter().enumerate() {
                if want {
                    if let Some(v) = u64_at(body, q) {
                        out[i] = Some(v);
                    }
                    q += 8;
                }
            }
            break;
        }
        p += 4 + len;
    }
    out
}

pub(super) fn parse_central(d: &[u8], p: usize) -> Option<(Central, usize)> {
    if d.get(p..p + 4)? != CENTRAL_SIG {
        return None;
    }
    let flags = u16_at(d, p + 8)?;
    let method = u16_at(d, p + 10)?;
    let mut csize = u64::from(u32_at(d, p + 20)?);
    let mut usize_ = u64::from(u32_at(d, p + 24)?);
    let nlen = u16_at(d, p + 28)? as usize;
    let elen = u16_at(d, p + 30)? as usize;
    let clen = u16_at(d, p + 32)? as usize;
    let mut local = u64::from(u32_at(d, p + 42)?);
    let name = d.get(p + 46..p + 46 + nlen)?.to_vec();
    let end = p + 46 + nlen + elen + clen;
    let extra = d.get(p + 46 + nlen..(p + 46 + nlen + elen).min(d.len()))?;
    let z = zip64_extra(
        extra,
        usize_ == 0xffff_ffff,
        csize == 0xffff_ffff,
        local == 0xffff_ffff,
    );
    usize_ = z[0].unwrap_or(usize_);
    csize = z[1].unwrap_or(csize);
    local = z[2].unwrap_or(local);
    Some((
        Central {
            pos: p,
            name,
            flags,
            method,
            csize,
            usize: usize_,
            local,
        },
        end.min(d.len()),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::testzip::{central_entry, Entry};
    use super::*;

    #[test]
    fn an_entry_reads_its_fields_and_where_the_next_begins() {
        let e = Entry::stored("a/b.pkl", b"12345");
        let mut d = b"junk".to_vec();
        d.extend(central_entry(&e, 77, &[]));
        let (c, end) = parse_central(&d, 4).unwrap();
        assert_eq!(c.pos, 4);
        assert_eq!(c.name, b"a/b.pkl");
        assert_eq!((c.method, c.csize, c.usize, c.local), (0, 5, 5, 77));
        assert_eq!(end, d.len());
        assert!(parse_central(&d, 0).is_none(), "no signature there");
        assert!(
            parse_central(&d[..30], 4).is_none(),
            "cut inside the record"
        );
    }

    #[test]
    fn the_zip64_field_replaces_only_the_saturated_values() {
        let mut e = Entry::stored("big", b"");
        e.usize = 0xffff_ffff;
        let mut extra = 1u16.to_le_bytes().to_vec();
        extra.extend(16u16.to_le_bytes());
        extra.extend((5u64 << 32).to_le_bytes()); // uncompressed size
        extra.extend((9u64 << 32).to_le_bytes()); // local header offset
        let d = central_entry(&e, 0xffff_ffff, &extra);
        let (c, _) = parse_central(&d, 0).unwrap();
        assert_eq!(c.usize, 5 << 32);
        assert_eq!(c.csize, 0, "not saturated: kept");
        assert_eq!(c.local, 9 << 32);
        assert_eq!(zip64_extra(&extra, false, false, false), [None; 3]);
    }
}
