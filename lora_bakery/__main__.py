"""``python -m lora_bakery`` is the ``bakery`` command."""

import sys

from lora_bakery.cli import main

sys.exit(main())
