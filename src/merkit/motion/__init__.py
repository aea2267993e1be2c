"""Motion: optical flow (TV-L1, Farneback, DIS), optical strain and the representations models request.

* :mod:`merkit.motion.flow`: :func:`~merkit.motion.flow.compute_flow` (one interface over the backends) and
  :func:`~merkit.motion.flow.optical_strain`.
* :mod:`merkit.motion.representations`: ``onset_apex_flow``, ``apex_minus_onset``, ``long_term_flow``,
  ``dynamic_image``, ``resample_clip``.
* :mod:`merkit.motion.spotting`: apex spotting within [onset, offset].
* :mod:`merkit.motion.export`: composite-style flow folders (``merkit export-flow``).
* :mod:`merkit.motion.stage`: motion features cached per clip through the face cache (``merkit preprocess``).
"""
