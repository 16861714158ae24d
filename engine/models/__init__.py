"""Inpainting models: one file per model, specs in :mod:`engine.models.catalog`."""
