"""Evaluation of trained models against baselines (CLI: python -m stemlab.evaluate <model> ...)."""
