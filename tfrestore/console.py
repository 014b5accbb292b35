"""Console entry points: `tfrestore-NAME` runs bin/NAME.py (installed as tfrestore.bin)."""
import importlib.util
import os
import runpy
import sys

BINARIES = ("invert", "classify", "compare", "denoise", "featmap_stats", "search_weights",
            "train_inverter", "train_prior", "train_dae", "actmax", "caricature", "sample",
            "adversarial")


def _entry(name):
    def run():
        sys.argv[0] = f"tfrestore-{name.replace('_', '-')}"
        try:
            installed = importlib.util.find_spec(f"tfrestore.bin.{name}") is not None
        except ModuleNotFoundError:
            installed = False
        if installed:   # a regular install: bin/ is the package tfrestore.bin
            runpy.run_module(f"tfrestore.bin.{name}", run_name="__main__", alter_sys=True)
        else:           # an editable install: run bin/NAME.py of the checkout
            repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
            runpy.run_path(os.path.join(repo, "bin", f"{name}.py"), run_name="__main__")
    run.__name__ = name
    return run


for _name in BINARIES:
    globals()[_name] = _entry(_name)
