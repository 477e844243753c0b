//! The walk over the local file headers from the start of the archive: what streaming readers
//! and many scanners see. Entries no central directory lists are members too.

use super::bytes::name_text;
use super::layout::Layout;
use super::local::{descriptor_len, find_deferred_end, parse_local};
use super::{Member, Mode, LOCAL_SIG, MAX_LISTED};
use crate::container::tamper;
use crate::render::name_lit;
use crate::report::{MemberView, Segment};

impl Layout<'_> {
    /// Walk the local headers from the start of the archive (what streaming readers see).
    pub(super) fn walk_locals(&mut self, start: usize) {
        let d = self.d;
        let walk_from = match self.mode {
            Mode::Plain => d
                .get(..8)
                .map(|h| if h.starts_with(LOCAL_SIG) { 0 } else { 4 })
                .unwrap_or(0),
            Mode::Polyglot => start,
            Mode::Embedded => self.members.iter().map(|m| m.pos).min().unwrap_or(d.len()),
        };
        if walk_from == 4 && self.mode == Mode::Plain {
            self.covered.push((0, 4)); // the spanning marker
        }
        let mut p = walk_from;
        let mut listed_only_local = 0usize;
        while self.members.len() < self.max_members {
            let Some(l) = parse_local(d, p) else { break };
            let central = self.by_offset.get(&p).map(|&i| &self.members[i]);
            let csize = match central {
                Some(m) => m.csize,
                None if l.deferred() => match find_deferred_end(self.budget, d, &l) {
                    Some(n) => n,
                    None => {
                        self.tampers.push(tamper(
                            p as u64,
                            format!(
                                "local entry {} defers its sizes to a data descriptor that cannot be found",
                                name_lit(&name_text(&l.name))
                            ),
                        ));
                        break;
                    }
                },
                None => l.csize,
            };
            let in_central = central.is_some();
            let data_end = (l.data as u64).saturating_add(csize).min(d.len() as u64) as usize;
            let dlen = if l.flags & 8 != 0 {
                descriptor_len(d, data_end, l.zip64)
            } else {
                0
            };
            if !in_central {
                let name = name_text(&l.name);
                if listed_only_local < MAX_LISTED {
                    self.tampers.push(tamper(
                        p as u64,
                        format!(
                            "local entry {} at byte {p} is not in the central directory: loaders do not see it, local-header scanners do; it is analysed",
                            name_lit(&name)
                        ),
                    ));
                }
                listed_only_local += 1;
                self.covered.push((p, l.data.min(d.len())));
                self.covered.push((l.data.min(d.len()), data_end));
                self.covered.push((data_end, data_end + dlen));
                self.members.push(Member {
                    label: Segment::ArchiveMember {
                        name: name.clone(),
                        copy: 1,
                        view: MemberView::LocalHeader { at: p as u64 },
                    },
                    name,
                    pos: p,
                    data: l.data,
                    csize,
                    usize: l.usize,
                    method: l.method,
                    flags: l.flags,
                    local_view: false,
                });
            }
            let next = data_end + dlen;
            if next <= p {
                break;
            }
            p = next;
        }
        if listed_only_local > MAX_LISTED {
            self.tampers.push(tamper(
                0,
                format!(
                    "{} more local entries are not in the central directory",
                    listed_only_local - MAX_LISTED
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::end::read_directory;
    use super::super::testzip::{build, local_header, Entry, FLAGGED};
    use super::*;
    use crate::context::budget::Budget;
    use crate::limits::Limits;

    #[test]
    fn a_local_entry_no_directory_lists_is_a_member_and_a_tamper() {
        let hidden = Entry::stored("hidden.pkl", FLAGGED);
        let mut d = local_header(&hidden, FLAGGED.len() as u32, FLAGGED.len() as u32);
        d.extend(FLAGGED);
        let listed = build(&[Entry::stored("a", b"N.")]);
        // The listed archive behind it: zipfile shifts its offsets past the hidden entry.
        d.extend(&listed);
        let budget = Budget::new(0, &Limits::default());
        let mut lay = Layout::new(&d, &budget, Mode::Plain, 100);
        lay.central(&read_directory(&d).unwrap(), false);
        let before = lay.members.len();
        lay.walk_locals(0);
        assert_eq!(lay.members.len(), before + 1);
        let m = lay.members.last().unwrap();
        assert_eq!(m.label.to_string(), "hidden.pkl (local header at byte 0)");
        assert_eq!((m.pos, m.csize), (0, FLAGGED.len() as u64));
        assert!(lay.tampers.iter().any(|f| f
            .description
            .contains("local entry 'hidden.pkl' at byte 0 is not in the central directory")));
    }

    #[test]
    fn past_the_listing_bound_local_entries_are_counted() {
        let mut d = Vec::new();
        for i in 0..(MAX_LISTED + 5) {
            let e = Entry::stored(&format!("m{i}"), b"N.");
            d.extend(local_header(&e, 2, 2));
            d.extend(b"N.");
        }
        let budget = Budget::new(0, &Limits::default());
        let mut lay = Layout::new(&d, &budget, Mode::Plain, 1000);
        lay.walk_locals(0);
        assert_eq!(lay.members.len(), MAX_LISTED + 5);
        assert_eq!(lay.tampers.len(), MAX_LISTED + 1);
        assert_eq!(
            lay.tampers.last().unwrap().description,
            "5 more local entries are not in the central directory"
        );
        // The member bound stops the walk.
        let mut lay = Layout::new(&d, &budget, Mode::Plain, 3);
        lay.walk_locals(0);
        assert_eq!(lay.members.len(), 3);
    }
}
