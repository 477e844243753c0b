//! A structure-aware zip / npy generator for the container scanner, driven by arbitrary
//! bytes: the fuzz target `zip_structure` (fuzz/) and the stable test `structure_mutants.rs`
//! share it. Each input describes an archive at the level loaders disagree on (members,
//! names, zip64 end records and locators, a second directory hidden in a stored member, local
//! names, offsets, duplicate entries, repeated npy header keys), plus optional raw byte flips,
//! and says what the scan must report.

#![allow(dead_code)]

pub const EVIL: &[u8] = b"cos\nsystem\n(S'touch pickleguard-marker-x'\ntR.";
pub const BENIGN: &[u8] = b"\x80\x02}q\x00X\x01\x00\x00\x00aq\x01K\x01s.";

/// Reads choices from the input; zeros when it runs out.
pub struct Choices<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Choices<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Choices { data, at: 0 }
    }
    pub fn byte(&mut self) -> u8 {
        let b = self.data.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }
    pub fn below(&mut self, n: usize) -> usize {
        self.byte() as usize % n.max(1)
    }
}

const NAMES: &[&str] = &[
    "archive/data.pkl",
    "archive/version",
    "archive/data/0",
    "archive/byteorder",
    "data.pkl",
    "archive/DATA.PKL",
    "w.npy",
    "archive/constants.pkl",
];

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Layout {
    /// One central directory and end record.
    Plain,
    /// zip64 record and locator that agree.
    Zip64,
    /// zipfile takes the record before the locator, miniz a hidden one (second directory).
    SplitLocator,
    /// No record before the locator: zipfile reads the 32-bit end record, miniz the locator.
    SplitEndRecord,
}

/// What the generated file must make the scan say.
#[derive(Debug)]
pub struct Expect {
    /// Some reading lists a member holding the payload (and no byte was flipped).
    pub evil_listed: bool,
    /// The readings disagree or an entry is tampered: a STRUCTURAL_TAMPER finding is due.
    pub tamper: bool,
    /// Raw bytes were flipped afterwards: only "no panic, a report" is promised.
    pub flipped: bool,
    pub layout: Layout,
}

fn p16(v: &mut Vec<u8>, x: u16) {
    v.extend_from_slice(&x.to_le_bytes());
}
fn p32(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_le_bytes());
}
fn p64(v: &mut Vec<u8>, x: u64) {
    v.extend_from_slice(&x.to_le_bytes());
}

fn crc32(d: &[u8]) -> u32 {
    let mut c = 0xffff_ffffu32;
    for &b in d {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xedb8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

pub fn local_entry(name: &[u8], data: &[u8]) -> Vec<u8> {
    let mut v = b"PK\x03\x04".to_vec();
    p16(&mut v, 20);
    p16(&mut v, 0);
    p16(&mut v, 0);
    p32(&mut v, 0x21);
    p32(&mut v, crc32(data));
    p32(&mut v, data.len() as u32);
    p32(&mut v, data.len() as u32);
    p16(&mut v, name.len() as u16);
    p16(&mut v, 0);
    v.extend_from_slice(name);
    v.extend_from_slice(data);
    v
}

pub fn central_entry(name: &[u8], data: &[u8], off: u64, comment: &[u8]) -> Vec<u8> {
    let mut v = b"PK\x01\x02".to_vec();
    p16(&mut v, 20);
    p16(&mut v, 20);
    p16(&mut v, 0);
    p16(&mut v, 0);
    p32(&mut v, 0x21);
    p32(&mut v, crc32(data));
    p32(&mut v, data.len() as u32);
    p32(&mut v, data.len() as u32);
    p16(&mut v, name.len() as u16);
    p16(&mut v, 0);
    p16(&mut v, comment.len() as u16);
    p16(&mut v, 0);
    p16(&mut v, 0);
    p32(&mut v, 0);
    p32(&mut v, off as u32);
    v.extend_from_slice(name);
    v.extend_from_slice(comment);
    v
}

pub fn zip64_record(n: u64, size: u64, off: u64) -> Vec<u8> {
    let mut v = b"PK\x06\x06".to_vec();
    p64(&mut v, 44);
    p16(&mut v, 45);
    p16(&mut v, 45);
    p32(&mut v, 0);
    p32(&mut v, 0);
    p64(&mut v, n);
    p64(&mut v, n);
    p64(&mut v, size);
    p64(&mut v, off);
    v
}

pub fn zip64_locator(at: u64) -> Vec<u8> {
    let mut v = b"PK\x06\x07".to_vec();
    p32(&mut v, 0);
    p64(&mut v, at);
    p32(&mut v, 1);
    v
}

pub fn end_record(n: u16, size: u32, off: u32) -> Vec<u8> {
    let mut v = b"PK\x05\x06".to_vec();
    p16(&mut v, 0);
    p16(&mut v, 0);
    p16(&mut v, n);
    p16(&mut v, n);
    p32(&mut v, size);
    p32(&mut v, off);
    p16(&mut v, 0);
    v
}

struct M {
    name: Vec<u8>,
    local_name: Vec<u8>,
    data: Vec<u8>,
    twice: bool,
}

fn members(c: &mut Choices, n: usize) -> (Vec<M>, bool, bool) {
    let (mut out, mut evil, mut tamper) = (Vec::new(), false, false);
    for _ in 0..n {
        let name = NAMES[c.below(NAMES.len())].as_bytes().to_vec();
        let data = match c.below(4) {
            0 => EVIL.to_vec(),
            1 => b"3\n".to_vec(),
            _ => BENIGN.to_vec(),
        };
        let quirk = c.below(8);
        let local_name = if quirk == 1 {
            tamper = true;
            b"archive/notes.txt".to_vec()
        } else {
            name.clone()
        };
        let twice = quirk == 2;
        tamper |= twice;
        // A tensor storage record is never unpickled (torch reads it as raw bytes).
        evil |= data == EVIL && name != b"archive/data/0";
        out.push(M {
            name,
            local_name,
            data,
            twice,
        });
    }
    (out, evil, tamper)
}

fn lay_out(at: usize, ms: &[M]) -> (Vec<u8>, Vec<u8>, u64) {
    let (mut body, mut cd, mut n) = (Vec::new(), Vec::new(), 0u64);
    for m in ms {
        let off = (at + body.len()) as u64;
        cd.extend(central_entry(&m.name, &m.data, off, b""));
        n += 1;
        if m.twice {
            cd.extend(central_entry(&m.name, &m.data, off, b""));
            n += 1;
        }
        body.extend(local_entry(&m.local_name, &m.data));
    }
    (body, cd, n)
}

/// Build a zip from the choices.
pub fn zip(c: &mut Choices) -> (Vec<u8>, Expect) {
    let layout = match c.below(4) {
        0 => Layout::Plain,
        1 => Layout::Zip64,
        2 => Layout::SplitLocator,
        _ => Layout::SplitEndRecord,
    };
    let n = 1 + c.below(4);
    let (shown, mut evil, mut tamper) = members(c, n);
    let mut out;
    match layout {
        Layout::Plain | Layout::Zip64 => {
            let (body, cd, count) = lay_out(0, &shown);
            out = body;
            let cd_at = out.len();
            out.extend(&cd);
            if layout == Layout::Zip64 {
                let rec = out.len();
                out.extend(zip64_record(count, cd.len() as u64, cd_at as u64));
                out.extend(zip64_locator(rec as u64));
                out.extend(end_record(0xffff, 0xffff_ffff, 0xffff_ffff));
            } else {
                out.extend(end_record(count as u16, cd.len() as u32, cd_at as u32));
            }
        }
        Layout::SplitLocator => {
            let k = 1 + c.below(3);
            let (hidden, e2, _) = members(c, k);
            evil |= e2;
            tamper = true;
            let (body, mut cd_a, count) = lay_out(0, &shown);
            out = body;
            let blob_name = b"archive/.data/blob".to_vec();
            let blob_data_at = out.len() + 30 + blob_name.len();
            let mut blob = b"pad!".to_vec();
            let (hb, cd_m, hcount) = lay_out(blob_data_at + blob.len(), &hidden);
            blob.extend(hb);
            let cd_m_at = blob_data_at + blob.len();
            blob.extend(&cd_m);
            let rec_m = blob_data_at + blob.len();
            blob.extend(zip64_record(hcount, cd_m.len() as u64, cd_m_at as u64));
            cd_a.extend(central_entry(&blob_name, &blob, out.len() as u64, b""));
            out.extend(local_entry(&blob_name, &blob));
            let cd_a_at = out.len();
            out.extend(&cd_a);
            out.extend(zip64_record(count + 1, cd_a.len() as u64, cd_a_at as u64));
            out.extend(zip64_locator(rec_m as u64));
            out.extend(end_record(0xffff, 0xffff_ffff, 0xffff_ffff));
        }
        Layout::SplitEndRecord => {
            let k = 1 + c.below(3);
            let (other, e2, _) = members(c, k);
            evil |= e2;
            tamper = true;
            let (body, _, _) = lay_out(0, &shown);
            out = body;
            let (ob, cd_m, ocount) = lay_out(out.len(), &other);
            out.extend(ob);
            let cd_m_at = out.len();
            out.extend(&cd_m);
            let rec_m = out.len();
            out.extend(zip64_record(ocount, cd_m.len() as u64, cd_m_at as u64));
            let cd_z_at = out.len();
            let (mut at, mut cd_z, mut zcount) = (0usize, Vec::new(), 0u16);
            for (i, m) in shown.iter().enumerate() {
                let comment = if i + 1 == shown.len() {
                    zip64_locator(rec_m as u64)
                } else {
                    Vec::new()
                };
                if m.twice {
                    cd_z.extend(central_entry(&m.name, &m.data, at as u64, b""));
                    zcount += 1;
                }
                cd_z.extend(central_entry(&m.name, &m.data, at as u64, &comment));
                zcount += 1;
                at += 30 + m.local_name.len() + m.data.len();
            }
            out.extend(&cd_z);
            out.extend(end_record(zcount, cd_z.len() as u32, cd_z_at as u32));
        }
    }
    let flipped = flips(c, &mut out);
    (
        out,
        Expect {
            evil_listed: evil,
            tamper,
            flipped,
            layout,
        },
    )
}

/// An `.npy` whose header may repeat keys; the body is the payload, so the scan must not be
/// safe when any `descr` reading holds objects.
pub fn npy(c: &mut Choices) -> (Vec<u8>, Expect) {
    const DESCRS: &[&str] = &["'<f8'", "'|O'", "'<i4'", "'object'", "[('a', '|O')]"];
    let mut keys = vec![
        format!("'descr': {}", DESCRS[c.below(DESCRS.len())]),
        "'fortran_order': False".to_string(),
        "'shape': (3,)".to_string(),
    ];
    let extra = c.below(3);
    for _ in 0..extra {
        let k = match c.below(3) {
            0 => format!("'descr': {}", DESCRS[c.below(DESCRS.len())]),
            1 => "'shape': (2,)".to_string(),
            _ => "'fortran_order': True".to_string(),
        };
        let at = c.below(keys.len() + 1);
        keys.insert(at, k);
    }
    let objects = keys
        .iter()
        .any(|k| k.starts_with("'descr'") && !k.contains("'<f8'") && !k.contains("'<i4'"));
    let mut h = format!("{{{}, }}", keys.join(", "));
    while !(10 + h.len() + 1).is_multiple_of(64) {
        h.push(' ');
    }
    h.push('\n');
    let mut d = b"\x93NUMPY\x01\x00".to_vec();
    d.extend_from_slice(&(h.len() as u16).to_le_bytes());
    d.extend_from_slice(h.as_bytes());
    d.extend_from_slice(EVIL);
    let flipped = flips(c, &mut d);
    (
        d,
        Expect {
            evil_listed: objects,
            tamper: extra > 0,
            flipped,
            layout: Layout::Plain,
        },
    )
}

fn flips(c: &mut Choices, out: &mut [u8]) -> bool {
    let n = c.below(4);
    if n < 3 || out.is_empty() {
        return false;
    }
    for _ in 0..1 + c.below(4) {
        let at = (c.byte() as usize * 257 + c.byte() as usize) % out.len();
        out[at] ^= c.byte() | 1;
    }
    true
}

/// Build a file from the choices (zip or npy) and check the scan against what it must say.
pub fn check(input: &[u8]) {
    use pickleguard::{scan_bytes, FindingType, Mode, Policy};
    let mut c = Choices::new(input);
    let (file, want) = if c.below(4) == 0 {
        npy(&mut c)
    } else {
        zip(&mut c)
    };
    let r = scan_bytes(&file, &Policy::new(Mode::Ml));
    if want.flipped {
        return;
    }
    let tampered = r
        .findings
        .iter()
        .any(|f| f.kind == FindingType::StructuralTamper);
    if want.evil_listed {
        assert!(
            !r.is_safe,
            "payload listed but safe: {want:?} {:?}",
            r.findings
        );
    }
    if want.tamper {
        assert!(tampered, "tamper expected: {want:?} {:?}", r.findings);
    }
    if matches!(want.layout, Layout::SplitLocator | Layout::SplitEndRecord) {
        assert!(
            r.findings
                .iter()
                .any(|f| f.description.contains("two different central directories")),
            "split not reported: {want:?} {:?}",
            r.findings
        );
    }
}
