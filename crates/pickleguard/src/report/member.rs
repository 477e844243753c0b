//! Where a finding sits inside the file: the path of containers, members, nested payloads and
//! other readings that lead to the stream its position is an offset in. The containers and
//! the analysis build it segment by segment; it is rendered to text (`a/b/c`, the `member`
//! of a finding in docs/report-schema.md) here and nowhere else.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Which reading of an archive member a segment names (zip: the central directory, another
/// directory, or the local headers).
// The variants' documentation names their fields.
#[allow(missing_docs)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberView {
    /// As the (first) central directory lists it.
    Listed,
    /// As the central directory at byte `at` lists it (an archive with several).
    Directory { at: u64 },
    /// With the sizes of its local header, which differ from the directory's.
    LocalSizes,
    /// A local entry at byte `at` that no directory lists.
    LocalHeader { at: u64 },
}

/// One step of a [`MemberPath`].
// The variants' documentation names their fields.
#[allow(missing_docs)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    /// The `number`th pickle of a stream (2 and up), starting at byte `at` of it.
    LaterPickle { number: u64, at: u64 },
    /// The pickle of a joblib object array, at byte `at` of the stream.
    JoblibObjectArray { at: u64 },
    /// A joblib stream as `pickle.load` reads it (array bytes run as opcodes).
    PlainPickleReading,
    /// The stream as `pickle._Unpickler` reads it.
    PythonUnpicklerReading,
    /// The stream as the C unpickler reads it from a file object.
    FileObjectReading,
    /// A pickle handed to `callable` (at byte `at`) as a nested file (`_load_from_bytes`).
    NestedFile { callable: String, at: u64 },
    /// A pickle nested in the argument of `callable` (at byte `at`), `pickle.loads(b'...')`.
    NestedIn { callable: String, at: u64 },
    /// A pickle found by decoding (`how`: base64, hex, ...) an argument of `callable`.
    DecodedArgument {
        how: String,
        callable: String,
        at: u64,
    },
    /// What a compressed file decompresses to (`codec`: gzip, bz2, ...).
    Decompressed { codec: String },
    /// A zip archive inside a pickle's own bytes, at byte `at`.
    EmbeddedZip { at: u64 },
    /// A container's bytes read as a pickle (`pickle.load` on the file itself).
    RawPickleView,
    /// The pickle in front of a zip archive (a pickle/zip polyglot).
    PickleBeforeZip,
    /// A member of a zip or tar archive: the `copy`th of its name (1: the first), in `view`.
    ArchiveMember {
        name: String,
        copy: u64,
        view: MemberView,
    },
    /// A pickle of a legacy torch file, at byte `at`.
    TorchPickle { at: u64 },
    /// An `.npy` file's object array, starting at byte `at`.
    NpyObjectArray { at: u64 },
    /// What follows an `.npy` header that cannot be read, from byte `at`.
    NpyAfterBadHeader { at: u64 },
    /// A file a pickle's loader reads next to it (docs/containers.md, "Side files").
    SideFile { name: String },
}

impl Segment {
    /// An archive member as its (first) directory lists it.
    pub fn member(name: impl Into<String>) -> Segment {
        Segment::ArchiveMember {
            name: name.into(),
            copy: 1,
            view: MemberView::Listed,
        }
    }

    /// Whether this step stays in the same stream of bytes (its positions are offsets in the
    /// stream the path leads to so far): another pickle of it, a joblib object array inside
    /// it, its plain-pickle reading.
    pub fn same_stream(&self) -> bool {
        matches!(
            self,
            Segment::LaterPickle { .. }
                | Segment::JoblibObjectArray { .. }
                | Segment::PlainPickleReading
        )
    }

    /// The segment the text of one step names (see [`MemberPath::parse`]).
    fn parse(s: &str) -> Segment {
        match s {
            "read as a plain pickle" => return Segment::PlainPickleReading,
            PYTHON_READING => return Segment::PythonUnpicklerReading,
            FILE_READING => return Segment::FileObjectReading,
            "raw pickle view" => return Segment::RawPickleView,
            "pickle before the zip" => return Segment::PickleBeforeZip,
            _ => {}
        }
        if let Some(name) = s.strip_prefix("side file ") {
            return Segment::SideFile { name: name.into() };
        }
        if let Some(codec) = s.strip_prefix("decompressed ") {
            return Segment::Decompressed {
                codec: codec.into(),
            };
        }
        if let Some((head, at)) = at_byte(s) {
            if let Some((number, pos)) = head
                .strip_prefix("pickle #")
                .and_then(|n| n.parse().ok())
                .map(|n| (n, at))
            {
                return Segment::LaterPickle { number, at: pos };
            }
            match head {
                "joblib object array" => return Segment::JoblibObjectArray { at },
                "embedded zip" => return Segment::EmbeddedZip { at },
                "pickle" => return Segment::TorchPickle { at },
                "object array" => return Segment::NpyObjectArray { at },
                "data after an unreadable .npy header" => return Segment::NpyAfterBadHeader { at },
                _ => {}
            }
            if let Some(callable) = head.strip_prefix("nested in ") {
                return Segment::NestedIn {
                    callable: callable.into(),
                    at,
                };
            }
            if let Some((how, callable)) = head.split_once("-decoded argument of ") {
                return Segment::DecodedArgument {
                    how: how.into(),
                    callable: callable.into(),
                    at,
                };
            }
            return Segment::NestedFile {
                callable: head.into(),
                at,
            };
        }
        member_of_label(s)
    }
}

const PYTHON_READING: &str = "read by pickle._Unpickler (joblib, pandas)";
const FILE_READING: &str = "read from a file object (pickle.load, torch.load)";

/// `"<head> at byte <n>"` split.
fn at_byte(s: &str) -> Option<(&str, u64)> {
    let (head, n) = s.rsplit_once(" at byte ")?;
    digits(n).then(|| Some((head, n.parse().ok()?)))?
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// An archive member from its label: the name, then ` (copy N)`, then the view's suffix.
fn member_of_label(s: &str) -> Segment {
    let suffix_at = |s: &str, open: &str| -> Option<(String, u64)> {
        let body = s.strip_suffix(')')?;
        let (name, n) = body.rsplit_once(open)?;
        digits(n).then(|| Some((name.to_string(), n.parse().ok()?)))?
    };
    let (rest, view) = if let Some((rest, at)) = suffix_at(s, " (directory at byte ") {
        (rest, MemberView::Directory { at })
    } else if let Some((rest, at)) = suffix_at(s, " (local header at byte ") {
        (rest, MemberView::LocalHeader { at })
    } else if let Some(rest) = s.strip_suffix(" (local header sizes)") {
        (rest.to_string(), MemberView::LocalSizes)
    } else {
        (s.to_string(), MemberView::Listed)
    };
    let (name, copy) = match suffix_at(&rest, " (copy ") {
        Some((name, n)) if n > 1 => (name, n),
        _ => (rest, 1),
    };
    Segment::ArchiveMember { name, copy, view }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Segment::LaterPickle { number, at } => write!(f, "pickle #{number} at byte {at}"),
            Segment::JoblibObjectArray { at } => write!(f, "joblib object array at byte {at}"),
            Segment::PlainPickleReading => f.write_str("read as a plain pickle"),
            Segment::PythonUnpicklerReading => f.write_str(PYTHON_READING),
            Segment::FileObjectReading => f.write_str(FILE_READING),
            Segment::NestedFile { callable, at } => write!(f, "{callable} at byte {at}"),
            Segment::NestedIn { callable, at } => write!(f, "nested in {callable} at byte {at}"),
            Segment::DecodedArgument { how, callable, at } => {
                write!(f, "{how}-decoded argument of {callable} at byte {at}")
            }
            Segment::Decompressed { codec } => write!(f, "decompressed {codec}"),
            Segment::EmbeddedZip { at } => write!(f, "embedded zip at byte {at}"),
            Segment::RawPickleView => f.write_str("raw pickle view"),
            Segment::PickleBeforeZip => f.write_str("pickle before the zip"),
            Segment::ArchiveMember { name, copy, view } => {
                f.write_str(name)?;
                if *copy > 1 {
                    write!(f, " (copy {copy})")?;
                }
                match view {
                    MemberView::Listed => Ok(()),
                    MemberView::Directory { at } => write!(f, " (directory at byte {at})"),
                    MemberView::LocalSizes => f.write_str(" (local header sizes)"),
                    MemberView::LocalHeader { at } => write!(f, " (local header at byte {at})"),
                }
            }
            Segment::TorchPickle { at } => write!(f, "pickle at byte {at}"),
            Segment::NpyObjectArray { at } => write!(f, "object array at byte {at}"),
            Segment::NpyAfterBadHeader { at } => {
                write!(f, "data after an unreadable .npy header at byte {at}")
            }
            Segment::SideFile { name } => write!(f, "side file {name}"),
        }
    }
}

/// The path to a nested stream, outermost step first, with its text rendered once.
///
/// Two paths are equal when their text is: a path read back from a JSON report is cut at each
/// `/` (a member name holding a `/` reads back as several members), which names the same
/// place as the path it was rendered from.
#[derive(Clone, Debug)]
pub struct MemberPath {
    segments: Vec<Segment>,
    text: String,
}

impl MemberPath {
    /// The path of one step.
    pub fn new(segment: Segment) -> MemberPath {
        MemberPath::of(vec![segment])
    }

    /// The path of these steps (`None` for no step: the file itself).
    pub fn from_segments(segments: Vec<Segment>) -> Option<MemberPath> {
        (!segments.is_empty()).then(|| MemberPath::of(segments))
    }

    fn of(segments: Vec<Segment>) -> MemberPath {
        let text = segments
            .iter()
            .map(Segment::to_string)
            .collect::<Vec<_>>()
            .join("/");
        MemberPath { segments, text }
    }

    /// `inner` (a path inside `outer`'s stream, or that stream itself) seen from outside.
    pub fn under(outer: &Segment, inner: Option<MemberPath>) -> MemberPath {
        match inner {
            None => MemberPath::new(outer.clone()),
            Some(inner) => {
                let text = format!("{outer}/{}", inner.text);
                let mut segments = Vec::with_capacity(inner.segments.len() + 1);
                segments.push(outer.clone());
                segments.extend(inner.segments);
                MemberPath { segments, text }
            }
        }
    }

    /// The steps, outermost first.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The path as reports show it.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The path a report's `member` text names.
    pub fn parse(text: &str) -> MemberPath {
        MemberPath {
            segments: text.split('/').map(Segment::parse).collect(),
            text: text.to_string(),
        }
    }

    /// Whether this path is only another pickle of the file's own stream, so that positions
    /// are offsets in the file.
    pub fn is_later_pickle(&self) -> bool {
        matches!(self.segments.as_slice(), [Segment::LaterPickle { .. }])
    }

    /// Whether positions under this path are offsets in the stream at `stream` (`None`: the
    /// file itself): the path is that stream, or goes on from it only by
    /// [`Segment::same_stream`] steps.
    pub fn in_stream(path: Option<&MemberPath>, stream: Option<&MemberPath>) -> bool {
        let (own, base) = (
            path.map_or(&[][..], |p| p.segments()),
            stream.map_or(&[][..], |p| p.segments()),
        );
        if path.is_some() && path == stream {
            return true;
        }
        match own.strip_prefix(base) {
            Some(rest) => rest.iter().all(Segment::same_stream),
            None => false,
        }
    }
}

impl PartialEq for MemberPath {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for MemberPath {}

impl fmt::Display for MemberPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for MemberPath {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for MemberPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(MemberPath::parse(&String::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_kind() -> Vec<Segment> {
        vec![
            Segment::LaterPickle { number: 2, at: 17 },
            Segment::JoblibObjectArray { at: 40 },
            Segment::PlainPickleReading,
            Segment::PythonUnpicklerReading,
            Segment::FileObjectReading,
            Segment::NestedFile {
                callable: "torch.storage._load_from_bytes".into(),
                at: 5,
            },
            Segment::NestedIn {
                callable: "pickle.loads".into(),
                at: 9,
            },
            Segment::DecodedArgument {
                how: "base64".into(),
                callable: "pickle.loads".into(),
                at: 3,
            },
            Segment::Decompressed {
                codec: "gzip".into(),
            },
            Segment::EmbeddedZip { at: 12 },
            Segment::RawPickleView,
            Segment::PickleBeforeZip,
            Segment::member("archive.pkl"),
            Segment::ArchiveMember {
                name: "data.pkl".into(),
                copy: 2,
                view: MemberView::Directory { at: 300 },
            },
            Segment::ArchiveMember {
                name: "data.pkl".into(),
                copy: 1,
                view: MemberView::LocalSizes,
            },
            Segment::ArchiveMember {
                name: "x".into(),
                copy: 3,
                view: MemberView::LocalHeader { at: 77 },
            },
            Segment::TorchPickle { at: 1 },
            Segment::NpyObjectArray { at: 128 },
            Segment::NpyAfterBadHeader { at: 10 },
            Segment::SideFile {
                name: "model.bin".into(),
            },
        ]
    }

    #[test]
    fn each_kind_renders_its_report_text_and_reads_back_as_itself() {
        let texts = [
            "pickle #2 at byte 17",
            "joblib object array at byte 40",
            "read as a plain pickle",
            "read by pickle._Unpickler (joblib, pandas)",
            "read from a file object (pickle.load, torch.load)",
            "torch.storage._load_from_bytes at byte 5",
            "nested in pickle.loads at byte 9",
            "base64-decoded argument of pickle.loads at byte 3",
            "decompressed gzip",
            "embedded zip at byte 12",
            "raw pickle view",
            "pickle before the zip",
            "archive.pkl",
            "data.pkl (copy 2) (directory at byte 300)",
            "data.pkl (local header sizes)",
            "x (copy 3) (local header at byte 77)",
            "pickle at byte 1",
            "object array at byte 128",
            "data after an unreadable .npy header at byte 10",
            "side file model.bin",
        ];
        for (seg, text) in every_kind().into_iter().zip(texts) {
            assert_eq!(seg.to_string(), text);
            assert_eq!(Segment::parse(text), seg, "{text}");
        }
    }

    #[test]
    fn a_path_joins_its_steps_outermost_first_and_reads_back() {
        let inner = MemberPath::new(Segment::LaterPickle { number: 3, at: 8 });
        let mid = MemberPath::under(&Segment::Decompressed { codec: "xz".into() }, Some(inner));
        let p = MemberPath::under(&Segment::member("archive/data.pkl"), Some(mid));
        assert_eq!(
            p.as_str(),
            "archive/data.pkl/decompressed xz/pickle #3 at byte 8"
        );
        assert_eq!(p.segments().len(), 3);
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, format!("{:?}", p.as_str()));
        let back: MemberPath = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
        assert_eq!(back.as_str(), p.as_str());
        // A member name with a slash reads back as two members (same text).
        assert_eq!(back.segments().len(), 4);
    }

    #[test]
    fn streams_contain_their_later_pickles_and_object_arrays_only() {
        let member = MemberPath::new(Segment::member("a.pkl"));
        let later = MemberPath::under(
            &Segment::member("a.pkl"),
            Some(MemberPath::new(Segment::LaterPickle { number: 2, at: 4 })),
        );
        let nested = MemberPath::under(
            &Segment::member("a.pkl"),
            Some(MemberPath::new(Segment::NestedIn {
                callable: "pickle.loads".into(),
                at: 4,
            })),
        );
        assert!(MemberPath::in_stream(None, None));
        assert!(MemberPath::in_stream(Some(&member), Some(&member)));
        assert!(MemberPath::in_stream(Some(&later), Some(&member)));
        assert!(!MemberPath::in_stream(Some(&nested), Some(&member)));
        assert!(!MemberPath::in_stream(None, Some(&member)));
        assert!(!MemberPath::in_stream(Some(&member), None));
        let first_later = MemberPath::new(Segment::LaterPickle { number: 2, at: 4 });
        assert!(MemberPath::in_stream(Some(&first_later), None));
        assert!(first_later.is_later_pickle());
        assert!(!later.is_later_pickle());
    }
}
