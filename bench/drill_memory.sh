#!/usr/bin/env bash
# drill_memory: does a drill's memory grow with its length? Runs FILE's drill
# (default examples/single-host.yaml) for SECONDS (default 45) as
# `visorlab drill` does, samples the resident memory of every process of it
# (the drill, its agents, partition hosts and service partitions) each second,
# and prints DESIGN.md's bench JSON lines:
#   drill_rss_growth   the worst process's RSS at the end / at 12 s (target ≤ 1.2)
#   drill_rss_total    every process summed, at its peak (MiB; target ≤ 512)
# Both compare with their target (baseline "target", ratio = target / value,
# > 1 meets it). `--verbose` also prints each process's RSS over time.
# Usage: bench/drill_memory.sh [--json] [--verbose] [SECONDS] [FILE]
set -euo pipefail
cd "$(dirname "$0")/.."

verbose=0
args=()
for a in "$@"; do
  case "$a" in
    --json) ;;  # the only output there is
    --verbose) verbose=1 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) args+=("$a") ;;
  esac
done
seconds="${args[0]:-45}"
file="${args[1]:-examples/single-host.yaml}"
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] && [ "$seconds" -ge 13 ] || { echo "drill_memory: SECONDS must be a whole number ≥ 13" >&2; exit 2; }
[ -r "$file" ] || { echo "drill_memory: cannot read $file" >&2; exit 2; }
bin="${VISORLAB:-build/bin/visorlab}"
[ -x "$bin" ] || { echo "drill_memory: $bin not built" >&2; exit 2; }

work="$(mktemp -d /tmp/visorlab-memory.XXXXXX)"
trap 'kill "$drill" 2>/dev/null || true; wait 2>/dev/null || true; [ -z "${KEEP_SAMPLES:-}" ] || cp "$work/samples" "$KEEP_SAMPLES"; rm -rf "$work"' EXIT
sed -E "s/^( *duration:).*/\1 ${seconds}s/" "$file" >"$work/drill.yaml"

"$bin" drill "$work/drill.yaml" >"$work/out" 2>&1 &
drill=$!
start=$(date +%s)
# One line per sample: elapsed seconds, then pid:rss_kib of the drill and every descendant.
while kill -0 "$drill" 2>/dev/null; do
  now=$(( $(date +%s) - start ))
  ps -e -o pid=,ppid=,rss=,comm= | awk -v root="$drill" -v t="$now" '
    { parent[$1] = $2; rss[$1] = $3; name[$1] = $4 }
    END {
      line = t
      for (p in parent) { q = p; while (q != "" && q != root && q in parent && q != 1) q = parent[q]; if (q == root) line = line " " p ":" rss[p] }
      print line
    }' >>"$work/samples"
  sleep 1
done
wait "$drill" && rc=0 || rc=$?
[ "$rc" -eq 0 ] || { cat "$work/out" >&2; echo "drill_memory: the drill failed (exit $rc)" >&2; exit 2; }

awk -v verbose="$verbose" '
  {
    t = $1; total = 0
    for (i = 2; i <= NF; i++) { split($i, kv, ":"); rss[kv[1], t] = kv[2]; pids[kv[1]] = 1; total += kv[2]; last[kv[1]] = t
                                 if (!(kv[1] in first)) first[kv[1]] = t }
    if (total > peak) peak = total
    end_t = t
  }
  END {
    worst = 0
    for (p in pids) {
      # From the first sample at or after 12 s to the last sample the process had.
      at12 = ""; for (s = 12; s <= last[p]; s++) if ((p, s) in rss) { at12 = rss[p, s]; break }
      if (at12 == "" || first[p] > 12 || last[p] < end_t - 3) continue  # not alive through the drill
      g = rss[p, last[p]] / at12
      if (g > worst) worst = g
      if (verbose) printf "pid %s: %d KiB at 12 s, %d KiB at %d s (x%.3f)\n", p, at12, rss[p, last[p]], last[p], g > "/dev/stderr"
    }
    mib = peak / 1024
    printf "{\"name\":\"drill_rss_growth\",\"value\":%.3f,\"unit\":\"ratio\",\"baseline\":\"target\",\"baseline_value\":1.2,\"ratio\":%.3f}\n", worst, 1.2 / worst
    printf "{\"name\":\"drill_rss_total\",\"value\":%.1f,\"unit\":\"MiB\",\"baseline\":\"target\",\"baseline_value\":512,\"ratio\":%.3f}\n", mib, 512 / mib
  }' "$work/samples"
