"""Face: detection, 68 landmarks, alignment, cropping and AU regions (dlib, scikit-image).

The stage turns a sample's raw frames into an aligned face clip (:class:`~merkit.face.clip.AlignedClip`):
detect the largest face and fit its 68 landmarks on the onset frame (:mod:`merkit.face.landmarks`), build one
similarity or piecewise-affine transform to a mean-face template (:mod:`merkit.face.align`) composed with a crop
(:mod:`merkit.face.crop`), and warp every frame of the clip with it (:mod:`merkit.face.clip`).
:mod:`merkit.face.cache` runs that over a sample table, in parallel and resumably; :mod:`merkit.face.regions`
defines the nine FRL-DGT action-unit regions; :mod:`merkit.face.show` draws what the stage sees.
"""

from merkit.face.cache import ClipStage, PreprocessReport, load_clip, preprocess, preprocess_dataset
from merkit.face.clip import AlignedClip, FaceConfig, align_frames, align_image, align_sample, fit_face
from merkit.face.landmarks import FaceNotFoundError, detect_faces, detect_landmarks
from merkit.face.regions import AU_REGION_NAMES, au_regions, crop_au_regions

__all__ = [
    "AU_REGION_NAMES",
    "AlignedClip",
    "ClipStage",
    "FaceConfig",
    "FaceNotFoundError",
    "PreprocessReport",
    "align_frames",
    "align_image",
    "align_sample",
    "au_regions",
    "crop_au_regions",
    "detect_faces",
    "detect_landmarks",
    "fit_face",
    "load_clip",
    "preprocess",
    "preprocess_dataset",
]
