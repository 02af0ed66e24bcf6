"""A tiny byte-level CLIP BPE tokenizer, written as the files ``CLIPTokenizer.from_pretrained`` reads.

The vocabulary is built the way OpenAI CLIP builds its own (``simple_tokenizer.py``): the 256 byte
characters of GPT-2's ``bytes_to_unicode``, the same with ``</w>``, one token per merge, then
``<|startoftext|>`` and ``<|endoftext|>`` last. A handful of merges is enough for real BPE behaviour
("a photo of a cat" -> 7 ids) while keeping the embedding tables tiny.
"""

from __future__ import annotations

import json
from pathlib import Path

START, END = "<|startoftext|>", "<|endoftext|>"
MERGES: list[tuple[str, str]] = [
    ("t", "o</w>"),
    ("p", "h"),
    ("ph", "o"),
    ("pho", "to</w>"),
    ("o", "f</w>"),
    ("a", "t</w>"),
    ("c", "at</w>"),
    ("d", "o"),
    ("do", "g</w>"),
]
MAX_LENGTH = 77  # without it transformers' encode_prompt overflows (env-probe.md §2)


# Copied from openai/CLIP clip/simple_tokenizer.py (bytes_to_unicode), MIT licence.
def bytes_to_unicode() -> dict[int, str]:
    """Map every byte to a printable unicode character, as GPT-2 and CLIP do."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(2**8):
        if b not in bs:
            bs.append(b)
            cs.append(2**8 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def vocabulary() -> dict[str, int]:
    """The tiny vocabulary: token -> id, ordered as CLIP orders its own."""
    chars = list(bytes_to_unicode().values())
    tokens = chars + [c + "</w>" for c in chars] + ["".join(pair) for pair in MERGES] + [START, END]
    return {token: i for i, token in enumerate(tokens)}


VOCAB_SIZE = len(vocabulary())


def write_tokenizer(folder: Path, pad_token: str = END) -> None:
    """Write ``vocab.json``, ``merges.txt`` and the two config files into ``folder``.

    Args:
        folder (`Path`): destination (created if needed).
        pad_token (`str`, defaults to ``"<|endoftext|>"``): SD1's tokenizer pads with end-of-text,
            SDXL's second tokenizer with ``"!"``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocabulary(), ensure_ascii=False), encoding="utf-8")
    merges = "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in MERGES)
    (folder / "merges.txt").write_text(merges, encoding="utf-8")
    special = {"bos_token": START, "eos_token": END, "unk_token": END, "pad_token": pad_token}
    config = {
        **special,
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": MAX_LENGTH,
        "do_lower_case": True,
        "errors": "replace",
        "add_prefix_space": False,
        "clean_up_tokenization_spaces": True,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n", encoding="utf-8")
