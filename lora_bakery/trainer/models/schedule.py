"""The noise schedule every SD1/SD2/SDXL checkpoint was trained with, as a diffusers scheduler config."""

from __future__ import annotations

from typing import Any

_PREDICTIONS = {"eps": "epsilon", "epsilon": "epsilon", "v": "v_prediction", "v_prediction": "v_prediction"}


def noise_scheduler_config(architecture: str, prediction: str = "eps") -> dict[str, Any]:
    """Config for ``DDPMScheduler`` / ``DDIMScheduler`` / ``EulerDiscreteScheduler.from_config``.

    SD1, SD2 and SDXL share the LDM schedule: 1000 steps, ``scaled_linear`` betas from 0.00085 to
    0.012 (``linear_start``/``linear_end`` in v1-inference.yaml and sd_xl_base.yaml).

    Args:
        architecture (`str`): ``"sd1"``, ``"sd2"`` or ``"sdxl"``.
        prediction (`str`, defaults to ``"eps"``): ``"eps"``/``"epsilon"`` or ``"v"``/``"v_prediction"``.

    Returns:
        `dict`: scheduler config (``steps_offset=1`` as the published SD configs have).
    """
    if architecture not in ("sd1", "sd2", "sdxl"):
        raise ValueError(f"unknown architecture {architecture!r}; expected sd1, sd2 or sdxl")
    if prediction not in _PREDICTIONS:
        raise ValueError(f"unknown prediction {prediction!r}; expected eps or v")
    return {
        "num_train_timesteps": 1000,
        "beta_start": 0.00085,
        "beta_end": 0.012,
        "beta_schedule": "scaled_linear",
        "steps_offset": 1,
        "clip_sample": False,
        "set_alpha_to_one": False,
        "timestep_spacing": "leading",
        "prediction_type": _PREDICTIONS[prediction],
    }
