"""The weight deltas of AUTOMATIC1111 1.10.1's built-in Lora extension, transcribed for tests.

Written from ``extensions-builtin/Lora/{network,network_lora,network_hada,network_ia3,network_lokr,
network_oft,lyco_helpers}.py`` at v1.10.1 (reference/a1111-host.md §6). Independent of
``lora_bakery.trainer.adapters`` on purpose: it is the oracle our adapters are checked against.
Each ``create_*`` mirrors a ``ModuleType.create_module`` (returns ``None`` when the keys do not
fit); each module's ``calc_updown(orig_weight)`` mirrors the extension's, ``finalize_updown``
included (``calc_scale``, DoRA, multiplier).
"""

from __future__ import annotations

import torch


class RefModule:
    """``network.NetworkModule``: alpha/scale/dora_scale reading and ``finalize_updown``."""

    def __init__(self, sd_key: str, w: dict[str, torch.Tensor], multipliers: tuple[float, float]) -> None:
        self.sd_key = sd_key
        self.w = w
        self.dim: int | None = None
        self.alpha = w["alpha"].item() if "alpha" in w else None
        self.scale = w["scale"].item() if "scale" in w else None
        self.dora_scale = w.get("dora_scale")
        self.bias = w.get("bias")
        self.te_multiplier, self.unet_multiplier = multipliers

    def multiplier(self) -> float:
        return self.te_multiplier if "transformer" in self.sd_key[:20] else self.unet_multiplier

    def calc_scale(self) -> float:
        if self.scale is not None:
            return self.scale
        if self.dim is not None and self.alpha is not None:
            return self.alpha / self.dim
        return 1.0

    def apply_weight_decompose(self, updown: torch.Tensor, orig_weight: torch.Tensor) -> torch.Tensor:
        orig_weight = orig_weight.to(updown.dtype)
        dora_scale = self.dora_scale.to(device=orig_weight.device, dtype=updown.dtype)
        merged = updown + orig_weight
        dims = len(orig_weight.shape) - 1
        norm = (
            merged.transpose(0, 1)
            .reshape(merged.shape[1], -1)
            .norm(dim=1, keepdim=True)
            .reshape(merged.shape[1], *[1] * dims)
            .transpose(0, 1)
        )
        return merged * (dora_scale / norm) - orig_weight

    def finalize_updown(self, updown: torch.Tensor, orig_weight: torch.Tensor, output_shape) -> torch.Tensor:
        if self.bias is not None:
            raise NotImplementedError("bias deltas are not written by LoRA Bakery")
        if len(output_shape) == 4:
            updown = updown.reshape(output_shape)
        if orig_weight.size().numel() == updown.size().numel():
            updown = updown.reshape(orig_weight.shape)
        updown = updown * self.calc_scale()
        if self.dora_scale is not None:
            updown = self.apply_weight_decompose(updown, orig_weight)
        return updown * self.multiplier()


def rebuild_conventional(up: torch.Tensor, down: torch.Tensor, shape) -> torch.Tensor:
    up = up.reshape(up.size(0), -1)
    down = down.reshape(down.size(0), -1)
    return (up @ down).reshape(shape)


class RefLora(RefModule):
    """``network_lora.py``: ``lora_up``/``lora_down`` (or peft ``lora_B``/``lora_A``)."""

    def __init__(self, sd_key, w, multipliers) -> None:
        super().__init__(sd_key, w, multipliers)
        self.up = w["lora_up.weight"]
        self.down = w["lora_down.weight"]
        if "lora_mid.weight" in w:
            raise NotImplementedError("lora_mid (CP) is not written by LoRA Bakery")
        self.dim = self.down.shape[0]

    def calc_updown(self, orig_weight: torch.Tensor) -> torch.Tensor:
        up, down = self.up.float(), self.down.float()
        output_shape = [up.size(0), down.size(1)]
        if len(down.shape) == 4:
            output_shape += down.shape[2:]
        return self.finalize_updown(rebuild_conventional(up, down, output_shape), orig_weight, output_shape)


class RefHada(RefModule):
    """``network_hada.py`` without CP tensors."""

    def __init__(self, sd_key, w, multipliers) -> None:
        super().__init__(sd_key, w, multipliers)
        self.dim = w["hada_w1_b"].shape[0]

    def calc_updown(self, orig_weight: torch.Tensor) -> torch.Tensor:
        w1a, w1b, w2a, w2b = (self.w[k].float() for k in ("hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b"))
        output_shape = [w1a.size(0), w1b.size(1)]
        if len(w1b.shape) == 4:
            output_shape += w1b.shape[2:]
        updown = rebuild_conventional(w1a, w1b, output_shape) * rebuild_conventional(w2a, w2b, output_shape)
        return self.finalize_updown(updown, orig_weight, output_shape)


class RefIa3(RefModule):
    """``network_ia3.py``."""

    def calc_updown(self, orig_weight: torch.Tensor) -> torch.Tensor:
        w = self.w["weight"].float()
        output_shape = [w.size(0), orig_weight.size(1)]
        if self.w["on_input"].item():
            output_shape.reverse()
        else:
            w = w.reshape(-1, 1)
        return self.finalize_updown(orig_weight * w, orig_weight, output_shape)


class RefLokr(RefModule):
    """``network_lokr.py`` (no CP tensor)."""

    def __init__(self, sd_key, w, multipliers) -> None:
        super().__init__(sd_key, w, multipliers)
        if "lokr_w1_b" in w:
            self.dim = w["lokr_w1_b"].shape[0]
        if "lokr_w2_b" in w:
            self.dim = w["lokr_w2_b"].shape[0]

    def factor(self, name: str) -> torch.Tensor:
        if f"lokr_{name}" in self.w:
            return self.w[f"lokr_{name}"].float()
        return self.w[f"lokr_{name}_a"].float() @ self.w[f"lokr_{name}_b"].float()

    def calc_updown(self, orig_weight: torch.Tensor) -> torch.Tensor:
        w1, w2 = self.factor("w1"), self.factor("w2")
        output_shape = [w1.size(0) * w2.size(0), w1.size(1) * w2.size(1)]
        if len(orig_weight.shape) == 4:
            output_shape = orig_weight.shape
        if len(w2.shape) == 4:
            w1 = w1.unsqueeze(2).unsqueeze(2)
        updown = torch.kron(w1, w2.contiguous()).reshape(output_shape)
        return self.finalize_updown(updown, orig_weight, output_shape)


class RefOft(RefModule):
    """``network_oft.py``, kohya branch (``oft_blocks`` + ``alpha`` as the COFT constraint)."""

    def __init__(self, sd_key, w, multipliers, out_dim: int) -> None:
        super().__init__(sd_key, w, multipliers)
        self.scale = 1.0
        self.oft_blocks = w["oft_blocks"]
        self.dim = self.oft_blocks.shape[0]
        self.constraint = w["alpha"].float() * out_dim
        self.num_blocks = self.dim
        self.block_size = out_dim // self.dim

    def calc_updown(self, orig_weight: torch.Tensor) -> torch.Tensor:
        blocks = self.oft_blocks.float()
        eye = torch.eye(self.block_size)
        q = blocks - blocks.transpose(1, 2)
        norm_q = torch.norm(q.flatten())
        q = q * ((torch.clamp(norm_q, max=self.constraint) + 1e-8) / (norm_q + 1e-8))
        r = torch.matmul(eye + q, (eye - q).float().inverse())
        # rearrange(orig_weight, '(k n) ... -> k n ...') / einsum 'k n m, k n ... -> k m ...' / back
        merged = orig_weight.reshape(self.num_blocks, self.block_size, *orig_weight.shape[1:])
        merged = torch.einsum("knm,kn...->km...", r, merged).reshape(orig_weight.shape)
        return self.finalize_updown(merged - orig_weight, orig_weight, orig_weight.shape)


def create_module(sd_key: str, w: dict[str, torch.Tensor], multipliers, out_dim: int) -> RefModule:
    """``networks.load_network``'s loop over ``module_types`` (Lora, Hada, IA3, LoKr, ..., OFT)."""
    if all(k in w for k in ("lora_up.weight", "lora_down.weight")):
        return RefLora(sd_key, w, multipliers)
    if all(k in w for k in ("lora_A.weight", "lora_B.weight")):
        w = {**w, "lora_up.weight": w["lora_B.weight"], "lora_down.weight": w["lora_A.weight"]}
        w.pop("alpha", None)  # the extension clears the dict: alpha is dropped
        return RefLora(sd_key, w, multipliers)
    if all(k in w for k in ("hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b")):
        return RefHada(sd_key, w, multipliers)
    if "weight" in w:
        return RefIa3(sd_key, w, multipliers)
    has_1 = "lokr_w1" in w or ("lokr_w1_a" in w and "lokr_w1_b" in w)
    has_2 = "lokr_w2" in w or ("lokr_w2_a" in w and "lokr_w2_b" in w)
    if has_1 and has_2:
        return RefLokr(sd_key, w, multipliers)
    if "oft_blocks" in w:
        return RefOft(sd_key, w, multipliers, out_dim)
    raise AssertionError(f"no module type accepts keys {sorted(w)} of {sd_key}")
