"""Reading frames: image files named by frame number, video files, and single images.

This is the one place where merkit decodes pictures. Every stage reads through it: the dataset loaders list a
sample's frames (:func:`list_frames`), the inputs stage decodes them (:func:`read_frame`), ``merkit predict`` reads
a video or a folder of frames (:func:`read_video`) and ``merkit show-face`` one image or video frame
(:func:`read_image_or_frame`). Frames are always RGB uint8; a stage that needs grey converts after its own warping.

The official releases name their frames in several ways (``img46.jpg``, ``reg_img46.jpg``, ``006_05562.jpg``,
``image559740.bmp``, ``175.jpg``). In every one of them the frame number is the **last integer in the file stem**,
and it is padded inconsistently (SAMM uses 4 or 5 digits within one dataset), so frames are always sorted by that
integer, never by name.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Sequence

import cv2
import numpy as np

from merkit.errors import DataError, Where

IMAGE_SUFFIXES: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"})
VIDEO_SUFFIXES: tuple[str, ...] = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
_LAST_INTEGER = re.compile(r"(\d+)(?!.*\d)")


def frame_number(path: str | Path) -> int:
    """The frame number of a frame file: the last integer in its stem (``006_05562.jpg`` -> 5562).

    Raises:
        DataError: the file name holds no integer.
    """
    stem = Path(path).stem
    match = _LAST_INTEGER.search(stem)
    if match is None:
        raise DataError(f"frame file name {Path(path).name!r} holds no frame number", Where(frame=str(path)))
    return int(match.group(1))


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def list_frames(folder: str | Path, where: Where | None = None) -> list[Path]:
    """All image files of ``folder``, sorted by :func:`frame_number`.

    Raises:
        DataError: the folder does not exist or holds no images, or two files carry the same frame number
            (``006_5562.jpg`` beside ``006_05562.jpg``), which would make the order ambiguous.
    """
    folder = Path(folder)
    where = where or Where()
    if not folder.is_dir():
        raise DataError(f"frame folder not found: {folder}", where,
                        hint="check --root, and --layout if both raw and cropped releases are present")
    numbered = sorted((frame_number(p), p) for p in folder.iterdir() if p.is_file() and is_image(p))
    if not numbered:
        raise DataError(f"no image frames in {folder}", where)
    numbers = [n for n, _ in numbered]
    repeated = sorted({n for n in numbers if numbers.count(n) > 1})
    if repeated:
        raise DataError(f"frame numbers {repeated[:5]} occur twice in {folder}", where)
    return [p for _, p in numbered]


def read_frame(path: str | Path, where: Where | None = None) -> np.ndarray:
    """One frame file as (H, W, 3) RGB uint8.

    A 16-bit frame is scaled by its dtype's maximum to 8 bits (OpenCV's ``IMREAD_COLOR`` keeps the high byte,
    ``v // 256``), so its range is kept, never clipped.

    Raises:
        DataError: missing or unreadable file; the message names ``where`` and the frame.
    """
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        where = dataclasses.replace(where or Where(), frame=Path(path).name)
        raise DataError("cannot read frame", where, hint=f"check that {path} exists and is an image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def bit_depth(image: np.ndarray) -> str:
    """How a decoded image stores a value: ``"8-bit"``, ``"16-bit"``, ``"32-bit float"``, ..."""
    kind = "float" if image.dtype.kind == "f" else ""
    return f"{image.dtype.itemsize * 8}-bit{' ' + kind if kind else ''}"


def read_8bit_image(path: str | Path, where: Where | None = None, grey: bool = False) -> np.ndarray:
    """An image file decoded at its true bit depth, which must be 8 bits per value.

    Formats whose values are 8-bit (the MEGC2019 composite's PNGs and JPEGs) are read here; a 16-bit or float
    file is refused rather than read as if its values were 0..255, and never scaled to another range silently.

    Args:
        grey: decode as one grey plane (``cv2.IMREAD_GRAYSCALE`` with ``cv2.IMREAD_ANYDEPTH``, so that the bit
            depth is kept to be checked); otherwise the stored channels, BGR(A) reordered to RGB(A).

    Returns:
        uint8 (H, W) grey, or (H, W), (H, W, 3) RGB or (H, W, 4) RGBA as stored.

    Raises:
        DataError: the file is missing or cannot be decoded, or its values are not 8-bit; the message names the
            file, its bit depth and ``where``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"file not found: {path}", where)
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE | cv2.IMREAD_ANYDEPTH if grey else cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DataError(f"cannot decode image {path}", where)
    if image.dtype != np.uint8:
        raise DataError(f"{path} is a {bit_depth(image)} image; 8-bit images are expected", where,
                        hint="the composite format stores 8-bit PNGs and JPEGs; convert the file to 8 bits per "
                             "channel (scaling by the bit depth's maximum) or re-export the folder")
    if image.ndim == 3 and image.shape[2] in (3, 4):
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB if image.shape[2] == 3 else cv2.COLOR_BGRA2RGBA)
    return image


def verify_image(path: str | Path, where: Where | None = None) -> None:
    """Decode an image file to its last byte, to tell an intact file from a damaged one.

    OpenCV decodes a truncated JPEG without an error (it warns on stderr and fills the missing rows with grey), so
    :func:`read_8bit_image` alone cannot find one. Pillow refuses it ("image file is truncated"), and this is what
    ``merkit datasets check`` runs on every file of a flow folder before reading it with :func:`read_8bit_image`.

    Raises:
        DataError: the file is missing, is not an image, or is truncated or corrupt; the message names the file
            and Pillow's reason.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise DataError(f"file not found: {path}", where)
    try:
        with Image.open(path) as image:
            image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise DataError(f"cannot decode image {path}: {error}", where,
                        hint="the file is damaged or not an image: copy it again from the release") from error


class FrameFiles(Sequence[np.ndarray]):
    """A clip's frame files as a sequence of frames decoded on indexing (:func:`read_frame`), so that a stage that
    needs two frames of a 300-frame clip decodes two."""

    def __init__(self, paths: Sequence[str | Path], where: Where | None = None):
        self.paths = list(paths)
        self.where = where

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return FrameFiles(self.paths[index], self.where)
        return read_frame(self.paths[index], self.where)


#: The channel orders a raw array can be given in: ``rgb`` (what merkit, PIL and imageio decode) and ``bgr``
#: (what ``cv2.imread`` and ``cv2.VideoCapture`` return).
COLOR_ORDERS: tuple[str, ...] = ("rgb", "bgr")


@dataclass
class VideoFrames:
    """Frames of a video or a frame folder, in temporal order.

    Attributes:
        frames: T frames, (H, W, 3) uint8, in the channel order ``color``.
        numbers: T frame numbers (0-based index in a video file; the number in the file name in a folder).
        fps: frames per second of the frame numbers (from the video container; ``None`` for a folder unless
            given).
        source: what was read (a path, or ``"<arrays>"``).
        color: the frames' channel order, ``rgb`` (what :func:`read_video` returns) or ``bgr``; a frames object
            carries its own, so ``Predictor.predict`` needs no ``color=`` for it (:func:`as_frames`).
    """

    frames: list[np.ndarray]
    numbers: list[int]
    fps: float | None = None
    source: str = "<arrays>"
    color: str = "rgb"

    def __len__(self) -> int:
        return len(self.frames)

    def where(self, frame: int | None = None) -> Where:
        """The location of this input (and one of its frames) for errors and warnings."""
        return Where("video", sample=self.source, frame=frame)

    def position(self, number: int, what: str) -> int:
        """Index of frame ``number``.

        Raises:
            DataError: no frame carries that number.
        """
        if number not in self.numbers:
            raise DataError(f"{what} frame {number} is not among the input's frames "
                            f"{self.numbers[0]}..{self.numbers[-1]}", self.where(number),
                            hint="frame numbers are 0-based indices in a video file, the file names' numbers in "
                                 "a frame folder")
        return self.numbers.index(number)


def read_video(source: str | Path, first: int | None = None, last: int | None = None, step: int = 1,
               fps: float | None = None) -> VideoFrames:
    """Read a video file (OpenCV/FFmpeg) or a folder of frames (sorted by the number in their names).

    Args:
        source: a video file or a folder of image frames (``img46.jpg``, ``006_05562.jpg``, ...).
        first, last: keep frames whose number lies in ``[first, last]`` (inclusive; video frames are numbered
            from 0).
        step: keep every ``step``-th of those frames (subsampling a long video).
        fps: frames per second of a frame folder (a video file's own rate is read from the container). It stays
            the rate of the frame numbers when ``step`` > 1.

    Returns:
        :class:`VideoFrames` with RGB uint8 frames.

    Raises:
        DataError: the input does not exist, cannot be opened or decoded, or holds no frame in the range.
    """
    path = Path(source)
    where = VideoFrames([], [], source=str(path)).where()
    if step < 1:
        raise DataError(f"step must be >= 1, got {step}", where)
    lo, hi = (first if first is not None else 0), (last if last is not None else np.inf)
    if not path.exists():
        raise DataError(f"input not found: {path}", where, hint="give a video file or a folder of frames")
    frames, numbers = [], []
    if path.is_dir():
        for p in [p for p in list_frames(path, where) if lo <= frame_number(p) <= hi][::step]:
            frames.append(read_frame(p, where))
            numbers.append(frame_number(p))
        rate = fps
    else:
        capture = cv2.VideoCapture(str(path))
        try:
            if not capture.isOpened():
                raise DataError(f"cannot open {path} as a video", where,
                                hint="give a video file FFmpeg can decode (mp4, avi, ...) or a folder of frames")
            rate = fps or (capture.get(cv2.CAP_PROP_FPS) or None)
            index = -1
            if lo > 0 and capture.set(cv2.CAP_PROP_POS_FRAMES, lo):
                # FFmpeg seeks to the keyframe before ``lo`` and decodes forward, so the frame index stays exact
                # and a clip late in a long video is not decoded from the start.
                index = int(capture.get(cv2.CAP_PROP_POS_FRAMES)) - 1
            while index < hi:
                ok, image = capture.read()
                if not ok:
                    break
                index += 1
                if index >= lo and (index - lo) % step == 0:
                    frames.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
                    numbers.append(index)
        finally:
            capture.release()
        if index < 0:
            raise DataError(f"no frame could be decoded from {path}", where,
                            hint="the file is empty, truncated or not a video")
    if not frames:
        raise DataError(f"no frame of {path} lies in [{first}, {last}]", where,
                        hint="check --first/--last (or onset/offset) against the input's frame numbers")
    return VideoFrames(frames, numbers, rate, str(path))


def _frame_as_uint8(frame, number: int, where: Where) -> np.ndarray:
    """One raw frame under the frame contract of :func:`as_frames`: (H, W, 3) uint8, as given or from float."""
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise DataError(f"a frame must be (H, W, 3), this one is {frame.shape}", where,
                        hint="give colour frames with 3 channels (np.stack([grey] * 3, axis=-1) for a grey one)")
    if frame.dtype == np.uint8:
        return frame
    if frame.dtype.kind != "f":
        raise DataError(f"a frame must be uint8 (0..255) or float in [0, 1], this one is {frame.dtype}", where,
                        hint="convert it to uint8 with its own scale (a 16-bit frame: (x // 257).astype(np.uint8))")
    if not np.isfinite(frame).all():
        raise DataError("the frame holds NaN or infinite values", where)
    if frame.size and (frame.min() < 0 or frame.max() > 1):
        raise DataError(f"a float frame must hold values in [0, 1] (scaled by 255 as uint8), this one spans "
                        f"[{frame.min():g}, {frame.max():g}]", where,
                        hint="pass uint8 frames, or float frames divided by 255")
    return np.rint(frame * 255.0).astype(np.uint8)


def as_frames(video: "VideoFrames | Sequence[np.ndarray] | np.ndarray", color: str | None = None) -> VideoFrames:
    """Raw frames under merkit's frame contract, as RGB uint8 :class:`VideoFrames`.

    The contract: every frame is (H, W, 3), all of one size, and either uint8 (0..255) or float (any width) holding
    values in [0, 1], which stands for the uint8 frame ``rint(x * 255)`` (so a clip and its ``/ 255`` float copy
    give the same answer). ``color`` says the channel order of raw arrays: ``rgb`` or ``bgr`` (OpenCV's), which
    is required, since the two give different answers and nothing in an array tells them apart. A
    :class:`VideoFrames` (what :func:`read_video` returns) carries its own order; ``color`` may then be omitted or
    must agree. Anything else (another dtype, NaN, float values outside [0, 1], another ndim or channel count,
    frames of different sizes, no order for raw arrays) is refused with a one-line error.

    Args:
        video: :class:`VideoFrames`, a sequence of (H, W, 3) arrays, or one (T, H, W, 3) array.
        color: ``rgb`` or ``bgr`` (:data:`COLOR_ORDERS`).

    Returns:
        :class:`VideoFrames` of (H, W, 3) RGB uint8 frames, with the input's numbers (0..T-1 for raw arrays),
        rate and source.

    Raises:
        ConfigError: no ``color`` for raw arrays, one not in :data:`COLOR_ORDERS`, or one that contradicts the
            :class:`VideoFrames`' own.
        DataError: a frame outside the contract (the message names the frame).
    """
    from merkit.errors import ConfigError

    if color is not None and color not in COLOR_ORDERS:
        raise ConfigError(f"color must be one of {list(COLOR_ORDERS)}, got {color!r}")
    if isinstance(video, VideoFrames):
        if color is not None and color != video.color:
            raise ConfigError(f"color={color!r} contradicts the frames' own order {video.color!r} (VideoFrames.color)")
        color, frames, numbers = video.color, video.frames, list(video.numbers)
        fps, source = video.fps, video.source
        if color not in COLOR_ORDERS:
            raise ConfigError(f"VideoFrames.color must be one of {list(COLOR_ORDERS)}, got {color!r}")
    else:
        if color is None:
            raise ConfigError("raw frame arrays need their channel order: color='rgb' or color='bgr' (OpenCV's); "
                              "merkit.media.read_video returns frames that carry it")
        if isinstance(video, np.ndarray) and video.ndim != 4:
            raise DataError(f"an array of frames must be (T, H, W, 3), this one is {video.shape}",
                            Where("video", sample="<arrays>"))
        frames, fps, source = list(video), None, "<arrays>"
        numbers = list(range(len(frames)))
    converted = [_frame_as_uint8(f, n, Where("video", sample=source, frame=n)) for f, n in zip(frames, numbers)]
    for frame, number in zip(converted, numbers):
        if frame.shape != converted[0].shape:
            raise DataError(f"frame {number} is {frame.shape}, frame {numbers[0]} is {converted[0].shape}: a clip's "
                            "frames must share one size", Where("video", sample=source, frame=number))
    if color == "bgr":
        converted = [np.ascontiguousarray(f[..., ::-1]) for f in converted]
    return VideoFrames(converted, numbers, fps, source, "rgb")


def as_video(video: "str | Path | VideoFrames | Sequence[np.ndarray]", first: int | None = None,
             last: int | None = None, step: int = 1, fps: float | None = None) -> VideoFrames:
    """``video`` as :class:`VideoFrames`: read a path (:func:`read_video`), or wrap arrays (RGB uint8, numbered
    0..T-1; :func:`as_frames` checks raw arrays first), keeping the frames numbered in ``[first, last]``.

    Raises:
        DataError: as :func:`read_video`, or no frame lies in the range.
    """
    if isinstance(video, (str, Path)):
        return read_video(video, first, last, step, fps)
    if not isinstance(video, VideoFrames):
        frames = [np.asarray(f) for f in video]
        video = VideoFrames(frames, list(range(len(frames))), fps)
    lo, hi = (first if first is not None else -np.inf), (last if last is not None else np.inf)
    keep = [i for i, n in enumerate(video.numbers) if lo <= n <= hi][::step]
    if not keep:
        raise DataError(f"no frame lies in [{first}, {last}]", video.where())
    return VideoFrames([video.frames[i] for i in keep], [video.numbers[i] for i in keep], video.fps or fps,
                       video.source, video.color)


def read_image_or_frame(source: str | Path, frame: int = 0) -> np.ndarray:
    """An (H, W, 3) RGB uint8 image: the file itself, or frame ``frame`` (0-based) of a video.

    Raises:
        DataError: the file cannot be read, or the video has fewer frames.
    """
    source = Path(source)
    if source.suffix.lower() in VIDEO_SUFFIXES:
        where = Where(sample=source.name, frame=frame)
        if not source.is_file():
            raise DataError("file not found", where, hint=str(source))
        video = read_video(source, frame, frame)
        if video.numbers != [frame]:
            raise DataError(f"cannot read frame {frame} of the video", where,
                            hint="the video may be shorter, or its codec unsupported by OpenCV")
        return video.frames[0]
    if not source.is_file():
        raise DataError("file not found", Where(sample=source.name), hint=str(source))
    return read_frame(source, Where(sample=source.name))


# ------------------------------------------------------------------------------------------------ writing, decoding


def write_png_256(path: str | Path, rgb: np.ndarray) -> Path:
    """Write an (H, W, 3) uint8 RGB image as a 256-colour PNG (median-cut palette, optimised) atomically.

    A third of the size of a true-colour PNG: the figures of the docs and of ``merkit show-face``.

    Returns:
        ``path``.

    Raises:
        OSError: the file could not be written.
    """
    from PIL import Image

    from merkit.files import write_atomic

    image = Image.fromarray(np.asarray(rgb)).quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    return write_atomic(path, lambda tmp: image.save(tmp, optimize=True))


def _decode(path: str | Path, flags: int, where: Where | None, what: str) -> np.ndarray:
    image = cv2.imread(str(path), flags)
    if image is None:
        raise DataError(f"cannot decode {what} {path}", where)
    return image


def read_image(path: str | Path, where: Where | None = None, what: str = "image") -> np.ndarray:
    """An image file as (H, W, 3) RGB uint8 (grey and 16-bit files are converted by OpenCV's ``IMREAD_COLOR``),
    for inputs that are not a clip's frames (e.g. the face photos of ``merkit synth``).

    Raises:
        DataError: ``cannot decode <what> <path>``: missing, unreadable or not an image.
    """
    return cv2.cvtColor(_decode(path, cv2.IMREAD_COLOR, where, what), cv2.COLOR_BGR2RGB)


def encode_jpeg(rgb: np.ndarray, quality: int, what: str = "an image") -> bytes:
    """An (H, W, 3) uint8 RGB image as JPEG file bytes (OpenCV, ``quality`` 0-100).

    Raises:
        DataError: ``JPEG encoding failed for <what>``.
    """
    ok, buffer = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise DataError(f"JPEG encoding failed for {what}")
    return buffer.tobytes()


def write_image(path: str | Path, image: np.ndarray) -> Path:
    """Write an image with OpenCV (BGR or grey, format by suffix) atomically (:func:`merkit.files.write_atomic`).

    Returns:
        ``path``.

    Raises:
        OSError: the file could not be written.
    """
    from merkit.files import write_atomic

    def write(tmp: Path) -> None:
        if not cv2.imwrite(str(tmp), image):
            raise OSError(f"could not write {path}")

    return write_atomic(path, write)
