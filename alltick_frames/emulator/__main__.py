"""``python -m alltick_frames.emulator --help``."""

import sys

from alltick_frames.emulator.cli import main

sys.exit(main())
