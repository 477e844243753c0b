//! Little-endian fields and record signatures of a zip archive, read without panicking: every
//! read past the end is `None`.

pub(super) const LOCAL_SIG: &[u8] = b"PK\x03\x04";
pub(super) const CENTRAL_SIG: &[u8] = b"PK\x01\x02";
pub(super) const EOCD_SIG: &[u8] = b"PK\x05\x06";
pub(super) const EOCD64_SIG: &[u8] = b"PK\x06\x06";
pub(super) const LOCATOR_SIG: &[u8] = b"PK\x06\x07";
pub(super) const DESCRIPTOR_SIG: &[u8] = b"PK\x07\x08";

pub(super) fn u16_at(d: &[u8], p: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        d.get(p..p.checked_add(2)?)?.try_into().ok()?,
    ))
}

pub(super) fn u32_at(d: &[u8], p: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        d.get(p..p.checked_add(4)?)?.try_into().ok()?,
    ))
}

pub(super) fn u64_at(d: &[u8], p: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        d.get(p..p.checked_add(8)?)?.try_into().ok()?,
    ))
}

pub(super) fn sig_at(d: &[u8], p: u64, sig: &[u8]) -> bool {
    usize::try_from(p)
        .ok()
        .and_then(|p| d.get(p..p.checked_add(4)?))
        .map(|s| s == sig)
        .unwrap_or(false)
}

pub(super) fn name_text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub(super) fn memfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_read_little_endian_and_nothing_past_the_end() {
        let d = [1u8, 2, 3, 4, 5, 6, 7, 8, 9];
        assert_eq!(u16_at(&d, 0), Some(0x0201));
        assert_eq!(u32_at(&d, 1), Some(0x0504_0302));
        assert_eq!(u64_at(&d, 1), Some(0x0908_0706_0504_0302));
        assert_eq!(u16_at(&d, 8), None);
        assert_eq!(u64_at(&d, 2), None);
        assert_eq!(
            u32_at(&d, usize::MAX - 1),
            None,
            "no overflow on a huge offset"
        );
    }

    #[test]
    fn signatures_are_matched_in_range_only() {
        let d = b"xxPK\x03\x04";
        assert!(sig_at(d, 2, LOCAL_SIG));
        assert!(!sig_at(d, 0, LOCAL_SIG));
        assert!(!sig_at(d, 3, LOCAL_SIG));
        assert!(!sig_at(d, u64::MAX, LOCAL_SIG));
        assert_eq!(memfind(d, LOCAL_SIG), Some(2));
        assert_eq!(memfind(d, CENTRAL_SIG), None);
        assert_eq!(name_text(b"a\xffb"), "a\u{fffd}b");
    }
}
