"""``python -m spectral_lab.cli``: the same as the ``spectral-lab`` command."""

import sys

from . import main

sys.exit(main())
