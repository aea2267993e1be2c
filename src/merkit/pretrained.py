"""Trained models by name: the checkpoints that ship inside merkit, local checkpoint folders, and Hugging Face Hub
repositories.

:func:`resolve_checkpoint` turns a name into a checkpoint folder (:class:`merkit.checkpoint.Checkpoint`), which
:meth:`merkit.predict.Predictor.from_pretrained` then loads:

* an existing folder is used as it is (a folder written by ``merkit train``);
* a packaged name (:func:`packaged_models`, e.g. :data:`DEFAULT_MODEL`) is a folder under
  ``merkit/resources/models/`` installed with the package: no network, no download;
* anything else of the form ``owner/name`` is a Hugging Face Hub repository, fetched with
  ``huggingface_hub.snapshot_download`` into the Hub's cache (``HF_HUB_OFFLINE=1`` uses only that cache).

Every packaged model has a ``MODEL_CARD.md`` beside its weights, in the Hub's model-card style: YAML front matter,
then prose. The front matter's ``model-index`` holds the model's honest LOSO figures, one result per part of the
evaluation data (``dataset.split``: ``full``, ``casme2``, ...), each with ``uf1``, ``uf1_std``, ``uar``, ``uar_std``
(mean and sample std over seeds). ``merkit models`` reads them from there, so the card is their one source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from merkit.errors import CheckpointError

#: Where the packaged checkpoint folders live, one folder per model, named after it.
PACKAGED_ROOT = Path(__file__).resolve().parent / "resources" / "models"
#: What ``merkit predict`` uses without ``--checkpoint``.
DEFAULT_MODEL = "megc2019-ststnet"
#: The model card's file name in a checkpoint folder.
CARD_NAME = "MODEL_CARD.md"
#: A Hugging Face Hub repository id: ``owner/name`` (letters, digits, ``-``, ``_``, ``.``).
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
#: The files a Hub download fetches: a checkpoint folder, its card (the Hub calls it README.md) and its reliability
#: diagram (`merkit calibrate`).
HUB_FILES = ("model.safetensors", "checkpoint.json", "config.yaml", CARD_NAME, "README.md", "calibration.png")


def read_card(path: str | Path) -> tuple[dict[str, Any], str]:
    """Split a model card into its YAML front matter and its Markdown body.

    Returns:
        ``(front matter as a dict, body text)``.

    Raises:
        CheckpointError: the file is missing, has no ``---`` delimited front matter, or the front matter is not a
            YAML mapping (the message names the file).
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} not found: every packaged model needs its model card")
    text = path.read_text(encoding="utf-8")
    match = re.match(r"^---\n(.*?)\n---\n(.*)$", text, re.S)
    if not match:
        raise CheckpointError(f"{path} has no YAML front matter between '---' lines")
    try:
        front = yaml.safe_load(match.group(1))
    except yaml.YAMLError as error:
        raise CheckpointError(f"{path}: the front matter is not valid YAML ({str(error).splitlines()[0]})") from error
    if not isinstance(front, dict):
        raise CheckpointError(f"{path}: the front matter must be a YAML mapping")
    return front, match.group(2)


@dataclass(frozen=True)
class PackagedModel:
    """A checkpoint that ships inside merkit, with its card.

    Attributes:
        name: the name :func:`resolve_checkpoint` and ``merkit predict --checkpoint`` accept.
        path: its checkpoint folder.
        card: the card's front matter (``license``, ``license_name``, ``tags``, ``datasets``, ``metrics``,
            ``model-index``, ...).
        meta: the folder's ``checkpoint.json`` (model, classes, training data, preprocessing record, ...).
    """

    name: str
    path: Path
    card: dict[str, Any]
    meta: dict[str, Any]

    @property
    def figures(self) -> dict[str, dict[str, float]]:
        """``{part: {metric: value}}`` from the card's ``model-index``: parts ``full``, ``casme2``, ``samm``,
        ``smic`` (``dataset.split``), metrics ``uf1``, ``uf1_std``, ``uar``, ``uar_std``, ... (pooled LOSO figures,
        mean and sample std over seeds, in [0, 1]).

        Raises:
            CheckpointError: the card has no ``model-index`` results in that layout.
        """
        card = self.path / CARD_NAME
        try:
            results = self.card["model-index"][0]["results"]
            return {r["dataset"]["split"]: {m["type"]: float(m["value"]) for m in r["metrics"]} for r in results}
        except (KeyError, IndexError, TypeError, ValueError) as error:
            raise CheckpointError(f"{card}: model-index must list results with dataset.split and metrics "
                                  f"(type, value): {error!r}") from error

    def trained_on(self) -> str:
        """``"442 samples, 68 subjects of casme2, samm, smic"`` from ``checkpoint.json``."""
        data = self.meta.get("training_data") or {}
        return (f"{data.get('samples', '?')} samples, {data.get('subjects', '?')} subjects of "
                f"{', '.join(data.get('datasets', [])) or '?'}")

    def summary(self) -> str:
        """One line: the architecture, what it was trained on, its full-set LOSO figures and its licence."""
        full = self.figures.get("full", {})
        score = (f"LOSO UF1 {full['uf1']:.3f} ± {full.get('uf1_std', 0):.3f}, UAR {full['uar']:.3f} ± "
                 f"{full.get('uar_std', 0):.3f}" if {"uf1", "uar"} <= set(full) else "no LOSO figure")
        licence = self.card.get("license_name") or self.card.get("license", "")
        return f"{self.meta.get('model', '?')} trained on {self.trained_on()}; {score}; licence: {licence}"


def packaged_models() -> list[PackagedModel]:
    """The models installed with merkit, sorted by name.

    Raises:
        CheckpointError: a packaged model's card is missing or damaged (a broken installation).
    """
    import json

    if not PACKAGED_ROOT.is_dir():
        return []
    models = []
    for folder in sorted(PACKAGED_ROOT.iterdir()):
        path = folder / "checkpoint.json"
        if not path.is_file():
            continue
        try:
            meta = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise CheckpointError(f"{path} is not valid JSON ({error}): the installation is damaged") from error
        models.append(PackagedModel(folder.name, folder, read_card(folder / CARD_NAME)[0], meta))
    return models


def packaged_model(name: str) -> PackagedModel:
    """The packaged model called ``name``.

    Raises:
        CheckpointError: no packaged model has that name (the message lists those that exist).
    """
    for model in packaged_models():
        if model.name == name:
            return model
    raise CheckpointError(f"no packaged model {name!r}; merkit ships {[m.name for m in packaged_models()]}")


def resolve_checkpoint(name_or_path: str | Path, revision: str | None = None,
                       cache_dir: str | Path | None = None) -> tuple[Path, str]:
    """The checkpoint folder that ``name_or_path`` names, and a description of where it came from.

    Tried in this order: an existing folder; a packaged model's name; a Hugging Face Hub repository id
    (``owner/name``), downloaded with ``huggingface_hub.snapshot_download`` (only the checkpoint's files and its
    card) or taken from the Hub's local cache when offline.

    Args:
        revision: Hub branch, tag or commit (default the main branch); ignored for folders and packaged names.
        cache_dir: Hub cache folder (default the Hub's own, ``~/.cache/huggingface/hub``).

    Returns:
        ``(folder, description)``, e.g. ``(…/resources/models/megc2019-ststnet, "megc2019-ststnet (packaged)")``.
        The folder is not checked here: :meth:`merkit.checkpoint.Checkpoint.load` does that.

    Raises:
        CheckpointError: not a folder, a packaged name or a Hub id; or the Hub download failed: offline
            (``HF_HUB_OFFLINE=1`` or no network) and not cached, no such repository or revision, or access denied.
            The message names what was tried.
    """
    text = str(name_or_path)
    folder = Path(name_or_path).expanduser()
    if folder.is_dir():
        return folder, str(folder)
    names = [m.name for m in packaged_models()]
    if text in names:
        return packaged_model(text).path, f"{text} (packaged)"
    if not HUB_ID.match(text):
        raise CheckpointError(f"{text!r} is not a checkpoint folder, a packaged model ({', '.join(names)}) or a "
                              "Hugging Face Hub repository id (owner/name)")
    return _download(text, revision, cache_dir), f"{text} (Hugging Face Hub{f', {revision}' if revision else ''})"


def _download(repo_id: str, revision: str | None, cache_dir: str | Path | None) -> Path:
    import huggingface_hub
    from huggingface_hub import errors

    from merkit import __version__

    where = f"{repo_id!r} is not a local folder or a packaged model, and the Hugging Face Hub"
    try:
        path = huggingface_hub.snapshot_download(repo_id, revision=revision, cache_dir=cache_dir,
                                                 allow_patterns=list(HUB_FILES), library_name="merkit",
                                                 library_version=__version__)
    except errors.LocalEntryNotFoundError as error:
        raise CheckpointError(f"{where} cannot be reached (offline, or HF_HUB_OFFLINE=1) and its cache holds no "
                              f"copy of it: download it once online, or pass a local checkpoint folder") from error
    except errors.RevisionNotFoundError as error:
        raise CheckpointError(f"{where} repository has no revision {revision!r}") from error
    except errors.RepositoryNotFoundError as error:
        raise CheckpointError(f"{where} has no such repository (or it is private or gated: log in with "
                              "`hf auth login`)") from error
    except (errors.HfHubHTTPError, errors.HFValidationError, OSError, ValueError) as error:
        raise CheckpointError(f"{where} download failed: {str(error).splitlines()[0]}") from error
    return Path(path)


# ------------------------------------------------------------------------------ a run's start (model.init)

def read_start(init: str) -> tuple[Path, dict[str, Any]]:
    """The checkpoint folder ``model.init`` names (:func:`resolve_checkpoint`) and its ``checkpoint.json``.

    Raises:
        ConfigError: no such checkpoint (the message names what was tried), or one without weights or a readable
            record.
    """
    import json

    from merkit.errors import ConfigError

    try:
        folder, _ = resolve_checkpoint(init)
        record = json.loads((folder / "checkpoint.json").read_text())
    except (CheckpointError, OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"model.init {init}: not a readable merkit checkpoint ({error})") from error
    if not (folder / "model.safetensors").is_file() or not isinstance(record, dict):
        raise ConfigError(f"model.init {init}: {folder} is not a checkpoint folder written by merkit train")
    return folder, record


#: Presets whose meaning changed after checkpoints began to be written without ``model_config`` (issue 33: each
#: ``paper`` preset became the authors' behaviour): such an old checkpoint would build another network with the
#: same weight shapes, so it is refused, naming the preset that keeps its old meaning.
CHANGED_PRESETS = {("ststnet", "paper"): "cpu", ("mmnet", "paper"): "paper with params {pc_antialias: true, "
                   "pc_init: torch}", ("mmnet", "paper-3class"): "paper-3class with params {pc_antialias: true, "
                   "pc_init: torch}", ("frl_dgt", "paper"): "ablation-m3-template"}


def weights_problem(model: str, preset: str | None, recorded: dict[str, Any], now: dict[str, Any]) -> str | None:
    """Why weights trained as the network ``recorded`` (a checkpoint's ``model_config``; empty in checkpoints
    written before merkit recorded it) would not be that network if built as ``model`` with ``preset`` today
    (``now``: the config they resolve to, :attr:`merkit.models.base.ModelInfo.config_record`): a field that differs,
    or, without a record, a preset whose meaning changed since (:data:`CHANGED_PRESETS`). ``None`` when they are the
    same network. Both :meth:`merkit.checkpoint.Checkpoint.load` and ``model.init`` (:func:`start_folder`) refuse on
    it."""
    name = preset or "paper"
    if not recorded:
        old = CHANGED_PRESETS.get((model, name))
        return (f"trained with {model} preset {name!r} before that preset became the authors' network, and it "
                f"records no model_config; set its preset to {old} (checkpoint.json and config.yaml) to load the "
                "network it was trained as") if old else None
    changed = [k for k in sorted(set(now) | set(recorded)) if now.get(k) != recorded.get(k)]
    if not changed:
        return None
    k = changed[0]
    return (f"{model} preset {name!r} now builds {k}={now.get(k)!r}, the weights were trained with {k}="
            f"{recorded.get(k)!r} ({len(changed)} field(s) differ); add model.params that restore them")


def start_folder(init: str, model: str, preset: str | None, params: dict[str, Any], now: dict[str, Any]) -> Path:
    """The checkpoint folder ``model.init`` names, checked to hold the network the config builds: the same model,
    preset and params, trained as the config ``now`` resolves to (:func:`weights_problem`).

    Raises:
        ConfigError: as :func:`read_start`; a checkpoint of another model, preset or params, or of a network its
            preset no longer builds.
    """
    from merkit.errors import ConfigError

    folder, record = read_start(init)
    theirs = (record.get("model"), record.get("preset"), record.get("params") or {})
    if theirs != (model, preset, dict(params)):
        raise ConfigError(f"model.init {init} holds {theirs[0]} preset {theirs[1]} params {theirs[2]}, not this "
                          f"config's {model} preset {preset} params {dict(params)}")
    problem = weights_problem(model, preset, dict(record.get("model_config") or {}), now)
    if problem:
        raise ConfigError(f"model.init {init}: {problem}")
    return folder


def start_digest(init: str) -> str:
    """The first 16 hex digits of the SHA-256 of the weights (``model.safetensors``) ``model.init`` names: what a
    run started from, in its result hash (``result_hash`` of the config).

    Raises:
        ConfigError: as :func:`read_start`.
    """
    import hashlib

    folder, _ = read_start(init)
    return hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()[:16]


def check_start(init: str, folder: str | Path, classes, datasets) -> None:
    """Refuse to start a run's training from the checkpoint in ``folder`` (``model.init`` = ``init``) when it
    would leak or mislabel: it must have been trained on none of ``datasets`` (the datasets of the data the run
    evaluates: a start trained on them has seen every test subject), and its classes must be ``classes``, in order
    (its logit ``k`` becomes the run's class ``k``).

    Datasets are compared by name, as ``merkit train`` records them (``training_data.datasets``): pretraining on
    merkit's synthetic data (dataset ``synthetic``) passes on the MEGC2019 composite (``casme2``, ``samm``,
    ``smic``); the packaged ``megc2019-ststnet`` does not.

    Raises:
        LeakageError: the checkpoint was trained on a dataset the run evaluates, or records no datasets.
        ConfigError: other classes, or another order; a folder without a readable record.
    """
    from merkit.errors import ConfigError, LeakageError

    _, record = read_start(str(folder))
    seen = (record.get("training_data") or {}).get("datasets")
    if not seen:
        raise LeakageError(f"model.init {init}: its checkpoint records no training datasets, so it cannot be shown "
                           "to have seen none of this run's test subjects")
    shared = sorted(set(map(str, seen)) & set(map(str, datasets)))
    if shared:
        raise LeakageError(f"model.init {init} was trained on {', '.join(shared)}, which this run evaluates: it has "
                           "seen every test subject; start from weights trained on other data (e.g. synthetic)")
    if list(record.get("classes") or []) != list(classes):
        raise ConfigError(f"model.init {init} has classes {record.get('classes')}, this run's data "
                          f"{list(classes)}: the logits would mean other classes")

