"""Evaluation: pooled MEGC2019 metrics, the official log format, reports and figures."""
