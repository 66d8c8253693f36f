"""``python -m alltick_frames.cli``: the same as the ``alltick-frames`` command."""

import sys

from alltick_frames.cli import main

sys.exit(main())
