//! Operations on objects the pickle made: the class must be granted the operation, and what
//! flows in must fit the operation's schema.

use super::super::testing::*;
use super::*;

/// A user's policy: `myapp.Plain` may only be rebuilt; `myapp.Model` rebuilt and given state
/// whose `code` must be names; `myapp.Bag` rebuilt and filled.
const MYAPP: &str = r#"
version = 2

[[allow]]
module = "myapp"
name = "Plain"
ops = ["new"]

[[allow]]
module = "myapp"
name = "Model"
ops = ["new", "build"]
state = { code = "grammar:names" }

[[allow]]
module = "myapp"
name = "Bag"
ops = ["new", "setitem", "append"]
"#;

/// An instance of `myapp.<class>` (NEWOBJ), then `then`; the last call of `kind` judged by
/// `f` with the calls before it judged as [`judge`] does.
fn judge_last(
    class: &str,
    then: impl FnOnce(P) -> P,
    kind: CallKind,
    f: impl FnOnce(&Machine<'_>, &Judged<'_>, &[bool], usize, &mut Report) -> bool,
) -> (bool, Report) {
    let data = then(P::new().g("myapp", class).op(&[EMPTY_TUPLE, NEWOBJ])).done();
    let policy = ml_with(MYAPP);
    judged(&data, &policy, |m, j, ctx| {
        let trusted = trusted(m, &policy, ctx, j);
        let mut out = Report::new("raw_pickle");
        let ok = f(m, j, &trusted, last(m, kind), &mut out);
        (ok, out)
    })
}

fn setitems(class: &str, items: impl FnOnce(P) -> P) -> (bool, Report) {
    judge_last(
        class,
        |p| items(p.op(&[MARK])).op(&[SETITEMS]),
        CallKind::Method(Method::SetItem),
        |m, j, t, i, out| judge_method(m, j, t, &m.calls[i], Method::SetItem, out),
    )
}

fn build(class: &str, state: impl FnOnce(P) -> P) -> (bool, Report) {
    judge_last(
        class,
        |p| state(p).op(&[BUILD]),
        CallKind::Build,
        |m, j, t, i, out| {
            let Value::Call(target) = m.calls[i].callable else {
                panic!("BUILD on {:?}", m.calls[i].callable)
            };
            judge_build_op(m, j, t, &m.calls[i], target, out)
        },
    )
}

#[test]
fn filling_an_object_whose_class_is_granted_it_takes_data() {
    let (ok, r) = setitems("Bag", |p| p.s("a").i(1));
    assert!(ok && r.findings.is_empty(), "{:#?}", r.findings);
    let (ok, r) = setitems("Bag", |p| p.s("a").g("posix", "system"));
    assert!(!ok);
    let f = only(&r);
    assert_eq!(
        (f.kind, f.severity),
        (FindingType::DynamicCall, Severity::High)
    );
    assert_eq!(
        f.description,
        "SETITEMS hands myapp.Bag.__setitem__ the global posix.system (stored, it is called later: the policy allows it neither as `call` nor as a `value`)"
    );
    assert_eq!(
        (f.module.as_deref(), f.name.as_deref()),
        (Some("myapp"), Some("Bag"))
    );
    assert_eq!(f.callable.as_deref(), Some("myapp.Bag.__setitem__"));
}

#[test]
fn filling_an_object_whose_class_is_not_granted_it_is_refused_with_the_fix() {
    let (ok, r) = setitems("Plain", |p| p.s("a").i(1));
    assert!(!ok);
    let f = only(&r);
    assert_eq!(
        (f.kind, f.severity),
        (FindingType::DynamicCall, Severity::High)
    );
    assert!(
        f.description.starts_with(
            "SETITEMS on a myapp.Plain object runs myapp.Plain.__setitem__: the policy does not allow `setitem` on myapp.Plain; if myapp.Plain's"
        ),
        "{}",
        f.description
    );
    assert!(
        f.description.contains("ops = [\"setitem\"]"),
        "{}",
        f.description
    );
    // APPENDS asks for `append`.
    let (ok, r) = judge_last(
        "Plain",
        |p| p.op(&[MARK]).i(1).op(b"e"),
        CallKind::Method(Method::Extend),
        |m, j, t, i, out| judge_method(m, j, t, &m.calls[i], Method::Extend, out),
    );
    assert!(!ok);
    assert!(only(&r).description.contains("APPENDS on a myapp.Plain object runs myapp.Plain.extend: the policy does not allow `append`"));
    let (ok, _) = judge_last(
        "Bag",
        |p| p.op(&[MARK]).i(1).op(b"e"),
        CallKind::Method(Method::Extend),
        |m, j, t, i, out| judge_method(m, j, t, &m.calls[i], Method::Extend, out),
    );
    assert!(ok);
}

#[test]
fn a_key_naming_a_special_method_is_refused_even_on_a_granted_class() {
    let (ok, r) = setitems("Bag", |p| p.s("__class__").i(1));
    assert!(!ok);
    let f = only(&r);
    assert_eq!(
        (f.kind, f.severity),
        (FindingType::AttributeInjection, Severity::High)
    );
    assert_eq!(
        f.description,
        "SETITEMS hands myapp.Bag.__new__().__setitem__ a key that names a special method"
    );
    assert_eq!(f.module, None);
    // A data dunder is a key like any other.
    let (ok, _) = setitems("Bag", |p| p.s("__doc__").i(1));
    assert!(ok);
}

#[test]
fn filling_an_object_that_is_not_trusted_is_a_dynamic_call() {
    let fill = |module: &str, name: &str| {
        let data = P::new()
            .g(module, name)
            .s("x")
            .op(&[TUPLE1, REDUCE, MARK])
            .s("a")
            .i(1)
            .op(&[SETITEMS])
            .done();
        judged(&data, &ml(), |m, j, ctx| {
            let t = trusted(m, &ml(), ctx, j);
            let mut out = Report::new("raw_pickle");
            let i = last(m, CallKind::Method(Method::SetItem));
            let ok = judge_method(m, j, &t, &m.calls[i], Method::SetItem, &mut out);
            (ok, out)
        })
    };
    let (ok, r) = fill("mylib", "make");
    assert!(!ok);
    let f = only(&r);
    assert_eq!(
        (f.kind, f.severity),
        (FindingType::DynamicCall, Severity::High)
    );
    assert!(
        f.description
            .ends_with("on an object that is not a plain container"),
        "{}",
        f.description
    );
    assert_eq!(f.module, None);
    // What the dangerous catalogue made: critical.
    let (ok, r) = fill("posix", "system");
    assert!(!ok);
    assert_eq!(only(&r).severity, Severity::Critical);
}

#[test]
fn what_the_loaders_persistent_load_made_is_not_judged_as_a_class() {
    let data = P::new()
        .s("storage")
        .op(&[BINPERSID, MARK])
        .s("a")
        .g("posix", "system")
        .op(&[SETITEMS])
        .s("storage")
        .op(&[BINPERSID, EMPTY_DICT, BUILD])
        .done();
    judged(&data, &ml(), |m, j, ctx| {
        let t = trusted(m, &ml(), ctx, j);
        let mut out = Report::new("raw_pickle");
        let i = last(m, CallKind::Method(Method::SetItem));
        assert!(judge_method(
            m,
            j,
            &t,
            &m.calls[i],
            Method::SetItem,
            &mut out
        ));
        let b = last(m, CallKind::Build);
        let Value::Call(target) = m.calls[b].callable else {
            panic!()
        };
        assert!(judge_build_op(m, j, &t, &m.calls[b], target, &mut out));
        assert!(out.findings.is_empty(), "{:#?}", out.findings);
    });
}

#[test]
fn an_operation_on_an_object_of_a_class_the_policy_cannot_tell_is_unknown_code() {
    let data = P::new()
        .g("mylib", "make")
        .op(&[EMPTY_TUPLE, REDUCE])
        .done();
    judged(&data, &ml(), |m, _, _| {
        let mut out = Report::new("raw_pickle");
        assert!(!refuse_unknown(
            m,
            &m.calls[0],
            Op::Append,
            "append",
            &mut out
        ));
        let f = only(&out);
        assert_eq!(
            (f.kind, f.severity),
            (FindingType::DynamicCall, Severity::High)
        );
        assert_eq!(
            f.description,
            "`append` on mylib.make, whose class the policy cannot tell: it runs unknown code"
        );
        assert_eq!(f.callable.as_deref(), Some("mylib.make.append"));
    });
}

#[test]
fn build_needs_the_build_grant() {
    let (ok, r) = build("Plain", |p| p.op(&[EMPTY_DICT]).s("a").i(1).op(&[SETITEM]));
    assert!(!ok);
    let f = only(&r);
    assert_eq!(
        (f.kind, f.severity),
        (FindingType::AttributeInjection, Severity::High)
    );
    assert!(
        f.description.starts_with("BUILD on a myapp.Plain object runs its __setstate__ (or sets its attributes): the policy does not allow `build` on myapp.Plain; "),
        "{}",
        f.description
    );
    assert_eq!(f.callable.as_deref(), Some("myapp.Plain.__setstate__"));
    assert_eq!(
        (f.module.as_deref(), f.name.as_deref()),
        (Some("myapp"), Some("Plain"))
    );
    let (ok, r) = build("Model", |p| p.op(&[EMPTY_DICT]).s("a").i(1).op(&[SETITEM]));
    assert!(ok && r.findings.is_empty(), "{:#?}", r.findings);
}

#[test]
fn build_state_keys_with_a_pattern_must_fit_it() {
    let state =
        |code: &'static str| move |p: P| p.op(&[EMPTY_DICT]).s("code").s(code).op(&[SETITEM]);
    let (ok, r) = build("Model", state("a_b"));
    assert!(ok && r.findings.is_empty(), "{:#?}", r.findings);
    let (ok, r) = build("Model", state("__import__('os').system('id')"));
    assert!(!ok);
    assert_eq!(
        only(&r).description,
        "BUILD hands myapp.Model.__setstate__ a `code` its code would run or parse, and the value does not fit the policy's pattern for it"
    );
    // In the dict of a (dict, slotstate) state too.
    let (ok, _) = build("Model", |p| {
        state("__import__('os')")(p).op(&[EMPTY_DICT, TUPLE2])
    });
    assert!(!ok);
    // A state without the key is not asked about it.
    let (ok, _) = build("Model", |p| p.op(&[EMPTY_DICT]));
    assert!(ok);
}

#[test]
fn build_state_must_be_data() {
    let (ok, r) = build("Model", |p| {
        p.op(&[EMPTY_DICT])
            .s("f")
            .g("posix", "system")
            .op(&[SETITEM])
    });
    assert!(!ok);
    assert!(
        only(&r)
            .description
            .starts_with("BUILD hands myapp.Model.__setstate__ the global posix.system"),
        "{}",
        only(&r).description
    );
}

#[test]
fn a_reconstructor_runs_the_base_init_which_needs_the_init_grant() {
    let reconstruct = |base: (&str, &str), state: fn(P) -> P| {
        let p = P::new()
            .g("copyreg", "_reconstructor")
            .op(&[MARK])
            .g("collections", "OrderedDict")
            .g(base.0, base.1);
        let data = state(p).op(&[TUPLE, REDUCE]).done();
        judged(&data, &ml(), |m, j, _| {
            let mut out = Report::new("raw_pickle");
            let ok =
                judge_reconstructor_init(m, j, &m.calls[0], "copyreg._reconstructor", &mut out);
            (ok, out)
        })
    };
    let (ok, r) = reconstruct(("builtins", "object"), |p| p.op(&[NONE]));
    assert!(ok && r.findings.is_empty());
    let (ok, r) = reconstruct(("builtins", "dict"), |p| {
        p.op(&[EMPTY_DICT]).s("a").i(1).op(&[SETITEM])
    });
    assert!(ok && r.findings.is_empty(), "{:#?}", r.findings);
    let (ok, r) = reconstruct(("builtins", "dict"), |p| {
        p.op(&[EMPTY_DICT])
            .s("a")
            .g("posix", "system")
            .op(&[SETITEM])
    });
    assert!(!ok);
    let f = only(&r);
    assert_eq!(
        (f.kind, f.severity),
        (FindingType::ReduceCall, Severity::High)
    );
    assert!(
        f.description.starts_with(
            "copyreg._reconstructor hands builtins.dict.__init__ the global posix.system"
        ),
        "{}",
        f.description
    );
    let (ok, r) = reconstruct(("pathlib", "Path"), |p| p.s("/tmp/x"));
    assert!(!ok);
    assert!(
        only(&r).description.starts_with(
            "copyreg._reconstructor runs pathlib.Path.__init__(obj, state) with the pickle's state: the policy does not allow `init` on pathlib.Path; "
        ),
        "{}",
        only(&r).description
    );
}

#[test]
fn the_fix_hint_names_the_entry_to_write() {
    let v = ml().judge("myapp", "Thing");
    assert_eq!(
        fix_hint(&v, Op::Build),
        "if myapp.Thing's __setstate__ (or its __dict__/slot update) is known to be safe with this data: [[allow]] module = \"myapp\", name = \"Thing\", ops = [\"build\"] with reviewed/note in a version 2 policy file, or --allow myapp:Thing / register_safe_class"
    );
    assert_eq!(method_op(Method::SetItem), Op::SetItem);
    assert_eq!(method_op(Method::Add), Op::Append);
    assert_eq!(fill_opcode(Method::Add), "ADDITEMS");
}
