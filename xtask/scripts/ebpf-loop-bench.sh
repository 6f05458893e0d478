#!/usr/bin/env bash
# Cost of one run of the sensor's TC program in a loop (BPF_PROG_TEST_RUN), for
# comparing two builds without a server (docs/ebpf.md, "Cost per packet").
#
#   xtask/scripts/ebpf-loop-bench.sh SENSOR [LOOPS] [REPEAT] [SENSOR-ARG...]
#
# As root. Starts SENSOR (a shadowtap-sensor with the eBPF object embedded) with
# `--ebpf -i lo` in a scratch network namespace (all-ports mode unless
# SENSOR-ARGs say otherwise, e.g. `--ports 9999` for parse only), then runs its
# `shadowtap_ingress_eth` program LOOPS times (default 6) with
# `bpftool prog run ... repeat REPEAT` (default 2000, below WAKEUP_BYTES, so the
# sensor is not woken meanwhile) on two Ethernet/IPv4/TCP frames of the load
# test's traffic: a 52-byte request like wrk's (118 bytes on the wire) and a
# 245-byte response like nginx's (311), both with the TCP timestamps option.
# Prints each loop's mean ns per run and the median per frame.
set -euo pipefail
sensor=${1:?usage: $0 SENSOR [LOOPS] [REPEAT] [SENSOR-ARG...]}
loops=${2:-6}
repeat=${3:-2000}
shift $(( $# < 3 ? $# : 3 ))
ns=st-loop-$$
work=$(mktemp -d)
cleanup() {
    [[ -n ${pid:-} ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
python3 - "$work" <<'PY'
import struct, sys
def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
def frame(src, dst, sport, dport, payload):
    opts = b'\x01\x01\x08\x0a' + struct.pack('!II', 1000, 2000)
    tcp = struct.pack('!HHIIBBHHH', sport, dport, 1, 1, (32 // 4) << 4, 0x18, 502, 0, 0) + opts
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(tcp) + len(payload), 1, 0x4000, 64, 6, 0,
                     bytes(src), bytes(dst))
    ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
    eth = b'\x02\0\0\0\0\x02' + b'\x02\0\0\0\0\x01' + b'\x08\x00'
    return eth + ip + tcp + payload
cli, srv = [198, 18, 0, 1], [198, 18, 0, 2]
req = b'GET / HTTP/1.1\r\nHost: 198.18.0.2:8080\r\n\r\n'.ljust(52, b'x')[:48] + b'\r\n\r\n'
body = b'{"status":"ok"}'.ljust(93, b' ')
head = b'HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: application/json\r\n'
resp = (head + b'Content-Length: 93\r\nConnection: keep-alive\r\n'.ljust(245 - len(head) - 93 - 2, b'x')
        + b'\r\n' + body)
assert len(req) == 52 and len(resp) == 245, (len(req), len(resp))
open(sys.argv[1] + '/request', 'wb').write(frame(cli, srv, 40000, 8080, req))
open(sys.argv[1] + '/response', 'wb').write(frame(srv, cli, 8080, 40000, resp))
PY
ip netns add "$ns"
ip -n "$ns" link set lo up
ip netns exec "$ns" "$sensor" --ebpf -i lo -w /dev/null -q "$@" &
pid=$!
id=
for _ in $(seq 50); do
    sleep 0.1
    id=$(bpftool prog show | awk -F: '/name shadowtap_ingress_eth/ {id=$1} END {print id}')
    # The newest program of that name is ours once the sensor has attached.
    [[ -n $id ]] && ip netns exec "$ns" bpftool link show 2>/dev/null | grep -q "prog $id" && break
done
[[ -n $id ]] || { echo "no shadowtap_ingress_eth program loaded" >&2; exit 1; }
for f in request response; do
    # One unmeasured run recognises the flow (all-ports mode) and warms the cache.
    bpftool prog run id "$id" data_in "$work/$f" repeat 1 >/dev/null
    runs=()
    for _ in $(seq "$loops"); do
        runs+=("$(bpftool prog run id "$id" data_in "$work/$f" repeat "$repeat" |
            awk '/duration/ {sub("ns", "", $NF); print $NF}')")
    done
    median=$(printf '%s\n' "${runs[@]}" | sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}')
    echo "$f: ${runs[*]} ns per run; median $median ns"
done
