pytest_plugins = ["alltick_frames.emulator.pytest_plugin"]
