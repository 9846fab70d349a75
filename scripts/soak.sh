#!/usr/bin/env bash
# Soak: crashes, planned recovers and network partitions under load, drill
# after drill, until N crashes have run (default 500); then the tally — disk
# ops, lost, duplicated, verify errors, failed recoveries, drills that failed,
# and anything left behind (processes, shared memory, run dirs). Exit 0 only
# if all of it is clean.
# Usage: scripts/soak.sh [N] [SEED]        (build/bin/visorlab must be built)
set -euo pipefail
cd "$(dirname "$0")/.."

crashes_wanted="${1:-500}"
seed="${2:-1}"
for n in "$crashes_wanted" "$seed"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "soak: '$n' is not a positive whole number; usage: scripts/soak.sh [N] [SEED]" >&2; exit 2; }
done
bin="${VISORLAB:-build/bin/visorlab}"
[ -x "$bin" ] || { echo "soak: $bin not built (make drill builds it)" >&2; exit 2; }
work="$(mktemp -d /tmp/visorlab-soak.XXXXXX)"
trap 'rm -rf "$work"' EXIT

# One drill: 2 hosts (io0 on b, so disks cross hosts over TCP), 4 guests,
# a fault every 400 ms for 30 s, cycling crash io0 / recover io0 / crash io0 /
# partition a-b / crash con0.
drill_file() {
  local n="$1" file="$2" at=1000 k=0
  cat >"$file" <<YAML
version: 1
name: soak-$n
hosts: [{name: a}, {name: b}]
command: {host: a}
services:
  - {name: io0, kind: io, host: b, switches: [{name: sw0}]}
  - {name: con0, kind: console, host: a}
guests:
  - name: g
    count: 4
    host: a
    devices:
      - {kind: vhba, service: io0, disk_size: 16MiB}
      - {kind: vnic, service: io0, switch: sw0}
      - {kind: keyboard, service: con0}
workload:
  disk: {block_size: 4KiB, queue_depth: 16, read_ratio: 0.5, verify: true}
  net: {frame_size: 1500, rate: 500/s}
  input: {rate: 100/s}
drill:
  seed: $((seed * 1000 + n))
  duration: 32s
  steps:
YAML
  while [ "$at" -le 30600 ]; do
    case $((k % 5)) in
      0 | 2) echo "    - {at: ${at}ms, crash: io0, restart_after: 50ms}" ;;
      1) echo "    - {at: ${at}ms, recover: io0}" ;;
      3) echo "    - {at: ${at}ms, partition: [a, b], for: 150ms}" ;;
      4) echo "    - {at: ${at}ms, crash: con0, restart_after: 20ms}" ;;
    esac >>"$file"
    at=$((at + 400))
    k=$((k + 1))
  done
  echo "expect: {lost_io: 0, max_recovery_ms: 2000}" >>"$file"
}

# Processes, shared memory and temporary run dirs of visorlab on this machine.
leftovers() {
  local procs shm dirs
  procs="$(pgrep -fc "visorlab (agent|partition-host|service-partition)" || true)"
  shm="$(find /dev/shm -maxdepth 1 -name 'visorlab-*' 2>/dev/null | wc -l)"
  dirs="$(find /tmp -maxdepth 1 -name 'visorlab-drill-*' 2>/dev/null | wc -l)"
  echo "$procs $shm $dirs"
}

read -r procs_before shm_before dirs_before <<<"$(leftovers)"
crashes=0 drills=0 failed=0
while [ "$crashes" -lt "$crashes_wanted" ]; do
  drills=$((drills + 1))
  file="$work/soak-$drills.yaml"
  drill_file "$drills" "$file"
  status=0
  "$bin" drill "$file" --report "$work/report-$drills.json" >"$work/drill-$drills.log" 2>&1 || status=$?
  if [ "$status" -ne 0 ]; then
    failed=$((failed + 1))
    echo "soak: drill $drills exited $status; its output:" >&2
    tail -30 "$work/drill-$drills.log" >&2
  fi
  if [ -f "$work/report-$drills.json" ]; then
    crashes=$((crashes + $(python3 -c 'import json,sys; print(sum(1 for f in json.load(open(sys.argv[1]))["faults"] if f["kind"] == "crash"))' "$work/report-$drills.json")))
  fi
  echo "soak: drill $drills exit $status; $crashes crashes so far"
  [ "$status" -le 1 ] || [ "$drills" -lt 3 ] || { echo "soak: infrastructure failures, giving up" >&2; break; }
done
sleep 1
read -r procs_after shm_after dirs_after <<<"$(leftovers)"

python3 - "$work" "$drills" "$failed" "$((procs_after - procs_before))" "$((shm_after - shm_before))" \
  "$((dirs_after - dirs_before))" <<'PY'
import glob, json, sys
work, drills, failed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
procs, shm, dirs = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
t = {k: 0 for k in ("crashes", "recovers", "partitions", "faults_not_recovered", "disk_ops", "lost", "duplicated",
                    "verify_errors", "final_read_blocks", "final_read_bad", "violations", "frames_dropped_outside")}
worst = 0.0
for f in glob.glob(work + "/report-*.json"):
    r = json.load(open(f))
    d = r["io"]["disk"]
    t["disk_ops"] += d["completed"]; t["lost"] += d["lost"]; t["duplicated"] += d["duplicated"]
    t["verify_errors"] += d["verify_errors"]
    t["final_read_blocks"] += r["final_read"]["blocks"]; t["final_read_bad"] += r["final_read"]["bad"]
    t["violations"] += len(r["violations"]); t["frames_dropped_outside"] += r["io"]["net"]["dropped_outside_faults"]
    for x in r["faults"]:
        if x["kind"] == "crash": t["crashes"] += 1
        if x["kind"] == "recover": t["recovers"] += 1
        if x["kind"] == "partition": t["partitions"] += 1
        if x["kind"] in ("crash", "recover"): worst = max(worst, x["total_ms"])
print(f"soak tally: {drills} drills ({failed} failed), {t['crashes']} crashes, {t['recovers']} planned recovers, "
      f"{t['partitions']} partitions; {t['disk_ops']} disk ops: lost {t['lost']}, duplicated {t['duplicated']}, "
      f"verify errors {t['verify_errors']}; final read {t['final_read_blocks'] - t['final_read_bad']} of "
      f"{t['final_read_blocks']} blocks intact; {t['violations']} violations, {t['frames_dropped_outside']} frames "
      f"dropped outside faults; slowest recovery {worst:.1f} ms; left behind: {procs} processes, {shm} shared memory, "
      f"{dirs} run dirs")
clean = failed == 0 and t["lost"] == 0 and t["duplicated"] == 0 and t["verify_errors"] == 0 and \
        t["final_read_bad"] == 0 and procs <= 0 and shm <= 0 and dirs <= 0
sys.exit(0 if clean else 1)
PY
