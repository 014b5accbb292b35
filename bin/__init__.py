"""The absl binaries, installed as the package `tfrestore.bin` so that console entry points
(`tfrestore-invert`, ...; see setup.py) run them; `python bin/NAME.py` works as well."""
