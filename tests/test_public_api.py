"""merkit's public surface and its habits as a library: the names ``merkit`` exports (lazily, so that ``import
merkit`` loads no torch, OpenCV or Ray), ``merkit.api``'s ``__all__``, readable reprs, figures that leave the
caller's matplotlib alone, image IO only through :mod:`merkit.media`, and run configs shipped inside the package
and loadable by name."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import merkit
from merkit import media
from merkit.errors import ConfigError, DataError

SRC = Path(merkit.__file__).resolve().parents[1]
REPO = SRC.parent
HEAVY = {"torch", "cv2", "ray"}
#: Names the model-registry change adds to merkit.models; until it lands, merkit cannot resolve them.
REGISTRY = {"create_model", "list_models"}


def _python(code: str, cwd: Path | None = None) -> dict:
    """Run ``code`` in a fresh interpreter that imports this tree's merkit; it prints one JSON line, returned."""
    env = {**{k: v for k, v in os.environ.items() if k != "MPLBACKEND"}, "PYTHONPATH": str(SRC),
           "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------ public names

def test_import_merkit_loads_no_heavy_library_and_lists_the_public_names():
    got = _python("import json, sys, merkit; names = dir(merkit); "
                  "print(json.dumps({'heavy': sorted({'torch', 'cv2', 'ray'} & set(sys.modules)), 'dir': names, "
                  "'all': merkit.__all__}))")
    assert got["heavy"] == []
    for name in ("evaluate", "train", "report", "ensemble", "compare", "evaluate_spotting", "RunResult",
                 "load_config", "Predictor", "Prediction", "read_video", "DataError", "ConfigError", *REGISTRY):
        assert name in got["all"] and name in got["dir"], name
    assert not [n for n in got["dir"] if n.startswith("_") and n != "__version__"]


def test_every_public_name_is_the_object_of_its_module():
    models = pytest.importorskip("merkit.models")
    for name in merkit.__all__:
        if name == "__version__" or (name in REGISTRY and not hasattr(models, name)):
            continue  # the registry's names resolve once merkit.models defines them
        value = getattr(merkit, name)
        module = sys.modules[merkit._LAZY[name]]
        assert value is getattr(module, name), name
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        merkit.no_such_name


def test_merkit_api_exports_its_functions_not_its_imports():
    from merkit import api

    namespace: dict = {}
    exec("from merkit.api import *", namespace)
    exported = set(namespace) - {"__builtins__"}
    assert exported == set(api.__all__)
    assert {"evaluate", "train", "report", "ensemble", "compare", "evaluate_spotting", "RunResult"} <= exported
    assert not exported & {"Path", "pd", "json", "time", "dataclass", "load_config", "write_json"}


def test_import_merkit_api_loads_no_torch_pandas_scipy_or_ray():
    """The CLI's help and a notebook's ``import merkit.api`` stay quick (docs/benchmarks.md has the timings)."""
    got = _python("import json, sys, merkit.api; print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] "
                  "in {'torch', 'pandas', 'scipy', 'ray', 'matplotlib', 'sklearn', 'transformers'})))")
    assert got == []


# ------------------------------------------------------------------------------------------------ reprs

class _StubModel:
    input_keys = ("flow",)

    def eval(self):
        return self


@settings(max_examples=50)
@given(label=st.sampled_from(["negative", "positive", "surprise"]), onset=st.integers(0, 10**6),
       gap=st.integers(0, 500), probs=st.lists(st.floats(0, 1), min_size=3, max_size=3))
def test_prediction_repr_is_one_line_with_label_top_probability_onset_and_apex(label, onset, gap, probs):
    from merkit.predict import Prediction, Timing

    probabilities = dict(zip(["negative", "positive", "surprise"], probs))
    p = Prediction(label, probabilities, onset, onset + gap, onset + 2 * gap, "spotted", (0, 0, 9, 9), 1, Timing(),
                   source="clip.mp4", crops={"onset": np.zeros((224, 224), np.uint8)},
                   inputs={"flow": np.zeros((3, 28, 28), np.float32)}, feature_map=np.zeros((8, 7, 7)))
    text = repr(p)
    assert "\n" not in text and len(text) < 200
    assert f"label={label!r}" in text and f"p={max(probs):.3f}" in text
    assert f"onset={onset}," in text and f"apex={onset + gap} (spotted)" in text and "clip.mp4" in text
    assert "array" not in text and "Timing" not in text


def test_predictor_and_spot_result_reprs_summarise_instead_of_dumping():
    from merkit.inputs import Preprocessing
    from merkit.predict import Predictor, SpotResult, Timing

    predictor = Predictor(_StubModel(), ["negative", "positive", "surprise"], Preprocessing(),
                          checkpoint=types.SimpleNamespace(model="ststnet", preset="cpu"), source="a folder")
    text = repr(predictor)
    assert text.startswith("Predictor(model='ststnet', preset='cpu', classes=('negative', 'positive', 'surprise')")
    assert Preprocessing().describe() in text and "source='a folder'" in text and "\n" not in text
    assert "model='_StubModel', preset=None" in repr(Predictor(_StubModel(), ["a", "b"], Preprocessing()))
    curve = pd.DataFrame({"score": np.arange(300.0)})
    spot = SpotResult(pd.DataFrame({"onset": [1, 2]}), curve, 1.5, [], list(range(900)), ("a",), Timing(),
                      source="v.mp4")
    assert repr(spot) == "SpotResult(2 interval(s) in 900 frames, 300 windows, threshold 1.50 px, source='v.mp4')"


def test_run_result_repr_names_the_folder_config_scores_and_protocol():
    from merkit.api import RunResult
    from merkit.config import load_config

    config = load_config(None, ["name=toy"])
    metrics = {"summary": {"full": {"uf1": {"mean": 0.61234}, "uar": {"mean": 0.5}}}, "protocol": "last",
               "seeds": [0, 1]}
    result = RunResult(Path("runs/toy"), config, pd.DataFrame({"prob_a": np.zeros(1000)}), metrics,
                       Path("runs/toy/report.md"), 12.34)
    text = repr(result)
    assert text == ("RunResult(run_dir='runs/toy', config='toy', UF1 0.6123, UAR 0.5000, protocol='last', "
                    "seeds=[0, 1], 1000 predictions, 12.3 s)")
    assert "UF1" not in repr(RunResult(Path("r"), config, pd.DataFrame(), {}, Path("r/report.md"), 0.0))


# ------------------------------------------------------------------------------------------------ matplotlib

_FIGURES = """
import json, sys
import matplotlib
matplotlib.use("svg")  # the caller's backend, e.g. a notebook's
import numpy as np, pandas as pd, skimage.data
from pathlib import Path
from PIL import Image
from merkit.evaluation.report import confusion_figure, curve_figure, save_figure
from merkit.face.clip import FaceConfig
from merkit.face.show import au_region_figure, show_face
from merkit.predict.results import Prediction, SpotResult, Timing
out = Path(sys.argv[1])
save_figure(confusion_figure(np.array([[3, 1, 0], [0, 2, 2], [1, 0, 5]]), ["neg", "pos", "sur"], "t"), out / "conf.png")
save_figure(curve_figure(pd.DataFrame({"epoch": [1, 2], "uf1": [.2, .4], "uar": [.3, .35]}), "c"), out / "curve.png")
rng = np.random.default_rng(0)
crops = {k: rng.integers(0, 255, (28, 28), dtype=np.uint8) for k in ("onset", "apex")}
Prediction("neg", {"neg": .6, "pos": .3, "sur": .1}, 3, 7, 12, "given", (1, 2, 30, 31), 1, Timing(), crops=crops,
           inputs={"flow": rng.random((3, 28, 28)).astype(np.float32)},
           feature_map=rng.random((4, 7, 7)).astype(np.float32)).save_figure(out / "pred.png")
curve = pd.DataFrame({"onset": [0, 5], "peak": [3, 8], "offset": [6, 11], "score": [0.2, 1.5],
                      "interior": [True, False]})
SpotResult(pd.DataFrame({"onset": [5], "apex": [8], "offset": [11], "label": ["pos"]}), curve, 1.0, [],
           list(range(12)), ("neg", "pos"), Timing(), fps=30.0).save_timeline(out / "timeline.png")
face = skimage.data.astronaut()
au_region_figure(face, out / "au.png", FaceConfig(color="rgb"))
show_face(face, out / "show.png", FaceConfig(color="rgb"))
sizes = {p.name: Image.open(p).size for p in sorted(out.glob("*.png"))}
print(json.dumps({"backend": matplotlib.get_backend(), "pyplot": "matplotlib.pyplot" in sys.modules,
                  "sizes": sizes}))
"""


def test_figures_leave_the_callers_backend_and_pyplot_alone(tmp_path):
    """Every figure merkit draws (report, predict, show-face) uses matplotlib's object API: the caller's backend
    stays as it was and pyplot, with its global figure state, is never imported. The PNGs have the size of the
    figure (figsize x dpi; a report's figures at 300 dpi)."""
    code = _FIGURES.replace("sys.argv[1]", repr(str(tmp_path)))
    got = _python(code)
    assert got["backend"] == "svg" and got["pyplot"] is False
    assert got["sizes"] == {"au.png": [900, 420], "conf.png": [2010, 1560], "curve.png": [1800, 1050],
                            "pred.png": [1170, 261], "show.png": [1050, 390], "timeline.png": [900, 252]}


def test_no_merkit_module_imports_pyplot_or_switches_the_backend():
    """Importing every module of the package leaves pyplot unimported, and no source line calls pyplot or
    ``matplotlib.use`` (which would switch a notebook's backend from inside a library function)."""
    got = _python("import json, pkgutil, importlib, sys, merkit\n"
                  "names = [m.name for m in pkgutil.walk_packages(merkit.__path__, 'merkit.')]\n"
                  "for name in names: importlib.import_module(name)\n"
                  "print(json.dumps({'n': len(names), 'pyplot': 'matplotlib.pyplot' in sys.modules}))")
    assert got["n"] > 50 and got["pyplot"] is False
    offenders = [f"{p.name}:{i}" for p in (SRC / "merkit").rglob("*.py")
                 for i, line in enumerate(p.read_text().splitlines(), 1)
                 if re.search(r"import matplotlib\.pyplot|import pyplot|matplotlib\.use\(|\bplt\.", line)]
    assert offenders == []


# ------------------------------------------------------------------------------------------------ image IO

def test_image_files_are_decoded_and_encoded_only_in_media():
    """merkit.media is the one module that decodes or encodes image files, so that its checks cover every image
    merkit reads."""
    pattern = re.compile(r"cv2\.(imread|imdecode|imwrite|imencode)|\bPIL\b|imageio|skimage\.io|Image\.open")
    offenders = [f"{p.relative_to(SRC)}:{i}: {line.strip()}" for p in (SRC / "merkit").rglob("*.py")
                 if p.name != "media.py" for i, line in enumerate(p.read_text().splitlines(), 1)
                 if pattern.search(line) and not line.strip().startswith(("#", '"', "'", "``"))
                 and "``cv2." not in line]
    assert offenders == []


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(image=arrays(np.uint8, st.tuples(st.integers(1, 12), st.integers(1, 12), st.sampled_from([1, 3]))),
       suffix=st.sampled_from([".png", ".bmp", ".jpg"]), quality=st.integers(1, 100))
def test_media_readers_and_writers_give_what_opencv_gives(tmp_path, image, suffix, quality):
    """The media functions that replaced the direct OpenCV calls return the very same arrays and bytes."""
    bgr = image[..., 0] if image.shape[2] == 1 else image
    path = tmp_path / f"x{suffix}"
    assert media.write_image(path, bgr) == path
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    stored = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(media.read_8bit_image(path), stored if stored.ndim == 2 else stored[..., ::-1])
    assert np.array_equal(media.read_8bit_image(path, grey=True), cv2.imread(str(path), cv2.IMREAD_GRAYSCALE))
    colour = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert np.array_equal(media.read_image(path), cv2.cvtColor(colour, cv2.COLOR_BGR2RGB))
    rgb = np.ascontiguousarray(np.broadcast_to(image, image.shape[:2] + (3,)))
    ok, buffer = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok and media.encode_jpeg(rgb, quality) == buffer.tobytes()


def test_media_readers_name_the_file_they_cannot_decode(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(DataError, match="^cannot decode face image .*broken.png") as error:
        media.read_image(bad, what="face image")
    assert "\n" not in str(error.value)
    with pytest.raises(DataError, match="^cannot decode image .*broken.png") as error:
        media.read_8bit_image(bad)
    assert "\n" not in str(error.value)


def test_write_png_256_is_atomic_and_keeps_a_palette(tmp_path):
    from PIL import Image

    rgb = np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8)
    out = media.write_png_256(tmp_path / "sub" / "f.png", rgb)
    assert [p.name for p in out.parent.iterdir()] == ["f.png"]
    image = Image.open(out)
    assert image.mode == "P" and image.size == (50, 40)


# ------------------------------------------------------------------------------------------------ shipped configs

def test_the_repository_configs_folder_is_a_link_to_the_packaged_configs():
    from merkit.config_files import packaged_configs, packaged_root

    link = REPO / "configs"
    if not link.exists():
        pytest.skip("not a source checkout")
    assert link.is_symlink() and os.readlink(link) == "src/merkit/configs"
    assert packaged_root().resolve() == (SRC / "merkit" / "configs").resolve()
    names = sorted(p.relative_to(link).with_suffix("").as_posix() for p in link.rglob("*.yaml"))
    assert names == sorted(packaged_configs()) and "megc2019/ststnet" in names


def test_every_shipped_config_loads_by_name_as_by_path():
    from merkit.config_files import packaged_configs

    from merkit.config import load_config

    for name, path in packaged_configs().items():
        assert load_config(name).result_hash() == load_config(path).result_hash(), name
        assert load_config(f"configs/{name}").name == load_config(str(path)).name


def test_load_config_by_name_works_outside_the_clone(tmp_path):
    from merkit.config_files import packaged_root

    got = _python("import json; from merkit import load_config; c = load_config('megc2019/ststnet'); "
                  "print(json.dumps([c.name, c.model.name, c.result_hash()]))", cwd=tmp_path)
    from merkit.config import load_config

    shipped = load_config(packaged_root() / "megc2019" / "ststnet.yaml")
    assert got == [shipped.name, "ststnet", shipped.result_hash()]


@settings(max_examples=100)
@given(name=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-/", min_size=1, max_size=24))
def test_an_unknown_config_name_is_a_one_line_error_with_the_closest_shipped_names(name):
    from merkit.config_files import packaged_configs

    from merkit.config import load_config

    shipped = packaged_configs()
    assume(name.removeprefix("configs/") not in shipped and not Path(name).is_file())
    with pytest.raises(ConfigError) as error:
        load_config(name)
    text = str(error.value)
    assert "\n" not in text and repr(name) in text
    suggested = re.search(r"did you mean (.*)\?$", text)
    assert suggested is None or set(suggested.group(1).split(", ")) <= set(shipped)


def test_a_misspelt_config_name_suggests_the_shipped_one():
    from merkit.config import load_config

    with pytest.raises(ConfigError, match=r"'megc2019/ststnt' is neither a file nor a shipped config; did you mean "
                                          r"megc2019/ststnet"):
        load_config("megc2019/ststnt")
    with pytest.raises(ConfigError, match="config file not found: missing.yaml"):
        load_config("missing.yaml")  # a path stays a path


def test_the_wheel_ships_the_configs(tmp_path):
    """Build a wheel from a copy of the project (pip, setuptools, no network) and find the configs in it."""
    from merkit.config_files import packaged_configs

    pytest.importorskip("setuptools")
    if not (REPO / "pyproject.toml").is_file():
        pytest.skip("not a source checkout")
    project = tmp_path / "project"
    project.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, project / name)
    shutil.copytree(SRC, project / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", str(project), "--no-deps", "--no-build-isolation",
                           "--no-index", "-q", "-w", str(tmp_path / "dist")], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    names = zipfile.ZipFile(next((tmp_path / "dist").glob("merkit-*.whl"))).namelist()
    shipped = {f"merkit/configs/{n}.yaml" for n in packaged_configs()}
    assert "merkit/configs/megc2019/ststnet.yaml" in shipped and shipped <= set(names)
