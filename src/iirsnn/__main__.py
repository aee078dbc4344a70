"""``python -m iirsnn``, the ``iirsnn`` command (``torchrun ... -m iirsnn train ...`` starts it in each process)."""

import sys

from iirsnn.cli import main

sys.exit(main())
