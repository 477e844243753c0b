//! Judging imports and calls, one decision at a time.

use super::super::testing::*;
use super::*;

/// [`judge_member`] of the first pickle of `data`: the calls module's whole judgement.
fn judge_all(data: &[u8], policy: &Policy) -> Report {
    judged(data, policy, |m, _, ctx| {
        let mut out = Report::new("raw_pickle");
        judge_member(m, policy, ctx, &mut out, None);
        out.finish(policy.threshold);
        out
    })
}

/// [`judge_call`] of the call `index`, the calls before it judged as [`judge`] does: whether
/// its result is trusted, and its findings.
fn judge_one(data: &[u8], policy: &Policy, index: usize) -> (bool, Report) {
    judged(data, policy, |m, j, ctx| {
        let trusted = trusted(m, policy, ctx, j);
        let mut used = vec![0u8; m.globals.len()];
        let mut out = Report::new("raw_pickle");
        let ok = judge_call(
            m,
            policy,
            ctx,
            j,
            &mut used,
            &trusted,
            index as CallId,
            &m.calls[index],
            &mut out,
        );
        (ok, out)
    })
}

/// `module.name(arg)` by REDUCE, and the REDUCE's position.
fn call1(module: &str, name: &str, arg: impl FnOnce(P) -> P) -> (Vec<u8>, u64) {
    let p = arg(P::new().g(module, name)).op(&[TUPLE1]);
    let at = p.at();
    (p.op(&[REDUCE]).done(), at)
}

#[test]
fn a_memo_index_no_pickler_writes_is_a_memo_bomb_at_its_put() {
    let mut data = P::new().op(&[EMPTY_LIST]).0;
    let at = data.len() as u64;
    let idx = (crate::machine::MEMO_BOMB_BYTES / 16 + 1) as u32;
    data.push(b'r');
    data.extend_from_slice(&idx.to_le_bytes());
    data.push(b'.');
    let r = judge_all(&data, &ml());
    let f = finding(
        &r,
        FindingType::Malformed,
        "LONG_BINPUT stores at memo index",
    );
    assert_eq!((f.severity, f.position), (Severity::High, at));
    assert!(
        f.description.contains(&format!("index {idx},")),
        "{}",
        f.description
    );
    // The first index a pickler writes is no bomb.
    let r = judge_all(&P::new().op(&[EMPTY_LIST, BINPUT, 0]).done(), &ml());
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
}

#[test]
fn a_dangerous_import_says_what_it_does_with_its_catalogue_severity() {
    let (data, _) = call1("posix", "system", |p| p.s("id"));
    let r = judge_all(&data, &ml());
    let f = &r.findings[0];
    assert_eq!(
        f.kind,
        FindingType::DangerousImport,
        "imports come first: {:#?}",
        r.findings
    );
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!(f.position, 2);
    assert_eq!(
        f.description,
        "imports posix.system: runs a shell command (command execution)"
    );
    assert_eq!(
        (f.module.as_deref(), f.name.as_deref()),
        (Some("posix"), Some("system"))
    );
    // A user's block is a danger of its own category and severity.
    let mut p = ml();
    p.block("numpy", "log1p");
    let r = judge_all(&P::new().g("numpy", "log1p").done(), &p);
    let f = only(&r);
    assert_eq!(
        (f.kind, f.severity),
        (FindingType::DangerousImport, Severity::High)
    );
    assert!(
        f.description.starts_with("imports numpy.log1p: blocked ("),
        "{}",
        f.description
    );
    assert!(judge_all(&P::new().g("numpy", "log1p").done(), &ml())
        .findings
        .is_empty());
}

#[test]
fn an_import_the_policy_does_not_know_is_medium_and_says_which_policy() {
    let data = P::new().g("mylib", "Thing").done();
    let f = only(&judge_all(&data, &ml())).clone();
    assert_eq!(
        (f.kind, f.severity),
        (FindingType::UnknownImport, Severity::Medium)
    );
    assert_eq!(f.description, "imports mylib.Thing: not in the ml policy");
    let strict = judge_all(
        &P::new().g("collections", "OrderedDict").done(),
        &Policy::new(Mode::Strict),
    );
    assert_eq!(
        only(&strict).description,
        "imports collections.OrderedDict: strict mode allows no imports"
    );
}

#[test]
fn imports_made_at_load_time_are_high() {
    let r = judge_all(&P::new().op(&[0x82, 7]).done(), &ml());
    let f = only(&r);
    assert_eq!(
        (f.kind, f.severity),
        (FindingType::ExtensionCode, Severity::High)
    );
    assert!(
        f.description
            .starts_with("EXT1 7: imports whatever copyreg's extension registry maps code 7 to"),
        "{}",
        f.description
    );
    assert_eq!(f.module, None);
    let computed = P::new()
        .g("builtins", "str")
        .s("os")
        .op(&[TUPLE1, REDUCE])
        .s("system")
        .op(&[0x93])
        .done();
    let r = judge_all(&computed, &ml());
    let f = finding(&r, FindingType::UnknownImport, "computed at load time");
    assert_eq!(f.severity, Severity::High);
}

#[test]
fn a_dangerous_name_whose_every_call_met_its_rules_is_not_reported_as_an_import() {
    let split = P::new()
        .g("builtins", "getattr")
        .s("a,b")
        .s("split")
        .op(&[TUPLE2, REDUCE])
        .done();
    let r = judge_all(&split, &ml());
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    // The same global (memoised) in a call that fails its rules: the import is reported.
    let both = P::new()
        .op(&[MARK])
        .g("builtins", "getattr")
        .op(&[BINPUT, 0])
        .s("a,b")
        .s("split")
        .op(&[TUPLE2, REDUCE, BINGET, 0])
        .s("a,b")
        .s("split")
        .i(1)
        .op(&[b'\x87', REDUCE, TUPLE])
        .done();
    let r = judge_all(&both, &ml());
    assert!(r.has(FindingType::DangerousImport), "{:#?}", r.findings);
}

#[test]
fn the_globals_summary_says_how_each_global_was_used() {
    let data = P::new()
        .op(&[MARK])
        .g("collections", "OrderedDict")
        .op(&[EMPTY_TUPLE, NEWOBJ])
        .g("numpy", "log1p")
        .i(1)
        .op(&[TUPLE1, REDUCE])
        .g("re", "RegexFlag")
        .g("copyreg", "_reconstructor")
        .op(&[MARK])
        .g("collections", "Counter")
        .g("builtins", "object")
        .op(&[NONE, TUPLE, REDUCE, TUPLE])
        .done();
    let r = judge_all(&data, &ml());
    let uses = |name: &str| {
        r.globals
            .iter()
            .find(|g| g.name == name)
            .map(|g| g.uses.clone())
            .unwrap_or_else(|| panic!("{name} not in {:?}", r.globals))
    };
    assert_eq!(uses("OrderedDict"), vec![Use::New]);
    assert_eq!(uses("log1p"), vec![Use::Call]);
    assert_eq!(uses("RegexFlag"), vec![Use::Value]);
    // The class a copyreg constructor helper builds is a type rebuilt.
    assert_eq!(uses("Counter"), vec![Use::New]);
    assert_eq!(uses("_reconstructor"), vec![Use::Call]);
}

#[test]
fn a_persistent_id_is_the_loaders_business_except_in_strict_mode() {
    let data = P::new().s("storage").op(&[BINPERSID]).done();
    let (ok, r) = judge_one(&data, &ml(), 0);
    assert!(ok && r.findings.is_empty(), "{:#?}", r.findings);
    let (ok, r) = judge_one(&data, &Policy::new(Mode::Strict), 0);
    assert!(!ok);
    let f = only(&r);
    assert_eq!(
        (f.kind, f.severity, f.position),
        (FindingType::Disallowed, Severity::Medium, 14)
    );
    assert!(
        f.description.starts_with("persistent id:"),
        "{}",
        f.description
    );
}

#[test]
fn calling_a_dangerous_name_is_a_reduce_call_of_its_severity_with_its_arguments() {
    let (data, at) = call1("posix", "system", |p| p.s("id"));
    let (ok, r) = judge_one(&data, &ml(), 0);
    assert!(!ok);
    let f = only(&r);
    assert_eq!(
        (f.kind, f.severity, f.position),
        (FindingType::ReduceCall, Severity::Critical, at)
    );
    assert_eq!(
        f.description,
        "calls posix.system('id'): runs a shell command"
    );
    assert_eq!(f.callable.as_deref(), Some("posix.system"));
    assert_eq!(f.args, Some(vec!["'id'".to_string()]));
    assert_eq!(
        (f.module.as_deref(), f.name.as_deref()),
        (Some("posix"), Some("system"))
    );
}

#[test]
fn calling_a_name_the_policy_does_not_allow_is_medium() {
    let (data, _) = call1("mylib", "make", |p| p.i(1));
    let (ok, r) = judge_one(&data, &ml(), 0);
    assert!(!ok);
    let f = only(&r);
    assert_eq!(
        (f.kind, f.severity),
        (FindingType::ReduceCall, Severity::Medium)
    );
    assert_eq!(
        f.description,
        "calls mylib.make(1), which the ml policy does not allow"
    );
    // Allowed, but only as a value: the finding says which use is missing.
    let (data, _) = call1("numpy", "float64", |p| p.i(1));
    let (ok, r) = judge_one(&data, &ml(), 0);
    assert!(!ok);
    let f = only(&r);
    assert_eq!(f.severity, Severity::Medium);
    assert!(
        f.description.starts_with("calls numpy.float64(1), but "),
        "{}",
        f.description
    );
}

#[test]
fn inst_and_obj_without_arguments_only_create_the_instance() {
    // LogisticRegression is granted `new` (and `build`), not `call`.
    let obj = |arg: bool| {
        let p = P::new()
            .op(&[MARK])
            .g("sklearn.linear_model._logistic", "LogisticRegression");
        let p = if arg { p.i(1) } else { p };
        p.op(b"o").done()
    };
    let (ok, r) = judge_one(&obj(false), &ml(), 0);
    assert!(ok && r.findings.is_empty(), "{:#?}", r.findings);
    let (ok, r) = judge_one(&obj(true), &ml(), 0);
    assert!(!ok);
    assert_eq!(only(&r).severity, Severity::Medium);
}

#[test]
fn a_refused_call_on_a_full_report_is_only_counted() {
    let (data, _) = call1("mylib", "make", |p| p.i(1));
    judged(&data, &ml(), |m, j, ctx| {
        let mut out = Report::new("raw_pickle");
        for i in 0..crate::report::MAX_FINDINGS {
            out.push(Finding::new(
                FindingType::Malformed,
                Severity::Low,
                i as u64,
                String::new(),
            ));
        }
        let v = j.verdicts[0].clone();
        let ok = judge_global_call(
            m,
            &ml(),
            ctx,
            j,
            &[false],
            0,
            &m.calls[0],
            Some(0),
            &v,
            uses::CALL,
            "mylib.make",
            &mut out,
        );
        assert!(!ok);
        assert_eq!(out.findings.len(), crate::report::MAX_FINDINGS);
        assert_eq!(out.dropped, 1);
    });
}

#[test]
fn a_global_resolved_at_load_time_is_not_called_by_its_name() {
    let data = P::new().op(&[0x82, 7]).i(1).op(&[TUPLE1, REDUCE]).done();
    let (ok, r) = judge_one(&data, &ml(), 0);
    assert!(!ok);
    let f = only(&r);
    assert_eq!(
        (f.kind, f.severity),
        (FindingType::DynamicCall, Severity::High)
    );
    assert!(
        f.description
            .ends_with("a global resolved only at load time"),
        "{}",
        f.description
    );
}

#[test]
fn an_allowed_call_must_be_handed_data() {
    // OrderedDict([...]) of plain pairs: accepted, trusted.
    let od = |item: fn(P) -> P| {
        let p = P::new().g("collections", "OrderedDict").op(&[EMPTY_LIST]);
        item(p).op(&[APPEND, TUPLE1, REDUCE]).done()
    };
    let (ok, r) = judge_one(&od(|p| p.s("a").i(1).op(&[TUPLE2])), &ml(), 0);
    assert!(ok && r.findings.is_empty(), "{:#?}", r.findings);
    // A global the policy allows neither to call nor to store is no data.
    let (ok, r) = judge_one(&od(|p| p.g("posix", "system")), &ml(), 0);
    assert!(!ok);
    let f = only(&r);
    assert_eq!(
        (f.kind, f.severity),
        (FindingType::ReduceCall, Severity::High)
    );
    assert!(
        f.description.starts_with(
            "calls collections.OrderedDict([posix.system]), handing it the global posix.system"
        ),
        "{}",
        f.description
    );
}

#[test]
fn keyword_arguments_must_fit_the_constructors_schema() {
    let newobj_ex = |kw: fn(P) -> P| {
        let p = P::new().g("collections", "OrderedDict").op(&[EMPTY_TUPLE]);
        kw(p).op(&[0x92]).done()
    };
    let (ok, r) = judge_one(&newobj_ex(|p| p.op(&[EMPTY_DICT])), &ml(), 0);
    assert!(ok && r.findings.is_empty(), "{:#?}", r.findings);
    let (ok, r) = judge_one(
        &newobj_ex(|p| p.op(&[EMPTY_DICT]).s("a").i(1).op(&[SETITEM])),
        &ml(),
        0,
    );
    assert!(ok && r.findings.is_empty(), "{:#?}", r.findings);
    let (ok, r) = judge_one(
        &newobj_ex(|p| {
            p.op(&[EMPTY_DICT])
                .s("a")
                .g("posix", "system")
                .op(&[SETITEM])
        }),
        &ml(),
        0,
    );
    assert!(!ok);
    let f = only(&r);
    assert_eq!(f.severity, Severity::High);
    assert!(
        f.description
            .contains(" with keyword arguments holding the global posix.system"),
        "{}",
        f.description
    );
}

#[test]
fn argument_rules_decide_for_a_name_that_has_them() {
    // getattr's rule: (global|instance|data, str).
    let getattr = |attr: fn(P) -> P| {
        let p = P::new().g("builtins", "getattr").s("a,b");
        attr(p).op(&[TUPLE2, REDUCE]).done()
    };
    let (ok, _) = judge_one(&getattr(|p| p.s("split")), &ml(), 0);
    assert!(ok);
    let (ok, r) = judge_one(&getattr(|p| p.i(1)), &ml(), 0);
    assert!(!ok);
    let f = finding(
        &r,
        FindingType::ReduceCall,
        "with arguments the policy's rule for builtins.getattr does not accept",
    );
    assert_eq!(f.severity, Severity::High);
}

#[test]
fn a_helper_that_calls_what_it_is_given_is_judged_by_the_inner_call() {
    // _create_array(_reconstruct, (cls, (0,), b'b'), (), None) calls _reconstruct(cls, ...).
    let create_array = |cls: &str| {
        P::new()
            .g("dill._dill", "_create_array")
            .op(&[MARK])
            .g("numpy.core.multiarray", "_reconstruct")
            .op(&[MARK])
            .g("numpy", cls)
            .i(0)
            .op(&[TUPLE1])
            .b(b"b")
            .op(&[TUPLE, EMPTY_TUPLE, NONE, TUPLE, REDUCE])
            .done()
    };
    let (ok, r) = judge_one(&create_array("ndarray"), &ml(), 0);
    assert!(ok && r.findings.is_empty(), "{:#?}", r.findings);
    // The outer rule holds; the inner call's rule does not.
    let (ok, r) = judge_one(&create_array("dtype"), &ml(), 0);
    assert!(!ok);
    let f = only(&r);
    assert_eq!(
        (f.kind, f.severity),
        (FindingType::DynamicCall, Severity::High)
    );
    assert_eq!(
        f.description,
        "dill._dill._create_array calls numpy.core.multiarray._reconstruct with the pickle's arguments: the policy does not allow that call"
    );
}

#[test]
fn a_copyreg_constructor_hands_the_class_strings_of_its_grammar_only() {
    let newobj = |s: &str| {
        P::new()
            .g("copyreg", "__newobj__")
            .g("sympy.core.symbol", "Symbol")
            .s(s)
            .op(&[TUPLE2, REDUCE])
            .done()
    };
    let (ok, r) = judge_one(&newobj("x"), &ml(), 0);
    assert!(ok && r.findings.is_empty(), "{:#?}", r.findings);
    let (ok, r) = judge_one(&newobj("__import__('os').system('id')"), &ml(), 0);
    assert!(!ok);
    let f = only(&r);
    assert_eq!(
        (f.kind, f.severity),
        (FindingType::ReduceCall, Severity::High)
    );
    assert!(
        f.description.starts_with(
            "copyreg.__newobj__ builds sympy.core.symbol.Symbol, handing its __new__ the string"
        ),
        "{}",
        f.description
    );
}

#[test]
fn getattr_is_accepted_for_what_it_reaches() {
    let getattr = |on: fn(P) -> P, attr: &str| {
        on(P::new().g("builtins", "getattr"))
            .s(attr)
            .op(&[TUPLE2, REDUCE])
            .done()
    };
    // An enum member, and a method of a string the pickle wrote.
    for data in [
        getattr(|p| p.g("re", "RegexFlag"), "IGNORECASE"),
        getattr(|p| p.s("a"), "upper"),
    ] {
        let (ok, r) = judge_one(&data, &ml(), 0);
        assert!(ok && r.findings.is_empty(), "{:#?}", r.findings);
    }
    let (ok, r) = judge_one(&getattr(|p| p.g("numpy", "ndarray"), "tofile"), &ml(), 0);
    assert!(!ok);
    let f = only(&r);
    assert_eq!(
        (f.kind, f.severity),
        (FindingType::DynamicCall, Severity::High)
    );
    assert!(
        f.description.ends_with(
            "reaches numpy.ndarray.tofile, which the policy does not allow (grant it: [[allow]] module = \"numpy\", name = \"ndarray.tofile\", ops = [...])"
        ),
        "{}",
        f.description
    );
    // What it reaches is in the catalogue: the catalogue's severity.
    let (ok, r) = judge_one(&getattr(|p| p.g("pathlib", "Path"), "write_text"), &ml(), 0);
    assert!(!ok);
    let f = only(&r);
    let danger = ml()
        .danger("pathlib", "Path.write_text")
        .expect("catalogued")
        .severity;
    assert_eq!((f.kind, f.severity), (FindingType::DynamicCall, danger));
    assert!(f
        .description
        .ends_with("reaches pathlib.Path.write_text, which is dangerous"));
    // A dunder of a string reaches what the policy cannot name.
    let (ok, r) = judge_one(&getattr(|p| p.s("a"), "__class__"), &ml(), 0);
    assert!(!ok);
    assert!(only(&r)
        .description
        .ends_with(": an attribute of something the policy cannot name"));
}

#[test]
fn a_plain_receiver_is_plain_data_to_its_leaves_with_a_short_public_attribute() {
    let check = |receiver: fn(P) -> P, attr: &str| {
        let data = receiver(P::new().g("builtins", "getattr"))
            .s(attr)
            .op(&[TUPLE2, REDUCE])
            .done();
        judged(&data, &ml(), |m, _, _| {
            plain_receiver(m, &m.calls[last(m, CallKind::Reduce)])
        })
    };
    assert!(check(|p| p.s("a,b"), "split"));
    assert!(check(|p| p.op(&[EMPTY_LIST]).i(1).op(&[APPEND]), "sort"));
    assert!(!check(|p| p.s("a,b"), "_split"));
    assert!(!check(|p| p.s("a,b"), &"s".repeat(65)));
    assert!(check(|p| p.s("a,b"), &"s".repeat(64)));
    assert!(!check(
        |p| p.op(&[EMPTY_LIST]).g("os", "path").op(&[APPEND]),
        "sort"
    ));
    assert!(!check(|p| p.g("re", "RegexFlag"), "IGNORECASE"));
}

#[test]
fn uses_are_described_in_words() {
    assert_eq!(describe_uses(0), "a value");
    assert_eq!(describe_uses(uses::VALUE), "a value");
    assert_eq!(describe_uses(uses::NEW), "a type to rebuild");
    assert_eq!(
        describe_uses(uses::NEW | uses::CALL),
        "a type to rebuild or a function to call"
    );
}

/// `torch.storage._load_from_bytes(<file>)`, twice when `twice` (the second a memo GET).
fn load_from_bytes(file: &[u8], twice: bool) -> Vec<u8> {
    let p = P::new()
        .op(&[MARK])
        .g("torch.storage", "_load_from_bytes")
        .b(file)
        .op(&[BINPUT, 0, TUPLE1, REDUCE]);
    let p = if twice {
        p.g("torch.storage", "_load_from_bytes")
            .op(&[BINGET, 0, TUPLE1, REDUCE])
    } else {
        p
    };
    p.op(&[TUPLE]).done()
}

#[test]
fn an_embedded_file_is_analysed_and_the_call_is_as_safe_as_it() {
    let safe = P::new().i(1).done();
    let r = judge_all(&load_from_bytes(&safe, false), &ml());
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    let (evil, _) = call1("posix", "system", |p| p.s("id"));
    let r = judge_all(&load_from_bytes(&evil, false), &ml());
    let f = finding(
        &r,
        FindingType::NestedPickle,
        "loads an embedded raw_pickle file that is not safe",
    );
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!(f.member, None);
    let inner = finding(&r, FindingType::ReduceCall, "posix.system");
    let member = inner.member.as_ref().expect("the inner finding's member");
    assert!(
        matches!(
            member.segments(),
            [Segment::NestedFile { callable, at }] if callable == "torch.storage._load_from_bytes" && *at == f.position
        ),
        "{member:?}"
    );
}

#[test]
fn a_memoised_embedded_file_is_analysed_once_and_refused_at_each_call() {
    let (evil, _) = call1("posix", "system", |p| p.s("id"));
    let r = judge_all(&load_from_bytes(&evil, true), &ml());
    let refusals = r
        .findings
        .iter()
        .filter(|f| f.kind == FindingType::NestedPickle)
        .count();
    let inner = r
        .findings
        .iter()
        .filter(|f| f.kind == FindingType::ReduceCall)
        .count();
    assert_eq!((refusals, inner), (2, 1), "{:#?}", r.findings);
}

#[test]
fn an_embedded_file_past_the_nesting_limit_is_not_analysed() {
    let mut policy = ml();
    policy.limits.max_nesting = 0;
    let r = judge_all(&load_from_bytes(&P::new().i(1).done(), false), &policy);
    let f = finding(&r, FindingType::ResourceLimit, "limit");
    assert!(!r.complete);
    assert_eq!(r.stopped_by, Some(Limit::NestingDepth.into()), "{f:?}");
}

#[test]
fn the_first_blob_is_bytes_or_latin1_text_encoded_by_codecs() {
    let data = P::new()
        .op(&[MARK])
        .g("builtins", "max")
        .b(b"\x00\xff")
        .op(&[TUPLE1, REDUCE])
        .g("builtins", "max")
        .g("_codecs", "encode")
        .s("\u{ff}")
        .s("latin1")
        .op(&[TUPLE2, REDUCE, TUPLE1, REDUCE])
        .g("builtins", "max")
        .s("text")
        .op(&[TUPLE1, REDUCE, TUPLE])
        .done();
    judged(&data, &ml(), |m, j, _| {
        let blob = |i: usize| first_blob(m, j, m.calls[i].args).map(|b| b.into_owned());
        assert_eq!(blob(0), Some(vec![0, 0xff]));
        assert_eq!(blob(2), Some(vec![0xff]));
        assert_eq!(blob(3), None);
    });
}

#[test]
fn keyword_arguments_are_not_described_by_argument_rules() {
    let policy = ml_with(
        r#"
version = 2

[[allow]]
module = "myapp"
name = "Thing"
ops = ["new"]

[[rule]]
callable = "myapp.Thing"
args = ["int"]
"#,
    );
    let newobj_ex = |kw: fn(P) -> P| {
        let p = P::new().g("myapp", "Thing").i(1).op(&[TUPLE1]);
        kw(p).op(&[0x92]).done()
    };
    // No keywords (an empty dict): the rule decides.
    let (ok, r) = judge_one(&newobj_ex(|p| p.op(&[EMPTY_DICT])), &policy, 0);
    assert!(ok && r.findings.is_empty(), "{:#?}", r.findings);
    let (ok, r) = judge_one(
        &newobj_ex(|p| p.op(&[EMPTY_DICT]).s("a").i(1).op(&[SETITEM])),
        &policy,
        0,
    );
    assert!(!ok);
    let f = only(&r);
    assert_eq!(
        (f.kind, f.severity),
        (FindingType::ReduceCall, Severity::High)
    );
    assert!(
        f.description.ends_with(
            " with keyword arguments, which the policy's rule for myapp.Thing does not describe"
        ),
        "{}",
        f.description
    );
}
