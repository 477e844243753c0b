//! BUILD: on a global, on an object with special keys, on a partial, on a trusted object.

use super::super::testing::*;
use super::*;

/// [`judge_build`] of the pickle's last BUILD, the calls before it judged as [`judge`] does.
fn judge_last_build(data: &[u8], policy: &Policy) -> (bool, Report) {
    judged(data, policy, |m, j, ctx| {
        let t = trusted(m, policy, ctx, j);
        let mut out = Report::new("raw_pickle");
        let ok = judge_build(
            m,
            policy,
            j,
            &t,
            &m.calls[last(m, CallKind::Build)],
            &mut out,
        );
        (ok, out)
    })
}

/// `{'a': 1, key: 2}`.
fn state(p: P, key: &str) -> P {
    p.op(&[EMPTY_DICT, MARK])
        .s("a")
        .i(1)
        .s(key)
        .i(2)
        .op(&[SETITEMS])
}

#[test]
fn build_on_a_global_changes_code_that_runs_later() {
    let on = |module: &str, name: &str| {
        let p = state(P::new().g(module, name), "b");
        let at = p.at();
        (judge_last_build(&p.op(&[BUILD]).done(), &ml()), at)
    };
    let ((ok, r), at) = on("collections", "OrderedDict");
    assert!(!ok);
    let f = only(&r);
    assert_eq!(
        (f.kind, f.severity, f.position),
        (FindingType::AttributeInjection, Severity::High, at)
    );
    assert_eq!(
        f.description,
        "BUILD sets attributes a, b on collections.OrderedDict itself (a module, class or function), changing code that runs later"
    );
    assert_eq!(f.callable.as_deref(), Some("collections.OrderedDict"));
    let ((ok, r), _) = on("posix", "system");
    assert!(!ok);
    assert_eq!(only(&r).severity, Severity::Critical);
}

#[test]
fn build_setting_a_special_attribute_is_refused_on_any_object() {
    let od = |key: &str| {
        let p = P::new()
            .g("collections", "OrderedDict")
            .op(&[EMPTY_TUPLE, NEWOBJ]);
        judge_last_build(&state(p, key).op(&[BUILD]).done(), &ml())
    };
    let (ok, r) = od("b");
    assert!(ok && r.findings.is_empty(), "{:#?}", r.findings);
    let (ok, r) = od("__reduce_ex__");
    assert!(!ok);
    let f = only(&r);
    assert_eq!(
        (f.kind, f.severity),
        (FindingType::AttributeInjection, Severity::High)
    );
    assert_eq!(
        f.description,
        "BUILD sets special attributes a, __reduce_ex__ on collections.OrderedDict.__new__()"
    );
}

#[test]
fn strict_mode_refuses_build_on_objects_without_a_finding_of_its_own() {
    let p = P::new()
        .g("collections", "OrderedDict")
        .op(&[EMPTY_TUPLE, NEWOBJ]);
    let data = state(p, "b").op(&[BUILD]).done();
    let (ok, r) = judge_last_build(&data, &Policy::new(Mode::Strict));
    assert!(!ok);
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
}

#[test]
fn build_on_an_untrusted_object_adds_nothing_to_where_it_was_made() {
    let p = P::new().g("mylib", "make").op(&[EMPTY_TUPLE, REDUCE]);
    let (ok, r) = judge_last_build(&state(p, "b").op(&[BUILD]).done(), &ml());
    assert!(!ok);
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
}

#[test]
fn build_on_a_partial_sets_the_function_a_later_call_runs() {
    let partial = |module: &str, name: &str| {
        let p = P::new()
            .g("functools", "partial")
            .g("numpy", "log1p")
            .op(&[TUPLE1, REDUCE, MARK])
            .g(module, name)
            .op(&[EMPTY_TUPLE, NONE, NONE, TUPLE]);
        let at = p.at();
        (judge_last_build(&p.op(&[BUILD]).done(), &ml()), at)
    };
    let ((ok, r), _) = partial("numpy", "log1p");
    assert!(ok && r.findings.is_empty(), "{:#?}", r.findings);
    let ((ok, r), at) = partial("posix", "system");
    assert!(!ok);
    let f = only(&r);
    assert_eq!(
        (f.kind, f.severity, f.position),
        (FindingType::DynamicCall, Severity::High, at)
    );
    assert_eq!(
        f.description,
        "BUILD makes a functools.partial call posix.system, which the policy does not allow"
    );
}

#[test]
fn special_method_names_are_the_listed_dunders_only() {
    let keys = [
        "__class__",
        "__reduce_ex__",
        "__doc__",
        "____",
        "__class__x",
        "__",
        "class",
    ];
    let mut p = P::new().op(&[MARK]);
    for k in keys {
        p = p.s(k);
    }
    let data = p.op(&[TUPLE]).done();
    judged(&data, &ml(), |m, _, _| {
        let special: Vec<bool> = (0..keys.len() as u32)
            .map(|s| names_special_method(m, s))
            .collect();
        assert_eq!(special, [true, true, false, false, false, false, false]);
    });
    assert!(SPECIAL_METHODS
        .iter()
        .all(|n| n.starts_with("__") && n.ends_with("__") && n.len() > 4));
}

#[test]
fn state_keys_are_those_of_the_dict_and_of_the_slot_state() {
    // ({'a': 1, 'b': 2}, {'c': 3}): the state BUILD hands a class with __slots__.
    let data = state(P::new(), "b")
        .op(&[EMPTY_DICT])
        .s("c")
        .i(3)
        .op(&[SETITEM, TUPLE2])
        .done();
    judged(&data, &ml(), |m, j, _| {
        let st = m.result.unwrap();
        let mut keys = Vec::new();
        for_state_keys(m, st, |k| {
            keys.push(m.arena.text(m.data, k).into_owned());
            true
        });
        assert_eq!(keys, ["a", "b", "c"]);
        // `f` says when to stop.
        let mut n = 0;
        for_state_keys(m, st, |_| {
            n += 1;
            false
        });
        assert_eq!(n, 1);
        let summary = state_summary(m, j, st);
        assert!(!summary.dunder);
        assert_eq!(summary.shown(m, st), "a, b, c");
    });
}

#[test]
fn a_state_without_string_keys_is_shown_as_its_state_and_long_key_lists_are_cut() {
    judged(&P::new().i(1).done(), &ml(), |m, j, _| {
        let st = m.result.unwrap();
        assert_eq!(state_summary(m, j, st).shown(m, st), "(from its state)");
    });
    let mut p = P::new().op(&[EMPTY_DICT, MARK]);
    for i in 0..60 {
        p = p.s(&format!("key{i:02}")).i(i);
    }
    let data = p.op(&[SETITEMS]).done();
    judged(&data, &ml(), |m, j, _| {
        let st = m.result.unwrap();
        let shown = state_summary(m, j, st).shown(m, st);
        assert!(shown.starts_with("key00, key01"), "{shown}");
        assert!(!shown.contains("key59"), "{shown}");
        assert!(shown.chars().count() <= 130, "{shown}");
    });
}

#[test]
fn a_special_key_past_the_first_is_found() {
    let data = state(P::new(), "__dict__").done();
    judged(&data, &ml(), |m, j, _| {
        assert!(state_summary(m, j, m.result.unwrap()).dunder);
    });
}
