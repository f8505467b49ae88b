#!/usr/bin/env bash
# The deeper-pruning sweep on the real data (docs/pruning.md): the fine-tuned model of a finished
# `pipeline` run, pruned to 50%, 30%, 15%, 10% and 5% of its encoder, once by heads and FFN
# neurons alone and once by all four structures (heads, FFN, whole layers, hidden size), each
# pruned gradually and re-fine-tuned with the run's settings, scored on the run's test split.
#
#   usage: scripts/prune-sweep-gaiic.sh RUN [PRESET] [--configs-only]
#     RUN     a run folder made by `bert-pruner pipeline ... --preset PRESET` (default gaiic-deep)
#     --configs-only  write the ten configs and stop (test/prune-sweep-script.test.ts)
#
# It writes its ten prune configs into RUN/sweep-configs/, and the sweep (checkpoints, reports,
# sweep.json with one row per config, and the chart sweep.svg) into RUN/sweep/. About three hours on
# 2 CPU cores.
set -euo pipefail
run=${1:?usage: scripts/prune-sweep-gaiic.sh RUN [PRESET]}
preset=${2:-gaiic-deep}
here=$(cd "$(dirname "$0")/.." && pwd)
bp() { node "$here/bin/bert-pruner.js" "$@"; }

model="$run/finetune"
[ -f "$model/config.json" ] || { echo "$model: no fine-tuned checkpoint (run the pipeline first)" >&2; exit 2; }
configs="$run/sweep-configs"
mkdir -p "$configs"
files=()
for pct in 50 30 15 10 5; do
  frac=$(printf '0.%02d' "$pct")
  for kind in heads-ffn all-four; do
    # Both structures said explicitly: what a prune config leaves out comes from the preset, and
    # gaiic-deep's own prune settings turn layers and hidden size on.
    extra=', "prune_layers": false, "prune_hidden": false'
    [ "$kind" = all-four ] && extra=', "prune_layers": true, "prune_hidden": true'
    f="$configs/${kind}-${pct}.prune.json"
    printf '{"transformer": {"target_encoder_params": %s%s}}\n' "$frac" "$extra" >"$f"
    files+=("$f")
  done
done
[ "${3:-}" = --configs-only ] && { printf '%s\n' "${files[@]}"; exit 0; }
start=$(date +%s)
bp prune-sweep --model "$model" --configs "${files[@]}" --run "$run" --teacher "$model" --preset "$preset"
node "$here/scripts/sweep-chart.mjs" "$run/sweep/sweep.json" --out "$run/sweep/sweep.svg"
echo "prune-sweep: $(( ($(date +%s) - start) / 60 )) min; table: $run/sweep/sweep.json, chart: $run/sweep/sweep.svg"
