//! The behaviour rules on hand-built pickles: each class of allowed-type gadget (issue 14) is
//! refused by the `ml` profile, and its benign twin is not.

use crate::policy::{Mode, Policy};
use crate::report::Report;

use super::testing::*;

fn assert_refused(data: &[u8], says: &str) {
    let r = scan(data);
    assert!(!r.is_safe, "should not be safe: {:#?}", r.findings);
    let text: Vec<&str> = r.findings.iter().map(|f| f.description.as_str()).collect();
    assert!(
        text.iter().any(|d| d.contains(says)),
        "no finding says {says:?}: {text:#?}"
    );
}

fn assert_safe(data: &[u8]) {
    let r = scan(data);
    assert!(r.is_safe, "should be safe: {:#?}", r.findings);
}

/// `copyreg._reconstructor(cls, object, None)`: an instance of `cls` without running code.
fn instance(p: P, module: &str, name: &str) -> P {
    p.g("copyreg", "_reconstructor")
        .op(&[MARK])
        .g(module, name)
        .g("builtins", "object")
        .op(&[NONE, TUPLE, REDUCE])
}

const SCIPY_NORM_TEMPLATE: &str = "\ndef _parse_args(self,  loc=0, scale=1):\n    return (), loc, scale\n\ndef _parse_args_rvs(self,  loc=0, scale=1, size=None):\n    return self._argcheck_rvs( loc, scale, size=size)\n\ndef _parse_args_stats(self,  loc=0, scale=1, moments='mv'):\n    return (), loc, scale, moments\n";

#[test]
fn class1_build_into_a_setstate_that_executes_state() {
    let dist = |template: &str| {
        instance(P::new(), "scipy.stats._continuous_distns", "norm_gen")
            .op(&[EMPTY_DICT])
            .s("_parse_arg_template")
            .s(template)
            .op(&[SETITEM, BUILD])
            .done()
    };
    assert_safe(&dist(SCIPY_NORM_TEMPLATE));
    let evil = SCIPY_NORM_TEMPLATE.replace(
        "return (), loc, scale\n",
        "return __import__('os').system('touch x')\n",
    );
    assert_refused(&dist(&evil), "_parse_arg_template");
    // statsmodels' ModelData re-evaluates the stored formula when this key is present.
    let model = instance(P::new(), "statsmodels.base.data", "ModelData")
        .op(&[EMPTY_DICT, MARK])
        .s("restore_design_info")
        .i(1)
        .s("formula")
        .s("y ~ I(__import__('os').system('id'))")
        .op(&[SETITEMS, BUILD])
        .done();
    assert_refused(&model, "restore_design_info");
    let newer = instance(P::new(), "statsmodels.base.data", "ModelData")
        .op(&[EMPTY_DICT, MARK])
        .s("restore_model_spec")
        .i(1)
        .s("formula")
        .s("y ~ I(__import__('os').system('id'))")
        .op(&[SETITEMS, BUILD])
        .done();
    assert_refused(&newer, "restore_model_spec");
}

#[test]
fn class2_newobj_into_a_new_that_sympifies() {
    let symbol = |name: &str| {
        P::new()
            .g("sympy.core.symbol", "Symbol")
            .op(&[MARK])
            .s(name)
            .op(&[TUPLE, NEWOBJ])
            .done()
    };
    assert_safe(&symbol("x"));
    assert_refused(
        &symbol("__import__('os').system('touch x')"),
        "not of the `expr` grammar",
    );
    // The same string through a partial of getattr(Cls, '__new__'), as sympy pickles numbers.
    let partial = P::new()
        .g("functools", "partial")
        .op(&[MARK])
        .g("builtins", "getattr")
        .op(&[MARK])
        .g("sympy.core.numbers", "Float")
        .s("__new__")
        .op(&[TUPLE, REDUCE, TUPLE, REDUCE])
        .op(&[MARK])
        .g("sympy.core.numbers", "Float")
        .s("exec('import os')")
        .op(&[TUPLE, REDUCE])
        .done();
    assert_refused(&partial, "expr");
}

#[test]
fn class3_reconstructor_runs_the_base_init() {
    let build = |base: (&str, &str), state: &str| {
        let mut p = P::new()
            .g("copyreg", "_reconstructor")
            .op(&[MARK])
            .g("collections", "OrderedDict")
            .g(base.0, base.1);
        p = p.s(state);
        p.op(&[TUPLE, REDUCE]).done()
    };
    // A base whose __init__ is not granted `init` (it has `new` and `build`).
    assert_refused(
        &build(
            ("sklearn.linear_model._logistic", "LogisticRegression"),
            "/tmp/x",
        ),
        "does not allow `init`",
    );
    assert_refused(
        &build(("pathlib", "Path"), "/tmp/x"),
        "does not allow `init`",
    );
    // dict.__init__(obj, state) is the default behaviour.
    let ok = P::new()
        .g("copyreg", "_reconstructor")
        .op(&[MARK])
        .g("collections", "OrderedDict")
        .g("builtins", "dict")
        .op(&[EMPTY_DICT, TUPLE, REDUCE])
        .done();
    assert_safe(&ok);
}

#[test]
fn class4_setitems_on_an_object_that_is_not_a_dict() {
    let matrix = P::new()
        .g("sympy.matrices.dense", "MutableDenseMatrix")
        .op(&[EMPTY_TUPLE, NEWOBJ, MARK])
        .i(0)
        .s("__import__('os').system('id')")
        .op(&[SETITEMS])
        .done();
    assert_refused(&matrix, "does not allow `setitem`");
    let od = P::new()
        .g("collections", "OrderedDict")
        .op(&[EMPTY_TUPLE, REDUCE, MARK])
        .s("a")
        .i(1)
        .op(&[SETITEMS])
        .done();
    assert_safe(&od);
}

#[test]
fn class5_amplifiers_take_exactly_their_callables() {
    let randomstate = |module: &str, name: &str| {
        P::new()
            .g("numpy.random._pickle", "__randomstate_ctor")
            .op(&[MARK])
            .s("MT19937")
            .g(module, name)
            .op(&[TUPLE, REDUCE])
            .done()
    };
    assert_safe(&randomstate("numpy.random._pickle", "__bit_generator_ctor"));
    // A callable the profile allows as a value (and one it allows to be called) is not the
    // bit-generator constructor.
    assert_refused(&randomstate("numpy", "float64"), "rule");
    assert_refused(&randomstate("numpy", "dtype"), "rule");
    let create_array = |module: &str, name: &str| {
        P::new()
            .g("dill._dill", "_create_array")
            .op(&[MARK])
            .g(module, name)
            .op(&[MARK])
            .s("touch x")
            .op(&[TUPLE, EMPTY_TUPLE, NONE, TUPLE, REDUCE])
            .done()
    };
    assert!(!scan(&create_array("os", "system")).is_safe);
    assert_refused(&create_array("numpy", "dtype"), "rule");
    // partial of a function the profile allows only as a value.
    let partial = P::new()
        .g("functools", "partial")
        .g("numpy", "float64")
        .op(&[TUPLE1, REDUCE])
        .op(&[EMPTY_TUPLE, REDUCE])
        .done();
    assert_refused(&partial, "rule");
}

#[test]
fn class6_stored_functions_are_calls() {
    let transformer = |module: &str, name: &str| {
        instance(
            P::new(),
            "sklearn.preprocessing._function_transformer",
            "FunctionTransformer",
        )
        .op(&[EMPTY_DICT, MARK])
        .s("func")
        .g(module, name)
        .s("kw_args")
        .op(&[EMPTY_DICT])
        .s("file")
        .s("/tmp/pickleguard-marker")
        .op(&[SETITEM, SETITEMS, BUILD])
        .done()
    };
    assert_safe(&transformer("numpy", "log1p"));
    assert!(!scan(&transformer("builtins", "open")).is_safe);
    assert!(!scan(&transformer("numpy", "save")).is_safe);
    // A class the profile allows only to be rebuilt is not a function to store.
    assert_refused(
        &transformer("sklearn.preprocessing._data", "StandardScaler"),
        "stored, it is called later",
    );
}

#[test]
fn class7_bound_methods_of_allowed_objects_need_their_own_grant() {
    let called = P::new().g("builtins", "getattr").op(&[MARK]);
    let called = instance(
        called,
        "sklearn.linear_model._logistic",
        "LogisticRegression",
    )
    .s("fit")
    .op(&[TUPLE, REDUCE, EMPTY_TUPLE, REDUCE, POP, NONE])
    .done();
    assert_refused(&called, "does not allow");
    // An enum member by name is a value.
    let member = P::new()
        .g("builtins", "getattr")
        .op(&[MARK])
        .g("re", "RegexFlag")
        .s("IGNORECASE")
        .op(&[TUPLE, REDUCE])
        .done();
    assert_safe(&member);
    let called_member = P::new()
        .g("builtins", "getattr")
        .op(&[MARK])
        .g("re", "RegexFlag")
        .s("IGNORECASE")
        .op(&[TUPLE, REDUCE, EMPTY_TUPLE, REDUCE])
        .done();
    assert!(!scan(&called_member).is_safe);
}

#[test]
fn setitem_keys_naming_special_methods_are_refused() {
    // OrderedDict (and transformers' ModelOutput, whose __setitem__ also sets the attribute)
    // take SETITEMS; a key naming a special method would plant it.
    let od = P::new()
        .g("collections", "OrderedDict")
        .op(&[EMPTY_TUPLE, REDUCE, MARK])
        .s("__reduce_ex__")
        .i(1)
        .op(&[SETITEMS])
        .done();
    assert_refused(&od, "names a special method");
    // Past the items a node keeps, too.
    let mut late = P::new()
        .g("collections", "OrderedDict")
        .op(&[EMPTY_TUPLE, REDUCE, MARK]);
    for i in 0..40u8 {
        late = late.s(&format!("k{i}")).i(i);
    }
    let late = late.s("__reduce_ex__").i(1).op(&[SETITEMS]).done();
    assert_refused(&late, "names a special method");
    let data_key = P::new()
        .g("collections", "OrderedDict")
        .op(&[EMPTY_TUPLE, REDUCE, MARK])
        .s("__doc__x")
        .i(1)
        .op(&[SETITEMS])
        .done();
    assert_safe(&data_key);
}

#[test]
fn bound_methods_of_plain_values_are_values_not_calls() {
    // pickle.dumps("a,b".split): getattr('a,b', 'split'), stored.
    let split = P::new()
        .g("builtins", "getattr")
        .s("a,b")
        .s("split")
        .op(&[b'\x86', REDUCE])
        .done();
    assert_safe(&split);
    // The same bound method called while loading is a callable made at load time.
    let called = P::new()
        .g("builtins", "getattr")
        .s("a,b")
        .s("split")
        .op(&[b'\x86', REDUCE, EMPTY_TUPLE, REDUCE])
        .done();
    assert_refused(&called, "made while loading");
    // A dunder, or a receiver that is not plain data, reaches what the policy cannot name.
    let dunder = P::new()
        .g("builtins", "getattr")
        .s("a,b")
        .s("__class__")
        .op(&[b'\x86', REDUCE])
        .done();
    assert!(!scan(&dunder).is_safe);
    let object = P::new()
        .g("builtins", "getattr")
        .op(&[MARK])
        .g("pathlib", "PosixPath")
        .s("/tmp/x")
        .op(&[TUPLE1, REDUCE])
        .s("touch")
        .op(&[TUPLE, REDUCE])
        .done();
    assert!(!scan(&object).is_safe);
}

#[test]
fn dill_names_only_plain_builtin_types() {
    for name in ["int", "slice", "NoneType"] {
        let p = P::new()
            .g("dill._dill", "_load_type")
            .s(name)
            .op(&[TUPLE1, REDUCE])
            .done();
        assert_safe(&p);
    }
    for name in ["CodeType", "FunctionType", "type"] {
        let p = P::new()
            .g("dill._dill", "_load_type")
            .s(name)
            .op(&[TUPLE1, REDUCE])
            .done();
        assert!(!scan(&p).is_safe, "_load_type({name:?}) must not be safe");
    }
}

/// A global the scan accepts by its arguments but a name-only `find_class` refuses is noted
/// (RUNTIME_STRICTER, severity SAFE: the verdict does not change); one the name alone allows
/// is not, and an unsafe report gets no notes.
#[test]
fn name_only_refusals_are_noted_on_safe_reports() {
    use crate::report::{FindingType, Severity};
    let policy = Policy::new(Mode::Ml);
    let notes = |r: &Report| {
        r.findings
            .iter()
            .filter(|f| f.kind == FindingType::RuntimeStricter)
            .map(|f| {
                (
                    f.module.clone().unwrap_or_default(),
                    f.name.clone().unwrap_or_default(),
                    f.severity,
                )
            })
            .collect::<Vec<_>>()
    };
    let split = b"\x80\x02c__builtin__\ngetattr\nq\x00X\x03\x00\x00\x00a bq\x01X\x05\x00\x00\x00splitq\x02\x86q\x03Rq\x04.";
    let r = crate::analyze_pickle(split, &policy);
    assert!(r.is_safe && r.risk_level == Severity::Safe, "{r:?}");
    assert_eq!(
        notes(&r),
        vec![("__builtin__".into(), "getattr".into(), Severity::Safe)]
    );
    assert!(policy.judge_name_only("__builtin__", "getattr").refused);
    let r = crate::scan_bytes(split, &policy);
    assert_eq!(notes(&r).len(), 1, "{r:?}");
    let td = b"\x80\x02cdatetime\ntimedelta\nq\x00K\x02K\x00K\x00\x87q\x01Rq\x02.";
    let r = crate::analyze_pickle(td, &policy);
    assert!(r.is_safe && r.findings.is_empty(), "{r:?}");
    // getattr on something the policy does not grant: unsafe, and no note on top.
    let bad = P::new()
        .g("builtins", "getattr")
        .g("os", "path")
        .s("join")
        .op(b"\x86R.")
        .0;
    let r = crate::analyze_pickle(&bad, &policy);
    assert!(!r.is_safe && notes(&r).is_empty(), "{r:?}");
}

#[test]
fn memo_index_beyond_the_stream_is_refused_even_when_the_stream_breaks_after_it() {
    let put = |idx: u32| {
        let mut v = P::new().op(b"]r").0;
        v.extend_from_slice(&idx.to_le_bytes());
        v
    };
    let huge = (crate::machine::MEMO_BOMB_BYTES / 16 + 1) as u32;
    let mut complete = put(huge);
    complete.push(b'.');
    assert_refused(&complete, "memo index");
    // Without the PUT's effect, a stream that breaks before any import is "not a pickle".
    let mut broken = put(huge);
    broken.push(0xff);
    let r = scan(&broken);
    assert_eq!(r.format, "raw_pickle");
    assert!(!r.is_safe);
    // An index a pickler could write: one per byte before it, or one whose table is small.
    let mut small = put(huge / 2);
    small.push(b'.');
    assert_safe(&small);
    assert!(!crate::machine::memo_bomb(huge as u64, huge as usize));
    assert!(crate::machine::memo_bomb(huge as u64, huge as usize - 1));
}
