"""How far off in colour each model's fill is: the hole's mean colour against the truth's.

On the evaluation cases of ``python -m training evaluate`` (the validation photos of the
starter set at ``--size``, fixed masks, bins from (0.2, 0.3] up by default), prints per model
the mean signed error of the hole's mean colour (R, G, B, in levels) and the mean of its
absolute value over the cases. ``hifill-raw`` is HiFill's network without the engine's
colour correction (:func:`engine.models.torch_base.known_error_correction`).

    python scripts/hole_colour_error.py --models hifill hifill-raw telea pconv
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.models.base import InpaintModel
from engine.models.classical import ClassicalModel
from engine.models.torch_base import image_to_tensor, mask_to_tensor, tensor_to_image
from engine.registry import get_spec, verified_weights_path
from training.cli import DEFAULT_DATA
from training.evaluate import CLASSICAL, evaluation_cases, model_from_weights


def load(model_id: str) -> InpaintModel:
    if model_id in CLASSICAL:
        return ClassicalModel(get_spec(model_id))
    if model_id != "hifill-raw":
        return model_from_weights(model_id, verified_weights_path(get_spec(model_id)))
    model = model_from_weights("hifill", verified_weights_path(get_spec("hifill")))

    @torch.inference_mode()
    def raw(image: np.ndarray, mask: np.ndarray, seed: int) -> np.ndarray:
        x, m = image_to_tensor(image, model.device), mask_to_tensor(mask, model.device)
        return tensor_to_image(model.net(x * (1 - m), m)[1])

    model.predict = raw  # type: ignore[method-assign]
    return model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["hifill", "hifill-raw", "telea", "pconv"])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--min-bin", type=int, default=2, help="first bin index (0-5)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    cases = [c for c in evaluation_cases(args.data, args.size, 2) if c.bin_index >= args.min_bin]
    print(f"{len(cases)} cases at {args.size}; hole mean colour minus truth, in levels")
    print("| model | mean signed R / G / B | mean abs over cases |")
    print("|---|---|---|")
    for model_id in args.models:
        model = load(model_id)
        errors = []
        for case in cases:
            out = model.predict(case.image, case.mask, seed=0).astype(np.float64)
            truth = case.image[case.mask].astype(np.float64).mean(axis=0)
            errors.append(out[case.mask].mean(axis=0) - truth)
        signed = " / ".join(f"{v:+.2f}" for v in np.mean(errors, axis=0))
        print(f"| {model_id} | {signed} | {np.mean(np.abs(errors)):.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
