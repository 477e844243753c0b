"""Write policies/ml_corpus.toml: exact entries, one per class or callable, with the operations
real artifacts need and the review of every custom method those operations run.

Inputs:
* tools/benign_globals.json: every global the benign corpus uses and how (tests/corpus/
  gen_benign.py -> tools/collect_globals.py);
* tools/class_facts.json: what each of those names is, found by importing it in the trusted
  environment (class or function; which of __new__, __init__, __setstate__, __setitem__,
  append, extend are custom and where they are defined), plus classes found by introspecting
  the libraries (every scikit-learn estimator, every torch.nn module, torch optimizers and
  schedulers), each with the library version;
* REVIEWS below: custom methods that were read and found not to evaluate or load their
  input, with the note that says why; STRING_SINKS: classes whose methods do parse strings,
  with the schema that makes that safe.

An operation that runs a custom method without a review is not granted (and is listed on
stderr). Names policies/ml.toml curates by hand are left to it.

    python tools/gen_profile.py --introspect   # re-import the libraries, then rewrite
    python tools/gen_profile.py --introspect --keep-missing --facts-only   # add this
                                               # environment's facts (tools/matrix.py)
    python tools/gen_profile.py                # rewrite from the checked-in facts
    python tools/gen_profile.py --check        # exit 1 if the profile is out of date
"""
from __future__ import annotations

import importlib
import json
import sys
import tomllib
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "tools" / "benign_globals.json"
FACTS = ROOT / "tools" / "class_facts.json"
CURATED = ROOT / "policies" / "ml.toml"
DST = ROOT / "policies" / "ml_corpus.toml"

sys.path.insert(0, str(Path(__file__).resolve().parent))
# One definition of "default behaviour", shared with tools/review_behaviour.py.
from behaviour_defaults import custom_methods, is_default_owner, qualname  # noqa: E402

METHODS = ("__new__", "__init__", "__setstate__", "__setitem__", "append", "extend")

# Custom methods read and found to store, copy or validate their input without evaluating,
# importing, opening or unpickling anything (defining class + method -> what it does).
REVIEWS: dict[str, str] = {
    "sklearn.base.BaseEstimator.__setstate__": "version check and warning, then __dict__.update(state)",
    "sklearn.base.BaseEstimator.__init__": "not run by pickle (no call of the class)",
    "torch.nn.modules.module.Module.__setstate__": "__dict__.update(state) and defaults for missing hook dicts",
    "torch.nn.modules.activation.MultiheadAttention.__setstate__": "sets _qkv_same_embed_dim default, then Module.__setstate__",
    "torch.nn.modules.batchnorm._NormBase.__setstate__": "Module.__setstate__ (version bookkeeping)",
    "torch.nn.modules.rnn.RNNBase.__setstate__": "__dict__ update, rebuilds _flat_weights lists from attribute names it checks against its parameters",
    "torch.nn.modules.conv._ConvNd.__setstate__": "Module.__setstate__ plus padding_mode default",
    "torch.nn.modules.transformer.TransformerEncoderLayer.__setstate__": "sets activation default (F.relu) then Module.__setstate__",
    "torch.nn.modules.transformer.TransformerEncoder.__setstate__": "Module.__setstate__",
    "torch.nn.modules.container.Sequential.__setstate__": "Module.__setstate__",
    "torch.optim.optimizer.Optimizer.__setstate__": "__dict__.update and hook defaults",
    "torch.optim.lr_scheduler.LRScheduler.__setstate__": "__dict__.update",
    "collections.OrderedDict.__setitem__": "C dict insertion keeping order",
    "collections.OrderedDict.__init__": "C: update from an iterable of pairs",
    "collections.OrderedDict.__new__": "C allocation",
    "collections.defaultdict.__init__": "stores default_factory (checked as a stored global), updates items",
    "collections.Counter.__init__": "dict update from a mapping or counts an iterable",
    "collections.ChainMap.__init__": "stores the maps list",
    "numpy.ndarray.__setstate__": "C: sets shape, dtype, flags and copies the raw buffer; object arrays take already-built objects",
    "numpy.ndarray.__new__": "C allocation from shape/dtype",
    "numpy.dtype.__setstate__": "C: byte order, fields, sizes, metadata dict",
    "numpy.dtype.__new__": "C: parses a dtype spec string (type codes, no evaluation)",
    "numpy.ma.core.MaskedArray.__setstate__": "ndarray.__setstate__ plus mask and fill value",
    "numpy.ma.core.MaskedArray.__new__": "array allocation with mask",
    "numpy.matrix.__new__": "ndarray view",
    "numpy.rec.recarray.__new__": "ndarray view",
    "numpy.random.mtrand.RandomState.__setstate__": "C: sets the bit generator state dict (integers)",
    "numpy.random._generator.Generator.__setstate__": "sets the bit generator state dict",
    "numpy.random.bit_generator.BitGenerator.__setstate__": "C: sets the state dict (integers)",
    "numpy.vectorize.__init__": "stores pyfunc (checked as a stored global) and options",
    "pandas.core.generic.NDFrame.__setstate__": "rebuilds the block manager from arrays and axes",
    "pandas.core.internals.managers.BaseBlockManager.__setstate__": "unpickles blocks from arrays and placement slices",
    "pandas.core.internals.managers.SingleBlockManager.__setstate__": "as BlockManager, one block",
    "pandas.core.internals.managers.BlockManager.__init__": "stores blocks and axes",
    "pandas.core.arrays.categorical.Categorical.__setstate__": "sets codes and dtype from arrays",
    "pandas.core.dtypes.dtypes.CategoricalDtype.__setstate__": "sets categories and ordered",
    "pandas.core.dtypes.dtypes.DatetimeTZDtype.__setstate__": "sets tz and unit",
    "pandas.core.dtypes.dtypes.IntervalDtype.__setstate__": "sets subtype and closed",
    "pandas.core.dtypes.dtypes.SparseDtype.__setstate__": "sets dtype and fill value",
    "pandas.core.dtypes.dtypes.PeriodDtype.__setstate__": "sets freq",
    "pandas.core.arrays.masked.BaseMaskedArray.__setstate__": "sets data and mask arrays",
    "pandas.core.arrays.sparse.array.SparseArray.__setstate__": "sets sparse values and index",
    "pandas.core.arrays.boolean.BooleanDtype.__setstate__": "no state",
    "scipy.sparse._base._spbase.__setstate__": "not defined by scipy (dict update)",
    "scipy.spatial._ckdtree.cKDTree.__setstate__": "C: rebuilds the tree from data arrays",
    "scipy.spatial._kdtree.KDTree.__setstate__": "cKDTree state",
    "scipy.stats._distn_infrastructure.rv_generic.__setstate__": "__dict__.update then exec of _parse_arg_template: granted only with that key in the scipy_argparser grammar (scipy's own template with identifier shapes)",
    "scipy.stats._distn_infrastructure.rv_continuous.__setstate__": "rv_generic.__setstate__",
    "scipy.stats._distn_infrastructure.rv_discrete.__setstate__": "rv_generic.__setstate__",
    "scipy.stats._multivariate.multi_rv_generic.__setstate__": "__dict__.update",
    "scipy.interpolate._interpolate.interp1d.__setstate__": "__dict__.update",
    "statsmodels.base.data.ModelData.__setstate__": "__dict__.update; with `restore_design_info` / `restore_model_spec` it re-evaluates the stored formula (patsy / FormulaManager): those keys are refused",
    "statsmodels.base.wrapper.ResultsWrapper.__setstate__": "__dict__.update",
    "statsmodels.base.model.Results.__setstate__": "__dict__.update",
    "sympy.core.basic.Basic.__setstate__": "sets _assumptions from a dict of booleans",
    "sympy.core.basic.Basic.__new__": "stores already-sympified args; strings handed to sympy classes must be of the expr grammar",
    "sympy.core.symbol.Symbol.__new__": "name string (not parsed) + assumptions; expr grammar on strings",
    "sympy.core.numbers.Float.__new__": "parses a decimal/mpf string as a number; expr grammar on strings",
    "sympy.core.numbers.Rational.__new__": "ints or a fraction string; expr grammar on strings",
    "sympy.core.numbers.Integer.__new__": "int(); expr grammar on strings",
    "sympy.core.operations.AssocOp.__new__": "strict _sympify of args (refuses strings); expr grammar on strings",
    "sympy.core.power.Pow.__new__": "strict _sympify of args; expr grammar on strings",
    "sympy.core.relational.Equality.__new__": "strict _sympify; expr grammar on strings",
    "sympy.core.function.Function.__new__": "strict sympify of args; expr grammar on strings",
    "sympy.integrals.integrals.Integral.__new__": "sympify of args: expr grammar on strings",
    "sympy.matrices.repmatrix.RepMatrix.__setstate__": "not defined (dict update)",
    "sympy.polys.domains.domain.Domain.__setstate__": "not defined",
    "lightgbm.basic.Booster.__setstate__": "loads the model from its text dump (LightGBM C parser of numbers and tree tables, no Python evaluation)",
    "lightgbm.basic.Booster.__init__": "not run by pickle",
    "xgboost.core.Booster.__setstate__": "loads the raw model bytes with the XGBoost C API (UBJSON/binary)",
    "xgboost.sklearn.XGBModel.__setstate__": "__dict__.update",
    "tokenizers.Tokenizer.__setstate__": "Rust: deserialises the tokenizer JSON (serde)",
    "tokenizers.models.Model.__setstate__": "Rust: deserialises the model JSON (serde)",
    "transformers.configuration_utils.PreTrainedConfig.__setstate__": "__dict__.update",
    "networkx.classes.graph.Graph.__setstate__": "not defined by networkx",
    "argparse.Namespace.__init__": "setattr of keyword arguments",
    "uuid.UUID.__setstate__": "sets int and is_safe",
    "urllib.parse.ParseResult.__new__": "namedtuple __new__",
    "dateutil.relativedelta.relativedelta.__init__": "not run by pickle",
    "sklearn.tree._tree.Tree.__setstate__": "C: copies node and value arrays after checking their dtypes and shapes",
    "sklearn.tree._tree.Tree.__new__": "Cython allocation",
    "sklearn.neighbors._binary_tree.BinaryTree.__setstate__": "Cython: copies arrays and the metric object",
    "sklearn.metrics._dist_metrics.DistanceMetric.__setstate__": "Cython: copies parameter arrays",
    "sklearn.metrics._dist_metrics.DistanceMetric64.__setstate__": "Cython: copies parameter arrays",
    "sklearn.linear_model._sgd_fast.Hinge.__init__": "stores the threshold float",
    "sklearn._loss._loss.CyLossFunction.__setstate__": "Cython: no state beyond numbers",
    "sklearn.utils._bunch.Bunch.__setstate__": "dict-like attribute copy (no evaluation)",
    "sklearn.utils._bunch.Bunch.__setitem__": "dict.__setitem__ plus a deprecation check on the key",
    "sklearn.utils._bunch.Bunch.__init__": "dict init from keyword arguments",
    "joblib.numpy_pickle.NumpyArrayWrapper.__init__": "not run by pickle",
    "pandas.arrays.ArrowExtensionArray.__setstate__": "pa.chunked_array of the pickled Arrow arrays, then __dict__.update",
    'networkx.classes.coreviews.AtlasView.__setstate__': "stores state['_atlas'] (a dict)",
    'networkx.classes.reportviews.NodeView.__setstate__': "stores state['_nodes'] (a dict)",
    'networkx.classes.digraph.DiGraph.__new__': 'object.__new__(cls) behind the backend dispatcher (graphs=None: no backend conversion)',
    'networkx.classes.graph.Graph.__new__': 'object.__new__(cls) behind the backend dispatcher (graphs=None: no backend conversion)',
    'networkx.classes.multigraph.MultiGraph.__new__': 'object.__new__(cls) behind the backend dispatcher (graphs=None: no backend conversion)',
    'pandas.CategoricalDtype.__setstate__': 'stores categories and ordered',
    'pandas.DatetimeTZDtype.__setstate__': 'stores tz and unit',
    'pandas.IntervalDtype.__setstate__': 'stores subtype and closed',
    'pandas.StringDtype.__setstate__': 'stores storage and na_value',
    'pandas._libs.internals.BlockManager.__setstate__': 'Cython: rebuilds blocks from arrays, placements and axes',
    'pandas._libs.interval.IntervalMixin.__setstate__': 'Cython: stores closed',
    'pandas._libs.sparse.SparseIndex.__setstate__': 'Cython: stores length and index arrays',
    'pandas._libs.tslibs.dtypes.PeriodDtypeBase.__setstate__': 'Cython: stores the frequency code and n',
    'pandas._libs.tslibs.offsets.BaseOffset.__setstate__': 'Cython: restores n, normalize and offset fields from the dict',
    'pandas._libs.tslibs.offsets.BusinessDay.__setstate__': 'Cython: BaseOffset fields plus the offset timedelta',
    'pandas._libs.tslibs.offsets.MonthOffset.__setstate__': 'Cython: BaseOffset fields',
    'pandas._libs.tslibs.offsets.RelativeDeltaOffset.__setstate__': 'Cython: BaseOffset fields and relativedelta keywords (numbers)',
    'pandas._libs.tslibs.offsets.Tick.__setstate__': 'Cython: stores n and normalize',
    'pandas._libs.tslibs.period._Period.__setstate__': 'Cython: stores ordinal and freq',
    'pandas.arrays.SparseArray.__setstate__': 'stores the sparse values array, sparse index and dtype (tuple or dict state)',
    'scipy.sparse._coo.coo_matrix.__setstate__': 'maps legacy row/col to coords, then __dict__.update',
    'scipy.sparse._index.IndexMixin.__setitem__': 'validates an integer/slice index and stores a numeric value (dok_matrix items)',
    'scipy.spatial._ckdtree.cKDTree.__new__': 'Cython allocation',
    'scipy.stats._distn_infrastructure.rv_discrete.__new__': 'picks rv_sample or cls by `values`, then object allocation',
    'sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor.__setstate__': 'BaseEstimator-style dict update; converts the nodes array dtype',
    'sklearn.isotonic.IsotonicRegression.__setstate__': 'BaseEstimator.__setstate__, then rebuilds scipy interp1d from the threshold arrays',
    'sklearn.linear_model._passive_aggressive.PassiveAggressiveClassifier.__new__': 'deprecation warning, then object.__new__',
    'sklearn.linear_model._passive_aggressive.PassiveAggressiveRegressor.__new__': 'deprecation warning, then object.__new__',
    'sympy.core.function.DefinedFunction.__new__': 'cls._new_(*args): sympify of args; expr grammar on strings',
    'sympy.core.numbers.Half.__new__': 'singleton: returns the one instance',
    'sympy.core.numbers.ImaginaryUnit.__new__': 'singleton: returns the one instance',
    'sympy.core.numbers.Infinity.__new__': 'singleton: returns the one instance',
    'sympy.core.numbers.NegativeOne.__new__': 'singleton: returns the one instance',
    'sympy.core.numbers.One.__new__': 'singleton: returns the one instance',
    'sympy.core.numbers.Pi.__new__': 'singleton: returns the one instance',
    'sympy.core.numbers.Zero.__new__': 'singleton: returns the one instance',
    'sympy.core.symbol.Symbol.__setstate__': 'setattr of each state item (special names refused by the BUILD check)',
    'sympy.matrices.repmatrix.MutableRepMatrix.__new__': 'cls._new: sympifies the elements; expr grammar on strings (no setitem: __setitem__ sympifies without it)',
    'tokenizers.Tokenizer.__new__': 'Rust allocation of an empty tokenizer',
    'tokenizers.models.Model.__new__': 'Rust allocation',
    'torch.nn.modules.activation.LogSoftmax.__setstate__': 'Module.__setstate__ and a dim default',
    'torch.nn.modules.activation.Softmax.__setstate__': 'Module.__setstate__ and a dim default',
    'torch.nn.modules.activation.Softmin.__setstate__': 'Module.__setstate__ and a dim default',
    'torch.nn.modules.container.Container.__new__': 'deprecated container: object allocation',
    'torch.nn.modules.loss.NLLLoss2d.__new__': 'deprecated loss: object allocation',
    'torch.nn.modules.pooling.AvgPool3d.__setstate__': 'Module.__setstate__ and defaults',
    'torch.nn.modules.transformer.TransformerDecoderLayer.__setstate__': 'activation default (F.relu), then Module.__setstate__',
    'torch.nn.modules.upsampling.Upsample.__setstate__': 'a default, then Module.__setstate__',
    'torch.optim.Adafactor.__setstate__': 'Optimizer.__setstate__, then per-group defaults and step counters made tensors',
    'torch.optim.adadelta.Adadelta.__setstate__': 'Optimizer.__setstate__, then per-group defaults and step counters made tensors',
    'torch.optim.adagrad.Adagrad.__setstate__': 'Optimizer.__setstate__, then per-group defaults and step counters made tensors',
    'torch.optim.adam.Adam.__setstate__': 'Optimizer.__setstate__, then per-group defaults and step counters made tensors',
    'torch.optim.adamax.Adamax.__setstate__': 'Optimizer.__setstate__, then per-group defaults and step counters made tensors',
    'torch.optim.adamw.AdamW.__setstate__': 'Optimizer.__setstate__, then per-group defaults and step counters made tensors',
    'torch.optim.asgd.ASGD.__setstate__': 'Optimizer.__setstate__, then per-group defaults and step counters made tensors',
    'torch.optim.nadam.NAdam.__setstate__': 'Optimizer.__setstate__, then per-group defaults and step counters made tensors',
    'torch.optim.radam.RAdam.__setstate__': 'Optimizer.__setstate__, then per-group defaults and step counters made tensors',
    'torch.optim.rmsprop.RMSprop.__setstate__': 'Optimizer.__setstate__, then per-group defaults and step counters made tensors',
    'torch.optim.rprop.Rprop.__setstate__': 'Optimizer.__setstate__, then per-group defaults and step counters made tensors',
    'torch.optim.sgd.SGD.__setstate__': 'Optimizer.__setstate__, then per-group defaults and step counters made tensors',
    # Reviewed for the version matrix (tools/matrix.py): pandas offsets with constructor
    # arguments, dateutil, catboost, torch AMP, transformers outputs, sklearn SGD losses.
    "catboost.core._CatBoostBase.__setstate__": "loads state['__model'] with CatBoost's C++ model deserialiser (binary model format, no Python evaluation); test evals and the rest go to _init_params",
    "datetime.tzinfo.__new__": "C allocation of the tzinfo base",
    "dateutil.rrule.rrulebase.__setstate__": "__dict__.update (slot state by setattr), then a new lock and an empty cache",
    "pandas._libs.tslibs.offsets.BusinessHour.__setstate__": "Cython: BaseOffset fields plus start/end times and the business-day fields",
    "pandas._libs.tslibs.offsets.BusinessMixin.__setstate__": "Cython: BaseOffset fields plus weekmask, holidays, calendar and offset (numpy busdaycalendar from them)",
    "pandas._libs.tslibs.offsets.CustomBusinessDay.__setstate__": "Cython: BusinessMixin fields",
    "pandas._libs.tslibs.offsets.Easter.__setstate__": "Cython: stores n and normalize",
    "pandas._libs.tslibs.offsets.FY5253Mixin.__setstate__": "Cython: stores startingMonth, weekday and variation",
    "pandas._libs.tslibs.offsets.FY5253Quarter.__setstate__": "Cython: FY5253 fields plus qtr_with_extra_week",
    "pandas._libs.tslibs.offsets.LastWeekOfMonth.__setstate__": "Cython: stores weekday and week",
    "pandas._libs.tslibs.offsets.QuarterOffset.__setstate__": "Cython: stores startingMonth",
    "pandas._libs.tslibs.offsets.RelativeDeltaOffset.__new__": "Cython allocation",
    "pandas._libs.tslibs.offsets.SemiMonthOffset.__setstate__": "Cython: stores day_of_month",
    "pandas._libs.tslibs.offsets.Week.__setstate__": "Cython: stores weekday",
    "pandas._libs.tslibs.offsets.WeekOfMonth.__setstate__": "Cython: stores weekday and week",
    "pandas._libs.tslibs.offsets.YearOffset.__setstate__": "Cython: stores month",
    "sklearn.linear_model._sgd_fast.Classification.__setstate__": "Cython loss object: stores its numeric parameters",
    "torch.amp.grad_scaler.GradScaler.__setstate__": "__dict__.update",
    "transformers.utils.generic.ModelOutput.__setitem__": "OrderedDict insertion, then the key set as an attribute (keys naming special methods are refused by the SETITEMS check)",
    # Constructors that `call` runs (REDUCE of the class with positional arguments).
    "dateutil.tz.tz.tzoffset.__init__": "stores the name and datetime.timedelta(seconds=offset) (offset a number or a timedelta: .total_seconds()); the _TzOffsetFactory metaclass caches instances per (name, offset) in a weak dict plus 8 strong references",
    "datetime.tzinfo.__new__": "C allocation of the tzinfo base",
    "pandas.Interval.__new__": "Cython tp_new: allocation",
    "pandas.Interval.__init__": "Cython: checks closed is one of left/right/both/neither and that both ends are comparable (time zones agree), stores left, right and closed",
    "pandas.Period.__new__": "Cython: from (value, freq, ordinal): the frequency string is parsed by to_offset's regular expression into an offset, a date string by pandas' own parser or dateutil's (no evaluation); pickles pass (None, freq, ordinal)",
    "pandas.PeriodDtype.__new__": "an offset, or a frequency string parsed by to_offset's regular expression; caches the dtype code per offset (bounded by the offsets a file makes)",
    "pandas.StringDtype.__init__": "storage must be 'python' or 'pyarrow' (ImportError if pyarrow is missing: no import is attempted), na_value must be NA or NaN; stores both",
    "pandas._libs.internals.BlockManager.__new__": "Cython __cinit__(blocks=None, axes=None, verify_integrity=True): stores the blocks and axes given (objects an accepted call made)",
    "pandas.core.internals.managers.BlockManager.__init__": "checks each block's ndim against the axes and verifies the shapes (_verify_integrity); stores nothing else",
    "pandas._libs.sparse.IntIndex.__new__": "Cython tp_new: allocation",
    "pandas._libs.sparse.IntIndex.__init__": "Cython: stores length and np.ascontiguousarray(indices, int32), checks the indices are sorted, unique and within length",
    "sympy.polys.matrices.domainmatrix.DomainMatrix.__new__": "rows must be a list of lists (DDM) or a dict of dicts (SDM) whose dimensions equal shape (no allocation from shape alone); elements are stored as given, not sympified; the domain object is only asked which kind it is; strings: expr grammar",
    "time.struct_time.__new__": "C structseq: a sequence of 9 to 11 values and an optional dict of the extra fields",
    "transformers.modeling_outputs.BaseModelOutput.__init__": "dataclass __init__ (stores the fields), then ModelOutput.__post_init__: when only the first field is set and it is not a tensor, an iterable of (name, value) pairs would be set as attributes by name, so the rule in policies/ml.toml lets the first field be only a tensor or None",
    "transformers.modeling_outputs.SequenceClassifierOutput.__init__": "as BaseModelOutput: dataclass __init__ then ModelOutput.__post_init__ (first field only a tensor or None, by rule)",
}

# Custom constructors shared by a family of classes: base class -> method -> note. A family
# note covers a class when the method is defined by the base or by a class between it and
# the base in the MRO (tools/gen_profile.py review_of).
FAMILY_REVIEWS: dict[str, dict[str, str]] = {
    # EnumType installs Enum.__new__ as every enum class's __new__ (the class's own member
    # constructor is kept as _new_member_ and runs only while the class body is built);
    # tests/test_behaviour_review.py checks that identity for every enum the profiles grant.
    "enum.Enum": {
        "__new__": "Enum.__new__ (what NEWOBJ and EnumType.__call__(cls, value) run): returns the "
                   "member whose value equals the argument (_value2member_map_, then a scan of "
                   "the members), else cls._missing_(value) (the libraries' overrides compare names "
                   "case-insensitively or raise; Flag builds a pseudo-member from the bits of an "
                   "int, bounded by its size), else ValueError; no member or class is created, "
                   "nothing imported, opened or evaluated. A second positional argument would be "
                   "the functional API (a new enum class), which raises TypeError for an enum that "
                   "has members, as every enum the profile grants `call` does",
        "__init__": "Enum.__init__ is `pass`, and EnumType.__call__ does not run it on a lookup",
    },
    # pandas' date offsets: cdef classes under BaseOffset (pandas/_libs/tslibs/offsets.pyx).
    "pandas._libs.tslibs.offsets.BaseOffset": {
        "__new__": "Cython tp_new: allocates the cdef object with its typed fields zeroed (no "
                   "__cinit__ taking arguments)",
        "__init__": "Cython: BaseOffset/Tick/Day take n (int(n), must equal n) and normalize "
                    "(Tick and Day refuse True) and set an empty _cache; the subclasses add typed "
                    "fields they range-check: weekday/week/startingMonth/month/day_of_month/"
                    "qtr_with_extra_week ints, variation in {'nearest','last'}, Easter's method "
                    "int, BusinessMixin's offset (a cdef timedelta field: TypeError otherwise), "
                    "BusinessHour start/end parsed by time.strptime('%H:%M') or datetime.time; "
                    "the Custom* classes build np.busdaycalendar(weekmask, holidays) from the "
                    "weekmask string and the holiday dates (each converted with np.datetime64, "
                    "or .replace(tzinfo=None) on an object that has a tzinfo), and would call "
                    "calendar.holidays() on a calendar object: the rules in policies/ml.toml "
                    "require calendar None (pandas pickles it as None). DateOffset "
                    "(RelativeDeltaOffset) takes n and normalize positionally; its keywords, set "
                    "as attributes, must be relativedelta field names or _determine_offset raises "
                    "before any is set, and REDUCE passes no keywords. Nothing is imported, "
                    "opened or evaluated",
    },
    # scikit-learn's Cython loss objects (sklearn/_loss/_loss.pyx.tp, linear_model/_sgd_fast).
    "sklearn._loss._loss.CyLossFunction": {
        "__new__": "Cython tp_new: allocates the object (C double fields)",
        "__init__": "Cython: stores its parameter (power, delta, quantile, threshold) in a C double "
                    "field (TypeError for anything but a number); the others take no arguments",
    },
}
# scikit-learn before 1.6 names the SGD losses' base LossFunction: the same Cython classes.
FAMILY_REVIEWS["sklearn.linear_model._sgd_fast.LossFunction"] = FAMILY_REVIEWS[
    "sklearn._loss._loss.CyLossFunction"]

# Classes whose operations hand strings to parsers: the schema that keeps that safe,
# by a class in their MRO.
STRING_SINKS: dict[str, dict] = {
    "sympy.core.basic.Basic": {"strings": "expr"},
    "sympy.matrices.matrixbase.MatrixBase": {"strings": "expr"},
    "sympy.polys.domains.domain.Domain": {"strings": "expr"},
    "scipy.stats._distn_infrastructure.rv_generic": {
        "state": {"_parse_arg_template": "grammar:scipy_argparser", "shapes": "grammar:names|none"}},
    # With either key (older and newer statsmodels) __setstate__ evaluates d["formula"].
    "statsmodels.base.data.ModelData": {"state": {"restore_design_info": "never",
                                                  "restore_model_spec": "never"}},
}


def _resolve(module: str, name: str):
    obj = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


_qual = qualname


def _lib_version(module: str) -> str:
    top = module.split(".")[0]
    try:
        mod = importlib.import_module(top)
        return f"{top} {getattr(mod, '__version__', 'stdlib')}"
    except Exception:  # noqa: BLE001 - a missing library is recorded, not fatal
        return f"{top} (not importable)"


def _facts_of(obj) -> dict:
    if isinstance(obj, type):
        custom = {m: f"{qualname(owner)}.{m}" for m, owner in custom_methods(obj, METHODS).items()}
        return {"kind": "class", "custom": custom, "mro": [_qual(c) for c in obj.__mro__],
                "dict": issubclass(obj, dict), "list": issubclass(obj, list)}
    if callable(obj):
        return {"kind": "function"}
    return {"kind": "object"}


def _introspected() -> dict[str, str]:
    """Classes beyond the corpus: name -> where they were found."""
    out: dict[str, str] = {}
    try:
        from sklearn.utils import all_estimators
        import sklearn
        for _, cls in all_estimators():
            out[_qual(cls)] = f"introspected: sklearn {sklearn.__version__} all_estimators()"
    except Exception as e:  # noqa: BLE001
        print(f"sklearn not introspected: {e}", file=sys.stderr)
    try:
        import torch
        import torch.nn as nn
        import torch.optim as optim
        import torch.optim.lr_scheduler as sched
        for mod, base, where in ((nn, nn.Module, "torch.nn"), (optim, optim.Optimizer, "torch.optim"),
                                 (sched, sched.LRScheduler, "torch.optim.lr_scheduler")):
            for name in dir(mod):
                cls = getattr(mod, name)
                if isinstance(cls, type) and issubclass(cls, base) and cls is not base:
                    out[_qual(cls)] = f"introspected: torch {torch.__version__} {where}"
    except Exception as e:  # noqa: BLE001
        print(f"torch not introspected: {e}", file=sys.stderr)
    return out


def introspect(keep_missing: bool = False) -> None:
    """Write FACTS from the names of SRC as this environment imports them. ``keep_missing``:
    names this environment cannot import keep the facts another environment recorded (the
    version matrix introspects each cell, oldest first, then the current one)."""
    data = json.loads(SRC.read_text())
    facts: dict[str, dict] = {}
    names = {(e["module"], e["name"]) for e in data.values()}
    for e in data.values():
        canon = e.get("canonical")
        if canon and "." in canon:
            names.add(tuple(canon.rsplit(".", 1)))
    for module, name in sorted(names):
        try:
            obj = _resolve(module, name)
        except Exception:  # noqa: BLE001 - Python 2 names and absent optional modules
            continue
        f = _facts_of(obj)
        f["version"] = _lib_version(module)
        f["module"], f["name"] = module, name
        facts[f"{module}.{name}"] = f
    for qual, where in sorted(_introspected().items()):
        if qual in facts:
            continue
        module, name = qual.rsplit(".", 1)
        try:
            f = _facts_of(_resolve(module, name))
        except Exception:  # noqa: BLE001
            continue
        f["version"] = where
        f["introspected"] = True
        f["module"], f["name"] = module, name
        facts[qual] = f
    if keep_missing and FACTS.exists():
        for key, f in json.loads(FACTS.read_text()).items():
            facts.setdefault(key, f)
    FACTS.write_text(json.dumps(facts, indent=1, sort_keys=True) + "\n")
    print(f"wrote {FACTS} ({len(facts)} names)")


def _curated() -> set[str]:
    doc = tomllib.loads(CURATED.read_text())
    out = set()
    for e in doc.get("allow", []):
        for n in ([e["name"]] if "name" in e else []) + e.get("names", []):
            out.add(f"{e['module']}.{n}")
    return out


#: The methods each operation on a class runs (docs/policy-format.md, "Operations"). `call`
#: runs the class: `__new__` and then `__init__`.
OP_NEEDS = {"new": ("__new__",), "call": ("__new__", "__init__"), "build": ("__setstate__",),
            "setitem": ("__setitem__",), "append": ("append", "extend"), "value": ()}


def review_of(method: str, mro: list[str]) -> str | None:
    """The review note for the custom method `method` (`Owner.name`) of a class with this
    MRO: its own entry in REVIEWS, else the note of a family (FAMILY_REVIEWS) whose base is
    the owner or comes after it in the MRO (the owner is the base or one of its subclasses,
    and the family note covers what the family's subclasses define)."""
    if method in REVIEWS:
        return REVIEWS[method]
    owner, _, name = method.rpartition(".")
    if owner not in mro:
        return None
    for base, notes in FAMILY_REVIEWS.items():
        if name in notes and base in mro and mro.index(base) >= mro.index(owner):
            return notes[name]
    return None


def _class_ops(want: list[str], f: dict, unreviewed: dict) -> tuple[list[str], list[str], dict]:
    """Operations for a class: those wanted whose methods are default or reviewed."""
    custom = {m: q for m, q in f.get("custom", {}).items()
              if not is_default_owner(q.rpartition(".")[0])}
    mro = f.get("mro", [])
    ops, reviewed = [], []
    for op in want:
        needed = [custom[m] for m in OP_NEEDS[op] if m in custom]
        missing = [m for m in needed if review_of(m, mro) is None]
        if missing:
            for m in missing:
                unreviewed[m].add(op)
            continue
        ops.append(op)
        reviewed += [m for m in needed if m not in reviewed]
    extra: dict = {}
    for base in mro:
        if base in STRING_SINKS:
            extra = dict(STRING_SINKS[base])
            break
    extra["review_notes"] = {m: review_of(m, mro) for m in reviewed}
    return ops, reviewed, extra


def _getattr_methods(data: dict) -> dict[str, set[str]]:
    """`getattr(<object made by X>, 'm')` in the corpus: X -> {m}."""
    out: dict[str, set[str]] = defaultdict(set)
    for key in ("builtins.getattr", "__builtin__.getattr"):
        for shape in data.get(key, {}).get("arg_shapes", []):
            if shape.startswith("(call:") and "'" in shape:
                target, attr = shape[len("(call:"):].split(", '", 1)
                out[target].add(attr.rstrip("')"))
    return out


def render() -> str:
    data = json.loads(SRC.read_text())
    facts = json.loads(FACTS.read_text())
    curated = _curated()
    # name -> uses, libraries
    seen: dict[tuple[str, str], dict] = {}
    for entry in data.values():
        quals = {(entry["module"], entry["name"])}
        canon = entry.get("canonical")
        if canon and canon.endswith("." + entry["name"]):
            quals.add((canon[: -len(entry["name"]) - 1], entry["name"]))
        elif canon and "." in canon:
            quals.add(tuple(canon.rsplit(".", 1)))
        for q in quals:
            s = seen.setdefault(q, {"uses": set(), "libraries": set(), "containers": set()})
            s["uses"] |= set(entry["uses"])
            s["libraries"] |= set(entry.get("libraries", []))
            s["containers"] |= set(entry.get("containers", []))
    by_qual = {f"{m}.{n}": (m, n) for m, n in seen}
    for target, attrs in _getattr_methods(data).items():
        if target not in by_qual:
            continue
        m, n = by_qual[target]
        for a in attrs:
            s = seen.setdefault((m, f"{n}.{a}"), {"uses": set(), "libraries": set(), "containers": set()})
            s["uses"].add("call")
            s["libraries"] |= seen[(m, n)]["libraries"]
            s["containers"] |= seen[(m, n)]["containers"]
    for qual, f in facts.items():
        key = (f["module"], f["name"])
        if f.get("introspected") and key not in seen:
            seen[key] = {"uses": {"new"}, "libraries": set(), "containers": set(), "where": f["version"]}
    unreviewed: dict[str, set] = defaultdict(set)
    entries = []
    for module, name in sorted(seen):
        qual = f"{module}.{name}"
        if qual in curated:
            continue
        s = seen[(module, name)]
        f = facts.get(qual)
        where = s.get("where") or (
            f"benign corpus: {', '.join(sorted(s['libraries']))} in {', '.join(sorted(s['containers']))}"
            + (f"; {f['version']}" if f else ""))
        extra: dict = {}
        reviewed: list[str] = []
        if f is None:
            # Not importable here (Python 2 spellings): what the corpus shows, data only.
            ops = sorted({"value"} | ({"call"} if s["uses"] & {"call"} else set()))
            if "new" in s["uses"]:
                ops = sorted(set(ops) | {"new", "build"})
        elif f["kind"] == "class":
            want = []
            if s["uses"] & {"new", "call"}:
                want += [u for u in ("new", "call") if u in s["uses"]] + ["build"]
                if f.get("dict"):
                    want.append("setitem")
                if f.get("list"):
                    want.append("append")
            if "value" in s["uses"]:
                want.append("value")
            ops, reviewed, extra = _class_ops(want, f, unreviewed)
        elif f["kind"] == "function" and name.startswith("__pyx_unpickle_"):
            # Cython's unpickler: Type.__new__(cls) (a TypeError unless cls is that type), then
            # the generated __setstate__ that sets the type's typed fields from the state.
            ops = ["call", "build"]
            reviewed = [f"{module}.{name}.__setstate__"]
            extra = {"note": "Cython unpickler: Type.__new__(cls) and the generated __setstate__ (typed fields, then __dict__.update)"}
        elif f["kind"] == "function":
            # A stored function is a call deferred to its first use.
            ops = ["call"]
        else:
            ops = ["value"]
        if not ops:
            continue
        entries.append((module, name, ops, reviewed, extra, where))
    if unreviewed:
        for m, ops in sorted(unreviewed.items()):
            print(f"unreviewed custom method {m} (not granted: {', '.join(sorted(ops))})",
                  file=sys.stderr)
    out = [
        "# GENERATED by tools/gen_profile.py from tools/benign_globals.json and",
        "# tools/class_facts.json: do not edit by hand (format: docs/policy-format.md).",
        "# One entry per class or callable that numpy, torch, scikit-learn, scipy, pandas, joblib,",
        "# xgboost, lightgbm, transformers, statsmodels, networkx, sympy, dill, cloudpickle and the",
        "# standard library wrote in the benign corpus, or that introspection of the libraries found;",
        "# each with the operations it needs, the custom methods they run (reviewed) and where it",
        "# was seen. Curated entries and rules: policies/ml.toml.",
        "version = 2",
        "",
    ]
    for module, name, ops, reviewed, extra, where in entries:
        out.append("[[allow]]")
        out.append(f"module = {json.dumps(module)}")
        out.append(f"name = {json.dumps(name)}")
        out.append(f"ops = [{', '.join(json.dumps(o) for o in ops)}]")
        if reviewed:
            out.append(f"reviewed = [{', '.join(json.dumps(r.rsplit('.', 1)[1]) for r in reviewed)}]")
            notes = extra.get("review_notes") or REVIEWS
            note = extra.get("note") or "; ".join(f"{r}: {notes[r]}" for r in reviewed)
            out.append("note = " + json.dumps(note))
        if "strings" in extra:
            out.append(f"strings = {json.dumps(extra['strings'])}")
        if "state" in extra and "build" in ops:
            kv = ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in extra["state"].items())
            out.append(f"state = {{ {kv} }}")
        out.append(f"source = {json.dumps(where)}")
        out.append("")
    return "\n".join(out)


def main() -> int:
    if "--introspect" in sys.argv:
        introspect(keep_missing="--keep-missing" in sys.argv)
        if "--facts-only" in sys.argv:
            return 0
    text = render()
    if "--check" in sys.argv:
        if not DST.exists() or DST.read_text() != text:
            print(f"{DST} is out of date: run python tools/gen_profile.py", file=sys.stderr)
            return 1
        return 0
    DST.write_text(text)
    print(f"wrote {DST}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
