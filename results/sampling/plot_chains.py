"""Energy traces of the chains of results/sampling/*/samples.npz in one figure.
    python results/sampling/plot_chains.py   (from the repository root)"""
import glob
import json
import os

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

runs = sorted(d for d in glob.glob("results/sampling/*/") if os.path.exists(d + "samples.npz"))
fig, axes = plt.subplots(1, len(runs), figsize=(3.2 * len(runs), 2.8), squeeze=False)
for ax, d in zip(axes[0], runs):
    z = np.load(d + "samples.npz")
    stats = json.load(open(d + "chain.json"))["stats"]
    ax.plot(z["energies"], lw=0.8)
    acc = stats["acceptance_rate"]
    ax.set_title(os.path.basename(d.rstrip("/")) + ("" if acc is None else
                                                    f"\nacceptance {acc:.2f}"), fontsize=8)
    ax.set_xlabel("step", fontsize=8)
    ax.tick_params(labelsize=7)
axes[0][0].set_ylabel("energy per chain", fontsize=8)
fig.tight_layout()
fig.savefig("results/sampling/energies.png", dpi=90)
print("wrote results/sampling/energies.png")
