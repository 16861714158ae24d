"""Experiment: the texture stage's own settings (engine/texture.py ``TextureSettings``).

Scores the shipped stage and variants of its settings on HiFill's fills of the validation
cases of bins (0.1, 0.2] ... (0.5, 0.6] (512 px, one mask per bin), beside HiFill alone and
pypatchmatch, with the same cache and table as ``exp_texture_em.py``.

Usage::

    python scripts/exp_texture_settings.py --step 1 --variants shipped,rounds1
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.texture import DEFAULT_SETTINGS, refine_texture
from scripts.exp_texture_em import compare, parser_for

VARIANTS = {
    "shipped": {},
    "rounds1": {"rounds": 1},
    "iters1": {"search_iters": 1},
    "comp8": {"components": 8},
    "comp8-iters1": {"components": 8, "search_iters": 1},
}


def inpaint(image, mask, guide, **changes):
    settings = dataclasses.replace(DEFAULT_SETTINGS, **changes)
    return refine_texture(image, mask, guide, settings=settings)


def main() -> int:
    args = parser_for(__doc__, "shipped,rounds1").parse_args()
    return compare(args, inpaint, VARIANTS)


if __name__ == "__main__":
    raise SystemExit(main())
