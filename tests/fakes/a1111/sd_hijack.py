"""Fake ``modules.sd_hijack``: ``EmbeddingsWithFixes`` (the wrapper that puts ``.wrapped`` into the
live token-embedding name) and the optimisation switches TI training toggles (counted)."""

import torch

calls = []


class EmbeddingsWithFixes(torch.nn.Module):
    def __init__(self, wrapped, embeddings=None, textual_inversion_key="clip_l"):
        super().__init__()
        self.wrapped = wrapped
        self.embeddings = embeddings
        self.textual_inversion_key = textual_inversion_key


def undo_optimizations():
    calls.append("undo")


def apply_optimizations(option=None):
    calls.append("apply")


def reset():
    calls.clear()
