"""Figures of the face stage: the detected face, landmarks, crop and AU regions (``merkit show-face``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from merkit.errors import Where
from merkit.face.clip import FaceConfig, align_image
from merkit.face.landmarks import detect_landmarks
from merkit.face.regions import AU_REGION_NAMES, au_regions, crop_au_regions, region_side
from merkit.media import read_image_or_frame, write_png_256

_LABEL_BOX = {"facecolor": "white", "alpha": 0.75, "edgecolor": "none", "pad": 0.8}


def _show(ax, image: np.ndarray, title: str) -> None:
    ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=255)
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()


def face_figure(image: np.ndarray, config: FaceConfig = FaceConfig(), where: Where | None = None):
    """A three-panel matplotlib figure: the input with face box, landmarks and crop outline; the aligned crop
    with its landmarks; the aligned crop with the nine FRL-DGT AU regions.

    Args:
        image: (H, W, 3) RGB or (H, W) grey uint8.

    Raises:
        FaceNotFoundError: no face in ``image``.
    """
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    landmarks, box, n_faces = detect_landmarks(image, config.detector, where, config.upsample)
    aligned, aligned_landmarks, transform = align_image(image, config, where)
    size = config.size
    edge = np.linspace(-0.5, size - 0.5, 50)
    border = np.vstack([np.column_stack([edge, np.full_like(edge, -0.5)]),
                        np.column_stack([np.full_like(edge, size - 0.5), edge]),
                        np.column_stack([edge[::-1], np.full_like(edge, size - 0.5)]),
                        np.column_stack([np.full_like(edge, -0.5), edge[::-1]])])
    outline = transform.invert(border)

    fig = Figure(figsize=(10.5, 3.9), dpi=100)
    axes = fig.subplots(1, 3)
    _show(axes[0], image, f"input: {n_faces} face(s), largest used")
    left, top, right, bottom = box
    axes[0].add_patch(Rectangle((left, top), right - left, bottom - top, fill=False, color="yellow", lw=1))
    axes[0].plot(*np.vstack([outline, outline[:1]]).T, color="cyan", lw=1)
    axes[0].scatter(*landmarks.T, s=2, color="lime")
    height, width = image.shape[:2]
    pad = 0.15 * max(right - left, bottom - top)
    view = np.vstack([outline, [[left - pad, top - pad], [right + pad, bottom + pad]]])
    axes[0].set_xlim(max(view[:, 0].min(), -0.5), min(view[:, 0].max(), width - 0.5))
    axes[0].set_ylim(min(view[:, 1].max(), height - 0.5), max(view[:, 1].min(), -0.5))

    _show(axes[1], aligned, f"aligned: {config.align}, {config.crop} crop, {size} px")
    axes[1].scatter(*aligned_landmarks.T, s=3, color="lime")

    _show(axes[2], aligned, f"FRL-DGT AU regions ({region_side(size)} px boxes)")
    colours = matplotlib.colormaps["tab10"]
    for i, (name, (x0, y0, x1, y1)) in enumerate(au_regions(aligned_landmarks, size).items()):
        axes[2].add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, color=colours(i), lw=1.2))
        axes[2].text(x0 + 2, y0 + 9, name, color=colours(i), fontsize=7, fontweight="bold", bbox=_LABEL_BOX)
    fig.tight_layout()
    return fig


def _save(fig, out: str | Path) -> Path:
    """Render a figure with Agg (without touching pyplot or the session's backend) and save it as a 256-colour PNG
    (:func:`merkit.media.write_png_256`: a third of the size of a true-colour one, for the docs)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return write_png_256(out, np.asarray(canvas.buffer_rgba())[..., :3])


def show_face(source: str | Path | np.ndarray, out: str | Path, config: FaceConfig = FaceConfig(),
              frame: int = 0) -> Path:
    """Draw :func:`face_figure` for an image file, a video frame or an array, and save it as ``out`` (PNG)."""
    if isinstance(source, np.ndarray):
        image, where = source, Where(sample="array")
    else:
        image = read_image_or_frame(source, frame)
        where = Where(sample=Path(source).name, frame=frame)
    return _save(face_figure(image, config, where), out)


def au_region_figure(image: np.ndarray, out: str | Path, config: FaceConfig = FaceConfig()) -> Path:
    """The AU-region figure of the docs: the aligned face with the nine boxes, and the nine patches."""
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    aligned, landmarks, _ = align_image(image, config)
    patches = crop_au_regions(aligned, landmarks)
    fig = Figure(figsize=(9, 4.2), dpi=100)
    grid = fig.add_gridspec(3, 6)
    ax = fig.add_subplot(grid[:, :3])
    _show(ax, aligned, f"aligned face ({config.size} px) and the nine AU regions")
    colours = matplotlib.colormaps["tab10"]
    boxes = au_regions(landmarks, config.size)
    for i, (name, (x0, y0, x1, y1)) in enumerate(boxes.items()):
        ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, color=colours(i), lw=1.3))
        ax.text(x0 + 2, y0 + 9, name, color=colours(i), fontsize=8, fontweight="bold", bbox=_LABEL_BOX)
    ax.scatter(*landmarks.T, s=2, color="white")
    for i, (name, patch) in enumerate(zip(AU_REGION_NAMES, patches)):
        sub = fig.add_subplot(grid[i // 3, 3 + i % 3])
        _show(sub, patch, name)
        sub.title.set_color(colours(i))
    fig.tight_layout()
    return _save(fig, out)
