"""Long videos with micro-expressions at known intervals among distractors, for measuring spotting
(``merkit synth OUT --long-videos N``).

Part of :mod:`merkit.synthetic` (its module docstring describes the generator).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pandas as pd

from merkit.boundary import Count, Int, NonNegativeFloat, NonNegativeInt, PositiveFloat, check
from merkit.errors import ConfigError
from merkit.media import encode_jpeg
from merkit.synthetic.clips import CLASSES, ClipSpec, blink_field, draw_clip, expression_field, render_frames
from merkit.synthetic.faces import Subject, _FaceSource, make_subject
from merkit.synthetic.fields import intensity_profile
from merkit.synthetic.release import GENERATOR_VERSION



LONG_FRAME_SIZE = (640, 360)  # (width, height)
LONG_FACE_WIDTH = 160.0  # jaw width, px: a webcam framing of one face
LONG_FPS = 30.0  # CAS(ME)^2's long videos are 30 fps
MICRO_SECONDS = (0.2, 0.5)  # onset to offset; MEGC counts an expression of at most 0.5 s as micro
MACRO_SECONDS = (1.0, 3.0)
MACRO_AMPLITUDE_PX = (4.0, 12.0)  # peak displacement on a 224-px face, against 0.5-3 px for a micro-expression
EXPRESSION_GAP_SECONDS = 0.5  # between two expressions, and between an expression and the video's ends
BLINK_GAP_SECONDS = (2.0, 6.0)  # between blink onsets: 10-30 blinks a minute, as at rest
BLINK_SECONDS = (0.1, 0.3)
BLINK_AMOUNT = (0.5, 0.9)  # fraction of the eye opening closed
HEAD_MOVES_PER_MINUTE = 6.0
HEAD_SECONDS = (0.3, 1.0)
HEAD_SHIFT_PX = 8.0  # a head movement goes to a new pose within +-8 px and +-2 degrees of the start
HEAD_TURN_DEG = 2.0
SWAY_PX, SWAY_DEG = 1.0, 0.3  # slow sway (two sinusoids of 0.05-0.4 Hz per axis), peak amplitude per sinusoid
VIDEOS_NAME = "videos.csv"
INTERVALS_NAME = "intervals.csv"
INTERVAL_KINDS: tuple[str, ...] = ("micro", "macro", "blink", "head")


@dataclass(frozen=True)
class VideoEvent:
    """One event of a long video, frame numbers counted from 0 (inclusive ``offset``).

    ``kind`` is ``micro`` or ``macro`` (an expression: ``label_class``, ``emotion``, ``action_units`` and
    ``amplitude_px`` set), ``blink`` or ``head`` (a rigid head movement; its ``apex`` is the middle of the move).
    """

    kind: str
    onset: int
    apex: int
    offset: int
    label_class: str = ""
    emotion: str = ""
    action_units: str = ""
    amplitude_px: float = 0.0


@dataclass
class LongVideoPlan:
    """Everything random about one long video, drawn by :func:`draw_long_video`.

    Attributes:
        n_frames: frames in the video.
        fps: frames per second.
        events: expressions, blinks and head movements, in onset order.
        expressions: per ``micro``/``macro`` event, in the order of ``events``: the :class:`ClipSpec` that gives
            its AUs, their shares, its amplitude and the position of its apex (its onset and nuisance fields are
            unused: a long video has its own nuisances).
        blinks: per blink, ``(centre frame, duration in frames, amount)``.
        pose: float64 (n_frames, 3) head translation (px) and rotation (degrees) per frame.
        noise_sigma: luminance noise, grey levels.
        flicker: amplitude, frequency (Hz), phase of the illumination gain.
    """

    n_frames: int
    fps: float
    events: list[VideoEvent]
    expressions: list[ClipSpec]
    blinks: list[tuple[int, int, float]]
    pose: np.ndarray
    noise_sigma: float
    flicker: tuple[float, float, float]


def _place(rng: np.random.Generator, length: int, n_frames: int, taken: list[tuple[int, int]], gap: int) -> int:
    """A random onset for an event of ``length`` frames that keeps ``gap`` frames from the ends and from every
    span in ``taken``; ValueError when 1000 draws find none."""
    for _ in range(1000):
        onset = int(rng.integers(gap, max(n_frames - gap - length, gap) + 1))
        offset = onset + length - 1
        if offset < n_frames - gap and all(offset + gap < a or onset > b + gap for a, b in taken):
            return onset
    raise ConfigError(f"cannot place an expression of {length} frames in a video of {n_frames} frames with "
                     f"{gap} frames between expressions; give longer videos or fewer expressions")


def draw_long_video(rng: np.random.Generator, seconds: float, fps: float = LONG_FPS, micro: int = 2, macro: int = 1,
                    amplitude_scale: float = 1.0) -> LongVideoPlan:
    """Draw one long video's events and nuisances.

    ``micro`` micro-expressions (0.2-0.5 s, 0.5-3 px times ``amplitude_scale``, classes drawn uniformly) and
    ``macro`` macro-expressions (1-3 s, 4-12 px) are placed at random, at least 0.5 s apart and from the ends; each
    returns fully to neutral at its offset. Blinks (0.1-0.3 s, every 2-6 s), head movements (a move to a new pose
    within +-8 px and +-2 degrees over 0.3-1 s, about 6 a minute) and a slow sway are independent of them and may
    overlap them. Each expression's AUs, shares, amplitude and apex position come from :func:`draw_clip`, the draw
    of the clip generator.

    Raises:
        ConfigError (a ValueError): the expressions do not fit in the video.
    """
    n = int(round(seconds * fps))
    gap = int(round(EXPRESSION_GAP_SECONDS * fps))
    frames = lambda s: max(3, int(round(s * fps)))  # noqa: E731
    kinds = ["macro"] * macro + ["micro"] * micro  # the long ones first, while there is room
    taken: list[tuple[int, int]] = []
    placed = []
    for j, kind in enumerate(kinds):
        label_class = CLASSES[int(rng.integers(len(CLASSES)))]
        if kind == "micro":
            spec = draw_clip(rng, label_class, f"micro{j}", amplitude_scale,
                             (frames(MICRO_SECONDS[0]), frames(MICRO_SECONDS[1])))
        else:
            spec = draw_clip(rng, label_class, f"macro{j}", 1.0, (frames(MACRO_SECONDS[0]), frames(MACRO_SECONDS[1])))
            spec = replace(spec, amplitude_px=float(rng.uniform(*MACRO_AMPLITUDE_PX)))
        onset = _place(rng, spec.n_frames, n, taken, gap)
        taken.append((onset, onset + spec.n_frames - 1))
        placed.append((kind, replace(spec, onset=onset, residual=0.0)))
    placed.sort(key=lambda item: item[1].onset)
    events = [VideoEvent(kind, s.onset, s.apex, s.offset, s.label_class, s.emotion, "+".join(map(str, s.aus)),
                         round(s.amplitude_px, 4)) for kind, s in placed]

    blinks = []
    t = float(rng.uniform(0.3, BLINK_GAP_SECONDS[1]))
    while t < seconds:
        duration = frames(rng.uniform(*BLINK_SECONDS))
        centre = int(round(t * fps))
        blinks.append((centre, duration, float(rng.uniform(*BLINK_AMOUNT))))
        events.append(VideoEvent("blink", max(0, centre - duration // 2), min(centre, n - 1),
                                 min(centre + duration // 2, n - 1)))
        t += float(rng.uniform(*BLINK_GAP_SECONDS))

    k = np.arange(n, dtype=np.float64)
    pose = np.zeros((n, 3))
    for axis, amplitude in enumerate((SWAY_PX, SWAY_PX, SWAY_DEG)):
        for _ in range(2):
            pose[:, axis] += amplitude * rng.uniform(0.3, 1.0) * np.sin(
                2 * np.pi * rng.uniform(0.05, 0.4) * k / fps + rng.uniform(0, 2 * np.pi))
    moves = int(rng.poisson(HEAD_MOVES_PER_MINUTE * seconds / 60))
    current = np.zeros(3)
    for onset in sorted(int(x) for x in rng.integers(0, max(n - 1, 1), size=moves)):
        length = frames(rng.uniform(*HEAD_SECONDS))
        target = np.array([rng.uniform(-HEAD_SHIFT_PX, HEAD_SHIFT_PX), rng.uniform(-HEAD_SHIFT_PX, HEAD_SHIFT_PX),
                           rng.uniform(-HEAD_TURN_DEG, HEAD_TURN_DEG)])
        step = 0.5 * (1 - np.cos(np.pi * np.clip((k - onset) / (length - 1), 0, 1)))
        pose += np.outer(step, target - current)
        current = target
        events.append(VideoEvent("head", onset, min(onset + length // 2, n - 1), min(onset + length - 1, n - 1)))
    events.sort(key=lambda e: (e.onset, INTERVAL_KINDS.index(e.kind)))
    flicker = (float(rng.uniform(0.003, 0.01)), float(rng.uniform(0.5, 5.0)), float(rng.uniform(0, 2 * np.pi)))
    expressions = [s for _, s in sorted(placed, key=lambda item: item[1].onset)]
    return LongVideoPlan(n, fps, events, expressions, blinks, pose, float(rng.uniform(1.0, 2.5)), flicker)


def render_long_video(subject: Subject, plan: LongVideoPlan, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """The frames of a long video, one at a time ((H, W, 3) uint8 RGB), by :func:`render_frames`."""
    shape = subject.face.shape[:2]
    layers = []
    for spec in plan.expressions:
        weights = np.zeros(plan.n_frames)
        span = slice(spec.onset, spec.onset + spec.n_frames)
        weights[span] = intensity_profile(spec.n_frames, spec.apex_index, spec.residual)[: plan.n_frames - spec.onset]
        layers.append((expression_field(subject, spec.aus, spec.au_share, spec.amplitude_px, shape), weights))
    if plan.blinks:
        t = np.arange(plan.n_frames)
        weights = np.zeros(plan.n_frames)
        for centre, duration, amount in plan.blinks:
            bump = 0.5 * (1 + np.cos(2 * np.pi * (t - centre) / duration))
            weights += amount * np.where(np.abs(t - centre) < duration / 2, bump, 0)
        layers.append((blink_field(subject, 1.0, shape), weights))
    yield from render_frames(subject, layers, plan.pose, plan.noise_sigma, plan.flicker, plan.fps, rng)


def _write_long_video(folder: Path, subject, plan, rng: np.random.Generator, jpeg_quality: int) -> None:
    """Render one long video into ``folder`` as ``img<5-digit frame number>.jpg`` files, each written atomically."""
    from merkit.files import write_atomic

    folder.mkdir(parents=True, exist_ok=True)
    for k, frame in enumerate(render_long_video(subject, plan, rng)):
        data = encode_jpeg(frame, jpeg_quality, f"frame {k} of {folder}")
        write_atomic(folder / f"img{k:05d}.jpg", lambda p, data=data: p.write_bytes(data))


def _interval_rows(video: str, plan, fps: float) -> list[dict]:
    """The ground-truth rows of ``intervals.csv`` for one video's planned events (frames and seconds)."""
    return [dict(video=video, kind=e.kind, onset=e.onset, apex=e.apex, offset=e.offset,
                 onset_s=round(e.onset / fps, 4), apex_s=round(e.apex / fps, 4), offset_s=round(e.offset / fps, 4),
                 label_class=e.label_class, emotion=e.emotion, action_units=e.action_units,
                 amplitude_px=e.amplitude_px) for e in plan.events]


def generate_long_videos(
    out_dir: str | Path,
    videos: int = 10,
    seconds: float = 20.0,
    seed: int = 0,
    fps: float = LONG_FPS,
    micro: int = 3,
    macro: int = 1,
    faces: Sequence[str | Path] | None = None,
    amplitude_scale: float = 1.0,
    size: tuple[int, int] = LONG_FRAME_SIZE,
    face_width: float = LONG_FACE_WIDTH,
    jpeg_quality: int = 90,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write long videos with micro-expressions at known intervals among distractors; return their two tables.

    Each video shows one pseudo-subject (its own identity, :func:`make_subject`, cycling through ``faces``) in a
    ``size`` frame, its face ``face_width`` px wide, for ``seconds`` at ``fps``: ``micro`` micro-expressions and
    ``macro`` macro-expressions (the distractors: longer, larger, slower), blinks, head movements, a slow sway,
    an illumination flicker, luminance noise and JPEG compression (:func:`draw_long_video`).

    Output (``OUT``)::

        OUT/vid01/img00000.jpg ...   frames numbered from 0, as in a video file (merkit.media.read_video reads it)
        OUT/videos.csv               video, path (relative), fps, frames, seconds, width, height, face, noise_sigma
        OUT/intervals.csv            video, kind (micro|macro|blink|head), onset, apex, offset (frame numbers,
                                     inclusive), onset_s, apex_s, offset_s, label_class, emotion, action_units,
                                     amplitude_px (peak displacement on a 224-px face)
        OUT/generator.json           the arguments

    Every file is written atomically. The same arguments give byte-identical files: each video draws from
    generators seeded by ``(seed, video)``.

    Args:
        out_dir: output folder (created; files of the same names are overwritten).
        videos: number of videos (``vid01`` ...).
        seconds: length of each video, seconds.
        seed: random seed.
        fps: frames per second.
        micro, macro: micro- and macro-expressions per video.
        faces: face images or folders, cycled over the videos; default ``skimage.data.astronaut()``.
        amplitude_scale: multiplies the micro-expressions' amplitude (0: none is visible).
        size: (width, height) of the frames, px.
        face_width: jaw width of the face, px (+- 8 % per video).
        jpeg_quality: OpenCV JPEG quality of the frames.

    Returns:
        ``(videos, intervals)``: the two tables as written (``path`` absolute in the returned ``videos``).

    Raises:
        ConfigError (a ValueError): a count, length, rate or size out of range, or expressions that do not fit in
            a video.
        DataError: a face image is missing or unreadable; FaceNotFoundError: dlib finds no face in one.
    """
    settings = {"generator": "merkit.synthetic.generate_long_videos", "version": GENERATOR_VERSION, "videos": videos,
                "seconds": seconds, "seed": seed, "fps": fps, "micro": micro, "macro": macro,
                "faces": None, "amplitude_scale": amplitude_scale, "size": list(size),
                "face_width": face_width, "jpeg_quality": jpeg_quality}
    _check_long_settings(videos, seconds, seed, fps, micro, macro, amplitude_scale, size, face_width, jpeg_quality)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    face_of = _FaceSource(faces)
    video_rows, interval_rows = [], []
    for v in range(videos):
        name = f"vid{v + 1:02d}"
        source_name, image = face_of(v)
        # seeds (seed, video, 10..12) keep the videos apart from the clip generator's (seed, subject, 0..2) streams
        subject = make_subject(name, image, source_name, np.random.default_rng([seed, v, 10]), size=size,
                               face_width=face_width)
        plan = draw_long_video(np.random.default_rng([seed, v, 11]), seconds, fps, micro, macro, amplitude_scale)
        _write_long_video(out / name, subject, plan, np.random.default_rng([seed, v, 12]), jpeg_quality)
        video_rows.append(dict(video=name, path=name, fps=fps, frames=plan.n_frames,
                               seconds=round(plan.n_frames / fps, 4), width=size[0], height=size[1],
                               face=source_name, noise_sigma=round(plan.noise_sigma, 4)))
        interval_rows += _interval_rows(name, plan, fps)
    settings["faces"] = face_of.names
    return _write_long_video_tables(out, video_rows, interval_rows, settings)


def _check_long_settings(videos, seconds, seed, fps, micro, macro, amplitude_scale, size, face_width,
                         jpeg_quality) -> None:
    """Raise :class:`ConfigError` for a setting of :func:`generate_long_videos` out of range."""
    check("synthetic.generate_long_videos", videos=(Count, videos), seconds=(PositiveFloat, seconds),
          seed=(NonNegativeInt, seed), fps=(PositiveFloat, fps), micro=(NonNegativeInt, micro),
          macro=(NonNegativeInt, macro), amplitude_scale=(NonNegativeFloat, amplitude_scale),
          size=(tuple[Int, Int], size), face_width=(PositiveFloat, face_width),
          jpeg_quality=(NonNegativeInt, jpeg_quality))
    if min(size) < 64 or face_width < 40 or face_width > 0.8 * min(size):
        raise ConfigError(f"need frames of at least 64 px and a face of 40 px to 80 % of the frame, got size {size}, "
                          f"face_width {face_width}")


def _write_long_video_tables(out: Path, video_rows: list[dict], interval_rows: list[dict],
                             settings: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write ``videos.csv``, ``intervals.csv`` and ``generator.json`` atomically; the two tables, with the video
    paths made absolute in the returned ``videos``."""
    from merkit.files import write_atomic, write_json

    video_table = pd.DataFrame(video_rows)
    interval_table = pd.DataFrame(interval_rows, columns=["video", "kind", "onset", "apex", "offset", "onset_s",
                                                          "apex_s", "offset_s", "label_class", "emotion",
                                                          "action_units", "amplitude_px"])
    write_atomic(out / VIDEOS_NAME, lambda p: video_table.to_csv(p, index=False))
    write_atomic(out / INTERVALS_NAME, lambda p: interval_table.to_csv(p, index=False))
    write_json(out / "generator.json", settings)
    video_table["path"] = [str((out / p).resolve()) for p in video_table["path"]]
    return video_table, interval_table
