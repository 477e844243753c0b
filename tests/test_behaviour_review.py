"""tools/review_behaviour.py: what the profile's classes run when a pickle rebuilds them.

The review is run here against the installed libraries (not read back from the checked-in
report), so the known gadgets are found by the tool itself; the checked-in
policies/behaviour_review.json is checked for shape and for being the tool's output format.
"""
from __future__ import annotations

import importlib.util
import json
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / "tools" / "review_behaviour.py"
REPORT = ROOT / "policies" / "behaviour_review.json"
PROFILES = (ROOT / "policies" / "ml.toml", ROOT / "policies" / "ml_corpus.toml")


def _tool():
    spec = importlib.util.spec_from_file_location("pg_review_behaviour", TOOL)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


rb = _tool()


@pytest.fixture(scope="module")
def follower():
    warnings.simplefilter("ignore")
    return rb.Follower(4)


def _sinks(cls, method, follower):
    methods = rb.review_class(cls, follower)
    assert method in methods, "%s.%s is not reported as custom: %s" % (
        cls.__qualname__, method, sorted(methods))
    return methods[method]


# --- (1) known gadgets are found -------------------------------------------------------------

def test_scipy_distribution_setstate_reaches_exec(follower):
    sd = pytest.importorskip("scipy.stats._distn_infrastructure")
    cd = pytest.importorskip("scipy.stats._continuous_distns")
    # rv_generic's own _attach_methods is abstract: the exec is reached through the concrete
    # distribution classes, whose _attach_methods `self.` resolves to.
    assert "exec" not in _sinks(sd.rv_generic, "__setstate__", follower).get("sinks", {})
    for cls in (sd.rv_continuous, sd.rv_discrete, cd.norm_gen, cd.gamma_gen):
        m = _sinks(cls, "__setstate__", follower)
        assert m["defined_in"] == "scipy.stats._distn_infrastructure.rv_generic"
        assert m["kind"] == "python"
        assert "exec" in m.get("sinks", {}), (cls, m)
        path = m["sinks"]["exec"]
        assert path[0].endswith("rv_generic.__setstate__") and path[-1] == "builtins.exec"
        assert any("_attach_argparser_methods" in p for p in path), path


def test_sympy_new_reaches_sympify(follower):
    sympy = pytest.importorskip("sympy")
    for cls in (sympy.Tuple, sympy.FiniteSet, sympy.sin, sympy.Max):
        m = _sinks(cls, "__new__", follower)
        assert "sympify" in m.get("sinks", {}), (cls, m)
        assert m["sinks"]["sympify"][-1] == "sympy.core.sympify.sympify"
    # Basic and Symbol define their own __new__ (custom, so it must be reviewed) even where
    # it does not sympify a string argument itself.
    for cls in (sympy.Basic, sympy.Symbol):
        m = _sinks(cls, "__new__", follower)
        assert m["kind"] == "python" and m["defined_in"].startswith("sympy.core.")


def test_sympy_matrix_setitem_reaches_sympify(follower):
    pytest.importorskip("sympy")
    from sympy.matrices.dense import MutableDenseMatrix
    from sympy.matrices.sparse import MutableSparseMatrix

    for cls in (MutableDenseMatrix, MutableSparseMatrix):
        m = _sinks(cls, "__setitem__", follower)
        assert "sympify" in m.get("sinks", {}), (cls, m)


def test_statsmodels_formula_setstate_is_found(follower):
    smd = pytest.importorskip("statsmodels.base.data")
    for cls in (smd.ModelData, smd.PandasData):
        m = _sinks(cls, "__setstate__", follower)
        assert "formula" in m.get("sinks", {}), (cls, m)
        assert any("FormulaManager" in p for p in m["sinks"]["formula"])


def test_patsy_and_formulaic_parsers_are_sinks():
    patsy = pytest.importorskip("patsy")
    assert rb.sink_of(patsy.dmatrices) == "formula"
    assert rb.sink_of(patsy.ModelDesc.from_formula) == "formula"
    assert rb.sink_of(patsy.EvalEnvironment.eval) == "formula"
    formulaic = pytest.importorskip("formulaic")
    assert rb.sink_of(formulaic.model_matrix) == "formula"


def test_init_opening_a_path_for_writing_is_found(follower):
    import logging
    import multiprocessing.connection
    import zipfile

    for cls in (logging.FileHandler, zipfile.ZipFile):
        m = _sinks(cls, "__init__", follower)
        assert "open" in m.get("sinks", {}), (cls, m)
    m = _sinks(multiprocessing.connection.Listener, "__init__", follower)
    assert "os" in m.get("sinks", {}) or "open" in m.get("sinks", {}), m


def test_compiled_methods_are_opaque_not_clean(follower):
    import collections

    np = pytest.importorskip("numpy")
    m = rb.review_class(collections.OrderedDict, follower)
    assert m["__setitem__"]["kind"] == "opaque"
    m = rb.review_class(np.ndarray, follower)
    assert m["__setstate__"]["kind"] == "opaque" and "sinks" not in m["__setstate__"]


def test_default_behaviour_is_not_custom():
    class Plain:
        pass

    class D(dict):
        pass

    class L(list):
        pass

    for cls in (Plain, D, L):
        assert rb.custom_methods(cls) == {}, cls


# --- (3) a new custom __setstate__ is noticed ------------------------------------------------

class ReviewedBase:
    """Stands for a library class whose behaviour was reviewed: default pickling."""


class NewVersion(ReviewedBase):
    """The same class in a "new library version" that adds a __setstate__ which re-parses
    its state."""

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.compiled = compile(state["expr"], "<state>", "eval")


def test_new_custom_setstate_is_noticed(follower):
    before = rb.review_class(ReviewedBase, follower)
    after = rb.review_class(NewVersion, follower)
    assert "__setstate__" not in before
    m = after["__setstate__"]
    assert m["defined_in"].endswith("NewVersion") and m["kind"] == "python"
    assert m["sinks"]["compile"][-1] == "builtins.compile"


def test_new_custom_setstate_is_noticed_in_a_report(tmp_path):
    """Through the whole report: a profile naming the class gets the method and its sink."""
    prof = tmp_path / "p.toml"
    prof.write_text('version = 1\n[[allow]]\nmodule = "%s"\nnew = ["NewVersion", "ReviewedBase"]\n'
                    % __name__)
    rep = rb.build_report([prof], walk=False)
    key = "%s.NewVersion" % __name__
    assert rep["classes"][key]["methods"]["__setstate__"]["sinks"]["compile"]
    assert rep["classes"][key]["named_by_profile"] is True
    assert rep["classes"]["%s.ReviewedBase" % __name__]["methods"] == {}
    gaps = review_gaps(rep, rb.read_profile(prof))
    assert ("%s:NewVersion" % __name__, "build", "__setstate__") in gaps


# --- (2) every granted op on a custom method is reviewed in the profile ----------------------

def review_gaps(report: dict, grants) -> list:
    """(module:name, op, method) for every operation a profile grants on a class whose
    method for that op is custom or opaque, without `reviewed` naming it and a `note`."""
    by_alias: dict = {}
    for key, c in report["classes"].items():
        by_alias[key] = c
        for alias in c.get("reachable_as", ()):
            by_alias[alias] = c
    gaps = []
    for g in grants:
        if g.op == "value":
            continue
        if g.name == "*" or g.module.endswith(".*"):
            prefix = g.module[:-2] if g.module.endswith(".*") else g.module
            exact = not g.module.endswith(".*")
            targets = [(k, c) for k, c in by_alias.items()
                       if (k.rpartition(".")[0] == prefix if exact
                           else k.startswith(prefix + ".") or k.rpartition(".")[0] == prefix)]
        else:
            c = by_alias.get(g.module + "." + g.name)
            targets = [(g.module + "." + g.name, c)] if c is not None else []
        for key, c in targets:
            for method in rb.OP_METHODS[g.op]:
                if method in c["methods"] and not (method in g.reviewed and g.note):
                    gaps.append((key.rpartition(".")[0] + ":" + key.rpartition(".")[2]
                                 if g.name != "*" and not g.module.endswith(".*")
                                 else g.module + ":" + key, g.op, method))
    return sorted(set(gaps))


def test_profile_reviews_every_custom_method_it_grants():
    """Every operation the shipped profiles grant on a class whose method for it (`call`:
    __new__ and __init__; `new`: __new__; `build`: __setstate__; ...) is custom or compiled
    names that method in `reviewed` and carries a note."""
    warnings.simplefilter("ignore")
    grants = []
    for p in PROFILES:
        grants.extend(rb.read_profile(p))
    report = rb.build_report(PROFILES, walk=True, module_limit=400)
    gaps = review_gaps(report, grants)
    assert not gaps, "%d unreviewed grants, e.g. %s" % (len(gaps), gaps[:20])


class ConstructorOpensAFile:
    """A "library" class whose constructor does harm with some arguments."""

    def __init__(self, path):
        self.fh = open(path, "w")


def test_call_and_new_grants_need_a_review_of_the_constructor():
    """A `call` or `new` grant on a class with a custom constructor is a gap until the
    profile names the constructor in `reviewed` with a note; `value` is not."""
    grants = rb._grants_of("p.toml", {"module": __name__, "name": "ConstructorOpensAFile",
                                      "ops": ["call", "new", "value"]}, 2)
    rep = {"classes": {"%s.ConstructorOpensAFile" % __name__: {
        "methods": rb.review_class(ConstructorOpensAFile, rb.Follower(4))}}}
    assert "open" in rep["classes"]["%s.ConstructorOpensAFile" % __name__]["methods"][
        "__init__"]["sinks"]
    gaps = review_gaps(rep, list(grants))
    assert ("%s:ConstructorOpensAFile" % __name__, "call", "__init__") in gaps
    assert not any(op == "value" for _, op, _ in gaps)
    reviewed = rb._grants_of("p.toml", {"module": __name__, "name": "ConstructorOpensAFile",
                                        "ops": ["call"], "reviewed": ["__init__"],
                                        "note": "opens its argument for writing"}, 2)
    assert review_gaps(rep, list(reviewed)) == []
    # A review without a note is no review.
    silent = rb._grants_of("p.toml", {"module": __name__, "name": "ConstructorOpensAFile",
                                      "ops": ["call"], "reviewed": ["__init__"]}, 2)
    assert review_gaps(rep, list(silent)) != []


def test_one_definition_of_default_behaviour():
    """gen_profile (which grants) and the review (which checks) decide "default" with the
    same function: builtin data-type methods are default in both, a library override is
    custom in both."""
    gp = _load_tool("gen_profile")
    import collections

    class Bytes(bytearray):
        pass

    for cls, default in ((Bytes, ("append", "extend", "__new__", "__init__")),
                         (ValueError, ("__new__", "__init__", "__setstate__")),
                         (collections.deque, ())):
        facts = gp._facts_of(cls)["custom"]
        review = rb.custom_methods(cls)
        for m in gp.METHODS:
            assert (m in facts) == (m in review), (cls, m, facts, review)
        for m in default:
            assert m not in facts, (cls, m)
    assert gp.is_default_owner is rb.is_default_owner
    assert "append" in rb.custom_methods(collections.deque)


def test_gen_profile_gates_call_and_new_on_constructor_reviews():
    gp = _load_tool("gen_profile")
    from collections import defaultdict

    facts = {"custom": {"__init__": "mylib.Opener.__init__", "__new__": "mylib.Opener.__new__"},
             "mro": ["mylib.Opener", "builtins.object"]}
    unreviewed = defaultdict(set)
    ops, reviewed, _ = gp._class_ops(["call", "new", "value"], facts, unreviewed)
    assert ops == ["value"] and reviewed == []
    assert unreviewed["mylib.Opener.__init__"] == {"call"}
    assert unreviewed["mylib.Opener.__new__"] == {"call", "new"}
    # A family note covers a subclass whose method is defined at or below the family base.
    facts = {"custom": {"__new__": "mylib.Color.__new__", "__init__": "enum.Enum.__init__"},
             "mro": ["mylib.Color", "enum.Enum", "builtins.object"]}
    ops, reviewed, extra = gp._class_ops(["call"], facts, defaultdict(set))
    assert ops == ["call"] and set(reviewed) == {"mylib.Color.__new__", "enum.Enum.__init__"}
    assert all(extra["review_notes"].values())
    # ... but not a method some other class in the MRO defines above the base.
    facts = {"custom": {"__new__": "mylib.Mixin.__new__"},
             "mro": ["mylib.Color", "enum.Enum", "mylib.Mixin", "builtins.object"]}
    assert gp._class_ops(["new"], facts, defaultdict(set))[0] == []


def test_enum_family_review_holds():
    """The enum family note says every enum's __new__ is Enum.__new__ (EnumType installs
    it): true for every enum class the profiles grant `call` or `new`."""
    import enum

    seen = 0
    for p in PROFILES:
        for g in rb.read_profile(p):
            if g.op not in ("call", "new"):
                continue
            obj = rb.resolve(g.module, g.name)
            if isinstance(obj, type) and issubclass(obj, enum.Enum):
                assert obj.__new__ is enum.Enum.__new__, obj
                seen += 1
    assert seen >= 10


def _load_tool(name):
    spec = importlib.util.spec_from_file_location("pg_" + name, ROOT / "tools" / (name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


# --- the checked-in report ------------------------------------------------------------------

def test_checked_in_report_is_the_tools_format():
    rep = json.loads(REPORT.read_text())
    assert rep["tool"] == "tools/review_behaviour.py"
    assert set(rep["profiles"]) == {"ml.toml", "ml_corpus.toml"}
    for lib in ("numpy", "scipy", "pandas", "sklearn", "torch", "sympy", "statsmodels"):
        assert lib in rep["environment"]["versions"], lib
    for key, c in rep["classes"].items():
        for method, m in c["methods"].items():
            assert method in rb.METHODS, (key, method)
            assert m["kind"] in ("python", "opaque"), (key, method)
            if m["kind"] == "opaque":
                assert "sinks" not in m, (key, method)
    # The gadgets of issue 14 stand in it.
    scipy_ss = rep["classes"]["scipy.stats._distn_infrastructure.rv_continuous"]["methods"]
    assert "exec" in scipy_ss["__setstate__"]["sinks"]
    assert json.dumps(rep, indent=1, sort_keys=True) + "\n" == REPORT.read_text()


def test_profile_reader_reads_both_formats(tmp_path):
    v1 = tmp_path / "v1.toml"
    v1.write_text('version = 1\n[[allow]]\nmodule = "m"\nnew = ["A"]\ncall = ["f"]\nvalue = ["*"]\n')
    ops = {(g.name, g.op) for g in rb.read_profile(v1)}
    assert ops >= {("A", "new"), ("A", "build"), ("A", "init"), ("A", "setitem"),
                   ("f", "call"), ("*", "value")}
    v2 = tmp_path / "v2.toml"
    v2.write_text('version = 2\n[[allow]]\nmodule = "m"\nnames = ["A", "B"]\n'
                  'new = {args = ["int"]}\nbuild = {state = "dict"}\n'
                  'reviewed = ["__setstate__"]\nnote = "sets attributes only"\n')
    grants = rb.read_profile(v2)
    assert {(g.name, g.op) for g in grants} == {("A", "new"), ("B", "new"), ("A", "build"),
                                                ("B", "build")}
    assert all(g.reviewed == ("__setstate__",) and g.note for g in grants)
    v2_list = tmp_path / "v2l.toml"
    v2_list.write_text('version = 2\n[[allow]]\nmodule = "m"\nname = "C"\nops = ["new", "build"]\n')
    assert {(g.name, g.op) for g in rb.read_profile(v2_list)} == {("C", "new"), ("C", "build")}
