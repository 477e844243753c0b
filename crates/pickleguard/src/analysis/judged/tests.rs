//! Which global a value stands for, and what the judging cache hands out.

use super::super::testing::*;
use super::*;

/// The value a pickle ends with, resolved.
fn resolve(data: &[u8]) -> Option<(String, GlobalVerdict)> {
    judged(data, &ml(), |m, j, _| {
        resolved_global(m, j, m.result.expect("a result"), 0)
            .map(|(s, v)| (s.into_owned(), (*v).clone()))
    })
}

#[test]
fn a_global_is_shown_as_the_stream_spells_it_and_judged_by_its_normalised_name() {
    let (shown, v) = resolve(&P::new().g("posix", "system").done()).unwrap();
    assert_eq!(shown, "posix.system");
    assert_eq!(v.qualname(), "os.system");
    assert!(v.danger.is_some());
}

#[test]
fn a_global_made_at_load_time_stands_for_no_name() {
    // EXT1: whatever copyreg's registry maps the code to.
    assert!(resolve(&P::new().op(&[0x82, 1]).done()).is_none());
    // STACK_GLOBAL of a module name a call returns.
    let computed = P::new()
        .g("builtins", "str")
        .s("os")
        .op(&[TUPLE1, REDUCE])
        .s("system")
        .op(&[0x93])
        .done();
    assert!(resolve(&computed).is_none());
}

#[test]
fn a_legacy_torch_module_persistent_id_stands_for_its_class() {
    let pid = |tag: &str| {
        P::new()
            .op(&[MARK])
            .s(tag)
            .g("torch.nn.modules.linear", "Linear")
            .s("linear.py")
            .s("class Linear: ...")
            .op(&[TUPLE, BINPERSID])
            .done()
    };
    let (shown, v) = resolve(&pid("module")).unwrap();
    assert_eq!(shown, "torch.nn.modules.linear.Linear");
    assert_eq!(v.qualname(), "torch.nn.modules.linear.Linear");
    assert!(resolve(&pid("storage")).is_none());
}

#[test]
fn a_partial_stands_for_its_function_unless_bound_arguments_bypass_the_rules() {
    let partial = |func: (&str, &str), bound: bool| {
        let p = P::new()
            .g("functools", "partial")
            .op(&[MARK])
            .g(func.0, func.1);
        let p = if bound { p.s("x") } else { p };
        p.op(&[TUPLE, REDUCE]).done()
    };
    let (shown, v) = resolve(&partial(("numpy", "log1p"), false)).unwrap();
    assert_eq!(shown, "functools.partial(numpy.log1p)");
    assert_eq!(v.qualname(), "numpy.log1p");
    // Bound arguments of a function without argument rules are its data.
    assert!(resolve(&partial(("numpy", "log1p"), true)).is_some());
    // getattr has rules: an argument bound in the partial is not checked by them.
    assert!(resolve(&partial(("builtins", "getattr"), false)).is_some());
    assert!(resolve(&partial(("builtins", "getattr"), true)).is_none());
}

#[test]
fn a_partial_rebuilt_by_build_stands_for_the_function_of_its_state() {
    // partial(numpy.log1p), then BUILD (getattr, ('x',), None, None): the state's function.
    let data = P::new()
        .g("functools", "partial")
        .g("numpy", "log1p")
        .op(&[TUPLE1, REDUCE, MARK])
        .g("builtins", "getattr")
        .op(&[EMPTY_TUPLE, NONE, NONE, TUPLE, BUILD])
        .done();
    let (shown, _) = resolve(&data).unwrap();
    assert_eq!(shown, "functools.partial(builtins.getattr)");
    let bound = P::new()
        .g("functools", "partial")
        .g("numpy", "log1p")
        .op(&[TUPLE1, REDUCE, MARK])
        .g("builtins", "getattr")
        .s("x")
        .op(&[TUPLE1, NONE, NONE, TUPLE, BUILD])
        .done();
    assert!(resolve(&bound).is_none());
}

#[test]
fn getattr_reaches_the_dotted_name_with_the_grants_the_pickle_needs() {
    let attr = |module: &str, name: &str, a: &str| {
        P::new()
            .g("builtins", "getattr")
            .g(module, name)
            .s(a)
            .op(&[TUPLE2, REDUCE])
            .done()
    };
    // `Cls.__new__` of a type granted `new`: callable, with the type's schema.
    let (shown, v) = resolve(&attr("sympy.core.numbers", "Float", "__new__")).unwrap();
    assert_eq!(shown, "sympy.core.numbers.Float.__new__");
    assert!(
        v.allowed & uses::NEW != 0 && v.allowed & uses::CALL != 0,
        "{v:?}"
    );
    assert!(v.behaviour.is_some());
    // A function is not a type: its `__new__` gets no grant.
    let (_, v) = resolve(&attr("numpy", "log1p", "__new__")).unwrap();
    assert_eq!(v.allowed & (uses::NEW | uses::CALL), 0, "{v:?}");
    // An enum member by a public name is a value; a private name is not a member.
    let (shown, v) = resolve(&attr("re", "RegexFlag", "IGNORECASE")).unwrap();
    assert_eq!(shown, "re.RegexFlag.IGNORECASE");
    assert!(v.allowed & uses::VALUE != 0);
    let (_, v) = resolve(&attr("re", "RegexFlag", "_missing_")).unwrap();
    assert_eq!(v.allowed & uses::VALUE, 0, "{v:?}");
    // No name is this long: not resolved at all.
    let long = "a".repeat(MAX_NAME + 1);
    assert!(resolve(&attr("re", "RegexFlag", &long)).is_none());
    assert!(resolve(&attr("re", "RegexFlag", &"a".repeat(MAX_NAME))).is_some());
}

#[test]
fn getattr_of_an_object_is_the_attribute_of_the_class_that_made_it() {
    let data = P::new()
        .g("builtins", "getattr")
        .g("sklearn.linear_model._logistic", "LogisticRegression")
        .op(&[EMPTY_TUPLE, NEWOBJ])
        .s("fit")
        .op(&[TUPLE2, REDUCE])
        .done();
    let (shown, v) = resolve(&data).unwrap();
    assert_eq!(
        shown,
        "<sklearn.linear_model._logistic.LogisticRegression object>.fit"
    );
    assert_eq!(
        v.qualname(),
        "sklearn.linear_model._logistic.LogisticRegression.fit"
    );
    // Only getattr walks attributes: another call of two arguments stands for nothing.
    let other = P::new()
        .g("builtins", "max")
        .g("re", "RegexFlag")
        .s("IGNORECASE")
        .op(&[TUPLE2, REDUCE])
        .done();
    assert!(resolve(&other).is_none());
}

#[test]
fn the_maker_of_an_object_is_the_class_it_is_an_instance_of() {
    let maker_of = |data: &[u8]| {
        judged(data, &ml(), |m, j, _| {
            let Some(Value::Call(c)) = m.result else {
                panic!("not a call: {:?}", m.result)
            };
            maker(m, j, c, 0).map(|(s, v)| (s.into_owned(), v.qualname().to_string()))
        })
    };
    let newobj = P::new()
        .g("collections", "OrderedDict")
        .op(&[EMPTY_TUPLE, NEWOBJ])
        .done();
    let od = Some((
        "collections.OrderedDict".to_string(),
        "collections.OrderedDict".to_string(),
    ));
    assert_eq!(maker_of(&newobj), od);
    let reconstructed = P::new()
        .g("copyreg", "_reconstructor")
        .op(&[MARK])
        .g("collections", "OrderedDict")
        .g("builtins", "object")
        .op(&[NONE, TUPLE, REDUCE])
        .done();
    assert_eq!(maker_of(&reconstructed), od);
    let newobj_helper = P::new()
        .g("copyreg", "__newobj__")
        .g("collections", "OrderedDict")
        .op(&[TUPLE1, REDUCE])
        .done();
    assert_eq!(maker_of(&newobj_helper), od);
    // `getattr(Cls, '__new__')(Cls)` makes a Cls.
    let via_new = P::new()
        .g("builtins", "getattr")
        .g("sympy.core.numbers", "Float")
        .s("__new__")
        .op(&[TUPLE2, REDUCE])
        .g("sympy.core.numbers", "Float")
        .op(&[TUPLE1, REDUCE])
        .done();
    assert_eq!(
        maker_of(&via_new),
        Some((
            "sympy.core.numbers.Float".to_string(),
            "sympy.core.numbers.Float".to_string()
        ))
    );
    // A function's result: the function (a v2 entry grants ops on what it returns).
    let made = P::new()
        .g("numpy", "log1p")
        .i(1)
        .op(&[TUPLE1, REDUCE])
        .done();
    assert_eq!(
        maker_of(&made),
        Some(("numpy.log1p".to_string(), "numpy.log1p".to_string()))
    );
    // A persistent id is made by the loader's hook, not by a class of the policy.
    let pid = P::new().s("x").op(&[BINPERSID]).done();
    assert_eq!(maker_of(&pid), None);
}

#[test]
fn partials_and_codecs_bytes_are_recognised_by_their_callable() {
    let data = P::new()
        .op(&[MARK])
        .g("functools", "partial")
        .g("numpy", "log1p")
        .op(&[TUPLE1, REDUCE])
        .g("builtins", "max")
        .g("numpy", "log1p")
        .op(&[TUPLE1, REDUCE])
        .g("_codecs", "encode")
        .s("\u{e9}A")
        .s("latin1")
        .op(&[TUPLE2, REDUCE])
        .g("builtins", "str")
        .s("A")
        .op(&[TUPLE1, REDUCE, TUPLE])
        .done();
    judged(&data, &ml(), |m, j, _| {
        assert!(is_partial(m, j, 0));
        assert!(!is_partial(m, j, 1));
        assert_eq!(codecs_bytes(m, j, Value::Call(2)), Some(vec![0xe9, b'A']));
        assert_eq!(codecs_bytes(m, j, Value::Call(3)), None);
        assert_eq!(codecs_bytes(m, j, Value::None), None);
    });
}

#[test]
fn structure_walks_stop_when_their_visits_are_spent() {
    judged(&P::new().op(&[NONE]).done(), &ml(), |_, j, _| {
        j.steps.set(2);
        assert!(j.step());
        assert!(j.step());
        assert!(!j.step());
        assert!(!j.step());
    });
}

#[test]
fn enum_member_names_are_public_identifiers() {
    assert!(is_public_name("IGNORECASE"));
    assert!(is_public_name("a_1"));
    assert!(!is_public_name("_private"));
    assert!(!is_public_name("1st"));
    assert!(!is_public_name("a.b"));
    assert!(!is_public_name(""));
}
