"""Run configuration: typed dataclasses, loaded from YAML, with dotted command-line overrides.

A run is fully described by a :class:`RunConfig`; ``merkit evaluate`` writes the resolved config into the run
folder (``config.yaml``) so that every number can be traced back to it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping

import pydantic
import yaml
from pydantic import Field
from typing_extensions import TypedDict

from merkit.boundary import (FIELDS, Bool, Count, Float, Fraction, Int, Name, NonNegativeFloat, NonNegativeInt,
                             PositiveFloat, did_you_mean, unknown_name, validate)
from merkit.config_files import resolve_config
from merkit.errors import ConfigError
from merkit.face.clip import FaceConfig
from merkit.inputs.record import ON_ERROR, Preprocessing
from merkit.motion.stage import MotionConfig

SELECTIONS = ("last", "inner", "paper")
DATA_KINDS = ("flow_folder", "raw")
#: ``protocol.split`` values (:func:`merkit.training.loso.make_folds`).
SPLITS = ("loso", "lodo", "train-test")
#: ``training.optimizer`` and ``training.scheduler`` values (:mod:`merkit.training.engine`).
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULERS = ("none", "cosine", "exponential", "step")
#: ``training.device`` values: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.
DEVICE_PATTERN = re.compile(r"cpu|auto|cuda(:\d+)?")
#: The augmentation hooks of :mod:`merkit.training.augment` by name, with their keyword parameters' types; the
#: hooks module checks at import that it defines exactly these, so that a config is checked without importing it.
AUGMENT_PARAMS: dict[str, dict[str, type]] = {
    "hflip": {}, "rotate": {"degrees": float, "order": int}, "rotate3": {}, "random_crop": {"padding": int},
    "random_crop_pad15": {}, "color_jitter": {"strength": float}, "temporal_jitter": {}, "apex_jitter": {},
    "magnify": {}}
#: Parameters whose values are a closed set: ``rotate``'s interpolation ``order`` (0 nearest, 1 bilinear; the
#: convention of ``skimage.transform``).
AUGMENT_CHOICES: dict[tuple[str, str], tuple[Any, ...]] = {("rotate", "order"): (0, 1)}
#: Parameters a hook needs set in ``training.augment_params``.
AUGMENT_REQUIRED: dict[str, tuple[str, ...]] = {"color_jitter": ("strength",)}
#: Hooks that swap in other frames; at most one, first.
TEMPORAL_HOOKS = ("temporal_jitter", "apex_jitter")
#: ``protocol.tta`` values: ``none``, or ``flip`` (average with the mirrored input, :func:`merkit.training.augment.mirror`).
TTAS = ("none", "flip")
#: ``protocol.member_weights`` values (:mod:`merkit.training.members`).
MEMBER_WEIGHTS = ("equal", "inner")
#: The ``data`` keys that shape a flow folder's or release's inputs: a member's named config must agree on them.
MEMBER_DATA_KEYS = ("kind", "scheme", "channels", "file_channels", "with_apex", "apex_size", "with_au_boxes",
                    "with_face_points", "dataset")
#: The model inputs :func:`merkit.training.augment.mirror` mirrors; ``protocol.tta: flip`` refuses a model that reads
#: any other (a clip or an AU vector would be averaged unmirrored).
MIRROR_KEYS = ("flow", "apex_minus_onset", "onset", "apex", "au_boxes", "face_points")
#: Keys added after the shipped configs' result hashes were pinned, with their defaults. :meth:`RunConfig.to_dict`
#: leaves such a key out while it holds its default, so that ``config.yaml`` and :meth:`RunConfig.result_hash` of
#: every earlier config, and so its run folders, are unchanged; a config that sets one shows it.
LATER_KEYS: dict[tuple[str, str], Any] = {("training", "label_smoothing"): 0.0, ("training", "mixup_alpha"): 0.0,
                                          ("training", "cutmix_alpha"): 0.0, ("protocol", "tta"): "none",
                                          ("protocol", "members"): {}, ("protocol", "member_weights"): "equal",
                                          ("data", "subjects"): [], ("data", "datasets"): [],
                                          ("training", "shuffle"): True, ("data", "action_units"): [],
                                          ("data", "au_sheets"): {}, ("model", "init"): None,
                                          ("training", "fused_optimizer"): False}


@pydantic.with_config(FIELDS)
class ParamGroup(TypedDict, total=False):
    """A ``training.param_groups`` entry: the optimiser settings it overrides."""

    lr: PositiveFloat
    weight_decay: NonNegativeFloat
    momentum: NonNegativeFloat
    schedule: Bool


#: Keys a ``training.param_groups`` entry may override.
PARAM_GROUP_KEYS = tuple(ParamGroup.__annotations__)


@pydantic.with_config(FIELDS)
@dataclass
class DataConfig:
    """Where the samples come from, how they are labelled, and how their inputs are made.

    ``kind``:

    * ``flow_folder``: precomputed onset->apex flow images in the MEGC2019 composite's format in ``path``
      (:func:`merkit.inputs.composite.read_composite`, with ``channels``, ``file_channels``, ``with_apex``,
      ``apex_size``, ``with_au_boxes`` and ``with_face_points``).
    * ``raw``: a release in ``path`` loaded by name (``dataset``: ``casme2``, ``samm``, ``smic``, ``synthetic``,
      ...), then :func:`merkit.inputs.build.build_inputs`, cached under ``cache`` (default
      :func:`merkit.inputs.build.release_cache_dir`) with ``preprocess_workers`` processes. A clip that fails on
      bad data is skipped with a counted warning (``on_error: skip``) or stops the run (``raise``).

    ``face`` and ``motion`` make the preprocessing record (:attr:`preprocessing`): how frames become inputs in a
    raw run, and how a flow folder's images were made, so that ``merkit predict`` can rebuild them. Their defaults
    are the composite's recipe. ``benchmark`` names the published results the report lists (e.g.
    ``megc2019-composite``); they are listed only beside a run on the whole benchmark, not on a subset.

    ``subjects`` and ``datasets`` select part of the data where it is loaded
    (:func:`merkit.inputs.select.select_table`); empty (the default) keeps everything. A subject is its
    ``subject_id``, ``dataset/subject`` (``samm/006``), or the subject alone (``sub01``) when one dataset of the data
    (of ``datasets``, when given) has it. With both, a sample is kept when its dataset and its subject are selected.
    A run on a subset says so in its name (:meth:`RunConfig.run_name`), ``run.json``, ``metrics.json`` and every
    table of its report ("62 of 442 samples, 5 of 68 subjects"). Names are strings: quote a subject that YAML
    reads as a number (``'006'``).

    ``action_units`` names the AUs of a ground-truth AU vector, in its order (CVA+FPF+AU's 21:
    :data:`merkit.datasets.action_units.PAPER_AUS`); it becomes the input ``action_units``
    (:mod:`merkit.inputs.action_units`), part of the preprocessing record, and **oracle input**: every report of the
    run says it was given the annotation at test time. A raw release carries its sheet's AUs; a flow folder takes
    them from ``au_sheets``, ``{dataset: coding sheet}`` (the official CASME II and SAMM sheets for the MEGC2019
    composite), joined by dataset, subject and sample. Both keys are empty by default.
    """

    kind: Literal[DATA_KINDS] = "flow_folder"
    path: str | None = None
    benchmark: str | None = None
    scheme: str = "megc2019-3class"
    channels: list[str] = field(default_factory=lambda: ["u", "v", "strain"])
    file_channels: list[str] = field(default_factory=lambda: ["u", "v", "strain"])
    with_apex: Bool = False
    apex_size: Count | None = None
    with_au_boxes: Bool = False
    with_face_points: Bool = False
    dataset: str | None = None
    face: FaceConfig = field(default_factory=FaceConfig)
    motion: MotionConfig = field(default_factory=MotionConfig)
    cache: str | None = None
    preprocess_workers: Count = 1
    on_error: Literal[ON_ERROR] = "skip"
    subjects: list[Name] = field(default_factory=list)
    datasets: list[Name] = field(default_factory=list)
    action_units: list[Annotated[Int, Field(ge=1, le=99)]] = field(default_factory=list)
    au_sheets: dict[str, str] = field(default_factory=dict)

    @property
    def preprocessing(self) -> Preprocessing:
        """The preprocessing record of ``face``, ``motion`` and ``action_units``."""
        return Preprocessing(self.face, self.motion, tuple(self.action_units))

    @property
    def subset_suffix(self) -> str:
        """What a run on a subset adds to its name: ``""`` for all the data; ``-subset-casme2+samm`` for
        ``datasets``; ``-subset-5subjects-1a2b3c`` for ``subjects`` (their count and 6 hex digits of SHA-256 of the
        sorted names, so that two subsets of one size get two names); both, in that order."""
        parts = ["+".join(self.datasets)] if self.datasets else []
        if self.subjects:
            digest = hashlib.sha256("\n".join(sorted(self.subjects)).encode()).hexdigest()[:6]
            parts.append(f"{len(self.subjects)}subject{'s' if len(self.subjects) > 1 else ''}-{digest}")
        return "-subset-" + "-".join(parts) if parts else ""


@pydantic.with_config(FIELDS)
@dataclass
class ModelConfig:
    """Which model, which preset, and parameter overrides of the preset.

    Attributes:
        init: ``None`` (default: the model's own initialisation) or a checkpoint to start every fold's training
            from: a folder written by ``merkit train``, a packaged model's name or a Hugging Face Hub id
            (:func:`merkit.pretrained.resolve_checkpoint`). It must hold the same model (name, preset, params) and
            have been trained on none of the datasets the run evaluates (:func:`merkit.pretrained.check_start`);
            the result hash holds its weights' digest, not its path.
    """

    name: str = "ststnet"
    preset: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    init: str | None = None


@pydantic.with_config(FIELDS)
@dataclass
class TrainConfig:
    """Optimisation, for a fixed number of epochs; the trainer never sees test data.

    Attributes:
        optimizer: ``adam``, ``adamw`` or ``sgd``; scheduler: ``none``, ``cosine``, ``exponential`` or ``step``
            (:func:`merkit.training.engine.make_scheduler`).
        augment: training hooks by name (:mod:`merkit.training.augment`).
        augment_params: ``{hook name: {parameter: value}}``, the keyword parameters of hooks listed in ``augment``
            (``{rotate: {degrees: 4}, random_crop: {padding: 4}, color_jitter: {strength: 0.2}}``); checked when
            the config loads (:func:`check_augmentations`, against :data:`AUGMENT_PARAMS`).
        device: ``cpu`` (default, bit-reproducible per machine), ``cuda``, ``cuda:N`` or ``auto``; not part of
            :meth:`RunConfig.result_hash` (``run.json`` records it).
        param_groups: ``{parameter-name prefix: {lr, weight_decay, momentum, schedule}}``, per-module optimiser
            settings (:func:`merkit.training.engine.make_optimizer`).
        ema_decay: ``0`` (default) or ``d`` in (0, 1): predict with an exponential moving average of the weights,
            updated after every step (:class:`torch.optim.swa_utils.AveragedModel`); in none of the papers.
        label_smoothing: ``0`` (default) or ``e`` in (0, 1): the cross-entropy's targets are ``1 - e`` on the label
            and ``e / K`` spread over the K classes (:class:`torch.nn.CrossEntropyLoss`, Szegedy et al. 2016).
        mixup_alpha, cutmix_alpha: ``0`` (default: off) or the Beta(a, a) parameter of the mixing weight of mixup
            (Zhang et al. 2018) or CutMix (Yun et al. 2019) on each training batch; with both set, each batch uses
            one of them with probability 1/2 (:mod:`merkit.training.mixing`).
        shuffle: ``True`` (default): a new random batch order every epoch; ``False``: the training rows in the
            sample table's order every epoch, as the HTNet and STSTNet authors' loaders (``DataLoader`` without
            ``shuffle``).
        fused_optimizer: ``False`` (default): torch's per-tensor optimizer step; ``True``: torch's fused kernel
            for the same optimizer (``fused=True``: one call updates every parameter). The update rule is the same,
            its rounding is not, so a run does not reproduce the default path's bit for bit, and over many epochs
            its figures move as they do on another CPU. Opt-in for speed, for a model whose step is mostly its
            optimizer, as OFF-ApexNet's (808k parameters at batch 32; docs/benchmarks.md, "Fused optimizer").
    """

    epochs: Count = 100
    batch_size: Count = 64
    optimizer: Literal[OPTIMIZERS] = "adam"
    lr: PositiveFloat = 1e-3
    weight_decay: NonNegativeFloat = 0.0
    momentum: NonNegativeFloat = 0.9
    scheduler: Literal[SCHEDULERS] = "none"
    scheduler_params: dict[str, Any] = field(default_factory=dict)
    class_weighted: Bool = False
    augment: list[Literal[tuple(AUGMENT_PARAMS)]] = field(default_factory=list)
    augment_params: dict[str, Any] = field(default_factory=dict)
    grad_accumulation: Count = 1
    eval_batch_size: Count = 256
    device: str = "cpu"  # cpu | cuda | cuda:N | auto; see merkit.training.engine.resolve_device
    param_groups: dict[str, ParamGroup] = field(default_factory=dict)
    ema_decay: Annotated[Float, Field(ge=0, lt=1)] = 0.0
    label_smoothing: Annotated[Float, Field(ge=0, lt=1)] = 0.0
    mixup_alpha: NonNegativeFloat = 0.0
    cutmix_alpha: NonNegativeFloat = 0.0
    shuffle: Bool = True
    fused_optimizer: Bool = False


@pydantic.with_config(FIELDS)
@dataclass
class ProtocolConfig:
    """The evaluation protocol: folds, model selection, seeds, and where units run.

    Attributes:
        split: ``loso`` (default; one fold per subject), ``lodo`` (one fold per dataset, trained on the others) or
            ``train-test`` (train on ``train_on``'s datasets, test on ``test_on``'s); :mod:`merkit.training.loso`.
        selection: ``last`` (default, honest: the model after ``training.epochs``); ``inner`` (honest: the epoch
            count, and the recipe among ``recipes``, chosen by the pooled UF1 of ``inner_folds`` subject-disjoint
            folds of the training subjects, :mod:`merkit.training.selection`); or ``paper`` (the best epoch per test
            subject, as the papers' code does: optimistic, and labelled so in every output).
        inner_folds: k of ``inner`` selection. recipes: named recipes for ``inner``, ``{name: [key=value, ...]}``
            overrides of this config (``training.*`` and ``model.params.*``); empty: the config's own recipe.
        ensemble: K: each unit averages the class probabilities of K models trained with K seeds.
        tta: ``none`` (default) or ``flip``: every prediction (the held-out rows', and inner selection's scores)
            averages the class probabilities of the input and of its left-right mirror
            (:func:`merkit.training.augment.mirror`, the ``hflip`` augmentation's mirror); reads no label.
        members: an ensemble across architectures, ``{name: [key=value, ...]}``: each member is this config with
            the overrides (first, optionally, ``config=NAME``: that config's model and training; then ``model.*``,
            which start from an empty model section when they set ``model.name``, and ``training.*``); every unit trains each member and averages their class probabilities
            (:mod:`merkit.training.members`). member_weights: ``equal`` (default, fixed in advance) or ``inner``
            (stacking: the weights minimising the inner folds' out-of-fold log loss, per outer fold).
        seeds: one run per seed. workers: parallel units (Ray); threads_per_fold: torch threads (and Ray CPUs) per
            unit; gpus_per_fold: GPU share per unit on CUDA (``0``: ``1 / workers``).
        address: a Ray cluster to run units and preprocessing on (also ``--address`` or ``$RAY_ADDRESS``);
            ``None`` runs locally. max_retries: times a unit is rerun after its worker or node dies.
        save_checkpoints: keep each unit's weights.
        record_epochs: a diagnostic: also save the held-out subject's predictions after every epoch, which
            ``merkit report`` plots as the test-set learning curve. The curve never enters the reported figures,
            and an epoch count read off it was chosen on the test subjects.
    """

    split: Literal[SPLITS] = "loso"
    train_on: list[str] = field(default_factory=list)
    test_on: list[str] = field(default_factory=list)
    selection: Literal[SELECTIONS] = "last"
    inner_folds: Annotated[Int, Field(ge=2)] = 5
    recipes: dict[str, list[str]] = field(default_factory=dict)
    ensemble: Count = 1
    tta: Literal[TTAS] = "none"
    members: dict[str, list[str]] = field(default_factory=dict)
    member_weights: Literal[MEMBER_WEIGHTS] = "equal"
    seeds: Annotated[list[Int], Field(min_length=1)] = field(default_factory=lambda: [0])
    workers: Count = 1
    threads_per_fold: Count = 1
    gpus_per_fold: Fraction = 0.0
    address: str | None = None
    max_retries: NonNegativeInt = 3
    save_checkpoints: Bool = True
    record_epochs: Bool = False


@pydantic.with_config(FIELDS)
@dataclass
class RunConfig:
    name: str = "run"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainConfig = field(default_factory=TrainConfig)
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)

    def validate(self) -> "RunConfig":
        """Check this config as :func:`config_from_dict` does (a config built in code enters here: every field's
        type, range and choices, :mod:`merkit.boundary`), then the rules that tie keys together.

        Raises:
            ConfigError: one line naming the bad key, its value and the rule.
        """
        checked = validate(RunConfig, _sections(self))
        self.training.param_groups = checked.training.param_groups  # YAML's "1e-3" as a float
        self.data.subjects, self.data.datasets = checked.data.subjects, checked.data.datasets  # stripped
        for key in ("subjects", "datasets"):
            names = getattr(self.data, key)
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise ConfigError(f"data.{key} lists {twice[0]!r} twice: {names}")
        for name in self.data.datasets:
            if "/" in name or "\\" in name:
                raise ConfigError(f"data.datasets: {name!r} is not a dataset name (it holds a path separator)")
        for name in self.data.subjects:
            if "\\" in name or name.count("/") > 1 or name.startswith("/") or name.endswith("/"):
                raise ConfigError(f"data.subjects: {name!r} is neither a subject nor a subject id dataset/subject")
        p, t = self.protocol, self.training
        if len(set(p.seeds)) != len(p.seeds):
            raise ConfigError(f"protocol.seeds lists a seed twice: {p.seeds}")
        self._validate_protocol()
        self._validate_action_units()
        self._validate_device()
        self._validate_names()
        self._validate_tta()
        check_augmentations(t.augment, t.augment_params)
        for prefix, group in t.param_groups.items():
            if not prefix:
                raise ConfigError("training.param_groups keys must be non-empty parameter-name prefixes, got ''")
            if "momentum" in group and t.optimizer != "sgd":
                raise ConfigError(f"training.param_groups[{prefix!r}]: momentum applies to training.optimizer sgd "
                                  f"only, not {t.optimizer!r}")
        return self

    def _validate_names(self) -> None:
        """``model.name`` among the models (:data:`merkit.models.MODEL_MODULES`) and ``data.dataset`` among the
        loaders (:data:`merkit.datasets.registry.DATASETS`), with a "did you mean"."""
        from merkit.models import MODEL_MODULES

        if self.model.name not in MODEL_MODULES:
            raise ConfigError(unknown_name("model", self.model.name, MODEL_MODULES) + " (model.name)")
        if self.data.kind == "raw" and self.data.dataset is not None:
            from merkit.datasets.registry import DATASETS

            if self.data.dataset.lower() not in DATASETS:
                raise ConfigError(unknown_name("dataset", self.data.dataset, DATASETS) + " (data.dataset)")

    def _validate_action_units(self) -> None:
        """``data.action_units`` distinct; ``data.au_sheets`` only with them, on a flow folder, for datasets whose
        sheets code AUs; a flow folder's AUs need ``au_sheets``."""
        from merkit.datasets.action_units import AU_CODED

        d = self.data
        twice = sorted({u for u in d.action_units if d.action_units.count(u) > 1})
        if twice:
            raise ConfigError(f"data.action_units lists AU {twice[0]} twice: {d.action_units}")
        if d.au_sheets and not d.action_units:
            raise ConfigError("data.au_sheets joins AU codes for data.action_units, which is empty; set "
                              "data.action_units (e.g. the 21 AUs of CVA+FPF+AU) or drop data.au_sheets")
        if d.au_sheets and d.kind != "flow_folder":
            raise ConfigError("data.au_sheets joins AU codes to a flow folder's samples; a raw release carries "
                              "its own sheet's AUs, so drop data.au_sheets")
        if d.action_units and d.kind == "flow_folder" and not d.au_sheets:
            raise ConfigError("data.action_units on a flow folder needs data.au_sheets ({dataset: coding sheet}): "
                              "a flow folder's manifest carries no AUs")
        for name in d.au_sheets:
            if name not in AU_CODED:
                raise ConfigError(f"data.au_sheets: {name!r} is not a dataset whose sheet codes AUs "
                                  f"({', '.join(AU_CODED)})")

    def _validate_members(self) -> None:
        """``protocol.members``: two or more, with ``selection: last`` and ``ensemble: 1``; each overrides
        ``model.*`` and ``training.*`` only and makes a valid config. ``member_weights: inner`` needs members."""
        p = self.protocol
        if not p.members:
            if p.member_weights != "equal":
                raise ConfigError("protocol.member_weights weighs protocol.members; list two or more members")
            return
        if len(p.members) < 2:
            raise ConfigError(f"protocol.members lists {len(p.members)} member; an ensemble needs two or more")
        if p.selection != "last" or p.ensemble > 1 or p.record_epochs:
            raise ConfigError("protocol.members trains each member for its fixed epochs: it goes with "
                              "protocol.selection last, protocol.ensemble 1 and no protocol.record_epochs")
        for name, overrides in p.members.items():
            bad = [o for i, o in enumerate(overrides)
                   if not o.startswith(("training.", "model.")) and not (i == 0 and o.startswith("config="))]
            if bad:
                raise ConfigError(f"protocol.members[{name!r}] may name a config first (config=NAME) and override "
                                  f"model.* and training.* only, got {bad}")
            self.member_config(name)

    def member_config(self, name: str) -> "RunConfig":
        """The config of member ``name`` of ``protocol.members``: this config without members or recipes; with
        ``config=NAME`` first, that config's ``model`` and ``training`` sections (a shipped name or a path, as
        :func:`load_config` takes); else, when the overrides set ``model.name``, an empty model section; then the
        overrides, validated.

        Raises:
            ConfigError: as :func:`load_config`; a named config whose inputs differ from this run's (its
                ``data`` keys that shape the inputs, :data:`MEMBER_DATA_KEYS`).
        """
        overrides = list(self.protocol.members[name])
        data = self.to_dict()
        data["protocol"].update(recipes={}, members={}, member_weights="equal")
        if overrides and overrides[0].startswith("config="):
            source = load_config(overrides.pop(0).split("=", 1)[1].strip()).to_dict()
            differ = [k for k in MEMBER_DATA_KEYS if source["data"][k] != data["data"][k]]
            if differ:
                raise ConfigError(f"protocol.members[{name!r}]: its config reads other inputs than this run "
                                  f"(data.{differ[0]}: {source['data'][differ[0]]!r}, here "
                                  f"{data['data'][differ[0]]!r}); members share the run's data")
            data["model"], data["training"] = source["model"], source["training"]
        elif any(o.split("=", 1)[0].strip() == "model.name" for o in overrides):
            data["model"] = {}
        return config_from_dict(_apply_overrides(data, overrides))

    def _validate_tta(self) -> None:
        """``protocol.tta: flip`` only for a model whose every input :func:`merkit.training.augment.mirror` mirrors
        (a recipe's ``model.params`` are checked when its config is validated)."""
        if self.protocol.tta != "flip":
            return
        from merkit.models import model_info

        keys = model_info(self.model.name, self.model.preset, **self.model.params).input_keys
        unmirrored = [k for k in keys if k not in MIRROR_KEYS]
        if unmirrored:
            raise ConfigError(f"protocol.tta flip mirrors the inputs {list(MIRROR_KEYS)}, but model "
                              f"{self.model.name!r} also reads {unmirrored}; set protocol.tta: none")

    def _validate_protocol(self) -> None:
        p = self.protocol
        if (p.split == "train-test") != bool(p.train_on or p.test_on):
            raise ConfigError("protocol.train_on and protocol.test_on go with protocol.split train-test, and it "
                              "needs both")
        if p.recipes and p.selection != "inner":
            raise ConfigError("protocol.recipes are chosen by protocol.selection inner; set it, or drop the recipes")
        if p.selection == "paper" and (p.ensemble > 1):
            raise ConfigError("protocol.ensemble > 1 averages fixed-epoch models; it does not go with selection paper")
        self._validate_members()
        for name, overrides in p.recipes.items():
            bad = [o for o in overrides if not o.startswith(("training.", "model.params."))]
            if bad:
                raise ConfigError(f"protocol.recipes[{name!r}] may override training.* and model.params.* only, "
                                  f"got {bad}")
            self.with_overrides(overrides)  # every recipe must make a valid config

    def resolve(self) -> "Plan":
        """This config resolved once, at the API boundary, into what the layers below need (:class:`Plan`): the
        protocol with its recipes (model spec + training) built, and the resources. Recipes are validated here, so
        nothing re-parses the config inside the training loop.

        Raises:
            ConfigError: the config or one of its recipes is invalid.
        """
        self.validate()
        p = self.protocol
        own = Recipe(DEFAULT_RECIPE, ModelSpec.of(self.model), self.training)
        reads_aus = "action_units" in own.model.input_keys
        if reads_aus != bool(self.data.action_units):
            raise ConfigError(
                f"model {self.model.name} reads the ground-truth AU input but data.action_units is empty; set it "
                "(e.g. the 21 AUs of CVA+FPF+AU, configs/megc2019/cva-fpf-flow-au.yaml)" if reads_aus else
                f"data.action_units builds a ground-truth AU input that model {self.model.name} does not read "
                "(cva_fpf reads it with model.params.au_source=annotation); drop data.action_units")
        candidates = tuple(Recipe(name, ModelSpec.of(c.model), c.training)
                           for name, c in ((n, self.with_overrides(o)) for n, o in p.recipes.items()))
        members = tuple(Recipe(name, ModelSpec.of(c.model), c.training)
                        for name, c in ((n, self.member_config(n)) for n in p.members))
        protocol = Protocol(p.split, tuple(p.train_on), tuple(p.test_on), p.selection, p.inner_folds, p.ensemble,
                            tuple(p.seeds), p.save_checkpoints, p.record_epochs, own, candidates, p.tta, members,
                            p.member_weights)
        from merkit.cluster import runs_in_process

        resources = Resources(p.workers, p.threads_per_fold, p.gpus_per_fold, p.address, p.max_retries,
                              self.training.device, runs_in_process(p.workers, p.address))
        return Plan(self.run_name, self.data, protocol, resources, self.result_hash(),
                    yaml.safe_dump(self.to_dict(), sort_keys=False))

    @property
    def run_name(self) -> str:
        """The run's name: ``name``, with :attr:`DataConfig.subset_suffix` for a run on part of the data (the
        default run folder is ``runs/<run_name>``)."""
        suffix = self.data.subset_suffix
        return self.name if self.name.endswith(suffix) else self.name + suffix

    def with_overrides(self, overrides: list[str]) -> "RunConfig":
        """A copy of this config with ``key.sub=value`` overrides applied, validated.

        Raises:
            ConfigError: as :func:`load_config`.
        """
        data = self.to_dict()
        data["protocol"]["recipes"] = {}
        data["protocol"].pop("members", None)
        data["protocol"].pop("member_weights", None)
        return config_from_dict(_apply_overrides(data, overrides))

    def _validate_device(self) -> None:
        device, gpus = self.training.device, self.protocol.gpus_per_fold
        if not DEVICE_PATTERN.fullmatch(device):
            raise ConfigError(f"training.device must be cpu, cuda, cuda:N or auto, got {device!r}")
        if gpus > 0 and device == "cpu":
            raise ConfigError("protocol.gpus_per_fold > 0 needs training.device cuda or auto, not cpu")
        if device.startswith("cuda:") and self.protocol.workers > 1:
            raise ConfigError(f"training.device {device!r} with protocol.workers > 1: Ray gives each fold worker "
                              "its own visible GPU, so use training.device=cuda (and protocol.gpus_per_fold)")

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dicts and lists (what ``config.yaml`` holds). A :data:`LATER_KEYS` key at its default is
        left out, so that a config's dict, ``config.yaml`` and :meth:`result_hash` stay what they were before
        that key existed, and older run folders still resume."""
        d = _plain(dataclasses.asdict(self))
        for (section, key), default in LATER_KEYS.items():
            if d[section].get(key) == default:
                del d[section][key]
        return d

    def result_hash(self) -> str:
        """Hash of everything that changes a fold's predictions.

        Included: ``data.subjects``, ``data.datasets`` and ``data.action_units`` when set (they choose the samples
        and the inputs; left out of the dict when empty, :meth:`to_dict`); for ``model.init``, the digest of the
        weights it names (:func:`merkit.pretrained.start_digest`), not its path. Excluded: ``name``; ``data.path`` and
        ``data.au_sheets`` (the data fingerprint checks the data instead), ``data.cache``, ``data.preprocess_workers``
        and ``data.on_error`` (where and how inputs are computed; skipped clips change the fingerprint);
        ``protocol.seeds`` (each seed is its own unit),
        ``protocol.workers``, ``protocol.save_checkpoints``, ``protocol.gpus_per_fold``, ``protocol.address``,
        ``protocol.max_retries``, ``protocol.record_epochs`` and ``training.device`` (where a unit runs;
        ``run.json`` records the devices and machines).
        """
        d = self.to_dict()
        d.pop("name")
        for k in ("path", "cache", "preprocess_workers", "on_error"):
            d["data"].pop(k)
        d["data"].pop("au_sheets", None)
        for k in ("seeds", "workers", "save_checkpoints", "gpus_per_fold", "record_epochs", "address",
                  "max_retries"):
            d["protocol"].pop(k)
        d["training"].pop("device")
        if self.model.init:
            from merkit.pretrained import start_digest

            d["model"]["init"] = start_digest(self.model.init)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


#: ``data`` keys added after run folders were made, left out of :meth:`RunConfig.to_dict` at their default.
def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _sections(config: RunConfig) -> dict[str, Any]:
    """A config's sections as mappings (``data.face`` and ``data.motion`` too), for :func:`validate`."""
    return {f.name: _shallow(getattr(config, f.name)) for f in dataclasses.fields(config)}


def _shallow(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: _shallow(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


def check_augmentations(names: list[str], params: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """``training.augment`` and ``training.augment_params`` checked against :data:`AUGMENT_PARAMS`.

    Returns:
        ``{hook name: {parameter: value}}`` for the hooks given parameters (or that need them), each value of the
        parameter's type (``4`` -> ``4.0`` for a float, ``"0.2"`` -> ``0.2``, ``4.0`` -> ``4`` for an int).

    Raises:
        ConfigError: an unknown name (with a "did you mean"), a temporal hook (:data:`TEMPORAL_HOOKS`) that is not
            the first, or two of them; parameters for a hook that is not listed, an unknown parameter, a value that
            is not a non-negative number of the parameter's type, or a required parameter left out.
    """
    params = dict(params or {})
    for name in names:
        if name not in AUGMENT_PARAMS:
            raise ConfigError(unknown_name("augmentation", name, AUGMENT_PARAMS) + " (training.augment)")
    temporal = [i for i, n in enumerate(names) if n in TEMPORAL_HOOKS]
    if len(temporal) > 1 or temporal and temporal[0] != 0:
        raise ConfigError(f"training.augment {list(names)}: one temporal hook ({' or '.join(TEMPORAL_HOOKS)}) at "
                          "most, and it must come first: it swaps in frames that earlier hooks did not transform")
    unlisted = sorted(set(params) - set(names))
    if unlisted:
        raise ConfigError(f"training.augment_params sets {unlisted}, which training.augment {list(names)} does not "
                          "list")
    return {name: _hook_parameters(name, params.get(name, {})) for name in names
            if name in params or AUGMENT_REQUIRED.get(name)}


def _hook_parameters(name: str, given: Any) -> dict[str, Any]:
    """``training.augment_params[name]`` checked against the hook's parameters and their types."""
    known, where = AUGMENT_PARAMS[name], f"training.augment_params[{name!r}]"
    if not isinstance(given, Mapping):
        raise ConfigError(f"{where} must map parameter names to values, got {given!r}")
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown parameters {unknown}{did_you_mean(unknown[0], known)}; {name} takes "
                          f"{sorted(known) or 'none'}")
    missing = [p for p in AUGMENT_REQUIRED.get(name, ()) if p not in given]
    if missing:
        raise ConfigError(f"augmentation {name} needs {where} to set {missing}")
    checked = {}
    for key, value in given.items():
        kind = known[key]
        try:
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise ValueError
            number = float(value)
            if kind is int and number != int(number):
                raise ValueError
            checked[key] = kind(number)
        except (ValueError, OverflowError):
            raise ConfigError(f"{where}[{key!r}] must be a {kind.__name__}, got {value!r}") from None
        if not checked[key] >= 0 or checked[key] == float("inf"):
            raise ConfigError(f"{where}[{key!r}] must be >= 0 and finite, got {value!r}")
        choices = AUGMENT_CHOICES.get((name, key))
        if choices is not None and checked[key] not in choices:
            raise ConfigError(f"{where}[{key!r}] must be one of {list(choices)}, got {value!r}")
    return checked


def config_from_dict(data: dict[str, Any]) -> RunConfig:
    """Build a :class:`RunConfig` from nested dicts and validate it.

    Raises:
        ConfigError: unknown keys, values of the wrong type, or invalid values; the message names the key.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"a config must be a mapping of sections, got {type(data).__name__}")
    return validate(RunConfig, data).validate()


def load_config(path: str | Path | None = None, overrides: list[str] | None = None,
                values: Mapping[str, Any] | None = None) -> RunConfig:
    """Load a YAML config (or the defaults when ``path`` is None), set ``values``, then apply ``key.sub=value``
    overrides.

from merkit.boundary import (FIELDS, Bool, Count, Float, Fraction, Int, Name, NonNegativeFloat, NonNegativeInt,
                             PositiveFloat, did_you_mean, unknown_name, validate)
from merkit.config_files import resolve_config

    Raises:
        ConfigError: the file is missing or not valid YAML, an unknown shipped config name (with the closest
            names), unknown keys, malformed overrides, or invalid values.
    """
    data: dict[str, Any] = {}
    if path is not None:
        path = resolve_config(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as error:
            raise ConfigError(f"{path} is not valid YAML: {str(error).splitlines()[0]}") from error
        if not isinstance(data, dict):
            raise ConfigError(f"{path} must hold a mapping of config sections, got {type(data).__name__}")
    for key, value in (values or {}).items():
        _set(data, key, str(value) if isinstance(value, Path) else value, f"{key}={value}")
    return config_from_dict(_apply_overrides(data, overrides or []))


def _set(data: dict[str, Any], key: str, value: Any, item: str) -> None:
    """Set dotted ``key`` of ``data`` to ``value``, making the sections on the way.

    Raises:
        ConfigError: a key under a value that is not a section (``item`` is named).
    """
    node = data
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {item!r}: {part!r} is not a section")
    node[parts[-1]] = value


def _apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``data`` with each ``key.sub=value`` override set (the value parsed as YAML).

    Raises:
        ConfigError: a malformed override, a key under a value that is not a section, a value that is not YAML, or
            one with a comment (`` #...``), which YAML would drop without a word.
    """
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key.sub=value")
        key, raw = item.split("=", 1)
        try:
            node = yaml.compose(raw)
            value = yaml.safe_load(raw)
        except yaml.YAMLError as error:
            raise ConfigError(f"override {item!r}: the value is not valid YAML ({error})") from error
        dropped = raw[node.end_mark.index if node is not None else 0:].strip()
        if dropped:
            raise ConfigError(f"override {item!r}: YAML reads {dropped!r} as a comment and drops it; quote the value "
                              f"({key}='\"...\"') to keep it")
        _set(data, key, value, item)
    return data


def dump_config(config: RunConfig, path: str | Path) -> None:
    """Write ``config`` as YAML to ``path`` atomically."""
    from merkit.files import write_text

    write_text(path, yaml.safe_dump(config.to_dict(), sort_keys=False))


# ----------------------------------------------------------------------------------------------------------------
# The config resolved once (RunConfig.resolve): what the layers below the API take instead of a RunConfig

#: The name of a run's own recipe (the config's ``model`` and ``training``).
DEFAULT_RECIPE = "config"


@dataclass(frozen=True)
class ModelSpec:
    """Which model to build (a registry name, a preset and parameter overrides: ``model.*`` of a config), and the
    facts the registry gives of it without building it (:func:`merkit.models.model_info`).

    Attributes:
        input_keys: the model inputs it reads; ground_truth_inputs: those taken from annotations (oracle inputs,
            e.g. CVA+FPF's AUs); notes: what a report says of it.
    """

    name: str
    preset: str | None
    params: tuple[tuple[str, Any], ...] = ()
    input_keys: tuple[str, ...] = ()
    ground_truth_inputs: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    init: str | None = None
    init_folder: str = ""

    @classmethod
    def of(cls, model: ModelConfig) -> "ModelSpec":
        """The spec of a config's ``model`` section, with its facts read from the registry, and the checkpoint
        folder ``model.init`` names.

        Raises:
            ConfigError: unknown model, preset or parameter; a ``model.init`` that names no checkpoint, or one of
                another model, preset or params, or of a network the preset no longer builds
                (:func:`merkit.pretrained.start_folder`).
        """
        from merkit.models import model_info

        info = model_info(model.name, model.preset, **model.params)
        folder = ""
        if model.init:
            from merkit.pretrained import start_folder

            now = info.config_record
            folder = start_folder(model.init, model.name, model.preset, dict(model.params), now)
        notes = tuple(info.notes) + ((f"trained from {model.init}",) if model.init else ())
        return cls(model.name, model.preset, tuple(model.params.items()), tuple(info.input_keys),
                   tuple(info.uses_ground_truth_inputs), notes, model.init, str(folder))

    def build(self, num_classes: int):
        """The model (:func:`merkit.models.create_model`) for ``num_classes`` classes, with the weights of
        ``init`` loaded when it names a checkpoint.

        Raises:
            ConfigError: unknown model, preset or parameter; ``init`` weights that do not fit the model (another
                number of classes, input size or architecture; the message names the folder).
        """
        from merkit.models import create_model

        model = create_model(self.name, self.preset, num_classes=num_classes, **dict(self.params))
        if self.init_folder:
            from safetensors.torch import load_file

            try:
                model.load_state_dict(load_file(str(Path(self.init_folder) / "model.safetensors")))
            except RuntimeError as error:
                first = str(error).strip().splitlines()[-1].strip()
                raise ConfigError(f"model.init {self.init}: its weights do not fit a {self.name} of "
                                  f"{num_classes} classes: {first}") from error
        return model


@dataclass(frozen=True)
class Recipe:
    """A named way to train: the model spec and the training settings."""

    name: str
    model: ModelSpec
    training: TrainConfig


@dataclass(frozen=True)
class Protocol:
    """How a run evaluates: the split, the selection, the seeds, and the recipes.

    Attributes:
        own: the config's own recipe (:data:`DEFAULT_RECIPE`).
        candidates: inner selection's named recipes (``protocol.recipes``); empty: ``own`` is the only one.
        tta: ``protocol.tta`` (``none`` or ``flip``), how every prediction of the run is made.
        members, member_weights: the ensemble's member recipes (``protocol.members``; empty: no such ensemble) and
            how their probabilities are weighted (``equal`` or ``inner``).
    """

    split: str
    train_on: tuple[str, ...]
    test_on: tuple[str, ...]
    selection: str
    inner_folds: int
    ensemble: int
    seeds: tuple[int, ...]
    save_checkpoints: bool
    record_epochs: bool
    own: Recipe
    candidates: tuple[Recipe, ...] = ()
    tta: str = "none"
    members: tuple[Recipe, ...] = ()
    member_weights: str = "equal"

    @property
    def recipes(self) -> tuple[Recipe, ...]:
        """The recipes inner selection chooses among: the candidates, else the config's own."""
        return self.candidates or (self.own,)

    def recipe(self, name: str) -> Recipe:
        """The recipe called ``name`` (the own recipe for :data:`DEFAULT_RECIPE`)."""
        return next(r for r in (self.own, *self.candidates) if r.name == name)

    @property
    def longest_epochs(self) -> int:
        """The most epochs any recipe trains (a unit's epoch lies in ``1..longest_epochs``)."""
        return max(r.training.epochs for r in (self.own, *self.candidates, *self.members))


@dataclass(frozen=True)
class Resources:
    """Where a run's units run: workers, threads and GPU share per unit, the Ray cluster, retries, the device, and
    whether the executor runs them in this process (:func:`merkit.cluster.runs_in_process`)."""

    workers: int
    threads_per_fold: int
    gpus_per_fold: float
    address: str | None
    max_retries: int
    device: str
    in_process: bool = True


@dataclass(frozen=True)
class Plan:
    """A run config resolved once (:meth:`RunConfig.resolve`).

    Attributes:
        name: the run's name. data: the config's ``data`` section (how the inputs are made and labelled).
        protocol, resources: see :class:`Protocol`, :class:`Resources`.
        result_hash: :meth:`RunConfig.result_hash`, which ties a run folder to the config.
        config_yaml: the config as the text of ``config.yaml``.
    """

    name: str
    data: DataConfig
    protocol: Protocol
    resources: Resources
    result_hash: str
    config_yaml: str = field(default="", compare=False)
