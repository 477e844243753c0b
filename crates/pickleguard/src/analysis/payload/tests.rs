//! Literal arguments: decoding chains, code strings, nested and encoded pickles.

use super::super::testing::*;
use super::*;

/// `posix.system('id')`, protocol 2.
fn evil() -> Vec<u8> {
    P::new()
        .g("posix", "system")
        .s("id")
        .op(&[TUPLE1, REDUCE])
        .done()
}

const EVIL_BASE64: &str = "gAJjcG9zaXgKc3lzdGVtClgCAAAAaWSFUi4=";
const CODE: &str = "import os; os.system(\"id\")";
const CODE_BASE64: &str = "aW1wb3J0IG9zOyBvcy5zeXN0ZW0oImlkIik=";
const CODE_HEX: &str = "696d706f7274206f733b206f732e73797374656d282269642229";

/// `module.name(<arg>)`, and the REDUCE's position.
fn call(module: &str, name: &str, arg: impl FnOnce(P) -> P) -> (Vec<u8>, u64) {
    let p = arg(P::new().g(module, name)).op(&[TUPLE1]);
    let at = p.at();
    (p.op(&[REDUCE]).done(), at)
}

/// `decoder(<text>)`.
fn decoded(module: &'static str, name: &'static str, text: &'static str) -> impl FnOnce(P) -> P {
    move |p: P| p.g(module, name).s(text).op(&[TUPLE1, REDUCE])
}

/// [`examine_literals`] of the pickle's last REDUCE as an argument of `category`.
fn examine(data: &[u8], category: Option<Category>) -> Report {
    judged(data, &ml(), |m, j, ctx| {
        let mut out = Report::new("raw_pickle");
        let c = &m.calls[last(m, CallKind::Reduce)];
        examine_literals(m, &ml(), ctx, j, c, category, &mut out);
        out
    })
}

/// The value the pickle ends with, evaluated.
fn evaluated(data: &[u8]) -> Option<(Vec<u8>, bool, Option<String>)> {
    judged(data, &ml(), |m, j, _| {
        evaluate(m, j, m.result.unwrap(), 0).map(|l| (l.bytes, l.text, l.how))
    })
}

#[test]
fn bytes_handed_to_a_deserializer_are_analysed_as_a_file() {
    let (data, at) = call("pickle", "loads", |p| p.b(&evil()));
    let r = examine(&data, Some(Category::Deserialization));
    let f = finding(
        &r,
        FindingType::NestedPickle,
        "hands a serialized payload to pickle.loads",
    );
    assert_eq!((f.severity, f.position), (Severity::Critical, at));
    assert_eq!(
        f.description,
        format!("hands a serialized payload to pickle.loads: an embedded raw_pickle of {} bytes, analysed too (risk CRITICAL)", evil().len())
    );
    let inner = finding(&r, FindingType::ReduceCall, "posix.system('id')");
    assert!(
        matches!(
            inner.member.as_ref().unwrap().segments(),
            [Segment::NestedIn { callable, at: a }] if callable == "pickle.loads" && *a == at
        ),
        "{:?}",
        inner.member
    );
    // Even a harmless payload is reported, at least HIGH: the call runs whatever it is given.
    let (data, _) = call("pickle", "loads", |p| p.b(&P::new().i(1).done()));
    let r = examine(&data, Some(Category::Deserialization));
    assert_eq!(only(&r).severity, Severity::High);
}

#[test]
fn text_handed_to_a_deserializer_is_its_latin1_bytes() {
    // Protocols 0-2 write bytes as latin-1 text.
    let text: String = evil().iter().map(|&b| b as char).collect();
    let (data, _) = call("pickle", "loads", |p| p.s(&text));
    let r = examine(&data, Some(Category::Deserialization));
    assert!(r.has(FindingType::ReduceCall), "{:#?}", r.findings);
}

#[test]
fn code_handed_to_an_interpreter_is_a_code_string_naming_its_imports() {
    let (data, at) = call("builtins", "exec", |p| p.s(CODE));
    let r = examine(&data, Some(Category::CodeExecution));
    let f = only(&r);
    assert_eq!(
        (f.kind, f.severity, f.position),
        (FindingType::CodeString, Severity::Critical, at)
    );
    assert_eq!(
        f.description,
        "passes Python code to builtins.exec: 'import os; os.system(\"id\")' (imports os)"
    );
    assert_eq!(f.callable.as_deref(), Some("builtins.exec"));
    // A runner's other arguments: a name, a placeholder file name, nothing.
    for inert in ["exec", "<string>", "  ", ""] {
        let (data, _) = call("builtins", "compile", |p| p.s(inert));
        assert!(
            examine(&data, Some(Category::CodeExecution))
                .findings
                .is_empty(),
            "{inert:?}"
        );
    }
}

#[test]
fn an_argument_decoded_while_loading_is_obfuscation_critical_for_a_dangerous_callee() {
    let (data, _) = call(
        "builtins",
        "exec",
        decoded("base64", "b64decode", CODE_BASE64),
    );
    let r = examine(&data, Some(Category::CodeExecution));
    let f = finding(
        &r,
        FindingType::Obfuscation,
        "is decoded while loading (base64)",
    );
    assert_eq!(f.severity, Severity::Critical);
    assert!(
        f.description.starts_with(
            "an argument of builtins.exec is decoded while loading (base64): 'import os;"
        ),
        "{}",
        f.description
    );
    // And the decoded code is judged as code.
    assert!(r.has(FindingType::CodeString), "{:#?}", r.findings);
    let (data, _) = call("mylib", "f", decoded("base64", "b64decode", CODE_BASE64));
    let r = examine(&data, None);
    assert_eq!(
        finding(&r, FindingType::Obfuscation, "decoded while loading").severity,
        Severity::High
    );
}

#[test]
fn an_encoded_literal_of_an_unknown_callee_is_decoded_and_looked_into() {
    // Code in base64, and in hex.
    for encoded in [CODE_BASE64, CODE_HEX] {
        let (data, _) = call("mylib", "f", |p| p.s(encoded));
        let r = examine(&data, None);
        let f = only(&r);
        assert_eq!(
            (f.kind, f.severity),
            (FindingType::Obfuscation, Severity::High)
        );
        assert!(
            f.description.contains("-encoded code: 'import os;"),
            "{}",
            f.description
        );
    }
    // A pickle in base64: analysed, its findings under the decoded argument.
    let (data, at) = call("mylib", "f", |p| p.s(EVIL_BASE64));
    let r = examine(&data, None);
    let f = finding(&r, FindingType::Obfuscation, "is a base64-encoded pickle");
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!(
        f.description,
        "an argument of mylib.f is a base64-encoded pickle (risk CRITICAL)"
    );
    let inner = finding(&r, FindingType::ReduceCall, "posix.system");
    assert!(
        matches!(
            inner.member.as_ref().unwrap().segments(),
            [Segment::DecodedArgument { how, callable, at: a }] if how == "base64" && callable == "mylib.f" && *a == at
        ),
        "{:?}",
        inner.member
    );
    // Plain text is no payload.
    let (data, _) = call("mylib", "f", |p| p.s("just some words, nothing encoded"));
    assert!(examine(&data, None).findings.is_empty());
}

#[test]
fn a_literal_is_examined_once_per_category() {
    // The same memoised string handed to two calls of the same kind.
    let data = P::new()
        .op(&[MARK])
        .g("mylib", "f")
        .s(CODE_BASE64)
        .op(&[BINPUT, 0, TUPLE1, REDUCE])
        .g("mylib", "g")
        .op(&[BINGET, 0, TUPLE1, REDUCE, TUPLE])
        .done();
    judged(&data, &ml(), |m, j, ctx| {
        let mut out = Report::new("raw_pickle");
        for c in &m.calls {
            examine_literals(m, &ml(), ctx, j, c, None, &mut out);
        }
        assert_eq!(out.findings.len(), 1, "{:#?}", out.findings);
        // Handed to a code runner, it is looked at again, as code.
        examine_literals(
            m,
            &ml(),
            ctx,
            j,
            &m.calls[1],
            Some(Category::CodeExecution),
            &mut out,
        );
        assert_eq!(out.findings.len(), 2, "{:#?}", out.findings);
    });
}

#[test]
fn decoding_chains_are_evaluated_and_named() {
    let (b, text, how) = evaluated(&P::new().s("abc").done()).unwrap();
    assert_eq!((b, text, how), (b"abc".to_vec(), true, None));
    let (b, text, how) =
        evaluated(&decoded("base64", "b64decode", CODE_BASE64)(P::new()).done()).unwrap();
    assert_eq!(
        (b, text, how.as_deref()),
        (CODE.as_bytes().to_vec(), false, Some("base64"))
    );
    let (b, _, how) =
        evaluated(&decoded("binascii", "unhexlify", CODE_HEX)(P::new()).done()).unwrap();
    assert_eq!((b, how.as_deref()), (CODE.as_bytes().to_vec(), Some("hex")));
    // codecs.decode(base64.b64decode(...)-free chain: rot13 of text.
    let rot = P::new()
        .g("codecs", "decode")
        .s("vzcbeg bf")
        .s("rot13")
        .op(&[TUPLE2, REDUCE])
        .done();
    let (b, text, how) = evaluated(&rot).unwrap();
    assert_eq!(
        (b, text, how.as_deref()),
        (b"import os".to_vec(), true, Some("codecs rot13"))
    );
    // Steps chain in the order they run.
    let chained = P::new()
        .g("codecs", "decode")
        .g("base64", "b64decode")
        .s("dnpjYmVnIGJm")
        .op(&[TUPLE1, REDUCE])
        .s("rot_13")
        .op(&[TUPLE2, REDUCE])
        .done();
    let (b, _, how) = evaluated(&chained).unwrap();
    assert_eq!(
        (b, how.as_deref()),
        (b"import os".to_vec(), Some("base64, then codecs rot_13"))
    );
    // latin1 encoding is how bytes are pickled, not a decoding step.
    let latin = P::new()
        .g("_codecs", "encode")
        .s("\u{e9}")
        .s("latin1")
        .op(&[TUPLE2, REDUCE])
        .done();
    let (b, text, how) = evaluated(&latin).unwrap();
    assert_eq!((b, text, how), (vec![0xe9], false, None));
    // A call that is not a decoder is not a literal.
    assert!(evaluated(&decoded("mylib", "f", CODE_BASE64)(P::new()).done()).is_none());
}

#[test]
fn str_join_of_literals_is_evaluated() {
    let data = P::new()
        .g("builtins", "getattr")
        .s("")
        .s("join")
        .op(&[TUPLE2, REDUCE, EMPTY_LIST, MARK])
        .s("import ")
        .s("os")
        .op(b"e")
        .op(&[TUPLE1, REDUCE])
        .done();
    let (b, text, how) = evaluated(&data).unwrap();
    assert_eq!(
        (b, text, how.as_deref()),
        (b"import os".to_vec(), true, Some("str.join"))
    );
}

#[test]
fn the_small_decoders_and_recognisers() {
    assert_eq!(rot13(b"Hello, World!"), b"Uryyb, Jbeyq!");
    assert_eq!(rot13(&rot13(b"abcXYZ")), b"abcXYZ");
    assert_eq!(latin1("a\u{e9}\u{20ac}"), vec![b'a', 0xe9, b'?']);
    assert!(inert_code("exec") && inert_code(" <string> ") && inert_code("") && !inert_code("1x"));
    assert!(!inert_code("os.system('id')") && !inert_code("<a b>"));
    assert!(looks_like_pickle(&evil()));
    assert!(
        looks_like_pickle(b"I1\n."),
        "protocol 0: an opcode first, STOP last"
    );
    assert!(!looks_like_pickle(b"\x80\x06xx"), "no protocol 6");
    assert!(!looks_like_pickle(b"\xff\xfe."), "no opcode first");
    assert!(!looks_like_pickle(b"I1\n"));
}

#[test]
fn a_payload_past_the_nesting_limit_is_a_limit_not_an_analysis() {
    let mut policy = ml();
    policy.limits.max_nesting = 0;
    let (data, at) = call("pickle", "loads", |p| p.b(&evil()));
    judged(&data, &policy, |m, j, ctx| {
        let mut out = Report::new("raw_pickle");
        examine_literals(
            m,
            &policy,
            ctx,
            j,
            &m.calls[0],
            Some(Category::Deserialization),
            &mut out,
        );
        let f = only(&out);
        assert_eq!((f.kind, f.position), (FindingType::ResourceLimit, at));
        assert_eq!(out.stopped_by, Some(Limit::NestingDepth.into()));
        assert!(!out.complete);
    });
}
