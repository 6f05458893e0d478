#!/usr/bin/env bash
# Paired cost of two sensor builds' TC programs on the same packets at the same time
# (docs/ebpf.md, "Cost per packet").
#
#   xtask/scripts/ebpf-pair-bench.sh FIRST SECOND [SECONDS]
#
# As root, from the repository root, with CARGO_TARGET_DIR as for the build. Runs
# `cargo xtask load-test --source ebpf --sensor SECOND --rounds 1 --seconds SECONDS`
# (default 15) and, as soon as the load test's server namespace and veth exist,
# starts FIRST (`--ebpf -i VETH`, all-ports mode) on the same veth, so that FIRST's
# programs sit first on the TCX hook and SECOND's after them: both run on every packet
# (the programs return TC_ACT_UNSPEC, TCX_NEXT; builds that returned TC_ACT_OK end the
# chain and cannot be second). bpf_stats (on during the load test's eBPF rounds) are read
# every second with bpftool; over the load test's throughput phase with the sensor, each
# build's run_time_ns / run_cnt is printed. On a machine shared with other work, absolute
# figures move by ±40 % from run to run, but both builds see the same load: compare them
# within a run. The first on the hook pays more (it brings the packet's headers into the
# cache for the second): run both orders, and A against A for the bias.
set -euo pipefail
first=${1:?usage: $0 FIRST SECOND [SECONDS]}
second=${2:?usage: $0 FIRST SECOND [SECONDS]}
seconds=${3:-15}
work=$(mktemp -d)
cleanup() {
    [[ -n ${fpid:-} ]] && kill "$fpid" 2>/dev/null && wait "$fpid" 2>/dev/null
    # `cargo xtask` runs xtask as its child, which outlives cargo unless told to stop itself.
    [[ -n ${tpid:-} ]] && pkill -INT -P "$tpid" 2>/dev/null
    [[ -n ${tpid:-} ]] && kill "$tpid" 2>/dev/null && wait "$tpid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
cargo xtask load-test --source ebpf --sensor "$second" --rounds 1 --seconds "$seconds" \
    --latency-requests 2000 >"$work/load-test.log" 2>&1 &
tpid=$!
ns= veth=
for _ in $(seq 300); do
    ns=$(ip netns list | awk '/^st-lt-srv/ {print $1; exit}')
    [[ -n $ns ]] && veth=$(ip -n "$ns" -o link | awk -F': ' '$2 !~ /^lo/ {split($2, a, "@"); print a[1]; exit}')
    [[ -n $veth ]] && break
    sleep 0.1
done
[[ -n $veth ]] || { echo "the load test's server namespace did not appear" >&2; exit 1; }
# FIRST's programs are the ones its own process holds (`prog_id` in its fdinfo); FIRST is
# started again while it exits without holding any, and its error printed after 20 tries.
# (Taking every shadowtap program present two seconds after one start, as this script did,
# took SECOND's when FIRST had exited at once: 0 runs for FIRST, or no SECOND.)
: >"$work/first-ids"
for _ in $(seq 20); do
    ip netns exec "$ns" "$first" --ebpf -i "$veth" -w /dev/null -q --duration 600 \
        >"$work/first.log" 2>&1 &
    fpid=$!
    for _ in $(seq 100); do
        { grep -hs '^prog_id:' /proc/"$fpid"/fdinfo/* || true; } | awk '{print $2}' |
            sort -u >"$work/first-ids"
        [[ $(wc -l <"$work/first-ids") -ge 4 ]] && break
        kill -0 "$fpid" 2>/dev/null || break
        sleep 0.1
    done
    [[ $(wc -l <"$work/first-ids") -ge 4 ]] && break
    { kill "$fpid" 2>/dev/null; wait "$fpid" 2>/dev/null; } || true
    fpid=
    sleep 0.5
done
[[ -n ${fpid:-} ]] || { echo "FIRST ($first) did not start:" >&2; cat "$work/first.log" >&2; exit 1; }
while kill -0 "$tpid" 2>/dev/null; do
    echo T
    bpftool prog show | awk '/name shadowtap_(ingress|egress)_eth/ {id = $1; sub(":", "", id)}
        /run_time_ns/ && id {for (i = 1; i <= NF; i++) {if ($i == "run_time_ns") t = $(i + 1);
        if ($i == "run_cnt") c = $(i + 1)}; print id, t, c; id = ""}'
    sleep 1
done >"$work/snapshots"
wait "$tpid" || true
tpid=
python3 - "$work" <<'PY'
import sys
work = sys.argv[1]
# FIRST's ids include its l3 programs, which the snapshots (eth programs) leave out.
first = set(open(work + '/first-ids').read().split())
snaps = []
for line in open(work + '/snapshots'):
    p = line.split()
    if p[0] == 'T':
        snaps.append({})
    else:
        snaps[-1][p[0]] = (int(p[1]), int(p[2]))
# The second build's throughput-phase sensor: the first set of its program ids to appear.
second_ids = [frozenset(k for k in s if k not in first) for s in snaps]
i0, ids = next((i, t) for i, t in enumerate(second_ids) if t)
i1 = max(i for i, t in enumerate(second_ids) if ids <= t)
def delta(keys):
    keys = [k for k in keys if k in snaps[i0] and k in snaps[i1]]
    t = sum(snaps[i1][k][0] - snaps[i0][k][0] for k in keys)
    c = sum(snaps[i1][k][1] - snaps[i0][k][1] for k in keys)
    return t / max(c, 1), c
(f, fc), (s, sc) = delta(first), delta(ids)
print(f"first on the hook:  {f:.0f} ns per run ({fc} runs)")
print(f"second on the hook: {s:.0f} ns per run ({sc} runs)")
PY
grep -E '^ +sensor:' "$work/load-test.log" || true
