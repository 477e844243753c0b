//! Watching the stream driver of a real scan: a caller hands a [`ScanObserver`] to
//! [`crate::Scan::observe`] and is shown each pickle the driver runs, in the state the driver
//! judged it, so a view of a scan (`pickleguard explain`) needs no driver of its own.
//!
//! Only the reading every loader shares is shown: the C unpickler reading the stream's bytes,
//! with joblib's array reads. The other readings a scan analyses (the stream read as a plain
//! pickle without joblib, by `pickle._Unpickler`, from a file object) only add findings to it.

use crate::machine::{CallNode, GlobalRef, Machine, Outcome};
use crate::render::{self, NamedStyle};
use crate::value::{CallId, Value};

/// Watches a scan's stream driver. Streams are numbered as [`crate::Scan::file_with_streams`]
/// lists them; each stream's analysis begins ([`ScanObserver::stream`]), then each of its
/// pickles is shown ([`ScanObserver::pickle`]) before the files nested in that pickle are
/// scanned (they are streams of their own, with higher numbers).
pub trait ScanObserver {
    /// The analysis of stream `stream` begins. A scan can drop an analysis (a container's
    /// bytes read as a pickle when that view does nothing) and give its number, and those of
    /// the streams after it, to the next streams: what was shown for `stream` and any higher
    /// number before this call belongs to dropped analyses.
    fn stream(&self, stream: usize);
    /// The driver ran one pickle of a stream to its end.
    fn pickle(&self, run: &PickleRun<'_>);
}

/// One pickle as the driver ran it.
pub struct PickleRun<'r> {
    /// The stream's number (see [`ScanObserver`]).
    pub stream: usize,
    /// Which pickle of the stream it is (0: the first).
    pub index: u64,
    /// Where the pickle starts in the stream's bytes.
    pub start: usize,
    /// What loading it builds: its imports, calls and values.
    pub graph: Graph<'r>,
    /// What joblib reads out of the stream between its opcodes, in stream order.
    pub joblib: &'r [JoblibRead<'r>],
    /// How the run ended.
    pub end: &'r RunEnd,
}

/// How the driver's run of one pickle ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunEnd {
    /// STOP at `pos`; the next pickle of the stream, if any, starts at `next`.
    Stop {
        /// The STOP opcode's position.
        pos: usize,
        /// The first byte after the pickle.
        next: usize,
    },
    /// Loading fails at `pos` with `message` (CPython's wording where it has one).
    Error {
        /// The failing opcode's position (or where joblib's read fails).
        pos: usize,
        /// Why it fails.
        message: String,
    },
    /// The analysis stopped at `pos`: the configured limit `what` was reached.
    Limit {
        /// Where the limit was reached.
        pos: usize,
        /// The limit (its name: `"opcodes"`, `"memo size"`, ...).
        what: crate::report::Limit,
    },
}

impl RunEnd {
    /// The end of an outcome the driver stops at; `None` for a pause (the driver follows those).
    pub(crate) fn of(outcome: &Outcome) -> Option<RunEnd> {
        match outcome {
            Outcome::Stop { pos, end } => Some(RunEnd::Stop {
                pos: *pos,
                next: *end,
            }),
            Outcome::Error { pos, err } => Some(RunEnd::Error {
                pos: *pos,
                message: err.to_string(),
            }),
            Outcome::Limit { pos, what } => Some(RunEnd::Limit {
                pos: *pos,
                what: *what,
            }),
            Outcome::JoblibArray { .. } | Outcome::NeedsGraph { .. } => None,
        }
    }
}

/// What joblib reads from a stream at a `NumpyArrayWrapper`, where the unpickler pauses.
pub enum JoblibRead<'r> {
    /// A numeric array: the bytes `at..end` (alignment padding included) are read as numbers.
    Numeric {
        /// Where the array's bytes start.
        at: usize,
        /// Where the pickle goes on.
        end: usize,
    },
    /// An object array: joblib unpickles the pickle at `at`, which stops at `stop`.
    Objects {
        /// Where the array's own pickle starts.
        at: usize,
        /// Its STOP opcode's position.
        stop: usize,
        /// Where the outer pickle goes on.
        end: usize,
        /// What loading the array's pickle builds.
        graph: Graph<'r>,
    },
}

/// A read-only view of what one pickle's run built: the globals it imports, its calls (every
/// REDUCE, BUILD, NEWOBJ, ... in stream order) and the values they take.
#[derive(Clone, Copy)]
pub struct Graph<'r> {
    m: &'r Machine<'r>,
}

impl<'r> Graph<'r> {
    pub(crate) fn new(m: &'r Machine<'r>) -> Graph<'r> {
        Graph { m }
    }

    /// The protocol the pickle declared (0 without PROTO).
    pub fn protocol(&self) -> u8 {
        self.m.proto
    }

    /// Whether the run reached an opcode that can import or call.
    pub fn acts(&self) -> bool {
        self.m.first_effect.is_some()
    }

    /// The globals, in the order the stream imports them; [`Value::Global`] indexes this.
    pub fn globals(&self) -> &'r [GlobalRef] {
        &self.m.globals
    }

    /// The calls, in stream order; [`Value::Call`] indexes this.
    pub fn calls(&self) -> &'r [CallNode] {
        &self.m.calls
    }

    /// The keyword arguments of call `call` (NEWOBJ_EX), if it has any.
    pub fn kwargs(&self, call: CallId) -> Option<Value> {
        self.m.kwargs_of(call)
    }

    /// What the pickle returns (the value STOP pops), if it got that far.
    pub fn result(&self) -> Option<Value> {
        self.m.result
    }

    /// The items a container keeps (for a dict: keys and values alternating) and its whole
    /// length; `None` for a value that is not a container.
    pub fn items(&self, v: Value) -> Option<(&'r [Value], usize)> {
        let node = self.m.arena.nodes.get(v.node()? as usize)?;
        Some((&node.items, node.len as usize))
    }

    /// `v` as Python source at nesting `depth`, globals and call results named by `style`
    /// ([`crate::render`] writes every literal).
    pub fn write(&self, v: Value, style: &NamedStyle<'_>, out: &mut String, depth: u32) {
        render::write_value(self.m, v, out, depth, style)
    }
}

/// A pickle's joblib reads while the driver runs it: the machines of its object arrays are
/// kept until the pickle is shown.
pub(crate) enum JoblibStep<'d> {
    Numeric {
        at: usize,
        end: usize,
    },
    Objects {
        at: usize,
        stop: usize,
        end: usize,
        machine: Box<Machine<'d>>,
    },
}

impl<'d> JoblibStep<'d> {
    pub(crate) fn view(&self) -> JoblibRead<'_> {
        match self {
            JoblibStep::Numeric { at, end } => JoblibRead::Numeric { at: *at, end: *end },
            JoblibStep::Objects {
                at,
                stop,
                end,
                machine,
            } => JoblibRead::Objects {
                at: *at,
                stop: *stop,
                end: *end,
                graph: Graph::new(machine),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::CallKind;
    use crate::policy::{Mode, Policy};
    use std::cell::RefCell;

    /// What a test observer keeps of one pickle.
    #[derive(Debug)]
    struct Seen {
        stream: usize,
        index: u64,
        start: usize,
        protocol: u8,
        acts: bool,
        globals: Vec<String>,
        calls: Vec<CallKind>,
        result: Option<String>,
        joblib: Vec<String>,
        end: RunEnd,
    }

    #[derive(Debug)]
    enum Event {
        Stream(usize),
        Pickle(Seen),
    }

    /// Everything the observer is shown, in order.
    #[derive(Default)]
    struct Log(RefCell<Vec<Event>>);

    impl Log {
        fn streams(&self) -> Vec<usize> {
            let events = self.0.borrow();
            let streams = events.iter().filter_map(|e| match e {
                Event::Stream(s) => Some(*s),
                Event::Pickle(_) => None,
            });
            streams.collect()
        }

        fn pickles(self) -> Vec<Seen> {
            let pickles = self.0.into_inner().into_iter().filter_map(|e| match e {
                Event::Pickle(p) => Some(p),
                Event::Stream(_) => None,
            });
            pickles.collect()
        }
    }

    fn expr(g: Graph<'_>, v: Value) -> String {
        let mut out = String::new();
        let style = NamedStyle {
            globals: &[],
            calls: &[],
        };
        g.write(v, &style, &mut out, 0);
        out
    }

    fn globals(g: Graph<'_>) -> Vec<String> {
        g.globals()
            .iter()
            .map(|x| format!("{}.{}", x.module, x.name))
            .collect()
    }

    impl ScanObserver for Log {
        fn stream(&self, stream: usize) {
            self.0.borrow_mut().push(Event::Stream(stream));
        }

        fn pickle(&self, run: &PickleRun<'_>) {
            let joblib = run
                .joblib
                .iter()
                .map(|r| match r {
                    JoblibRead::Numeric { at, end } => format!("numeric {at}..{end}"),
                    JoblibRead::Objects {
                        at,
                        stop,
                        end,
                        graph,
                    } => format!(
                        "objects {at}..{end} stop {stop}: {}; state {}",
                        globals(*graph).join(" "),
                        graph
                            .calls()
                            .iter()
                            .filter(|c| c.kind == CallKind::Build)
                            .map(|c| expr(*graph, c.args))
                            .collect::<Vec<_>>()
                            .join(" ")
                    ),
                })
                .collect();
            self.0.borrow_mut().push(Event::Pickle(Seen {
                stream: run.stream,
                index: run.index,
                start: run.start,
                protocol: run.graph.protocol(),
                acts: run.graph.acts(),
                globals: globals(run.graph),
                calls: run.graph.calls().iter().map(|c| c.kind).collect(),
                result: run.graph.result().map(|v| expr(run.graph, v)),
                joblib,
                end: run.end.clone(),
            }));
        }
    }

    fn observe(data: &[u8]) -> (Log, Vec<Option<String>>) {
        let policy = Policy::new(Mode::Ml);
        let log = Log::default();
        let (_, streams) = crate::Scan::new(&policy)
            .observe(&log)
            .file_with_streams(data);
        (
            log,
            streams
                .into_iter()
                .map(|s| s.member.map(|m| m.as_str().to_string()))
                .collect(),
        )
    }

    const ORDERED_DICT: &[u8] = b"\x80\x02ccollections\nOrderedDict\n)R.";

    /// A plain pickle: one stream, the file itself; its one pickle's import, call, result
    /// and end. The plain-data pickle after it, which the unobserved scan only checks for
    /// shape, is shown with its value.
    #[test]
    fn plain_pickle() {
        let mut data = ORDERED_DICT.to_vec();
        data.extend_from_slice(b"\x80\x04K\x05.");
        let (log, members) = observe(&data);
        assert_eq!(members, [None]);
        assert_eq!(log.streams(), [0]);
        let p = log.pickles();
        assert_eq!(p.len(), 2, "{p:?}");
        let n = ORDERED_DICT.len();
        assert_eq!((p[0].stream, p[0].index, p[0].start), (0, 0, 0));
        assert_eq!((p[0].protocol, p[0].acts), (2, true));
        assert_eq!(p[0].globals, ["collections.OrderedDict"]);
        assert_eq!(p[0].calls, [CallKind::Reduce]);
        assert_eq!(p[0].result.as_deref(), Some("<result>"));
        assert_eq!(
            p[0].end,
            RunEnd::Stop {
                pos: n - 1,
                next: n
            }
        );
        assert_eq!((p[1].stream, p[1].index, p[1].start), (0, 1, n));
        assert_eq!((p[1].protocol, p[1].acts), (4, false));
        assert!(p[1].globals.is_empty() && p[1].calls.is_empty());
        assert_eq!(p[1].result.as_deref(), Some("5"));
        assert_eq!(
            p[1].end,
            RunEnd::Stop {
                pos: n + 4,
                next: n + 5
            }
        );
    }

    /// A truncated stream: the run ends with the error loading stops at, after what it built.
    #[test]
    fn truncated_stream() {
        let data = &ORDERED_DICT[..ORDERED_DICT.len() - 1];
        let (log, _) = observe(data);
        let p = log.pickles();
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].globals, ["collections.OrderedDict"]);
        assert_eq!(p[0].calls, [CallKind::Reduce]);
        assert_eq!(p[0].result, None);
        match &p[0].end {
            RunEnd::Error { pos, message } => {
                assert_eq!(*pos, data.len());
                assert!(
                    message.contains("truncated") || message.contains("ran out"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    /// A pickle handed to `pickle.loads` inside another: a stream of its own, numbered after
    /// the outer one and shown after the outer pickle that holds it.
    #[test]
    fn nested_pickle() {
        let mut data = b"\x80\x02cpickle\nloads\nC".to_vec();
        data.push(ORDERED_DICT.len() as u8);
        data.extend_from_slice(ORDERED_DICT);
        data.extend_from_slice(b"\x85R.");
        let (log, members) = observe(&data);
        assert_eq!(members.len(), 2, "{members:?}");
        assert_eq!(members[0], None);
        assert!(members[1].is_some());
        assert_eq!(log.streams(), [0, 1]);
        let p = log.pickles();
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!(p[0].stream, 0);
        assert_eq!(p[0].globals, ["pickle.loads"]);
        assert_eq!(p[1].stream, 1);
        assert_eq!((p[1].index, p[1].start), (0, 0));
        assert_eq!(p[1].globals, ["collections.OrderedDict"]);
        assert_eq!(
            p[1].end,
            RunEnd::Stop {
                pos: ORDERED_DICT.len() - 1,
                next: ORDERED_DICT.len()
            }
        );
    }

    /// A zip archive of stored members `(name, bytes)`.
    fn stored_zip(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, data) in members {
            let mut crc = flate2::Crc::new();
            crc.update(data);
            let at = out.len() as u32;
            let fields = |sig: &[u8], central: bool| {
                let mut h = sig.to_vec();
                if central {
                    h.extend_from_slice(&20u16.to_le_bytes()); // made by
                }
                h.extend_from_slice(&20u16.to_le_bytes()); // needed
                h.extend_from_slice(&[0; 4]); // flags, method: stored
                h.extend_from_slice(&[0; 4]); // time, date
                h.extend_from_slice(&crc.sum().to_le_bytes());
                h.extend_from_slice(&(data.len() as u32).to_le_bytes());
                h.extend_from_slice(&(data.len() as u32).to_le_bytes());
                h.extend_from_slice(&(name.len() as u16).to_le_bytes());
                h.extend_from_slice(&[0; 2]); // extra
                if central {
                    h.extend_from_slice(&[0; 6]); // comment, disk, internal attributes
                    h.extend_from_slice(&[0; 4]); // external attributes
                    h.extend_from_slice(&at.to_le_bytes());
                }
                h.extend_from_slice(name.as_bytes());
                h
            };
            out.extend(fields(b"PK\x03\x04", false));
            out.extend_from_slice(data);
            central.extend(fields(b"PK\x01\x02", true));
        }
        let cd_at = out.len() as u32;
        out.extend_from_slice(&central);
        out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
        out.extend_from_slice(&(members.len() as u16).to_le_bytes());
        out.extend_from_slice(&(members.len() as u16).to_le_bytes());
        out.extend_from_slice(&(central.len() as u32).to_le_bytes());
        out.extend_from_slice(&cd_at.to_le_bytes());
        out.extend_from_slice(&[0; 2]);
        out
    }

    /// A pickle with a zip behind it: the scan analyses the whole file as a pickle, drops that
    /// analysis, then analyses the archive's member and the pickle before it. The observer is
    /// told each analysis that begins, so what it keeps matches the streams the scan lists.
    #[test]
    fn dropped_analysis_gives_its_number_to_the_next_stream() {
        let prefix: &[u8] = b"\x80\x02cbuiltins\nset\n)R.";
        let mut data = prefix.to_vec();
        let zip_at = data.len();
        data.extend(stored_zip(&[("m.pkl", ORDERED_DICT)]));
        let (log, members) = observe(&data);
        assert_eq!(
            members,
            [
                Some("m.pkl".to_string()),
                Some("pickle before the zip".to_string())
            ]
        );
        assert_eq!(log.streams(), [0, 0, 1]);
        // What an observer keeps when it drops, at each stream that begins, what it holds
        // for that number and the ones after it.
        let mut kept: Vec<Vec<String>> = Vec::new();
        for e in log.0.into_inner() {
            match e {
                Event::Stream(s) => {
                    kept.truncate(s);
                    kept.push(Vec::new());
                }
                Event::Pickle(p) => kept[p.stream].extend(p.globals),
            }
        }
        assert_eq!(
            kept,
            [vec!["collections.OrderedDict"], vec!["builtins.set"]],
            "zip at {zip_at}"
        );
    }

    /// Observing a scan changes none of its reports.
    #[test]
    fn observing_changes_no_report() {
        let policy = Policy::new(Mode::Ml);
        let nested = {
            let mut d = b"\x80\x02cpickle\nloads\nC".to_vec();
            d.push(ORDERED_DICT.len() as u8);
            d.extend_from_slice(ORDERED_DICT);
            d.extend_from_slice(b"\x85R.");
            d
        };
        let mut polyglot = ORDERED_DICT.to_vec();
        polyglot.extend(stored_zip(&[("m.pkl", ORDERED_DICT)]));
        for data in [ORDERED_DICT, JOBLIB, NPY_OBJECTS, &nested, &polyglot] {
            let log = Log::default();
            let seen = crate::Scan::new(&policy).observe(&log).file(data);
            let plain = crate::Scan::new(&policy).file(data);
            assert_eq!(
                serde_json::to_string(&seen).unwrap(),
                serde_json::to_string(&plain).unwrap()
            );
            assert!(!log.pickles().is_empty());
        }
    }

    /// `joblib.dump({'a': np.arange(3, dtype='int64'), 'o': np.array([1, 'x'], dtype=object)})`
    /// (joblib 1.6, numpy 2.4).
    const JOBLIB: &[u8] = b"\x80\x04\x95\xd8\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x01a\x94\x8c\x13joblib.numpy_pickle\x94\x8c\x11NumpyArrayWrapper\x94\x93\x94)\x81\x94}\x94(\x8c\x08subclass\x94\x8c\x05numpy\x94\x8c\x07ndarray\x94\x93\x94\x8c\x05shape\x94K\x03\x85\x94\x8c\x05order\x94\x8c\x01C\x94\x8c\x05dtype\x94h\x08\x8c\x05dtype\x94\x93\x94\x8c\x02i8\x94\x89\x88\x87\x94R\x94(K\x03\x8c\x01<\x94NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00t\x94b\x8c\x0aallow_mmap\x94\x88\x8c\x1bnumpy_array_alignment_bytes\x94K\x10ub\x0c\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x95K\x00\x00\x00\x00\x00\x00\x00\x8c\x01o\x94h\x04)\x81\x94}\x94(h\x07h\x0ah\x0bK\x02\x85\x94h\x0dh\x0eh\x0fh\x11\x8c\x02O8\x94\x89\x88\x87\x94R\x94(K\x03\x8c\x01|\x94NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK?t\x94bh\x17\x89h\x18K\x10ub\x80\x05\x95\x90\x00\x00\x00\x00\x00\x00\x00\x8c\x16numpy._core.multiarray\x94\x8c\x0c_reconstruct\x94\x93\x94\x8c\x05numpy\x94\x8c\x07ndarray\x94\x93\x94K\x00\x85\x94C\x01b\x94\x87\x94R\x94(K\x01K\x02\x85\x94h\x03\x8c\x05dtype\x94\x93\x94\x8c\x02O8\x94\x89\x88\x87\x94R\x94(K\x03\x8c\x01|\x94NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK?t\x94b\x89]\x94(K\x01\x8c\x01x\x94et\x94b.u.";

    /// A joblib file: the numeric array's bytes and the object array's own pickle are shown
    /// as joblib reads them, in the one pickle that pauses for them.
    #[test]
    fn joblib_with_arrays() {
        let (log, members) = observe(JOBLIB);
        assert_eq!(members, [None]);
        let p = log.pickles();
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(matches!(p[0].end, RunEnd::Stop { next, .. } if next == JOBLIB.len()));
        assert!(p[0]
            .globals
            .iter()
            .any(|g| g == "joblib.numpy_pickle.NumpyArrayWrapper"));
        assert_eq!(p[0].joblib.len(), 2, "{:?}", p[0].joblib);
        // The padding length byte, the padding, then three int64.
        let numeric = &p[0].joblib[0];
        let (at, end) = numeric
            .strip_prefix("numeric ")
            .and_then(|r| r.split_once(".."))
            .map(|(a, b)| (a.parse::<usize>().unwrap(), b.parse::<usize>().unwrap()))
            .expect(numeric);
        let pad = JOBLIB[at] as usize;
        assert_eq!(end - at, 1 + pad + 24, "{numeric}");
        // The object array's own pickle (PROTO 5 first) ends just before the outer dict's
        // last SETITEMS and STOP.
        let objects = &p[0].joblib[1];
        let at = objects
            .strip_prefix("objects ")
            .and_then(|r| r.split_once(".."))
            .and_then(|(a, _)| a.parse::<usize>().ok())
            .expect(objects);
        assert!(
            at > end && JOBLIB[at..].starts_with(b"\x80\x05"),
            "{objects}"
        );
        let n = JOBLIB.len();
        let want = format!("objects {at}..{} stop {}: ", n - 2, n - 3);
        assert!(objects.starts_with(&want), "{objects}");
        assert!(objects.contains("_reconstruct"), "{objects}");
        assert!(objects.contains("[1, 'x']"), "{objects}");
    }

    /// `np.save(f, np.array([1, 'x'], dtype=object))` (numpy 2.4): the pickle after the
    /// header is a stream of its own, under the member its findings carry.
    const NPY_OBJECTS: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '|O', 'fortran_order': False, 'shape': (2,), }                                                             \x0a\x80\x04\x95\x90\x00\x00\x00\x00\x00\x00\x00\x8c\x16numpy._core.multiarray\x94\x8c\x0c_reconstruct\x94\x93\x94\x8c\x05numpy\x94\x8c\x07ndarray\x94\x93\x94K\x00\x85\x94C\x01b\x94\x87\x94R\x94(K\x01K\x02\x85\x94h\x03\x8c\x05dtype\x94\x93\x94\x8c\x02O8\x94\x89\x88\x87\x94R\x94(K\x03\x8c\x01|\x94NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK?t\x94b\x89]\x94(K\x01\x8c\x01x\x94et\x94b.";

    #[test]
    fn npy_object_array() {
        let (log, members) = observe(NPY_OBJECTS);
        assert_eq!(members.len(), 1, "{members:?}");
        assert!(members[0].is_some());
        let p = log.pickles();
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].stream, 0);
        assert_eq!(
            p[0].globals,
            [
                "numpy._core.multiarray._reconstruct",
                "numpy.ndarray",
                "numpy.dtype"
            ]
        );
        assert!(matches!(p[0].end, RunEnd::Stop { .. }));
        assert_eq!(p[0].calls.first(), Some(&CallKind::Reduce));
    }
}
