#!/bin/bash
# Merge cells run into separate outputs (one `bin/compare.py --methods=... --layers=...`
# job per cell, on other machines or sittings) into a committed study, and redraw it.
#
#   bash bench/merge_study.sh STUDY_PREFIX RUN_PREFIX [RUN_PREFIX ...] -- COMPARE_FLAGS
#
#   bash bench/merge_study.sh results/study/alexnet_random runs/study/alexF1/alexnet_random \
#       -- --config=results/study/alexnet_random_config.json --images=results/splits/test.txt \
#          --limit=20 --steps=3500 "--baseline=M&V 2016"
#
# The runs' JSONs (and example arrays) are laid beside STUDY_PREFIX.json as its shard files
# for the time of the merge, so bin/compare.py --render_only merges them by its own rules (same
# settings only; where two files hold a cell, the one whose method spec matches the config
# wins), writes .json, .md and the figures atomically and records the study's own command.
# COMPARE_FLAGS must be the study's (config, images, limit, steps): a run under other
# settings merges nothing and says so.
set -e
cd "$(dirname "$0")/.."
study=${1:?usage: bench/merge_study.sh STUDY_PREFIX RUN_PREFIX ... -- COMPARE_FLAGS}; shift
runs=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do runs+=("$1"); shift; done
[ "$1" = "--" ] || { echo "merge_study.sh: no '--' before the bin/compare.py flags" >&2; exit 2; }
shift
count() { python -c "import json,sys; print(len(json.load(open(sys.argv[1]))['cells']))" "$1" \
          2>/dev/null || echo 0; }
before=$(count "$study.json")
n=${#runs[@]}; i=0; shards=()
trap 'rm -f "${shards[@]}"' EXIT
for run in "${runs[@]}"; do
  [ -f "$run.json" ] || { echo "merge_study.sh: $run.json does not exist" >&2; exit 2; }
  shard="$study.shard-$i-of-$n"
  cp "$run.json" "$shard.json"; shards+=("$shard.json")
  if [ -f "${run}_examples.npz" ]; then
    cp "${run}_examples.npz" "${shard}_examples.npz"; shards+=("${shard}_examples.npz")
  fi
  i=$((i + 1))
done
python bin/compare.py "$@" --output="$study" --render_only > /dev/null
echo "merge_study.sh: $study.json: $before -> $(count "$study.json") cells"
