"""Face: detection, 68 landmarks, alignment, cropping and AU regions (dlib, scikit-image).

The stage turns frames into an aligned face clip (:class:`~merkit.face.clip.AlignedClip`): detect the largest face
and fit its 68 landmarks on a reference frame, the onset by default (:mod:`merkit.face.landmarks`), build one
similarity or piecewise-affine transform to a mean-face template (:mod:`merkit.face.align`) composed with a crop
(:mod:`merkit.face.crop`), and warp every frame of the clip with it (:mod:`merkit.face.clip`).
:mod:`merkit.face.regions` defines the nine FRL-DGT action-unit regions; :mod:`merkit.face.show` draws what the
stage sees. The stage knows nothing of datasets: :mod:`merkit.inputs` hands it a sample's frames.
"""

from merkit.face.clip import AlignedClip, FaceConfig, align_frames, align_image, fit_face
from merkit.face.landmarks import FaceNotFoundError, detect_faces, detect_landmarks
from merkit.face.regions import AU_REGION_NAMES, au_regions, crop_au_regions

__all__ = [
    "AU_REGION_NAMES",
    "AlignedClip",
    "FaceConfig",
    "FaceNotFoundError",
    "align_frames",
    "align_image",
    "au_regions",
    "crop_au_regions",
    "detect_faces",
    "detect_landmarks",
    "fit_face",
]
