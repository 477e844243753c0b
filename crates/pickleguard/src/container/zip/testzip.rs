//! Zip archives built byte by byte for the unit tests of each step: every record is written
//! here, so that a test can break exactly one field.

/// One member as the builder writes it.
#[derive(Clone)]
pub(super) struct Entry {
    pub name: Vec<u8>,
    /// The bytes as stored (already compressed for a method other than 0).
    pub data: Vec<u8>,
    pub method: u16,
    pub flags: u16,
    /// The uncompressed size both headers declare.
    pub usize: u32,
}

impl Entry {
    /// A stored member.
    pub fn stored(name: &str, data: &[u8]) -> Entry {
        Entry {
            name: name.as_bytes().to_vec(),
            data: data.to_vec(),
            method: 0,
            flags: 0,
            usize: data.len() as u32,
        }
    }

    /// A deflated member.
    pub fn deflated(name: &str, data: &[u8]) -> Entry {
        use std::io::Write;
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(data).unwrap();
        Entry {
            name: name.as_bytes().to_vec(),
            data: e.finish().unwrap(),
            method: 8,
            flags: 0,
            usize: data.len() as u32,
        }
    }
}

pub(super) fn local_header(e: &Entry, csize: u32, usize: u32) -> Vec<u8> {
    let mut h = b"PK\x03\x04".to_vec();
    h.extend(20u16.to_le_bytes());
    h.extend(e.flags.to_le_bytes());
    h.extend(e.method.to_le_bytes());
    h.extend([0u8; 4]); // time, date
    h.extend([0u8; 4]); // crc (never checked)
    h.extend(csize.to_le_bytes());
    h.extend(usize.to_le_bytes());
    h.extend((e.name.len() as u16).to_le_bytes());
    h.extend(0u16.to_le_bytes());
    h.extend(&e.name);
    h
}

pub(super) fn central_entry(e: &Entry, local: u32, extra: &[u8]) -> Vec<u8> {
    let mut h = b"PK\x01\x02".to_vec();
    h.extend(20u16.to_le_bytes());
    h.extend(20u16.to_le_bytes());
    h.extend(e.flags.to_le_bytes());
    h.extend(e.method.to_le_bytes());
    h.extend([0u8; 8]); // time, date, crc
    h.extend((e.data.len() as u32).to_le_bytes());
    h.extend(e.usize.to_le_bytes());
    h.extend((e.name.len() as u16).to_le_bytes());
    h.extend((extra.len() as u16).to_le_bytes());
    h.extend(0u16.to_le_bytes()); // comment
    h.extend([0u8; 8]); // disk, attributes
    h.extend(local.to_le_bytes());
    h.extend(&e.name);
    h.extend(extra);
    h
}

pub(super) fn eocd(count: u16, cd_size: u32, cd_off: u32) -> Vec<u8> {
    let mut h = b"PK\x05\x06".to_vec();
    h.extend([0u8; 4]);
    h.extend(count.to_le_bytes());
    h.extend(count.to_le_bytes());
    h.extend(cd_size.to_le_bytes());
    h.extend(cd_off.to_le_bytes());
    h.extend(0u16.to_le_bytes());
    h
}

/// A well-formed archive of `entries`: local headers and data, then the directory.
pub(super) fn build(entries: &[Entry]) -> Vec<u8> {
    let mut d = Vec::new();
    let mut offsets = Vec::new();
    for e in entries {
        offsets.push(d.len() as u32);
        d.extend(local_header(e, e.data.len() as u32, e.usize));
        d.extend(&e.data);
    }
    let cd_off = d.len() as u32;
    for (e, off) in entries.iter().zip(offsets) {
        d.extend(central_entry(e, off, &[]));
    }
    let cd_size = d.len() as u32 - cd_off;
    d.extend(eocd(entries.len() as u16, cd_size, cd_off));
    d
}

/// A pickle that imports and calls `os.system` (never loaded: only scanned).
pub(super) const FLAGGED: &[u8] = b"cos\nsystem\n(S'echo hi'\ntR.";
