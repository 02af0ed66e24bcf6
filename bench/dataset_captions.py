"""Benchmark: caption batch operations on 100,000 generated captions.

Each operation runs through ``apply_to_dataset`` (edit, compare, join; only changed captions
reported), the way the Dataset tab previews a batch edit; the parse is timed once, since the tab
parses once for its frequency table and reuses it. Rule generators (consolidation, synonyms,
pruning) are timed separately: they scan the dataset once to propose.

    .venvs/standalone/bin/python bench/dataset_captions.py            # 100,000 captions
    .venvs/standalone/bin/python bench/dataset_captions.py --count 20000

Prints one table: seconds and captions/s per operation, and how many captions changed.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lora_bakery.extension.dataset.tags import consolidate, edit, prune, rules, stats, synonyms  # noqa: E402
from lora_bakery.extension.dataset.tags.batch import apply_to_dataset, parse_dataset  # noqa: E402

VOCAB = [
    "1girl", "solo", "long_hair", "very_long_hair", "short_hair", "blonde_hair", "blond_hair", "black_hair",
    "blue_eyes", "red_eyes", "smile", "open_mouth", "shirt", "white_shirt", "skirt", "pleated_skirt",
    "dress", "white_dress", "turtleneck_dress", "tiara", "circlet", "large_breasts", "thighhighs",
    "high_heels", "meme", "parody", "shiny_skin", "uncensored", "looking_at_viewer", "simple_background",
    "white_background", "name_(series)", "^_^", "holding", "holding_sword", "sword", "hair_ribbon",
    "ribbon", "bow", "red_bowtie", "jewelry", "earrings", "choker", "lipstick", "makeup", "dark_skin",
]  # fmt: skip


def make_captions(count: int, seed: int = 0) -> dict[str, str]:
    """``count`` WD14-like captions of 15–40 tags, a few with a trigger and separator."""
    rng = random.Random(seed)
    rare = [f"rare_tag_{i}" for i in range(3000)]
    out = {}
    for i in range(count):
        tags = rng.sample(VOCAB, rng.randrange(12, 30)) + rng.sample(rare, rng.randrange(3, 10))
        if i % 4 == 0:
            tags = ["CharaA", "|||", *tags]
        out[f"{i % 20}_concept/{i:06d}.png"] = ", ".join(tags)
    return out


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=100_000)
    args = parser.parse_args()
    captions = make_captions(args.count)
    n = len(captions)
    t_parse, parsed = timed(lambda: parse_dataset(captions))
    lists = list(parsed.values())
    freq = stats.tag_frequency(lists, loose=True)

    proposals: list[tuple[str, Callable[[], object]]] = [
        ("frequency table", lambda: stats.frequency_table(parsed)),
        ("flags", lambda: stats.flag_dataset(captions)),
        ("filter all/none", lambda: stats.filter_captions(parsed, all_of=["1girl"], none_of=["meme"])),
        ("propose redundancy", lambda: consolidate.redundancy_rules(lists)),
        ("propose specialize", lambda: consolidate.specialize_rules(lists)),
        ("propose merge", lambda: consolidate.merge_rules(lists)),
        ("propose synonyms", lambda: synonyms.synonym_rules(lists)),
        ("propose traits", lambda: prune.trait_rules(lists)),
        ("propose useless", lambda: prune.useless_rules(lists)),
    ]
    trait = prune.trait_rules(lists)
    batch_ops: list[tuple[str, edit.TagOp]] = [
        ("add trigger + |||", edit.add_triggers("CharaA, OutfitB")),
        ("remove (exact+glob)", edit.remove_tags(["meme", "*_(meme)", "parody"])),
        ("replace", edit.replace_tags({"bow": "red_bowtie", "tiara": "circlet"})),
        ("dedupe", edit.deduplicate()),
        ("respell spaces+escape", edit.respell(underscores="spaces", escape=True)),
        ("sort by frequency", edit.sort_by_frequency(freq, triggers=["CharaA"])),
        ("apply redundancy", rules.apply_rules(consolidate.redundancy_rules(lists))),
        ("apply synonyms", rules.apply_rules(synonyms.synonym_rules(lists))),
        ("prune into trigger", prune.prune_into_trigger(trait + prune.useless_rules(lists), "CharaA")),
    ]
    print(f"{n:,} captions, parse {t_parse:.2f} s ({n / t_parse:,.0f} captions/s)\n")
    print(f"{'operation':<24}{'seconds':>9}{'captions/s':>14}{'changed':>10}")
    for name, fn in proposals:
        secs, result = timed(fn)
        size = len(result) if hasattr(result, "__len__") else 0
        print(f"{name:<24}{secs:>9.2f}{n / secs:>14,.0f}{size:>10,}  (rows/rules)")
    for name, op in batch_ops:
        secs, changed = timed(lambda op=op: apply_to_dataset(captions, op, parsed=parsed))
        print(f"{name:<24}{secs:>9.2f}{n / secs:>14,.0f}{len(changed):>10,}")


if __name__ == "__main__":
    main()
