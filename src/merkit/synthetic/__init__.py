"""Synthetic micro-expressions made from real face photos, with known ground truth (``merkit synth``).

A licensed micro-expression dataset cannot ship with merkit, yet a newcomer must see the pipeline work end to end
and a method developer must be able to check a pipeline on known ground truth. This module animates real face
photos (by default the public-domain ``skimage.data.astronaut()``) with action-unit-like displacement fields placed
by the face's 68 dlib landmarks, and writes the result in the **CASME II release layout**.

Model of one clip (all displacements in pixels on a face about 224 px wide, the scale of CASME II's raw frames):

* **Expression.** Each action unit (AU) is a smooth displacement field: Gaussian bumps (sigma a few percent of the
  face width) centred on landmarks or on points built from them, each pushing in a face-relative direction (up =
  perpendicular to the eye line). The AUs of a class are

  ======================  =================  ==========================================================
  class (3-class scheme)  emotion written    action units
  ======================  =================  ==========================================================
  positive                happiness          AU6 + AU12 (cheek raiser, lip-corner puller)
  surprise                surprise           AU1 + AU2 (inner, outer brow raiser), optionally AU5 or AU26
  negative                disgust            AU4 + AU15 or AU4 + AU17 (brow lowerer with lip-corner
                                             depressor or chin raiser)
  negative                repression         AU14 (dimpler)
  ======================  =================  ==========================================================

  The peak displacement of the clip is drawn uniformly from 0.5-3 px (``amplitude_px``), times
  ``amplitude_scale``; each AU gets a random share of 60-100 % of it.
* **Time course.** Frames run from onset to offset, 15-80 frames (75-400 ms at CASME II's 200 fps); the apex lies
  at a random 20-80 % of the clip. The intensity rises with a raised cosine from onset to apex and falls with one
  towards offset, to a random residual of 0-30 % (micro-expressions often do not fully relax within the clip).
* **Nuisances**, all independent of the label: Gaussian luminance noise (1-2.5 grey levels), a global illumination
  flicker (sinusoid plus jitter, about 1 %), a rigid head drift (up to about 1 px translation and 0.3 degrees
  rotation over the clip), blinks (AU45, in 30 % of the clips, at a random time) and JPEG compression.
* **Identity.** Each pseudo-subject gets its own source face (cycling through ``faces``) and its own geometric
  (scale, aspect, rotation, mirror, a smooth elastic warp) and photometric (gamma, contrast, brightness, colour
  balance) transform, after which its landmarks are detected afresh.

Warping uses backward mapping, ``frame(x) = face(R^-1 (x - c - t) + c - D(x))`` with the expression field ``D``, the
head rotation ``R`` about the face centre ``c`` and translation ``t``; for displacements of a few pixels, sampling
``D`` at ``x`` instead of at the rotated point is accurate to well below 0.1 px.

Output of :func:`generate` (``OUT``)::

    OUT/sub01/EP01_03/img57.jpg ...      frames, CASME II naming, numbered from the onset frame
    OUT/CASME2-coding-synthetic.xlsx     coding sheet in the official CASME II column layout
    OUT/samples.csv                      merkit's sample table plus ground truth (amplitude_px, blink, face)

The same arguments give byte-identical files: every random draw comes from a generator seeded by
``(seed, subject, clip)``, OpenCV's JPEG encoder is deterministic, and the workbook's timestamps are fixed.

The package, one module per concern:

* :mod:`~merkit.synthetic.fields`: action units as displacement fields, and the expression's intensity over time;
* :mod:`~merkit.synthetic.faces`: the face photos and the pseudo-subjects made from them;
* :mod:`~merkit.synthetic.clips`: a clip's drawn specification and its rendering;
* :mod:`~merkit.synthetic.release`: a set in the CASME II release layout (:func:`generate`);
* :mod:`~merkit.synthetic.long_videos`: long videos with known intervals (:func:`generate_long_videos`).
"""

from merkit.synthetic.fields import (FaceFrame, au_field, intensity_profile)
from merkit.synthetic.faces import (DATASET, FACE_WIDTH, FPS, FRAME_SIZE, Subject, default_face, face_paths,
    make_subject)
from merkit.synthetic.clips import (CLASSES, ClipSpec, RECIPES, blink_field, draw_clip, expression_field,
    render_clip, render_frames)
from merkit.synthetic.release import (GENERATOR_VERSION, SHEET_COLUMNS, SHEET_NAME, TABLE_NAME, generate,
    write_coding_sheet)
from merkit.synthetic.long_videos import (BLINK_AMOUNT, BLINK_GAP_SECONDS, BLINK_SECONDS, EXPRESSION_GAP_SECONDS,
    HEAD_MOVES_PER_MINUTE, HEAD_SECONDS, HEAD_SHIFT_PX, HEAD_TURN_DEG, INTERVALS_NAME, INTERVAL_KINDS,
    LONG_FACE_WIDTH, LONG_FPS, LONG_FRAME_SIZE, LongVideoPlan, MACRO_AMPLITUDE_PX, MACRO_SECONDS, MICRO_SECONDS,
    VIDEOS_NAME, VideoEvent, draw_long_video, generate_long_videos, render_long_video)

__all__ = [
    "BLINK_AMOUNT", "BLINK_GAP_SECONDS", "BLINK_SECONDS", "CLASSES", "ClipSpec", "DATASET", "EXPRESSION_GAP_SECONDS",
    "FACE_WIDTH", "FPS", "FRAME_SIZE", "FaceFrame", "GENERATOR_VERSION", "HEAD_MOVES_PER_MINUTE", "HEAD_SECONDS",
    "HEAD_SHIFT_PX", "HEAD_TURN_DEG", "INTERVALS_NAME", "INTERVAL_KINDS", "LONG_FACE_WIDTH", "LONG_FPS",
    "LONG_FRAME_SIZE", "LongVideoPlan", "MACRO_AMPLITUDE_PX", "MACRO_SECONDS", "MICRO_SECONDS", "RECIPES",
    "SHEET_COLUMNS", "SHEET_NAME", "Subject", "TABLE_NAME", "VIDEOS_NAME", "VideoEvent", "au_field", "blink_field",
    "default_face", "draw_clip", "draw_long_video", "expression_field", "face_paths", "generate",
    "generate_long_videos", "intensity_profile", "make_subject", "render_clip", "render_frames", "render_long_video",
    "write_coding_sheet",
]
