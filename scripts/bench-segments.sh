#!/usr/bin/env bash
# The cost of segmenting: one clip upscaled as a single run, as a segmented run in one process
# (--work-dir), and as a 2-task Slurm job on a one-node test cluster (scripts/slurm-cluster.sh;
# skipped when it cannot start), alternating in each round. Prints wall seconds per run and
# the plan and join times from the segmented run.
# Usage: scripts/bench-segments.sh BUILD   env: ROUNDS (2), FRAMES (1200), SIZE (128x72), SECONDS (10)
set -euo pipefail
build=$1
rounds=${ROUNDS:-2} frames=${FRAMES:-1200} size=${SIZE:-128x72} seconds=${SECONDS_PER_SEGMENT:-10}
work=$(mktemp -d)
chmod 755 "$work"
cluster=$work/cluster
trap 'scripts/slurm-cluster.sh stop "$cluster" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
export SLURM_CONF=$cluster/slurm.conf
slurm=yes
scripts/slurm-cluster.sh start "$cluster" >/dev/null 2>&1 || slurm=no
upres=$(realpath "$build/upres")
"$upres" sample -o "$work/clip.mp4" --size "$size" --frames "$frames" >/dev/null
opts=(-m upres-compact-x2 --backend cpu --overwrite)
now() { date +%s.%N; }
for ((r = 1; r <= rounds; r++)); do
  s=$(now); "$upres" video "$work/clip.mp4" -o "$work/single.mp4" --progress none "${opts[@]}" >/dev/null; e=$(now)
  echo "round $r single $(echo "$e - $s" | bc -l)"
  rm -rf "$work/seg"
  s=$(now); "$upres" video "$work/clip.mp4" -o "$work/seg.mp4" --work-dir "$work/seg" --segment-seconds "$seconds" --progress none "${opts[@]}" >/dev/null; e=$(now)
  echo "round $r segmented $(echo "$e - $s" | bc -l)"
  s=$(now); "$upres" segment join "$work/seg" --overwrite >/dev/null; e=$(now)
  echo "round $r join-only $(echo "$e - $s" | bc -l)"
  if [ $slurm = yes ]; then
    rm -rf "$work/slurm-job"
    s=$(now); "$upres" cluster slurm "$work/clip.mp4" -o "$work/slurm.mp4" --work-dir "$work/slurm-job" --tasks 2 --sbatch "--cpus-per-task=1" \
      --segment-seconds "$seconds" --wait "${opts[@]}" >/dev/null 2>&1; e=$(now)
    echo "round $r slurm-2-tasks $(echo "$e - $s" | bc -l)"
  fi
done
