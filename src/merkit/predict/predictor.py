"""Micro-expression recognition on new videos: a checkpoint, a video of a face, a typed answer.

Practitioners do not run LOSO. They hold a trained model and a video, and ask: is there a micro-expression here,
when, and which? :class:`Predictor` answers with a checkpoint (:class:`merkit.checkpoint.Checkpoint`):

* :meth:`Predictor.predict` (one clip, onset and apex given or spotted) -> :class:`~merkit.predict.Prediction`;
* :meth:`Predictor.spot` (a long video: sliding windows, candidate intervals from peaks of motion relative to a
  local onset, each interval recognised) -> :class:`~merkit.predict.SpotResult`, the spot-then-recognise setting
  of the MEGC challenges.

Like a Hugging Face pipeline it runs three steps: :meth:`Predictor.preprocess` (the inputs stage,
:func:`merkit.inputs.clip_inputs`, with the checkpoint's preprocessing record: the code and settings that built the
training inputs), :meth:`Predictor.forward` (the model, whichever it is) and :meth:`Predictor.postprocess`
(probabilities and the answer).

Robustness: an onset frame without a face is skipped with a counted warning and the next frame becomes the onset;
several faces use the largest, with a warning; a missing, unreadable, empty or too short input raises
:class:`merkit.errors.DataError` with a hint.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np

from merkit.boundary import Count, Fraction, PositiveFloat, check
from merkit.errors import CheckpointError, DataError, Diagnostics, Where
from merkit.inputs.clip import ClipInputs
from merkit.inputs.record import Preprocessing
from merkit.media import VideoFrames, as_video
from merkit.motion.spotting import SpotConfig
from merkit.predict.results import Prediction, SpotResult, Timing

VideoLike = "str | Path | VideoFrames | Sequence[np.ndarray]"


def frames_under_contract(video, color: str | None):
    """A path as it is; frames (raw arrays or :class:`VideoFrames`) checked and converted to RGB uint8 by the
    frame contract (:func:`merkit.media.as_frames`).

    Raises:
        ConfigError: raw arrays without ``color``, an unknown ``color``, or a ``color`` given with a path.
        DataError: a frame outside the contract.
    """
    from merkit.errors import ConfigError
    from merkit.media import as_frames

    if isinstance(video, (str, Path)):
        if color is not None:
            raise ConfigError(f"color={color!r} applies to arrays; a video file or frame folder is decoded as RGB "
                              "by merkit.media.read_video")
        return video
    return as_frames(video, color)


class Predictor:
    """A trained model and the preprocessing that built its inputs, ready for new videos.

    Build it with :meth:`from_pretrained` (a packaged model's name, a checkpoint folder or a Hugging Face Hub id)
    or :meth:`from_checkpoint` (a folder); then :meth:`predict` one clip or :meth:`spot` a long video.
    ``source`` says where the model came from (``"megc2019-ststnet (packaged)"``, a folder, a Hub id).

    Raises:
        CheckpointError: the model needs inputs the preprocessing record does not build, such as the
            ground-truth action units of a CVA+FPF+AU checkpoint.
    """

    def __init__(self, model, classes: Sequence[str], preprocessing: Preprocessing, checkpoint=None,
                 notes: Sequence[str] = (), source: str = ""):
        self.model = model.eval()
        self.source = source
        self.classes = tuple(classes)
        self.preprocessing = preprocessing
        self.checkpoint = checkpoint
        self.notes = list(notes)
        #: The calibration temperature (:mod:`merkit.predict.trust`); 1.0 without a checkpoint or a fitted one.
        self.temperature = float(getattr(checkpoint, "temperature", 1.0))
        #: The training data's statistics predictions are checked against (``Checkpoint.domain``).
        self.domain = dict(getattr(checkpoint, "domain", None) or {})
        missing = [k for k in model.input_keys if k not in preprocessing.input_keys]
        if "action_units" in missing:
            raise CheckpointError(f"the model takes ground-truth action units (oracle input: the "
                                  f"{len(preprocessing.action_units)}-AU vector of the annotation), which a video "
                                  "does not carry; merkit predict runs models that see only the video")
        if missing:
            raise CheckpointError(f"the model needs inputs {missing}, which preprocessing "
                                  f"{list(preprocessing.motion.representations)} does not build (it builds "
                                  f"{list(preprocessing.input_keys)})")

    def __repr__(self) -> str:
        name = self.checkpoint.model if self.checkpoint is not None else type(self.model).__name__
        preset = self.checkpoint.preset if self.checkpoint is not None else None
        return (f"Predictor(model={name!r}, preset={preset!r}, classes={self.classes}, "
                f"preprocessing={self.preprocessing.describe()!r}, source={self.source!r})")

    @classmethod
    def from_checkpoint(cls, path: str | Path, preprocessing: Preprocessing | None = None) -> "Predictor":
        """Load a checkpoint folder written by :func:`merkit.api.train` (:meth:`Checkpoint.load`).

        Args:
            preprocessing: replaces the checkpoint's record; you then vouch that it matches how the training
                inputs were made.

        Raises:
            CheckpointError: see :meth:`merkit.checkpoint.Checkpoint.load`.
        """
        from merkit.checkpoint import Checkpoint

        checkpoint, model = Checkpoint.load(path, preprocessing)
        notes = ["preprocessing given by the caller, not read from the checkpoint"] if preprocessing else []
        predictor = cls(model, checkpoint.classes, checkpoint.preprocessing, checkpoint, notes, str(path))
        predictor.load_face_models()
        return predictor

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path | None = None, preprocessing: Preprocessing | None = None,
                        revision: str | None = None, cache_dir: str | Path | None = None) -> "Predictor":
        """Load a trained model by name: a packaged model (``merkit models`` lists them; works offline), a
        checkpoint folder, or a Hugging Face Hub repository id ``owner/name`` holding a checkpoint folder's files
        (:func:`merkit.pretrained.resolve_checkpoint`).

        Args:
            name_or_path: ``None`` is :data:`merkit.pretrained.DEFAULT_MODEL`, STSTNet trained on the 442 real samples
                of the MEGC2019 composite (research use only: see its ``MODEL_CARD.md``).
            preprocessing: as :meth:`from_checkpoint`.
            revision: Hub branch, tag or commit.
            cache_dir: Hub cache folder.

        Raises:
            CheckpointError: an unknown name, a Hub download that fails (offline and not cached, no such
                repository), or a folder :meth:`merkit.checkpoint.Checkpoint.load` refuses.
        """
        from merkit.pretrained import DEFAULT_MODEL, resolve_checkpoint

        check("Predictor.from_pretrained", name_or_path=(str | Path | None, name_or_path),
              revision=(str | None, revision), cache_dir=(str | Path | None, cache_dir))
        folder, source = resolve_checkpoint(name_or_path or DEFAULT_MODEL, revision, cache_dir)
        predictor = cls.from_checkpoint(folder, preprocessing)
        predictor.source = source
        return predictor

    def load_face_models(self) -> None:
        """Load dlib's detector and 68-point model now (about 1-2 s, once per process), so that the first clip's
        ``timing.face`` measures the face stage rather than reading a 100 MB model file."""
        from merkit.face.landmarks import detect_faces, landmarks_in_box

        blank = np.zeros((16, 16), np.uint8)
        detect_faces(blank, self.preprocessing.face.detector, 0)
        landmarks_in_box(blank, (0, 0, 15, 15))

    # ------------------------------------------------------------------ the three steps

    def preprocess(self, frames: VideoFrames, begin: int, end: int, apex: int | None, diagnostics: Diagnostics,
                   stop: int | None = None) -> tuple[ClipInputs, list[int]]:
        """The model inputs of ``frames[begin:end]``, fitted on the first of them that shows a face (tried up to
        position ``stop``, exclusive); the frames without a face before it are skipped and counted. With ``stop``
        ``None`` the onset is fixed at ``begin``: no face there is an error.

        Returns:
            ``(ClipInputs, skipped frame numbers)``.

        Raises:
            FaceNotFoundError: no frame up to ``stop`` shows a face.
            FaceLostError: a later frame the motion uses shows no face where the onset's was, or the face moved
                beyond :data:`merkit.face.landmarks.MAX_FACE_SHIFT`.
            DataError: as :func:`merkit.inputs.clip_inputs`.
        """
        from merkit.face.landmarks import FaceLostError, FaceNotFoundError
        from merkit.inputs.clip import clip_inputs

        face = self.preprocessing.face
        skipped: list[int] = []
        candidates = [begin] if stop is None else range(begin, max(stop, begin + 1))
        for ref in candidates:
            number = frames.numbers[ref]
            where = frames.where(number)
            if apex is not None and apex not in frames.numbers[ref:end]:
                raise DataError(f"apex frame {apex} comes before the first frame with a face", frames.where(apex),
                                hint="choose a later apex or a clip where the face is visible")
            try:
                result = clip_inputs(frames.frames[ref:end], frames.numbers[ref:end], self.preprocessing, onset=number,
                                     apex=apex, where=where, sample_id=f"video/input/{number}",
                                     apex_rule="annotated-or-spot")
            except FaceLostError:
                raise
            except FaceNotFoundError:
                if stop is None:
                    raise
                diagnostics.warn("no-face", "no face on the frame; skipped", where)
                skipped.append(number)
                continue
            for note in result.notes:
                kind, _, message = note.partition(": ")
                diagnostics.warn(kind, message, where)
            return result, skipped
        first, last = frames.numbers[begin], frames.numbers[max(stop, begin + 1) - 1]
        raise FaceNotFoundError(f"no face found on frames {first}..{last}", frames.where(),
                                hint=f"the face must be visible and frontal at the onset; the checkpoint's detector "
                                     f"is {face.detector!r} with upsample={face.upsample} (small faces need a higher "
                                     "upsample)")

    def forward(self, inputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """The model on one clip's inputs: class probabilities (float64, summing to 1) and its spatial feature map
        ((C, h, w) float32, or ``None`` when its features are not spatial).

        Raises:
            DataError: an input the model takes is missing, or has another shape than the checkpoint's preprocessing
                record describes (:func:`merkit.features.check_inputs`).
        """
        import torch

        from merkit.features import FIXED_SHAPES, check_inputs

        check_inputs(inputs, self.model.input_keys, {**FIXED_SHAPES, **self.preprocessing.input_shapes()},
                     "the clip's inputs", batched=False)
        batch = {k: torch.from_numpy(np.ascontiguousarray(inputs[k]))[None] for k in self.model.input_keys}
        with torch.no_grad():
            features = self.model.forward_features(batch)
            logits = self.model.forward_head(features)
            probs = torch.softmax(logits.float(), dim=1)[0].numpy().astype(np.float64)
        return probs, (features[0].float().numpy() if features.ndim == 4 else None)

    def postprocess(self, result: ClipInputs, probs: np.ndarray, feature_map: np.ndarray | None, frames: VideoFrames,
                    timing: Timing, diagnostics: Diagnostics, skipped: list[int],
                    min_confidence: float | None = None) -> Prediction:
        """The :class:`Prediction` of one clip: the probabilities calibrated with the checkpoint's temperature
        (the model's own kept beside them), the answer ``uncertain`` when the top calibrated probability is below
        ``min_confidence``, and the clip's domain warnings (:func:`merkit.predict.trust.domain_findings`)."""
        from merkit.predict.trust import UNCERTAIN, apply_temperature, domain_findings

        clip = result.clip
        calibrated = apply_temperature(probs, self.temperature)
        top = self.classes[int(np.argmax(calibrated))]
        uncertain = min_confidence is not None and float(calibrated.max()) < min_confidence
        return Prediction(
            label=UNCERTAIN if uncertain else top,
            probabilities={c: float(p) for c, p in zip(self.classes, calibrated)},
            top_class=top, min_confidence=min_confidence, temperature=self.temperature,
            probabilities_uncalibrated={c: float(p) for c, p in zip(self.classes, probs)},
            domain_warnings=domain_findings(result.onset, result.apex, result.offset, frames.fps, self.domain),
            onset=result.onset, apex=result.apex, offset=result.offset,
            apex_source="given" if result.apex_source == "annotated" else result.apex_source,
            face_box=tuple(int(v) for v in clip.face_box), n_faces=int(clip.n_faces), timing=timing,
            skipped_frames=list(skipped), warnings=diagnostics.summary(), fps=frames.fps, source=frames.source,
            crops={"onset": result.crop(result.onset), "apex": result.crop(result.apex)},
            inputs={k: result.inputs[k] for k in self.model.input_keys}, feature_map=feature_map)

    def _recognise(self, frames: VideoFrames, begin: int, end: int, apex: int | None, diagnostics: Diagnostics,
                   timing: Timing, stop: int | None, min_confidence: float | None = None) -> Prediction:
        result, skipped = self.preprocess(frames, begin, end, apex, diagnostics, stop)
        timing.face += result.seconds["face"]
        timing.motion += result.seconds["motion"]
        t0 = time.perf_counter()
        probs, feature_map = self.forward(result.inputs)
        timing.model += time.perf_counter() - t0
        return self.postprocess(result, probs, feature_map, frames, timing, diagnostics, skipped, min_confidence)

    # ------------------------------------------------------------------ one clip

    def predict(self, video: VideoLike, onset: int | None = None, apex: int | None = None,
                offset: int | None = None, fps: float | None = None, *, color: str | None = None,
                min_confidence: float | None = None) -> Prediction:
        """Recognise the micro-expression of one clip.

        The clip runs from ``onset`` to ``offset`` (frame numbers; default the input's first and last frame, or
        ``apex`` when only the apex is given). The face is fitted on the onset frame and that one transform warps
        every frame, as in training; every other frame the motion uses must show the face near where it was
        (:func:`merkit.face.landmarks.check_face`). Without ``apex`` the apex follows merkit's apex rule
        (:func:`merkit.motion.spotting.choose_apex`, with the checkpoint's ``spot_measure``). When no onset is given,
        a first frame without a face is skipped (counted warning) and the next frame becomes the onset.

        Args:
            video: a video file or a folder of frames (decoded by :func:`merkit.media.read_video`, the documented
                way to get frames), :class:`VideoFrames` (what ``read_video`` returns: it carries its channel
                order), or raw frames: a sequence of (H, W, 3) arrays or one (T, H, W, 3) array, uint8, or float in
                [0, 1], which is read as the uint8 frame ``rint(x * 255)`` (the same answer as the uint8 frames it
                came from). The frame contract is :func:`merkit.media.as_frames`.
            onset, apex, offset: frame numbers (0-based in a video file; the file names' numbers in a folder).
            fps: frame rate of a frame folder or of raw frames (for the times in the output), finite and > 0.
            color: the channel order of raw frames, ``"rgb"`` or ``"bgr"`` (OpenCV's): required for raw arrays,
                optional for :class:`VideoFrames` (it must then agree), refused for a path.
            min_confidence: abstain below it: when the top (calibrated) probability is below this fraction in
                [0, 1], the answer (``label``) is ``"uncertain"``; ``top_class`` still names the top class.

        The probabilities are calibrated with the checkpoint's temperature (``Prediction.temperature``; 1 when it
        has none) and the model's own are kept (``probabilities_uncalibrated``). Each finding of the domain checks
        (:func:`merkit.predict.trust.domain_findings`: a clip longer than a micro-expression, times outside the
        training data's 1st-99th percentile) is a named warning in ``domain_warnings``.

        Raises:
            ConfigError: ``fps`` not a finite number > 0; ``min_confidence`` outside [0, 1]; raw arrays without
                ``color``, an unknown ``color``, or one given with a path or that contradicts the frames' own.
            DataError: a frame outside the contract (another dtype, ndim or channel count, float values outside
                [0, 1] or NaN, frames of different sizes); unreadable, empty or too short input; onset, apex or
                offset out of order or not frames of the input; no face on the given onset (or on any frame before
                the apex); FaceLostError when a frame the motion uses shows no face where the onset's was, or one
                that moved too far.
        """
        check("predict", fps=(PositiveFloat | None, fps), min_confidence=(Fraction | None, min_confidence))
        video = frames_under_contract(video, color)
        given = Where("video", sample=str(video) if isinstance(video, (str, Path)) else getattr(
            video, "source", "<arrays>"))
        if onset is not None and apex is not None and apex <= onset:
            raise DataError(f"the apex ({apex}) must come after the onset ({onset})", given)
        if offset is not None and apex is not None and offset < apex:
            raise DataError(f"the offset ({offset}) comes before the apex ({apex})", given)
        timing = Timing()
        start = time.perf_counter()
        last = offset if offset is not None else apex
        frames = as_video(video, onset, last, fps=fps)
        timing.read = time.perf_counter() - start
        for what, number in (("onset", onset), ("apex", apex), ("offset", offset)):
            if number is not None and number not in frames.numbers:
                raise DataError(f"the {what} ({number}) is not a frame of the input, which ends at frame "
                                f"{frames.numbers[-1]}", frames.where(number),
                                hint="frame numbers count from 0 in a video file; nothing is clipped silently")
        if len(frames) < 2:
            raise DataError(f"the clip has {len(frames)} frame; recognition needs an onset and a later apex",
                            frames.where(), hint="give at least two frames (check --onset/--apex/--offset)")
        # A given onset is the user's choice: no face on it is an error, not a reason to move the onset.
        stop = None if onset is not None else frames.position(apex, "apex") if apex is not None else len(frames) - 1
        return self._recognise(frames, 0, len(frames), apex, Diagnostics(), timing, stop, min_confidence)

    # ------------------------------------------------------------------ long videos

    def spot(self, video: VideoLike, config: SpotConfig = SpotConfig(), first: int | None = None,
             last: int | None = None, step: int = 1, fps: float | None = None, *, color: str | None = None,
             min_confidence: float | None = None, label_macro: bool = False, progress=None) -> SpotResult:
        """Find candidate micro-expression intervals in a long video and recognise each (see
        :class:`merkit.motion.spotting.SpotConfig` and :func:`merkit.predict.scan.spot_video`, which does the
        spotting with the checkpoint's face settings).

        Args:
            video: a video file, a folder of frames, :class:`VideoFrames` or raw frames, under the frame contract
                of :meth:`predict`.
            config: window, hop, threshold, crop size and interval rule.
            first, last: scan only frames numbered in ``[first, last]``.
            step: keep every ``step``-th frame (the window and hop stay in seconds, so they span fewer kept frames).
            fps: frame rate of a frame folder (default ``config.default_fps``), finite and > 0.
            color: the channel order of raw frames, as in :meth:`predict`.
            min_confidence: an interval whose top probability is below it is labelled ``uncertain``, as in
                :meth:`predict`.
            label_macro: recognise macro-expression intervals too; by default they get no label (``kind`` says
                ``macro``): the model knows micro-expressions only.
            progress: ``progress(done, total)`` after each scanned window.

        A window whose first frame shows no face, or whose later frames lose the face or see it move beyond
        :data:`merkit.face.landmarks.MAX_FACE_SHIFT`, is skipped with a counted warning (``no-face``, ``face-lost``).
        Each interval is timed from its apex and called ``micro`` (at most 0.5 s) or ``macro``
        (:func:`merkit.predict.scan.event_duration`). A micro interval is recognised on the clip from its window's
        first frame (the local onset the motion was measured from) to the window's end, with the apex at the peak,
        by the checkpoint's own preprocessing.

        Returns:
            :class:`SpotResult`; its intervals may be empty.

        Raises:
            ConfigError: ``fps`` not a finite number > 0, or ``step`` < 1; ``color`` as in :meth:`predict`.
            DataError: a frame outside the contract; unreadable, empty or too short input (fewer frames
                than one window), or no window with a face.
        """
        from merkit.predict.scan import spot_video

        check("spot", fps=(PositiveFloat | None, fps), step=(Count, step),
              min_confidence=(Fraction | None, min_confidence), label_macro=(bool, label_macro))
        video = frames_under_contract(video, color)

        def recognise(frames: VideoFrames, begin: int, end: int, apex: int) -> Prediction:
            return self._recognise(frames, begin, end, apex, Diagnostics(), Timing(), None, min_confidence)

        return spot_video(video, config, self.preprocessing.face, first, last, step, fps, recognise, self.classes,
                          label_macro, progress)
