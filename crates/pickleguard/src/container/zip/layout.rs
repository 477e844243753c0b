//! The members the central directory lists, each checked against its local header: names,
//! methods and sizes that differ, names listed twice, shifted offsets, declared counts. The
//! local-header walk ([`super::walk`]) and the bytes outside every entry
//! ([`super::coverage`]) add to the same [`Layout`].

use super::bytes::{name_text, sig_at, LOCAL_SIG};
use super::central::Central;
use super::end::Directory;
use super::local::{descriptor_len, parse_local};
use super::{Member, Mode};
use crate::container::tamper;
use crate::context::budget::Budget;
use crate::render::name_lit;
use crate::report::{Finding, MemberView, Segment};
use std::collections::HashMap;

/// The members both views of an archive reach, and the disagreements found on the way.
pub(super) struct Layout<'a> {
    pub(super) budget: &'a Budget,
    pub(super) d: &'a [u8],
    pub(super) mode: Mode,
    pub(super) max_members: usize,
    pub(super) tampers: Vec<Finding>,
    /// Byte ranges some entry or record accounts for, to find bytes outside every entry.
    pub(super) covered: Vec<(usize, usize)>,
    pub(super) members: Vec<Member>,
    /// Local header offset -> the first member read from it.
    pub(super) by_offset: HashMap<usize, usize>,
}

impl<'a> Layout<'a> {
    /// An archive's layout before either view is read: no members, nothing found yet.
    pub(super) fn new(d: &'a [u8], budget: &'a Budget, mode: Mode, max_members: usize) -> Self {
        Layout {
            d,
            budget,
            mode,
            max_members,
            tampers: Vec::new(),
            covered: Vec::new(),
            members: Vec::new(),
            by_offset: HashMap::new(),
        }
    }

    /// The members a central directory lists, each checked against its local header. `alt`:
    /// the second reading of a split archive, whose entries that agree with the first reading
    /// are not listed again.
    pub(super) fn central(&mut self, dir: &Directory, alt: bool) {
        let d = self.d;
        self.covered.push((dir.cd_start, dir.cd_end));
        self.covered.push(dir.eocd);
        self.covered.extend(dir.z64.iter().copied());
        if dir.declared != dir.entries.len() as u64 {
            self.tampers.push(tamper(
                dir.eocd.0 as u64,
                format!(
                    "the end record declares {} entries but the central directory holds {}: readers that trust the count (miniz, torch) see a different file list",
                    dir.declared,
                    dir.entries.len()
                ),
            ));
        }
        if self.mode == Mode::Plain && dir.shift > 0 {
            self.tampers.push(tamper(
                0,
                format!(
                    "the archive's offsets are shifted by {} bytes: Python's zipfile and torch's reader resolve its members differently",
                    dir.shift
                ),
            ));
        }
        let mut seen_names: HashMap<&[u8], usize> = HashMap::new();
        for c in &dir.entries {
            if self.members.len() >= self.max_members {
                break;
            }
            let copy = {
                let n = seen_names.entry(&c.name).or_insert(0);
                *n += 1;
                *n
            };
            let name = name_text(&c.name);
            if copy == 2 {
                self.tampers.push(tamper(
                    c.pos as u64,
                    format!(
                        "the name {} appears more than once in the central directory: loaders pick one copy (zipfile the last), scanners may read another; every copy is analysed",
                        name_lit(&name)
                    ),
                ));
            }
            let mut off = c.local.saturating_add(dir.shift);
            if !sig_at(d, off, LOCAL_SIG) && sig_at(d, c.local, LOCAL_SIG) {
                off = c.local;
            }
            if alt {
                let same = usize::try_from(off)
                    .ok()
                    .and_then(|o| self.by_offset.get(&o))
                    .map(|&i| &self.members[i])
                    .is_some_and(|m| m.name == name && m.csize == c.csize && m.method == c.method);
                if same {
                    continue;
                }
            }
            let label = Segment::ArchiveMember {
                name: name.clone(),
                copy: copy as u64,
                view: if alt {
                    MemberView::Directory {
                        at: dir.cd_start as u64,
                    }
                } else {
                    MemberView::Listed
                },
            };
            self.entry(c, off, name, label);
        }
    }

    /// One central entry whose local header should be at `off`.
    fn entry(&mut self, c: &Central, off: u64, name: String, label: Segment) {
        let d = self.d;
        let Some(l) = usize::try_from(off).ok().and_then(|o| parse_local(d, o)) else {
            self.tampers.push(tamper(
                c.pos as u64,
                format!(
                    "the central directory lists {} at byte {off}, where there is no local file header: loaders fail on it, other readers may find different data",
                    name_lit(&name)
                ),
            ));
            return;
        };
        if l.name != c.name {
            self.tampers.push(tamper(
                l.pos as u64,
                format!(
                    "member {} is named {} in its local header: torch reads it by the central name, Python's zipfile refuses it, local-header scanners see the other name",
                    name_lit(&name),
                    name_lit(&name_text(&l.name))
                ),
            ));
        }
        if l.method != c.method {
            self.tampers.push(tamper(
                l.pos as u64,
                format!(
                    "member {}: compression method {} in the central directory, {} in the local header",
                    name_lit(&name),
                    c.method, l.method
                ),
            ));
        }
        if !l.deferred() && (l.csize != c.csize || l.usize != c.usize) {
            self.tampers.push(tamper(
                l.pos as u64,
                format!(
                    "member {}: sizes {}/{} (compressed/uncompressed) in the central directory, {}/{} in the local header",
                    name_lit(&name),
                    c.csize, c.usize, l.csize, l.usize
                ),
            ));
            if l.csize != c.csize && !self.by_offset.contains_key(&l.pos) {
                // The local view reads different bytes: analyse them too.
                self.members.push(Member {
                    label: Segment::ArchiveMember {
                        name: name.clone(),
                        copy: 1,
                        view: MemberView::LocalSizes,
                    },
                    name: name_text(&l.name),
                    pos: l.pos,
                    data: l.data,
                    csize: l.csize,
                    usize: l.usize,
                    method: l.method,
                    flags: l.flags,
                    local_view: true,
                });
            }
        }
        let data_end = (l.data as u64).saturating_add(c.csize).min(d.len() as u64) as usize;
        let dlen = if l.flags & 8 != 0 || c.flags & 8 != 0 {
            descriptor_len(d, data_end, l.zip64 || c.csize >= 0xffff_ffff)
        } else {
            0
        };
        self.covered.push((l.pos, l.data.min(d.len())));
        self.covered.push((l.data.min(d.len()), data_end));
        self.covered.push((data_end, data_end + dlen));
        self.by_offset.entry(l.pos).or_insert(self.members.len());
        self.members.push(Member {
            label,
            name,
            pos: l.pos,
            data: l.data,
            csize: c.csize,
            usize: c.usize,
            method: c.method,
            flags: c.flags | l.flags,
            local_view: false,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::super::end::read_directory;
    use super::super::testzip::{build, central_entry, eocd, local_header, Entry, FLAGGED};
    use super::*;
    use crate::limits::Limits;

    fn texts(lay: &Layout) -> Vec<String> {
        lay.tampers.iter().map(|f| f.description.clone()).collect()
    }

    #[test]
    fn an_agreeing_archive_gives_one_member_per_entry_and_no_finding() {
        let d = build(&[Entry::stored("a", FLAGGED), Entry::stored("b", b"N.")]);
        let budget = Budget::new(0, &Limits::default());
        let mut lay = Layout::new(&d, &budget, Mode::Plain, 100);
        lay.central(&read_directory(&d).unwrap(), false);
        assert!(lay.tampers.is_empty(), "{:?}", texts(&lay));
        let labels: Vec<String> = lay.members.iter().map(|m| m.label.to_string()).collect();
        assert_eq!(labels, ["a", "b"]);
        assert_eq!(lay.by_offset.len(), 2);
    }

    #[test]
    fn a_name_listed_twice_is_a_tamper_and_a_second_copy() {
        let d = build(&[Entry::stored("a", FLAGGED), Entry::stored("a", b"N.")]);
        let budget = Budget::new(0, &Limits::default());
        let mut lay = Layout::new(&d, &budget, Mode::Plain, 100);
        lay.central(&read_directory(&d).unwrap(), false);
        assert!(texts(&lay)[0].contains("appears more than once"));
        assert_eq!(lay.members[1].label.to_string(), "a (copy 2)");
    }

    #[test]
    fn local_headers_that_disagree_with_the_directory_are_tampers() {
        // The local header names the member otherwise and declares other sizes.
        let e = Entry::stored("real.pkl", FLAGGED);
        let shown = Entry::stored("shown.pkl", FLAGGED);
        let mut d = local_header(&shown, 4, 4);
        d.extend(&e.data);
        let cd = central_entry(&e, 0, &[]);
        let cd_off = d.len() as u32;
        d.extend(&cd);
        d.extend(eocd(1, cd.len() as u32, cd_off));
        let budget = Budget::new(0, &Limits::default());
        let mut lay = Layout::new(&d, &budget, Mode::Plain, 100);
        lay.central(&read_directory(&d).unwrap(), false);
        let t = texts(&lay);
        assert!(
            t.iter()
                .any(|s| s.contains("is named 'shown.pkl' in its local header")),
            "{t:?}"
        );
        assert!(t.iter().any(|s| s.contains("sizes")), "{t:?}");
        let labels: Vec<String> = lay.members.iter().map(|m| m.label.to_string()).collect();
        assert_eq!(labels, ["real.pkl (local header sizes)", "real.pkl"]);
        assert_eq!(lay.members[0].csize, 4);
        assert!(lay.members[0].local_view);
    }

    #[test]
    fn an_entry_without_its_local_header_is_a_tamper_not_a_member() {
        let e = Entry::stored("gone", b"N.");
        let cd = central_entry(&e, 9999, &[]);
        let mut d = cd.clone();
        d.extend(eocd(1, cd.len() as u32, 0));
        let budget = Budget::new(0, &Limits::default());
        let mut lay = Layout::new(&d, &budget, Mode::Plain, 100);
        lay.central(&read_directory(&d).unwrap(), false);
        assert!(lay.members.is_empty());
        assert!(texts(&lay)[0].contains("where there is no local file header"));
    }
}
