"""Training module of Inpaint Studio: reproduces the shipped weights (``python -m training``).

Layout (LaMa style): :mod:`training.fetch` (starter photo set), :mod:`training.data`
(crops, splits), :mod:`training.masks` (irregular masks, evaluation bins),
:mod:`training.losses` (pure loss functions, feature backbones), :mod:`training.recipes`
(one per model: networks + loss terms), :mod:`training.trainer` (the one training loop),
:mod:`training.evaluate`, :mod:`training.export` and :mod:`training.cli`.
Training imports the networks from :mod:`engine`, never the other way round.
"""
