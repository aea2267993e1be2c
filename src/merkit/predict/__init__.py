"""``merkit predict``: micro-expression recognition and spotting on new videos.

* :class:`Predictor` (:mod:`merkit.predict.predictor`): a checkpoint ready for videos; preprocess, forward,
  postprocess.
* :class:`Prediction`, :class:`SpotResult`, :class:`Timing` (:mod:`merkit.predict.results`): its answers.
* :mod:`merkit.predict.figures`: their figures.

Videos and frame folders are read by :mod:`merkit.media`; spotting's interval selection is
:func:`merkit.motion.spotting.select_intervals`.
"""

from merkit.media import VideoFrames, read_video
from merkit.motion.spotting import SpotConfig
from merkit.predict.predictor import Predictor
from merkit.predict.results import Prediction, SpotResult, Timing

__all__ = ["Prediction", "Predictor", "SpotConfig", "SpotResult", "Timing", "VideoFrames", "read_video"]
