//! The `data` schema, argument rules and patterns, and what traces back to the catalogue.

use super::super::testing::*;
use super::*;

/// The items of the tuple `items` writes (MARK ... TUPLE), with the machine, the judging
/// cache and which calls are trusted, under `policy`.
fn with_items<R>(
    policy: &Policy,
    items: impl FnOnce(P) -> P,
    f: impl FnOnce(&Machine<'_>, &Judged<'_>, &[bool], &[Value]) -> R,
) -> R {
    let data = items(P::new().op(&[MARK])).op(&[TUPLE]).done();
    judged(&data, policy, |m, j, ctx| {
        let t = trusted(m, policy, ctx, j);
        let node = m.args_of(m.result.unwrap()).unwrap();
        f(m, j, &t, &node.items)
    })
}

fn pattern(s: &str) -> ArgPattern {
    ArgPattern::parse(s, 2).unwrap()
}

fn rule(args: &[&str], min_args: usize) -> Rule {
    Rule {
        args: args.iter().map(|a| pattern(a)).collect(),
        min_args,
        nested: false,
        calls: None,
        source: Vec::new(),
    }
}

/// Whether each item matches `p`.
fn matches(items: impl FnOnce(P) -> P, p: &str) -> Vec<bool> {
    let p = pattern(p);
    with_items(&ml(), items, |m, j, t, vs| {
        vs.iter().map(|v| arg_matches(m, j, t, &p, *v)).collect()
    })
}

#[test]
fn plain_data_and_objects_made_by_calls_fit_the_data_schema() {
    with_items(
        &ml(),
        |p| {
            p.s("text")
                .b(b"bytes")
                .i(1)
                .op(&[NONE, EMPTY_DICT, EMPTY_LIST])
                .g("collections", "OrderedDict")
                .op(&[EMPTY_TUPLE, REDUCE])
                .g("re", "RegexFlag")
                .g("numpy", "log1p")
        },
        |m, j, _, vs| {
            for v in vs {
                assert_eq!(data_misfit(m, j, Schema::default(), *v, 0), None, "{v:?}");
            }
        },
    );
}

#[test]
fn a_global_fits_only_if_the_policy_allows_it_stored() {
    with_items(
        &ml(),
        |p| p.g("posix", "system").g("mylib", "Thing").op(&[0x82, 7]),
        |m, j, _, vs| {
            let why: Vec<_> = vs
                .iter()
                .map(|v| data_misfit(m, j, Schema::default(), *v, 0))
                .collect();
            assert_eq!(
                why[0].as_deref(),
                Some("the global posix.system (stored, it is called later: the policy allows it neither as `call` nor as a `value`)")
            );
            assert!(why[1]
                .as_deref()
                .unwrap()
                .starts_with("the global mylib.Thing "));
            assert!(why[2].is_some(), "an EXT global is never data");
        },
    );
}

#[test]
fn a_misfit_deep_in_containers_is_found_and_too_deep_is_refused() {
    let nested = |depth: usize, leaf: fn(P) -> P| {
        move |mut p: P| {
            for _ in 0..depth {
                p = p.op(&[EMPTY_LIST]);
            }
            p = leaf(p);
            for _ in 0..depth {
                p = p.op(&[APPEND]);
            }
            p
        }
    };
    let misfit = |items| {
        with_items(&ml(), items, |m, j, _, vs| {
            data_misfit(m, j, Schema::default(), vs[0], 0)
        })
    };
    assert!(misfit(nested(10, |p| p.g("posix", "system")))
        .unwrap()
        .contains("posix.system"));
    assert_eq!(misfit(nested(10, |p| p.i(1))), None);
    assert_eq!(misfit(nested(200, |p| p.i(1))), None);
    assert_eq!(
        misfit(nested(202, |p| p.i(1))).as_deref(),
        Some("containers nested too deep to check")
    );
}

#[test]
fn strings_fit_a_grammar_only_when_the_schema_names_one() {
    let expr = Schema {
        strings: Some(Grammar::Expr),
    };
    with_items(
        &ml(),
        |p| {
            p.s("x + 1")
                .s("__import__('os')")
                .op(&[EMPTY_LIST])
                .s("__import__('os')")
                .op(&[APPEND])
        },
        |m, j, _, vs| {
            assert_eq!(data_misfit(m, j, expr, vs[0], 0), None);
            assert_eq!(
                data_misfit(m, j, expr, vs[1], 0).as_deref(),
                Some("the string \"__import__('os')\" (not of the `expr` grammar its code parses)")
            );
            // Inside containers too.
            assert!(data_misfit(m, j, expr, vs[2], 0).is_some());
            assert_eq!(data_misfit(m, j, Schema::default(), vs[1], 0), None);
        },
    );
}

#[test]
fn a_rule_takes_its_count_of_arguments_each_fitting_its_pattern() {
    let fits = |r: &Rule, items: fn(P) -> P| {
        let data = items(P::new().op(&[MARK])).op(&[TUPLE]).done();
        judged(&data, &ml(), |m, j, _| {
            rule_matches(m, j, &[], r, m.result.unwrap())
        })
    };
    let two = rule(&["str", "int"], 2);
    assert!(fits(&two, |p| p.s("a").i(1)));
    assert!(!fits(&two, |p| p.i(1).s("a")));
    assert!(!fits(&two, |p| p.s("a")));
    assert!(!fits(&two, |p| p.s("a").i(1).i(2)));
    let optional = rule(&["str", "int"], 1);
    assert!(fits(&optional, |p| p.s("a")));
    // `...`: any further arguments, each data.
    let rest = rule(&["str", "..."], 1);
    assert!(fits(&rest, |p| p.s("a").i(1).op(&[NONE]).s("b")));
    assert!(!fits(&rest, |p| p.s("a").i(1).g("posix", "system")));
    // A pattern's `data` refuses what is not data.
    let data = rule(&["data"], 1);
    assert!(!fits(&data, |p| p.g("posix", "system")));
}

#[test]
fn arguments_that_are_not_a_tuple_fit_no_rule() {
    let data = P::new().s("a").done();
    judged(&data, &ml(), |m, j, _| {
        assert!(!rule_matches(
            m,
            j,
            &[],
            &rule(&["str"], 1),
            m.result.unwrap()
        ));
    });
}

#[test]
fn type_patterns_take_their_type() {
    let items = |p: P| {
        p.s("a")
            .b(b"b")
            .i(1)
            .op(b"G")
            .op(&1.5f64.to_be_bytes())
            .op(&[0x88, NONE, EMPTY_TUPLE, EMPTY_LIST, EMPTY_DICT])
            .op(&[0x8a, 9, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    };
    // a, b'b', 1, 1.5, True, None, (), [], {}, 2**64 + 1
    assert_eq!(
        matches(items, "str"),
        [true, false, false, false, false, false, false, false, false, false]
    );
    assert_eq!(
        matches(items, "bytes"),
        [false, true, false, false, false, false, false, false, false, false]
    );
    assert_eq!(
        matches(items, "int"),
        [false, false, true, false, false, false, false, false, false, true]
    );
    assert_eq!(
        matches(items, "float"),
        [false, false, false, true, false, false, false, false, false, false]
    );
    assert_eq!(
        matches(items, "bool"),
        [false, false, false, false, true, false, false, false, false, false]
    );
    assert_eq!(
        matches(items, "none"),
        [false, false, false, false, false, true, false, false, false, false]
    );
    assert_eq!(
        matches(items, "tuple"),
        [false, false, false, false, false, false, true, false, false, false]
    );
    assert_eq!(
        matches(items, "list"),
        [false, false, false, false, false, false, false, true, false, false]
    );
    assert_eq!(
        matches(items, "dict"),
        [false, false, false, false, false, false, false, false, true, false]
    );
    assert_eq!(
        matches(items, "str|none"),
        [true, false, false, false, false, true, false, false, false, false]
    );
    assert_eq!(matches(items, "never"), [false; 10]);
}

#[test]
fn latin1_text_encoded_by_codecs_is_bytes() {
    let items = |p: P| {
        p.g("_codecs", "encode")
            .s("\u{ff}")
            .s("latin1")
            .op(&[TUPLE2, REDUCE])
    };
    assert_eq!(matches(items, "bytes"), [true]);
}

#[test]
fn int_tuples_names_and_exact_strings() {
    let tuples = |p: P| {
        p.i(1)
            .i(2)
            .op(&[TUPLE2])
            .i(1)
            .s("x")
            .op(&[TUPLE2])
            .op(&[EMPTY_TUPLE])
    };
    assert_eq!(matches(tuples, "int_tuple"), [true, false, true]);
    let names = |p: P| {
        p.s("weight")
            .s("_private")
            .s("__class__")
            .s("1st")
            .s("a.b")
            .s("")
            .s("w2")
    };
    assert_eq!(
        matches(names, "ident"),
        [true, false, false, true, false, false, true]
    );
    assert_eq!(
        matches(names, "attr"),
        [true, true, false, false, false, false, true]
    );
    assert_eq!(
        matches(names, "=weight"),
        [true, false, false, false, false, false, false]
    );
    // The grammar takes private names; `ident` does not.
    assert_eq!(
        matches(names, "grammar:ident"),
        [true, true, false, false, false, false, true]
    );
    let long = "a".repeat(MAX_NAME + 1);
    let too_long = move |p: P| p.s(&long);
    assert_eq!(matches(too_long.clone(), "ident"), [false]);
    assert_eq!(matches(too_long, "attr"), [false]);
}

#[test]
fn global_patterns_take_globals_the_policy_grants() {
    let globals = |p: P| {
        p.g("numpy", "log1p")
            .g("collections", "OrderedDict")
            .g("posix", "system")
            .g("mylib", "Thing")
            .g("numpy", "float64")
    };
    // numpy.float64 is allowed as a value only.
    assert_eq!(matches(globals, "global"), [true, true, false, false, true]);
    assert_eq!(
        matches(globals, "global_call"),
        [true, true, false, false, false]
    );
    assert_eq!(
        matches(globals, "global_new"),
        [false, true, false, false, false]
    );
    // Named globals match by normalised name, allowed or not.
    assert_eq!(
        matches(globals, "global:os.system"),
        [false, false, true, false, false]
    );
    assert_eq!(
        matches(globals, "global:mylib.Thing|global:numpy.log1p"),
        [true, false, false, true, false]
    );
}

#[test]
fn made_and_instance_take_trusted_objects_only() {
    let objects = |p: P| {
        p.g("collections", "OrderedDict")
            .op(&[EMPTY_TUPLE, REDUCE])
            .g("mylib", "make")
            .op(&[EMPTY_TUPLE, REDUCE])
            .g("collections", "OrderedDict")
            .op(&[EMPTY_TUPLE, NEWOBJ])
            .s("pid")
            .op(&[BINPERSID])
            .g("collections", "OrderedDict")
    };
    assert_eq!(
        matches(objects, "made:collections.OrderedDict"),
        [true, false, true, false, false]
    );
    assert_eq!(
        matches(objects, "instance"),
        [true, false, true, true, false]
    );
    assert_eq!(
        matches(objects, "persistent"),
        [false, false, false, true, false]
    );
}

#[test]
fn a_value_traces_back_to_the_catalogue_through_calls_and_tuples() {
    with_items(
        &ml(),
        |p| {
            p.g("posix", "system")
                .g("builtins", "getattr")
                .g("posix", "system")
                .s("x")
                .op(&[TUPLE2, REDUCE])
                .g("mylib", "make")
                .op(&[MARK])
                .g("posix", "system")
                .op(&[TUPLE, TUPLE1, REDUCE])
                .g("mylib", "make")
                .op(&[EMPTY_TUPLE, REDUCE])
                .op(&[EMPTY_LIST])
                .g("posix", "system")
                .op(&[APPEND])
        },
        |m, j, _, vs| {
            let d: Vec<bool> = vs.iter().map(|v| dangerous_value(m, j, *v, 0)).collect();
            assert_eq!(d, [true, true, true, false, true]);
            // Out of visits: nothing is dangerous any more (it only picks CRITICAL over HIGH).
            j.steps.set(0);
            assert!(!dangerous_value(m, j, vs[0], 0));
        },
    );
}
