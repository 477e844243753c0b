"""More of what users of the ML stack save, for the version matrix (tools/matrix.py): objects
that pickle through constructor calls with arguments, Cython helpers, optional backends and
the libraries around the core ones. Imported by gen_benign.py as its last sections; each
section writes with the real library through the same ``Corpus`` and skips (with the reason,
in ``skipped.json``) what the installed versions cannot make.
"""
from __future__ import annotations

import importlib
import pickle


def _have(c, library: str, *modules: str) -> bool:
    for m in modules:
        try:
            importlib.import_module(m)
        except Exception as exc:  # noqa: BLE001 - a missing or broken optional library
            c.skip(library, "*", "any", None, f"import {m}: {type(exc).__name__}: {exc}"[:300])
            return False
    return True


def _each(c, library: str, objects: dict, raw=True, joblib=False, torch_save=False, protocols=None,
          deterministic=True):
    """Write each object made by the factories of ``objects``, skipping (with the reason) one
    that the installed version cannot make."""
    for what, make in objects.items():
        try:
            obj = make()
        except Exception as exc:  # noqa: BLE001
            c.skip(library, what, "any", None, f"make: {type(exc).__name__}: {exc}"[:300])
            continue
        if raw:
            kw = {"protocols": protocols} if protocols else {}
            c.raw(library, what, obj, deterministic=deterministic,
                  note=None if deterministic else "the library writes run-dependent bytes", **kw)
        if joblib:
            c.joblib_dump(library, what, obj, compressions=(None, "zlib"), deterministic=deterministic,
                          note=None if deterministic else "the library writes run-dependent bytes")
        if torch_save:
            c.torch_save(library, what, obj, legacy=False)


def gen_pandas_more(c):
    """Offsets and frequencies that pickle as constructor calls, dateutil and pytz time zones,
    Arrow-backed strings (the default string storage of pandas 3 with pyarrow installed)."""
    import numpy as np
    import pandas as pd

    L = "pandas"
    off = pd.offsets
    offsets = {
        "offset_hour": lambda: off.Hour(3),
        "offset_minute_second": lambda: [off.Minute(15), off.Second(30), off.Milli(5), off.Micro(2), off.Nano(1)],
        "offset_week": lambda: [off.Week(weekday=0), off.Week(2)],
        "offset_week_of_month": lambda: [off.WeekOfMonth(week=1, weekday=2), off.LastWeekOfMonth(weekday=4)],
        "offset_quarter": lambda: [off.QuarterEnd(startingMonth=3), off.QuarterBegin(startingMonth=1),
                                   off.BQuarterEnd(), off.BQuarterBegin()],
        "offset_year": lambda: [off.YearEnd(month=6), off.YearBegin(), off.BYearEnd(), off.BYearBegin()],
        "offset_month": lambda: [off.MonthBegin(), off.BMonthEnd(), off.BMonthBegin(), off.SemiMonthEnd(),
                                 off.SemiMonthBegin(day_of_month=10)],
        "offset_business_hour": lambda: off.BusinessHour(start="09:00", end="17:00"),
        "offset_custom_business_day": lambda: off.CustomBusinessDay(
            holidays=["2024-01-01", "2024-12-25"], weekmask="Mon Tue Wed Thu Fri"),
        "offset_custom_business_month": lambda: [off.CustomBusinessMonthEnd(), off.CustomBusinessMonthBegin()],
        "offset_custom_business_hour": lambda: off.CustomBusinessHour(start="10:00"),
        "offset_fy5253": lambda: [off.FY5253(weekday=0, startingMonth=1, variation="nearest"),
                                  off.FY5253Quarter(weekday=0, startingMonth=1, qtr_with_extra_week=1)],
        "offset_easter": lambda: off.Easter(),
        "offset_dateoffset_kwargs": lambda: [pd.DateOffset(days=2, hours=3), pd.DateOffset(years=1, weekday=2)],
        "offset_tick_multiples": lambda: [pd.tseries.frequencies.to_offset(f) for f in ("2h", "30min", "7D", "W-SUN",
                                                                                          "QE-DEC", "YE-JUN")],
        "series_hourly_freq": lambda: pd.Series(np.arange(4.0), index=pd.date_range("2024-01-01", periods=4,
                                                                                     freq="h")),
        "series_weekly_freq": lambda: pd.Series(np.arange(3), index=pd.date_range("2024-01-07", periods=3,
                                                                                   freq="W-SUN")),
        "series_quarterly_freq": lambda: pd.Series([1, 2], index=pd.date_range("2024-03-31", periods=2,
                                                                                freq="QE")),
        "series_business_day_freq": lambda: pd.Series([1.0, 2.0, 3.0], index=pd.bdate_range("2024-01-01",
                                                                                             periods=3)),
        "series_custom_bday_freq": lambda: pd.Series([1, 2], index=pd.bdate_range(
            "2024-01-01", periods=2, freq="C", holidays=["2024-01-02"])),
        "period_index_quarterly": lambda: pd.period_range("2024Q1", periods=4, freq="Q-MAR"),
        "resampler_result": lambda: pd.Series(np.arange(48.0), index=pd.date_range(
            "2024-01-01", periods=48, freq="h")).resample("6h").mean(),
        "rolling_result": lambda: pd.Series(np.arange(10.0)).rolling(3).mean(),
        "groupby_result": lambda: pd.DataFrame({"k": ["a", "b", "a"], "v": [1, 2, 3]}).groupby("k").sum(),
        "ewm_result": lambda: pd.Series(np.arange(5.0)).ewm(span=2).mean(),
    }
    _each(c, L, offsets)
    for what in ("series_hourly_freq", "series_custom_bday_freq"):
        try:
            c.pandas_to_pickle(L, what, offsets[what](), all_compressions=False)
        except Exception as exc:  # noqa: BLE001
            c.skip(L, what, "raw", 5, f"{type(exc).__name__}: {exc}"[:300])
    if _have(c, "dateutil", "dateutil.tz", "dateutil.relativedelta", "dateutil.rrule"):
        from dateutil import relativedelta, rrule, tz

        _each(c, "dateutil", {
            "tz_gettz": lambda: tz.gettz("Europe/Berlin"),
            "tz_utc_local_offset": lambda: [tz.tzutc(), tz.tzoffset("X", 3600), tz.UTC],
            "tz_tzstr": lambda: tz.tzstr("EST5EDT"),
            "relativedelta": lambda: relativedelta.relativedelta(months=+1, weekday=relativedelta.FR(-1)),
            "rrule": lambda: rrule.rrule(rrule.WEEKLY, count=3, dtstart=__import__("datetime").datetime(2024, 1, 1)),
            "series_dateutil_tz": lambda: pd.Series(pd.date_range("2024-01-01", periods=3, freq="D",
                                                                  tz=tz.gettz("Europe/Berlin"))),
        })
    try:
        import pyarrow  # noqa: F401
        have_arrow = True
    except ImportError:
        have_arrow = False
        c.skip(L, "arrow_*", "any", None, "pyarrow is not installed")
    if have_arrow:
        arrow = {
            "string_pyarrow": lambda: pd.Series(["a", None, "ccc"], dtype="string[pyarrow]"),
            "arrow_dtype_int": lambda: pd.Series([1, None, 3], dtype="int64[pyarrow]"),
            "arrow_dtype_timestamp": lambda: pd.Series(pd.to_datetime(["2024-01-01", None]).astype(
                "timestamp[ns][pyarrow]")),
            "dataframe_arrow_mixed": lambda: pd.DataFrame({
                "s": pd.Series(["x", "y"], dtype="string[pyarrow]"),
                "i": pd.Series([1, 2], dtype="int32[pyarrow]"),
                "b": pd.Series([True, None], dtype="bool[pyarrow]"),
                "l": pd.Series([[1, 2], [3]], dtype=pd.ArrowDtype(pyarrow.list_(pyarrow.int64()))),
            }),
            "dataframe_text_default": lambda: pd.DataFrame({"name": ["ann", "bob"], "n": [1, 2]}),
        }
        _each(c, L, arrow, joblib=True)
        try:
            c.pandas_to_pickle(L, "dataframe_arrow_mixed", arrow["dataframe_arrow_mixed"]())
        except Exception as exc:  # noqa: BLE001
            c.skip(L, "dataframe_arrow_mixed", "pandas", 5, f"{type(exc).__name__}: {exc}"[:300])


def gen_sklearn_more(c):
    """Estimator families whose fitted state holds loss objects and Cython helpers."""
    import numpy as np
    from sklearn import ensemble, linear_model, neighbors, preprocessing, svm

    L = "sklearn"
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 4))
    y = (X[:, 0] + 0.3 * rng.standard_normal(60) > 0).astype(int)
    yr = X @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.1 * rng.standard_normal(60)
    ycount = rng.poisson(2.0, 60)
    ypos = np.abs(yr) + 0.5
    y3 = np.digitize(X[:, 1], [-0.5, 0.5])
    fitted = {
        "hgb_loss_poisson": (lambda: ensemble.HistGradientBoostingRegressor(loss="poisson", max_iter=3), X, ycount),
        "hgb_loss_absolute": (lambda: ensemble.HistGradientBoostingRegressor(loss="absolute_error", max_iter=3), X, yr),
        "hgb_loss_quantile": (lambda: ensemble.HistGradientBoostingRegressor(loss="quantile", quantile=0.8, max_iter=3),
                              X, yr),
        "hgb_loss_gamma": (lambda: ensemble.HistGradientBoostingRegressor(loss="gamma", max_iter=3), X, ypos),
        "hgb_multiclass": (lambda: ensemble.HistGradientBoostingClassifier(max_iter=3), X, y3),
        "hgb_categorical": (lambda: ensemble.HistGradientBoostingClassifier(max_iter=3, categorical_features=[3]),
                            np.column_stack([X[:, :3], rng.integers(0, 3, 60)]), y),
        "gb_loss_huber": (lambda: ensemble.GradientBoostingRegressor(loss="huber", n_estimators=3, max_depth=2), X, yr),
        "gb_loss_quantile": (lambda: ensemble.GradientBoostingRegressor(loss="quantile", alpha=0.9, n_estimators=3),
                             X, yr),
        "gb_loss_exponential": (lambda: ensemble.GradientBoostingClassifier(loss="exponential", n_estimators=3), X, y),
        "gb_multiclass": (lambda: ensemble.GradientBoostingClassifier(n_estimators=3, max_depth=2), X, y3),
        "glm_poisson": (lambda: linear_model.PoissonRegressor(max_iter=50), X, ycount),
        "glm_gamma": (lambda: linear_model.GammaRegressor(max_iter=50), X, ypos),
        "glm_tweedie": (lambda: linear_model.TweedieRegressor(power=1.5, max_iter=50), X, ypos),
        "sgd_hinge": (lambda: linear_model.SGDClassifier(loss="hinge", max_iter=20, tol=None, random_state=0), X, y),
        "sgd_log_loss": (lambda: linear_model.SGDClassifier(loss="log_loss", max_iter=20, tol=None, random_state=0), X, y),
        "sgd_modified_huber": (lambda: linear_model.SGDClassifier(loss="modified_huber", max_iter=20, tol=None,
                                                          random_state=0), X, y),
        "sgd_regressor_huber": (lambda: linear_model.SGDRegressor(loss="huber", max_iter=20, tol=None, random_state=0),
                                X, yr),
        "sgd_regressor_epsilon": (lambda: linear_model.SGDRegressor(loss="epsilon_insensitive", max_iter=20, tol=None,
                                                            random_state=0), X, yr),
        "perceptron": (lambda: linear_model.Perceptron(max_iter=20, random_state=0), X, y),
        "passive_aggressive": (lambda: linear_model.PassiveAggressiveClassifier(max_iter=20, random_state=0), X, y),
        "huber_regressor": (lambda: linear_model.HuberRegressor(max_iter=50), X, yr),
        "quantile_regressor": (lambda: linear_model.QuantileRegressor(alpha=0.0, solver="highs"), X, yr),
        "elastic_net_cv": (lambda: linear_model.ElasticNetCV(cv=2), X, yr),
        "logistic_cv": (lambda: linear_model.LogisticRegressionCV(cv=2, Cs=2, max_iter=100), X, y),
        "ridge_classifier": (lambda: linear_model.RidgeClassifier(), X, y),
        "bayesian_ridge": (lambda: linear_model.BayesianRidge(), X, yr),
        "one_class_svm": (lambda: svm.OneClassSVM(), X, None),
        "nearest_centroid": (lambda: neighbors.NearestCentroid(), X, y),
        "local_outlier_factor": (lambda: neighbors.LocalOutlierFactor(novelty=True, n_neighbors=5), X, None),
        "stacking": (lambda: ensemble.StackingClassifier([("lr", linear_model.LogisticRegression())],
                                                 final_estimator=linear_model.LogisticRegression(), cv=2), X, y),
        "bagging": (lambda: ensemble.BaggingClassifier(n_estimators=2, random_state=0), X, y),
        "spline_transformer": (lambda: preprocessing.SplineTransformer(n_knots=3), X, None),
        "kbins_discretizer": (lambda: preprocessing.KBinsDiscretizer(n_bins=3, encode="ordinal"), X, None),
        "target_encoder": (lambda: preprocessing.TargetEncoder(random_state=0), rng.integers(0, 3, (60, 1)), y),
    }
    for what, (make, Xf, yf) in fitted.items():
        try:
            est = make()
            est.fit(Xf) if yf is None else est.fit(Xf, yf)
        except Exception as exc:  # noqa: BLE001 - an estimator or option this version lacks
            c.skip(L, what, "any", None, f"fit: {type(exc).__name__}: {exc}"[:300])
            continue
        c.raw(L, what, est, protocols=(2, 4, 5))
        c.joblib_dump(L, what, est, compressions=(None, "zlib", "lz4"))


def gen_torch_more(c):
    """Whole objects torch users save beside tensors: distributions, datasets, AMP scalers."""
    import torch
    from torch import distributions as D
    from torch.utils.data import TensorDataset

    L = "torch"
    torch.manual_seed(0)
    objects = {
        "distribution_normal": lambda: D.Normal(torch.zeros(2), torch.ones(2)),
        "distribution_categorical": lambda: D.Categorical(probs=torch.tensor([0.2, 0.8])),
        "distribution_mvn": lambda: D.MultivariateNormal(torch.zeros(2), torch.eye(2)),
        "distribution_independent": lambda: D.Independent(D.Normal(torch.zeros(3), torch.ones(3)), 1),
        "distribution_transformed": lambda: D.TransformedDistribution(
            D.Normal(torch.zeros(1), torch.ones(1)), [D.transforms.ExpTransform()]),
        "tensor_dataset": lambda: TensorDataset(torch.arange(6.0).reshape(3, 2), torch.tensor([0, 1, 0])),
        "grad_scaler": lambda: torch.amp.GradScaler("cpu", init_scale=256.0),
        "generator_state": lambda: torch.Generator().manual_seed(3).get_state(),
    }
    _each(c, L, objects, raw=False, torch_save=True)


def gen_torchvision(c):
    if not _have(c, "torchvision", "torch", "torchvision"):
        return
    import torch
    import torchvision
    from torchvision import transforms as T

    L = "torchvision"
    torch.manual_seed(0)
    objects = {
        "resnet18_whole": lambda: torchvision.models.resnet18(weights=None, num_classes=3),
        "mobilenet_v3_small_whole": lambda: torchvision.models.mobilenet_v3_small(weights=None, num_classes=3),
        "resnet18_state_dict": lambda: torchvision.models.resnet18(weights=None, num_classes=3).state_dict(),
        "transforms_compose": lambda: T.Compose([T.Resize(32), T.CenterCrop(28), T.ToTensor(),
                                                 T.Normalize((0.5,), (0.5,))]),
        "transforms_augment": lambda: T.Compose([T.RandomHorizontalFlip(), T.RandomRotation(10),
                                                 T.ColorJitter(0.1, 0.1)]),
    }
    _each(c, L, objects, raw=False, torch_save=True)


def gen_transformers_more(c):
    if not _have(c, "transformers", "torch", "transformers"):
        return
    import torch
    import transformers
    from transformers.modeling_outputs import BaseModelOutput, SequenceClassifierOutput

    L = "transformers"
    torch.manual_seed(0)

    def training_args():
        import tempfile
        return transformers.TrainingArguments(output_dir=tempfile.gettempdir() + "/pg-training-args",
                                              per_device_train_batch_size=2, learning_rate=1e-4,
                                              report_to=[], use_cpu=True, seed=0)

    objects = {
        "model_output_base": lambda: BaseModelOutput(last_hidden_state=torch.zeros(1, 2, 4)),
        "model_output_classifier": lambda: SequenceClassifierOutput(logits=torch.tensor([[0.1, 0.9]])),
        "training_args": training_args,
    }
    _each(c, L, objects, raw=False, torch_save=True)
    try:
        args = training_args()
        c.raw(L, "training_args", args, protocols=(2, 4, 5), deterministic=False)
    except Exception as exc:  # noqa: BLE001
        c.skip(L, "training_args", "raw", None, f"{type(exc).__name__}: {exc}"[:300])


def gen_around(c):
    """accelerate, peft, timm, sentence-transformers, lightning, catboost: what their users
    save with torch.save / pickle / joblib."""
    import torch

    torch.manual_seed(0)
    if _have(c, "timm", "timm"):
        import timm
        _each(c, "timm", {"resnet10t_whole": lambda: timm.create_model("resnet10t", pretrained=False,
                                                                        num_classes=3)},
              raw=False, torch_save=True)
    if _have(c, "peft", "peft", "transformers"):
        from peft import LoraConfig, get_peft_model
        from transformers import GPT2Config, GPT2LMHeadModel

        def lora():
            base = GPT2LMHeadModel(GPT2Config(n_embd=16, n_layer=1, n_head=2, vocab_size=50, n_positions=32))
            return get_peft_model(base, LoraConfig(r=2, lora_alpha=4, target_modules=["c_attn"]))

        _each(c, "peft", {
            "lora_config": lambda: LoraConfig(r=4, lora_alpha=8, target_modules=["q", "v"]),
            "lora_model_whole": lora,
            "lora_state_dict": lambda: {k: v for k, v in lora().state_dict().items() if "lora" in k},
        }, raw=False, torch_save=True)
    if _have(c, "accelerate", "accelerate"):
        import accelerate.utils as au
        _each(c, "accelerate", {
            "dataclass_kwargs": lambda: [au.DistributedDataParallelKwargs(find_unused_parameters=True),
                                         au.GradScalerKwargs(init_scale=128.0)],
            "enums": lambda: [au.DistributedType.NO, au.PrecisionType.BF16],
        }, raw=True, torch_save=True, protocols=(2, 4, 5))
    if _have(c, "sentence_transformers", "sentence_transformers"):
        from sentence_transformers import models as stm
        _each(c, "sentence_transformers", {
            "pooling_whole": lambda: stm.Pooling(word_embedding_dimension=8),
            "normalize_whole": lambda: stm.Normalize(),
        }, raw=False, torch_save=True)
    if _have(c, "lightning", "lightning"):
        import lightning

        # What Trainer.save_checkpoint writes around a user's own LightningModule subclass (a
        # custom class, rightly unknown to the profile): the checkpoint dictionary itself.
        def trainer_state():
            return {"state_dict": torch.nn.Linear(2, 2).state_dict(), "epoch": 1, "global_step": 10,
                    "pytorch-lightning_version": lightning.__version__,
                    "loops": {"fit_loop": {"state_dict": {}, "epoch_progress": {"total": {"ready": 1}}}},
                    "hparams_name": "kwargs", "hyper_parameters": {"lr": 0.01}}

        _each(c, "lightning", {"checkpoint_dict": trainer_state,
                               "attribute_dict": lambda: lightning.pytorch.utilities.parsing.AttributeDict(lr=0.1)},
              raw=False, torch_save=True)
    if _have(c, "catboost", "catboost", "numpy"):
        import numpy as np
        from catboost import CatBoostClassifier

        def model():
            rng = np.random.default_rng(0)
            X = rng.standard_normal((40, 3))
            y = (X[:, 0] > 0).astype(int)
            return CatBoostClassifier(iterations=3, depth=2, verbose=False, random_seed=0,
                                      thread_count=1, allow_writing_files=False).fit(X, y)

        _each(c, "catboost", {"classifier": model}, raw=True, joblib=True, protocols=(2, 4, 5),
              deterministic=False)


def gen_pickling_libraries_more(c):
    """dill and cloudpickle files of plain data: dill names builtin types through its own
    helpers; stdlib values pickled with getattr (bound methods, enum members)."""
    import http

    objects = {
        "builtin_types": [int, float, str, bytes, list, dict, set, frozenset, tuple, type(None), complex,
                          bytearray, range, slice],
        "bound_builtin_method": "a,b".split,
        "bound_list_method": [3, 1, 2].sort,
        "enum_member_by_name": http.HTTPStatus.OK,
        "enum_class": http.HTTPStatus,
        "nested_plain": {"a": [1, (2, 3)], "b": {"c": b"bytes", "d": None}},
    }
    for name in ("enum_member_by_name", "bound_builtin_method", "bound_list_method"):
        c.raw("stdlib", f"getattr_{name}", objects[name], protocols=(2, 3, 4, 5))
    for lib, mod in (("dill", "dill"), ("cloudpickle", "cloudpickle")):
        if not _have(c, lib, mod):
            continue
        dumps = importlib.import_module(mod).dumps
        for what, obj in objects.items():
            c.raw(lib, what, obj, dumps=dumps, protocols=(2, 4, pickle.HIGHEST_PROTOCOL))


SECTIONS = [
    ("pandas_more", gen_pandas_more),
    ("sklearn_more", gen_sklearn_more),
    ("torch_more", gen_torch_more),
    ("torchvision", gen_torchvision),
    ("transformers_more", gen_transformers_more),
    ("around", gen_around),
    ("pickling_more", gen_pickling_libraries_more),
]
