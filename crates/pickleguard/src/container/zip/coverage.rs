//! Bytes no entry or record accounts for, and members whose data overlap: one range of bytes
//! read as two files.

use super::end::Directory;
use super::layout::Layout;
use super::{Member, Mode, MAX_LISTED};
use crate::container::tamper;
use crate::render::name_lit;
use crate::report::Finding;

impl Layout<'_> {
    /// Bytes no entry or record accounts for.
    pub(super) fn outside_bytes(&mut self, dir: Option<&Directory>, start: usize) {
        let d = self.d;
        let (lo, hi) = match self.mode {
            Mode::Plain => (0, d.len()),
            Mode::Polyglot => (start, d.len()),
            Mode::Embedded => (
                start.max(self.members.iter().map(|m| m.pos).min().unwrap_or(0)),
                dir.map(|x| x.eocd.1).unwrap_or(d.len()),
            ),
        };
        let gaps = gaps(&mut self.covered, lo, hi);
        for (i, (a, b)) in gaps.iter().enumerate() {
            if i == MAX_LISTED {
                self.tampers.push(tamper(
                    *a as u64,
                    format!(
                        "{} more ranges of bytes outside every entry",
                        gaps.len() - i
                    ),
                ));
                break;
            }
            self.tampers.push(tamper(
                *a as u64,
                format!(
                    "{} bytes at byte {a} are outside every zip entry (hidden data, or a second view of the archive)",
                    b - a
                ),
            ));
        }
    }
}

/// Uncovered ranges of `lo..hi`.
fn gaps(covered: &mut [(usize, usize)], lo: usize, hi: usize) -> Vec<(usize, usize)> {
    covered.sort_unstable();
    let mut out = Vec::new();
    let mut at = lo;
    for &(a, b) in covered.iter() {
        if b <= a || b <= at {
            continue;
        }
        if a > at && a <= hi {
            out.push((at, a.min(hi)));
        }
        at = at.max(b);
        if at >= hi {
            break;
        }
    }
    if at < hi {
        out.push((at, hi));
    }
    out
}

pub(super) fn overlaps(members: &[Member], tampers: &mut Vec<Finding>) {
    let mut spans: Vec<(usize, usize, usize)> = members
        .iter()
        .enumerate()
        .filter(|(_, m)| m.csize > 0)
        .map(|(i, m)| {
            let end = (m.data as u64)
                .saturating_add(m.csize)
                .min(usize::MAX as u64) as usize;
            (m.data, end, i)
        })
        .collect();
    spans.sort_unstable();
    let mut listed = 0usize;
    let mut reach: Option<(usize, usize)> = None; // (end, member)
    for &(a, b, i) in &spans {
        if let Some((end, j)) = reach {
            let (mi, mj) = (&members[i], &members[j]);
            let same_entry = mi.pos == mj.pos && (mi.local_view || mj.local_view);
            if a < end && !same_entry {
                if listed < MAX_LISTED {
                    tampers.push(tamper(
                        mi.pos as u64,
                        format!(
                            "the data of member {} overlaps the data of {}: one range of bytes read as two files (a zip bomb or a parser trick)",
                            name_lit(&mi.name),
                            name_lit(&mj.name)
                        ),
                    ));
                }
                listed += 1;
            }
        }
        match reach {
            Some((end, _)) if end >= b => {}
            _ => reach = Some((b, i)),
        }
    }
    if listed > MAX_LISTED {
        tampers.push(tamper(
            0,
            format!("{} more overlapping members", listed - MAX_LISTED),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::super::end::read_directory;
    use super::super::testzip::{build, Entry};
    use super::*;
    use crate::context::budget::Budget;
    use crate::limits::Limits;

    #[test]
    fn gaps_are_the_uncovered_ranges() {
        let mut c = vec![(10, 20), (0, 5), (18, 30)];
        assert_eq!(gaps(&mut c, 0, 40), [(5, 10), (30, 40)]);
        assert_eq!(gaps(&mut [], 3, 9), [(3, 9)]);
        assert!(gaps(&mut [(0, 50)], 0, 40).is_empty());
    }

    #[test]
    fn bytes_outside_every_entry_are_found() {
        let mut d = build(&[Entry::stored("a", b"N.")]);
        // Hidden bytes between the member's data and the directory.
        let dir = read_directory(&d).unwrap();
        let at = dir.cd_start;
        let hidden = b"HIDDEN";
        d.splice(at..at, hidden.iter().copied());
        let cd_off = (at + hidden.len()) as u32;
        let n = d.len();
        d[n - 6..n - 2].copy_from_slice(&cd_off.to_le_bytes());
        let budget = Budget::new(0, &Limits::default());
        let mut lay = Layout::new(&d, &budget, Mode::Plain, 100);
        let dir = read_directory(&d).unwrap();
        lay.central(&dir, false);
        lay.outside_bytes(Some(&dir), 0);
        let t: Vec<&str> = lay.tampers.iter().map(|f| f.description.as_str()).collect();
        assert_eq!(t.len(), 1, "{t:?}");
        assert!(t[0].starts_with(&format!("6 bytes at byte {at} are outside every zip entry")));
    }

    fn member(name: &str, pos: usize, data: usize, csize: u64, local_view: bool) -> Member {
        Member {
            label: crate::report::Segment::member(name),
            name: name.into(),
            pos,
            data,
            csize,
            usize: csize,
            method: 0,
            flags: 0,
            local_view,
        }
    }

    #[test]
    fn members_whose_data_overlap_are_tampers_unless_one_entry_read_twice() {
        let mut t = Vec::new();
        overlaps(
            &[
                member("a", 0, 30, 100, false),
                member("b", 50, 80, 10, false),
            ],
            &mut t,
        );
        assert_eq!(t.len(), 1);
        assert!(t[0].description.contains("'b' overlaps the data of 'a'"));
        let mut t = Vec::new();
        overlaps(
            &[member("a", 0, 30, 100, false), member("a", 0, 30, 20, true)],
            &mut t,
        );
        assert!(t.is_empty(), "the local view of the same entry");
        let mut t = Vec::new();
        overlaps(
            &[
                member("a", 0, 30, 10, false),
                member("b", 40, 70, 10, false),
            ],
            &mut t,
        );
        assert!(t.is_empty());
    }
}
