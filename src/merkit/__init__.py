"""merkit: facial micro-expression recognition (MER) toolkit.

The pipeline, one package per stage (a stage imports only from stages before it)::

    datasets -> face -> motion -> models -> training -> evaluation

``merkit.api`` holds the functions the CLI wraps: :func:`merkit.api.evaluate`, :func:`merkit.api.train`,
:func:`merkit.api.report`, :func:`merkit.api.compare`.
"""

__version__ = "0.1.0"
