//! The end of the archive: end of central directory records, the zip64 locator and end
//! record, and the central directory each reader (Python's `zipfile`, torch's miniz) finds
//! from them.

use super::bytes::{
    name_text, sig_at, u16_at, u32_at, u64_at, CENTRAL_SIG, EOCD64_SIG, EOCD_SIG, LOCAL_SIG,
    LOCATOR_SIG,
};
use super::central::{parse_central, Central};
use crate::render::name_lit;

/// The central directory and the records around it.
#[derive(Debug)]
pub(super) struct Directory {
    /// Whose reading of the end records this is.
    pub(super) reader: Reader,
    pub(super) entries: Vec<Central>,
    pub(super) cd_start: usize,
    pub(super) cd_end: usize,
    /// EOCD and its comment.
    pub(super) eocd: (usize, usize),
    /// zip64 end record and locator.
    pub(super) z64: Vec<(usize, usize)>,
    /// Entries the end record declares.
    pub(super) declared: u64,
    /// Added to every offset (bytes in front of the archive, as Python's zipfile computes).
    pub(super) shift: u64,
}

/// Which zip64 end record a reader takes when a zip64 locator precedes the end record.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Reader {
    /// Python's zipfile (`_EndRecData64`): the record right before the locator, assuming no
    /// extensible data; offsets corrected by the bytes in front of the archive.
    Zipfile,
    /// torch's miniz (`mz_zip_reader_read_central_dir`): the record at the offset the locator
    /// gives; offsets taken as they are.
    Miniz,
}

impl Reader {
    fn describe(self) -> &'static str {
        match self {
            Reader::Zipfile => {
                "Python's zipfile (numpy.load, pandas) takes the zip64 record right before the locator"
            }
            Reader::Miniz => "torch's reader (miniz) follows the locator's offset",
        }
    }
}

/// Candidate end of central directory records, last first (zipfile and miniz both take the
/// last one in the tail; earlier ones are tried only when it leads nowhere).
pub(super) fn end_records(d: &[u8]) -> Vec<usize> {
    if d.len() < 22 {
        return Vec::new();
    }
    let lo = d.len().saturating_sub(22 + 0xffff);
    // Every file is searched (a pickle may have a zip behind it): a vectorised search of
    // the 64 KiB tail for the signature's first byte, each hit compared whole (cheaper than
    // a substring search's setup and its rare-byte guesses on binary data).
    let tail = &d[lo..d.len() - 22 + EOCD_SIG.len()];
    memchr::memrchr_iter(EOCD_SIG[0], tail)
        .filter(|&i| tail[i..].starts_with(EOCD_SIG))
        .take(8)
        .map(|i| lo + i)
        .collect()
}

/// The central directory as zipfile reads it, or else as miniz does (for polyglot location).
pub(super) fn read_directory(d: &[u8]) -> Option<Directory> {
    read_directories(d).into_iter().next()
}

/// Every reading of the archive's end records that leads to a central directory: one when
/// the readers agree, two (zipfile's first) when the zip64 end records send zipfile and
/// torch's miniz to different directories.
pub(super) fn read_directories(d: &[u8]) -> Vec<Directory> {
    for e in end_records(d) {
        match (
            directory_at(d, e, Reader::Zipfile),
            directory_at(d, e, Reader::Miniz),
        ) {
            (Some(a), Some(b)) if a.same_entries(&b) => return vec![a],
            (Some(a), Some(b)) => return vec![a, b],
            (Some(a), None) | (None, Some(a)) => return vec![a],
            (None, None) => {}
        }
    }
    Vec::new()
}

impl Directory {
    fn same_entries(&self, o: &Directory) -> bool {
        self.cd_start == o.cd_start
            && self.shift == o.shift
            && self.entries.len() == o.entries.len()
            && self.entries.iter().zip(&o.entries).all(|(a, b)| {
                a.pos == b.pos && a.local == b.local && a.csize == b.csize && a.name == b.name
            })
    }

    /// One reading, for a finding: where its directory is and what it lists.
    pub(super) fn summary(&self) -> String {
        let mut names: Vec<String> = self
            .entries
            .iter()
            .take(8)
            .map(|c| name_lit(&name_text(&c.name)))
            .collect();
        if self.entries.len() > 8 {
            names.push(format!("... {} more", self.entries.len() - 8));
        }
        format!(
            "{}: central directory at byte {}, {} entries [{}]",
            self.reader.describe(),
            self.cd_start,
            self.entries.len(),
            names.join(", ")
        )
    }
}

pub(super) fn directory_at(d: &[u8], e: usize, reader: Reader) -> Option<Directory> {
    let mut declared = u64::from(u16_at(d, e + 10)?);
    let mut cd_size = u64::from(u32_at(d, e + 12)?);
    let mut cd_off = u64::from(u32_at(d, e + 16)?);
    let clen = u16_at(d, e + 20)? as usize;
    let eocd = (e, (e + 22 + clen).min(d.len()));
    let mut z64 = Vec::new();
    // Where the directory should end: right before the zip64 records or the end record.
    let mut dir_end = e as u64;
    if e >= 20 && &d[e - 20..e - 16] == LOCATOR_SIG {
        z64.push((e - 20, e));
        let rec = match reader {
            Reader::Zipfile => e
                .checked_sub(20 + 56)
                .filter(|&b| &d[b..b + 4] == EOCD64_SIG),
            Reader::Miniz => {
                let at = u64_at(d, e - 20 + 8)?;
                (at <= (d.len() as u64).saturating_sub(56) && sig_at(d, at, EOCD64_SIG))
                    .then_some(at as usize)
            }
        };
        if let Some(r) = rec {
            let rsize = u64_at(d, r + 4)?;
            declared = u64_at(d, r + 32)?;
            cd_size = u64_at(d, r + 40)?;
            cd_off = u64_at(d, r + 48)?;
            let rend = (r as u64)
                .saturating_add(12)
                .saturating_add(rsize)
                .min(e as u64 - 20);
            z64.push((r, (rend as usize).max(r)));
            dir_end = r as u64;
        }
    }
    // Python: concat = where the directory ends - its size - its offset. miniz takes offsets
    // as they are.
    let concat = dir_end
        .checked_sub(cd_size)
        .and_then(|x| x.checked_sub(cd_off));
    let shift = match concat {
        Some(c) if reader == Reader::Zipfile && c > 0 && sig_at(d, cd_off + c, CENTRAL_SIG) => c,
        _ => 0,
    };
    let cd_start = usize::try_from(cd_off.checked_add(shift)?).ok()?;
    if declared > 0 && !sig_at(d, cd_start as u64, CENTRAL_SIG) {
        return None;
    }
    let cd_limit = (cd_start as u64)
        .saturating_add(cd_size)
        .min(d.len() as u64) as usize;
    let mut entries = Vec::new();
    let mut p = cd_start;
    while p < cd_limit.max(cd_start.saturating_add(1)) && entries.len() < 1 << 22 {
        match parse_central(d, p) {
            Some((c, end)) => {
                entries.push(c);
                p = end;
            }
            None => break,
        }
    }
    if entries.is_empty() && declared > 0 {
        return None;
    }
    Some(Directory {
        reader,
        entries,
        cd_start,
        cd_end: p.max(cd_start),
        eocd,
        z64,
        declared,
        shift,
    })
}

/// Where a zip inside a file starts (for pickle + zip polyglots): a valid central directory
/// whose entries point at local headers.
pub struct Located {
    pub start: usize,
}

pub fn locate(d: &[u8]) -> Option<Located> {
    let dir = read_directory(d)?;
    let start = dir
        .entries
        .iter()
        .map(|c| c.local.saturating_add(dir.shift))
        .filter(|o| sig_at(d, *o, LOCAL_SIG))
        .min()?;
    Some(Located {
        start: start as usize,
    })
}

#[cfg(test)]
mod tests {
    use super::super::testzip::{build, eocd, Entry};
    use super::*;

    #[test]
    fn a_plain_archive_has_one_directory_both_readers_agree_on() {
        let d = build(&[Entry::stored("a", b"x"), Entry::stored("b", b"yy")]);
        let dirs = read_directories(&d);
        assert_eq!(dirs.len(), 1);
        let dir = &dirs[0];
        assert_eq!(dir.reader, Reader::Zipfile);
        assert_eq!(dir.entries.len(), 2);
        assert_eq!((dir.declared, dir.shift), (2, 0));
        assert_eq!(dir.eocd, (d.len() - 22, d.len()));
        assert_eq!(dir.cd_end, d.len() - 22);
        assert!(
            dir.summary().contains("2 entries ['a', 'b']"),
            "{}",
            dir.summary()
        );
        assert!(locate(&d).is_some_and(|l| l.start == 0));
    }

    #[test]
    fn bytes_in_front_shift_zipfiles_offsets_and_locate_the_archive() {
        let zip = build(&[Entry::stored("a.pkl", b"N.")]);
        let mut d = b"\x80\x04N.".to_vec();
        d.extend(&zip);
        let dir = read_directory(&d).unwrap();
        assert_eq!(dir.shift, 4);
        assert_eq!(
            dir.cd_start,
            zip.len() - 22 - dir.entries[0].name.len() - 46 + 4
        );
        assert_eq!(locate(&d).map(|l| l.start), Some(4));
    }

    #[test]
    fn the_last_end_record_is_tried_first_and_garbage_has_none() {
        let mut d = eocd(0, 0, 0);
        d.extend(eocd(0, 0, 0));
        assert_eq!(end_records(&d), vec![22, 0]);
        assert!(
            end_records(b"PK\x05\x06").is_empty(),
            "shorter than a record"
        );
        assert!(read_directories(b"not a zip at all, not even close....").is_empty());
        // A record that declares entries where there is no directory leads nowhere.
        assert!(read_directories(&eocd(3, 46, 0)).is_empty());
    }
}
