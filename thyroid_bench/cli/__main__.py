"""``python -m thyroid_bench.cli`` (as torchrun and accelerate launch call it)."""

import sys

from thyroid_bench.cli.main import main

sys.exit(main())
