#!/usr/bin/env python3
"""Draws the two plots of docs/benchmarks.md from fresh measurements.

1. docs/img/error_vs_cardinality.png: signed relative error of uniqd-core and hyperloglogplus
   (20 seeds per cardinality, 1-2-5 grid from 1 to 10^7) with the +/-1.04/sqrt(16384) band.
2. docs/img/memory_vs_cardinality.png: heap bytes (counting allocator) of uniqd-core,
   hyperloglogplus and two exact sets against the number of distinct addresses.

Run from the repository root: `python3 benches/plot.py` (needs matplotlib:
`pip install matplotlib`). It runs the two release examples that write the CSVs, unless
`--no-run` is given and the CSVs already exist under target/.
"""
import csv
import math
import os
import subprocess
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.path.join(ROOT, "target")
ACCURACY = os.path.join(TARGET, "accuracy.csv")
MEMORY = os.path.join(TARGET, "memory_error.csv")
OUT = os.path.join(ROOT, "docs", "img")
BAND = 1.04 / math.sqrt(16384)


def measure():
    os.makedirs(TARGET, exist_ok=True)
    cargo = ["cargo", "run", "--release", "-q"]
    subprocess.run(
        cargo + ["-p", "uniqd-core", "--example", "accuracy_table", "--", "--csv", ACCURACY],
        cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(
        cargo + ["-p", "uniqd-benches", "--example", "memory_error", "--", "--csv", MEMORY],
        cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def save(fig, ax, name, ylabel, legend_loc, title):
    """The axes both plots share (log cardinality on x), then writes docs/img/NAME."""
    ax.set_xscale("log")
    ax.set_xlabel("distinct addresses")
    ax.set_ylabel(ylabel)
    ax.grid(True, which="major", alpha=0.3)
    ax.set_title(title)
    ax.legend(loc=legend_loc, fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(OUT, name))


def plot_error():
    by = defaultdict(lambda: defaultdict(list))
    for r in rows(ACCURACY):
        by[r["structure"]][int(r["n"])].append(float(r["relative_error"]) * 100)
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    ns = sorted({n for s in by.values() for n in s})
    ax.fill_between(ns, [-BAND * 100] * len(ns), [BAND * 100] * len(ns), color="0.88",
                    label="±1.04/√m (m = 16,384): ±0.81%")
    for (name, color, shift) in [("uniqd-core", "tab:blue", 0.97), ("hyperloglogplus", "tab:orange", 1.03)]:
        series = by[name]
        xs = sorted(series)
        for n in xs:
            ax.scatter([n * shift] * len(series[n]), series[n], s=6, color=color, alpha=0.35, linewidths=0)
        mean_abs = [sum(abs(e) for e in series[n]) / len(series[n]) for n in xs]
        ax.plot(xs, mean_abs, color=color, marker="o", markersize=3,
                label=f"{name}: mean |error| (dots: 20 runs, signed)")
    ax.set_ylim(-3.5, 3.5)
    ax.axhline(0, color="0.4", linewidth=0.6)
    save(fig, ax, "error_vs_cardinality.png", "relative error (%)", "lower left",
         "Relative error against cardinality (exact up to 4,096, then HyperLogLog p = 14)")


def plot_memory():
    by = defaultdict(dict)
    for r in rows(MEMORY):
        by[r["structure"]][int(r["n"])] = int(r["bytes"])
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    for name, series in by.items():
        xs = sorted(series)
        ax.plot(xs, [series[n] for n in xs], marker="o", markersize=3, label=name)
    ax.axhline(64 * 1024, color="0.5", linestyle="--", linewidth=0.8, label="64 KiB budget")
    ax.set_yscale("log")
    save(fig, ax, "memory_vs_cardinality.png", "heap bytes (counting allocator)", "upper left",
         "Memory against cardinality: exact sets against approximate counters")


def main():
    if "--no-run" not in sys.argv or not (os.path.exists(ACCURACY) and os.path.exists(MEMORY)):
        measure()
    os.makedirs(OUT, exist_ok=True)
    plot_error()
    plot_memory()
    print(f"wrote {OUT}/error_vs_cardinality.png and {OUT}/memory_vs_cardinality.png")


if __name__ == "__main__":
    main()
