"""Fake text-encoder wrappers of ``modules.sd_hijack_clip`` / ``sd_hijack_open_clip``: each keeps
the ldm/sgm embedder as ``.wrapped`` (hence ``cond_stage_model.wrapped.transformer...``)."""

import torch


class TextConditionalModel(torch.nn.Module):
    def __init__(self, wrapped, hijack=None):
        super().__init__()
        self.wrapped = wrapped
        self.hijack = hijack


class FrozenCLIPEmbedderWithCustomWords(TextConditionalModel):
    pass


class FrozenCLIPEmbedderForSDXLWithCustomWords(FrozenCLIPEmbedderWithCustomWords):
    pass


class FrozenOpenCLIPEmbedderWithCustomWords(TextConditionalModel):
    pass


class FrozenOpenCLIPEmbedder2WithCustomWords(TextConditionalModel):
    pass
