"""LoRA Bakery's installer, run by A1111/Forge on every launch (``python install.py``).

It installs only what is missing, holds every installed package at its version, import-checks
what it adds and steps down to known-good versions; what cannot work is switched off with a
message and the webui starts anyway. With nothing missing it makes no pip call and returns in
well under a second. The logic and the version table live in ``lora_bakery/deps.py`` and
``lora_bakery/deps_install.py`` (standard library only); this file only makes them importable,
with or without A1111's ``launch`` module.

    python install.py            # what the webui runs
    python install.py --retry    # retry features that failed before
    python install.py --feature masks   # install an on-first-use feature now
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from lora_bakery.deps_install import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
else:  # a fork that executes install.py inside its own process: never parse its argv, never exit
    main([])
