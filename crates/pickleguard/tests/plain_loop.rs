//! The plain-data loop (`machine/plain.rs`) ends every run, shape-only or full, exactly as the
//! reader path does: same outcome, opcode count, protocol, result, stack, marks, memo and (in
//! full runs) every node, string, import and call, on
//! generated plain data (every opcode it decodes, valid and broken), its truncations and
//! mutations, real files, and limits small enough to be reached.

use pickleguard::internals::{Machine, Outcome};
use pickleguard::Limits;

mod common;
use common::Lcg;

/// Random plain data: scalars of every encoding, containers built both ways, memo traffic.
struct Gen {
    rng: Lcg,
    out: Vec<u8>,
    memo: u32,
}

impl Gen {
    fn pick(&mut self, n: u64) -> u64 {
        self.rng.next() % n
    }

    fn scalar(&mut self) {
        let o = &mut self.out;
        match self.rng.next() % 22 {
            0 => o.extend_from_slice(&[b'K', 7]),
            1 => o.extend_from_slice(&[b'M', 1, 2]),
            2 => o.extend_from_slice(&[b'J', 0xff, 0xff, 0xff, 0xff]),
            3 => o.extend_from_slice(&[0x8a, 2, 0x34, 0x12]),
            4 => {
                o.extend_from_slice(&[0x8a, 9]);
                o.extend_from_slice(&[0x80; 9]);
            }
            5 => o.extend_from_slice(&[0x8a, 0]),
            6 => {
                o.push(b'G');
                o.extend_from_slice(&1.5f64.to_be_bytes());
            }
            7 => o.push(b'N'),
            8 => o.push(0x88),
            9 => o.push(0x89),
            10 => o.extend_from_slice(b"\x8c\x03abc"),
            11 => o.extend_from_slice(b"X\x02\x00\x00\x00\xc3\xa9"),
            // A lone surrogate (decoded with surrogatepass) and bytes that are not UTF-8.
            12 => o.extend_from_slice(b"\x8c\x03\xed\xa0\x80"),
            13 => o.extend_from_slice(b"\x8c\x02\xff\xfe"),
            14 => o.extend_from_slice(b"\x8d\x01\x00\x00\x00\x00\x00\x00\x00z"),
            15 => o.extend_from_slice(b"U\x02hi"),
            16 => o.extend_from_slice(b"T\x02\x00\x00\x00\xff\x00"),
            17 => o.extend_from_slice(b"C\x01\x00"),
            18 => o.extend_from_slice(b"B\x01\x00\x00\x00\x01"),
            19 => o.extend_from_slice(b"\x8e\x00\x00\x00\x00\x00\x00\x00\x00"),
            20 => o.extend_from_slice(b"\x96\x01\x00\x00\x00\x00\x00\x00\x00q"),
            _ => o.push(b')'),
        }
    }

    fn memo_op(&mut self) {
        match self.pick(4) {
            0 => self.out.push(0x94),
            1 => {
                let i = self.memo as u8;
                self.out.extend_from_slice(&[b'q', i]);
            }
            2 => {
                self.out.push(b'r');
                self.out.extend_from_slice(&self.memo.to_le_bytes());
            }
            _ => return,
        }
        self.memo += 1;
    }

    fn value(&mut self, depth: u32) {
        if self.memo > 0 && self.pick(5) == 0 {
            let i = self.pick(self.memo as u64) as u32;
            if i < 256 && self.pick(2) == 0 {
                self.out.extend_from_slice(&[b'h', i as u8]);
            } else {
                self.out.push(b'j');
                self.out.extend_from_slice(&i.to_le_bytes());
            }
            return;
        }
        if depth > 3 || self.pick(3) > 0 {
            self.scalar();
            self.memo_op();
            return;
        }
        let n = self.pick(4);
        match self.pick(11) {
            // Calls in between: a filled call result is a method call, not a plain fill.
            9 => {
                self.out
                    .extend_from_slice(b"ccollections\nOrderedDict\n)R(");
                (0..2 * n).for_each(|_| self.value(depth + 1));
                self.out.push(b'u');
            }
            10 => {
                self.out
                    .extend_from_slice(b"\x8c\x08builtins\x8c\x04list\x93");
                self.value(depth + 1);
                self.out.extend_from_slice(b"\x85R");
            }
            0 => {
                self.out.push(b'(');
                (0..n).for_each(|_| self.value(depth + 1));
                self.out.push(b't');
            }
            1 => {
                (0..n.min(3)).for_each(|_| self.value(depth + 1));
                let op = [b')', 0x85, 0x86, 0x87][n.min(3) as usize];
                self.out.push(op);
            }
            2 => {
                self.out.push(b'(');
                (0..n).for_each(|_| self.value(depth + 1));
                let op = if self.pick(2) == 0 { b'l' } else { 0x91 };
                self.out.push(op);
            }
            3 => {
                self.out.push(b'(');
                (0..2 * n).for_each(|_| self.value(depth + 1));
                self.out.push(b'd');
            }
            4 => {
                self.out.push(b']');
                self.memo_op();
                self.out.push(b'(');
                (0..n).for_each(|_| self.value(depth + 1));
                self.out.push(b'e');
            }
            5 => {
                self.out.push(b'}');
                self.memo_op();
                self.value(depth + 1);
                self.value(depth + 1);
                self.out.push(b's');
                self.out.push(b'(');
                (0..2 * n).for_each(|_| self.value(depth + 1));
                self.out.push(b'u');
            }
            6 => {
                self.out.push(0x8f);
                self.out.push(b'(');
                (0..n).for_each(|_| self.value(depth + 1));
                self.out.push(0x90);
            }
            7 => {
                self.out.push(b']');
                self.value(depth + 1);
                self.out.push(b'a');
            }
            _ => {
                self.value(depth + 1);
                self.out.extend_from_slice(b"2(N10");
            }
        }
        self.memo_op();
    }

    fn pickle(&mut self) -> Vec<u8> {
        self.out.clear();
        self.memo = 0;
        let proto = self.pick(7) as u8;
        self.out.extend_from_slice(&[0x80, proto]);
        if self.pick(2) == 0 {
            let frame = self.pick(64);
            self.out.push(0x95);
            self.out.extend_from_slice(&frame.to_le_bytes());
        }
        self.value(0);
        self.out.push(b'.');
        self.out.clone()
    }
}

type Run = (
    Outcome,
    u64,
    u8,
    String,
    Vec<String>,
    Vec<usize>,
    u64,
    Vec<(usize, &'static str)>,
    Option<usize>,
    String,
);

/// Every pickle of the stream, shape-only or in full, as `analyze_stream` runs them.
fn runs(data: &[u8], limits: &Limits, shape: bool, plain: bool) -> Vec<Run> {
    let mut m = Machine::new(data, limits.clone());
    m.plain_loop = plain;
    let mut out = Vec::new();
    let mut pos = 0;
    for _ in 0..4 {
        m.reset();
        m.set_shape_only(shape);
        let o = m.run(pos);
        let (stack, marks, memo) = m.state();
        out.push((
            o.clone(),
            m.ops,
            m.proto,
            format!("{:?}", m.result),
            stack.iter().map(|v| format!("{v:?}")).collect(),
            marks.to_vec(),
            memo,
            m.anomalies.clone(),
            m.first_effect,
            // What a full run built: every container, string, import and call, with its id,
            // and where other readings of the stream may differ (frames, float lines).
            format!(
                "{:?} {:?} {:?} {:?} {:?}",
                m.arena, m.globals, m.calls, m.kwargs, m.divergence
            ),
        ));
        match o {
            Outcome::Stop { end, .. } if end < data.len() => pos = end,
            _ => break,
        }
    }
    out
}

fn check(data: &[u8], limits: &Limits) {
    for shape in [true, false] {
        assert_eq!(
            runs(data, limits, shape, true),
            runs(data, limits, shape, false),
            "shape {shape}: {:?}",
            &data[..data.len().min(80)]
        );
    }
}

fn small_limits() -> Limits {
    Limits {
        max_ops: 40,
        max_stack: 6,
        max_memo: 4,
        max_marks: 2,
        max_nodes: 5,
        ..Limits::default()
    }
}

#[test]
fn plain_loop_equals_reader_path() {
    let limits = [Limits::default(), small_limits()];
    let mut gen = Gen {
        rng: Lcg(77),
        out: Vec::new(),
        memo: 0,
    };
    let mut rng = Lcg(5);
    let mut bases: Vec<Vec<u8>> = (0..400).map(|_| gen.pickle()).collect();
    // Back to back, and followed by a payload (the loop hands over at its first import).
    let two = [bases[0].clone(), bases[1].clone()].concat();
    bases.push(two);
    bases.push([bases[2].clone(), b"cos\nsystem\n(S'x'\ntR.".to_vec()].concat());
    let mut seen_stop = 0;
    for base in &bases {
        let mut cases = vec![base.clone()];
        cases.extend(
            (0..base.len())
                .step_by(1 + base.len() / 12)
                .map(|c| base[..c].to_vec()),
        );
        for _ in 0..12 {
            let mut m = base.clone();
            for _ in 0..=(rng.next() % 3) {
                let i = (rng.next() as usize) % m.len();
                m[i] = rng.next() as u8;
            }
            cases.push(m);
        }
        for c in &cases {
            for l in &limits {
                check(c, l);
            }
        }
        let r = runs(base, &Limits::default(), true, true);
        seen_stop += matches!(r[0].0, Outcome::Stop { .. }) as usize;
    }
    // The generator must make streams that load, or this compares only failures.
    assert!(
        seen_stop > 300,
        "only {seen_stop} generated pickles ran to STOP"
    );
}

/// Streams at the edges the loop must hand over: limits reached exactly, failures of each
/// opcode it decodes, the memo's sparse part.
#[test]
fn plain_loop_equals_reader_path_at_edges() {
    let cases: Vec<Vec<u8>> = [
        &b"NNNNNN(t."[..],
        &b"NNNNNN(l."[..],
        &b"NNNNNN(d."[..],
        &b"NNNNN(t."[..],
        &b"NNNNNNN."[..],
        &b"NNNNN2."[..],
        &b"(((N."[..],
        &b"((N1N."[..],
        &b"N0N00."[..],
        &b"(0N."[..],
        &b"1N."[..],
        &b"Na."[..],
        &b"]N(Ne."[..],
        &b"}NNs."[..],
        &b"}(Nu."[..],
        &b"}(NNNu."[..],
        &b"N(NNu."[..],
        &b"N(Nd."[..],
        &b"](N\x90."[..],
        &b"\x8f(N\x90."[..],
        &b"\x8f(Ne."[..],
        &b"N\x94\x94\x94\x94\x94N."[..],
        &b"Nh\x00."[..],
        &b"Nq\x00h\x01."[..],
        &b"N(q\x00."[..],
        &b"N(\x94."[..],
        &b"N(r\x00\x00\x00\x00."[..],
        &b"N\x80\x06."[..],
        &b"\x95\xff\x00\x00\x00\x00\x00\x00\x00N."[..],
        &b"T\xff\xff\xff\xff."[..],
        &b"\x8d\xff\xff\xff\xff\xff\xff\xff\xff."[..],
        &b"2."[..],
        &b"(2."[..],
        &b"\x85."[..],
        &b"N\x86."[..],
        &b"(N\x86."[..],
        // A far index goes to the sparse memo; a GET of it, and of a dense slot left empty.
        b"Nr\x00\x00\x10\x00j\x00\x00\x10\x00h\x05.",
        b"Nq\x00Nr\x00\x20\x00\x00q\x03Nr\x02\x00\x00\x00h\x02h\x01.",
    ]
    .iter()
    .map(|c| c.to_vec())
    .collect();
    for c in &cases {
        check(c, &Limits::default());
        check(c, &small_limits());
        for cut in 0..c.len() {
            check(&c[..cut], &small_limits());
        }
    }
}

#[test]
fn plain_loop_equals_reader_path_on_files() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/peer-fixtures");
    let mut files = Vec::new();
    let mut dirs = vec![std::path::PathBuf::from(dir)];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    assert!(!files.is_empty(), "no peer fixtures under {dir}");
    for f in files {
        let b = std::fs::read(&f).unwrap();
        if b.len() < 4_000_000 {
            check(&b, &Limits::default());
            check(&b, &small_limits());
        }
    }
}
