#!/usr/bin/env bash
# Phone benchmark: a phone of three VMs (personal: open 256M + balloon, work:
# corporate 256M + balloon, keys: trusted 128M; Debian's 6.1 cloud kernel and
# the test initramfs, at its shell), against qemu-system-aarch64 -M virt -cpu
# cortex-a53 in the same run, with the same kernel, initramfs and command line.
#   1. boot: `phone up --detach` until all three consoles show the shell, vs
#      three QEMUs started together until all three do (the phone's two
#      background VMs boot under its background vCPU quota).
#   2. RSS after boot has settled: three VMs over one (a phone of one 256M VM;
#      workers' rss_bytes + the supervisor's), vs three QEMUs over one; and
#      the same with PSS, which splits shared pages (KSM's merged ones, when
#      the host's KSM is on) between their users.
#   3. idle CPU (utime + stime from /proc) of the whole phone, vs one idle QEMU.
#   4. guest-to-guest vsock on a [[channel]]: personal → keys throughput
#      (vsock-tool source/sink) and 1-byte round trips (vsock-tool rtt/echo).
#      QEMU has no guest-to-guest vsock to compare with.
#   5. foreground console echo (crates/phone/examples/console_echo.rs), the
#      shell idle and with a background VM spinning `while :; do :; done`.
# Usage: bench/phone.sh     (env: IDLE_SECS=20 SETTLE_SECS=5 SAMPLES=200
#                            BYTES=67108864 RTTS=1000)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
idle_secs=${IDLE_SECS:-20}
settle_secs=${SETTLE_SECS:-5}
samples=${SAMPLES:-200}
bytes=${BYTES:-67108864}
rtts=${RTTS:-1000}
guests/fetch-linux-guests.sh >/dev/null
cargo build --release -q -p pocketvisor
cargo build --release -q -p phone --example console_echo
pv=$root/target/release/pocketvisor
kernel=$root/guests/cache/linux/Image
initrd=$root/guests/cache/linux/initramfs.cpio.gz
cmdline="console=ttyAMA0 quiet cryptomgr.notests"
shell_line="Pocketvisor guest shell"
tck=$(getconf CLK_TCK)

# A short path: the VMs' vsock socket paths must fit a unix socket's 107 bytes.
work=$(mktemp -d /tmp/pvb.XXXXXX)
pids=()      # QEMUs and phone processes to end on exit
phones=()    # state dirs of phones that may be up
cleanup() {
    local d p
    for d in "${phones[@]}"; do
        [ -S "$d/api.sock" ] && timeout 60 "$pv" phone down --phone "$d" >/dev/null 2>&1 || true
    done
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    sleep 0.2
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# The host's same-page merging (KSM) on for the run, as a phone would have
# it (PV_BENCH_KSM=0 leaves it alone); the old setting is put back on exit.
ksm_old=$(cat /sys/kernel/mm/ksm/run 2>/dev/null || echo "")
if [ "${PV_BENCH_KSM:-1}" = 1 ] && [ -w /sys/kernel/mm/ksm/run ]; then
    echo 1 >/sys/kernel/mm/ksm/run
    trap 'cleanup; [ -n "$ksm_old" ] && echo "$ksm_old" >/sys/kernel/mm/ksm/run' EXIT
fi

# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
# boot_wait START FILE... -> seconds from START until every FILE shows the shell
boot_wait() {
    local start=$1 f pending deadline=$((SECONDS + 300))
    shift
    while :; do
        pending=0
        for f in "$@"; do grep -aq "$shell_line" "$f" 2>/dev/null || pending=1; done
        [ "$pending" = 0 ] && break
        [ "$SECONDS" -lt "$deadline" ] || fail "not every guest reached its shell: $*"
        sleep 0.01
    done
    awk -v a="$start" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'
}
rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
# pss_kib PID... -> proportional set sizes summed (shared pages, KSM's
# merged ones too, split between their users), or 0 if unreadable
pss_kib() {
    local p t=0 k
    for p in "$@"; do
        k=$(awk '/^Pss:/ { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null || true)
        t=$((t + ${k:-0}))
    done
    echo "$t"
}
ksm_sharing() { cat /sys/kernel/mm/ksm/pages_sharing 2>/dev/null || echo 0; }
# ksm_settle: with KSM on, waits until its merging stops growing (at most
# 90 s), so what is measured is what stays shared
ksm_settle() {
    [ "$(cat /sys/kernel/mm/ksm/run 2>/dev/null)" = 1 ] || return 0
    local last=-1 cur deadline=$((SECONDS + 90))
    while [ "$SECONDS" -lt "$deadline" ]; do
        sleep 5
        cur=$(ksm_sharing)
        [ "$cur" -le "$last" ] && break
        last=$cur
    done
}
# cpu_ticks PID... -> utime + stime of them all, in clock ticks
cpu_ticks() {
    local p t=0
    for p in "$@"; do
        t=$((t + $(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat")))
    done
    echo "$t"
}
# idle_cpu PID... -> percent of one core over IDLE_SECS
idle_cpu() {
    local a b
    a=$(cpu_ticks "$@")
    sleep "$idle_secs"
    b=$(cpu_ticks "$@")
    awk -v d=$((b - a)) -v t="$tck" -v s="$idle_secs" 'BEGIN { printf "%.2f", d / t / s * 100 }'
}

# ---- QEMU ----
# qemu NAME MEM -> starts one QEMU with its console in $work/qemu-NAME.log
qemu() {
    qemu-system-aarch64 -M virt -cpu cortex-a53 -smp 1 -m "$2" -nographic -nic none \
        -kernel "$kernel" -initrd "$initrd" -append "$cmdline" \
        </dev/null >"$work/qemu-$1.log" 2>&1 &
    pids+=("$!")
}
echo "phone bench: QEMU, three VMs booting together" >&2
start=$(now)
qemu personal 256M; q1=$!
qemu work 256M; q2=$!
qemu keys 128M; q3=$!
q_boot3=$(boot_wait "$start" "$work"/qemu-{personal,work,keys}.log)
sleep "$settle_secs"
ksm_settle
q_ksm_mib=$(( $(ksm_sharing) * $(getconf PAGESIZE) >> 20 ))
q_rss3=$(( $(rss_kib "$q1") + $(rss_kib "$q2") + $(rss_kib "$q3") ))
q_pss3=$(pss_kib "$q1" "$q2" "$q3")
kill "$q1" "$q2" "$q3"; wait "$q1" "$q2" "$q3" 2>/dev/null || true

echo "phone bench: QEMU, one VM alone (RSS, idle CPU over $idle_secs s)" >&2
start=$(now)
qemu single 256M; q1=$!
q_boot1=$(boot_wait "$start" "$work/qemu-single.log")
sleep "$settle_secs"
ksm_settle
q_rss1=$(rss_kib "$q1")
q_pss1=$(pss_kib "$q1")
q_cpu=$(idle_cpu "$q1")
kill "$q1"; wait "$q1" 2>/dev/null || true

# ---- the phone ----
# vm NAME ROLE MEM BALLOON -> a [[vm]] table
vm() {
    printf '[[vm]]\nname = "%s"\nrole = "%s"\nkernel = "%s"\ninitrd = "%s"\ncmdline = "%s"\nmem = "%s"\n' \
        "$1" "$2" "$kernel" "$initrd" "$cmdline" "$3"
    [ "$4" = yes ] && printf 'balloon = true\n'
    printf '\n'
}
mkdir -p "$work/one" "$work/three"
{
    printf '[phone]\nname = "bench-one"\nstate_dir = "%s"\nmemory = "256M"\n\n' "$work/one"
    vm personal open 256M yes
} >"$work/one.toml"
{
    printf '[phone]\nname = "bench"\nstate_dir = "%s"\nmemory = "640M"\n\n' "$work/three"
    vm personal open 256M yes
    vm work corporate 256M yes
    vm keys trusted 128M no
    for port in 5000 5001 5002; do
        printf '[[channel]]\nfrom = "personal"\nto = "keys"\nport = %s\n\n' "$port"
    done
} >"$work/three.toml"

# status DIR -> "SUPERVISOR_PID WORKER_RSS_BYTES_SUM WORKER_PID..."
status() {
    "$pv" phone status --phone "$1" --json | jq -r \
        '[.supervisor_pid, ([.vms[].rss_bytes] | add)] + [.vms[] | select(.pid != null) | .pid] | map(tostring) | join(" ")'
}
# phone_rss DIR -> "RSS PSS" in KiB: the workers' rss_bytes + the
# supervisor's VmRSS, and all their PSS
phone_rss() {
    local s
    read -r -a s < <(status "$1")
    echo "$((s[1] / 1024 + $(rss_kib "${s[0]}"))) $(pss_kib "${s[0]}" "${s[@]:2}")"
}
# phone_up DIR MANIFEST -> starts it; its processes join the clean-up list
phone_up() {
    phones+=("$1")
    "$pv" phone up "$2" --detach >/dev/null
    local s
    read -r -a s < <(status "$1")
    pids+=("${s[0]}" "${s[@]:2}")
}
phone_down() {
    "$pv" phone down --phone "$1" >/dev/null
}

echo "phone bench: a phone of one VM (RSS)" >&2
start=$(now)
phone_up "$work/one" "$work/one.toml"
p_boot1=$(boot_wait "$start" "$work/one/vms/personal/console.log")
sleep "$settle_secs"
ksm_settle
read -r p_rss1 p_pss1 < <(phone_rss "$work/one")
phone_down "$work/one"

echo "phone bench: a phone of three VMs (boot, RSS, idle CPU over $idle_secs s)" >&2
three=$work/three
start=$(now)
phone_up "$three" "$work/three.toml"
p_boot3=$(boot_wait "$start" "$three"/vms/{personal,work,keys}/console.log)
sleep "$settle_secs"
ksm_settle
read -r p_rss3 p_pss3 < <(phone_rss "$three")
ksm_run=$(cat /sys/kernel/mm/ksm/run 2>/dev/null || echo "?")
ksm_mib=$(( $(ksm_sharing) * $(getconf PAGESIZE) >> 20 ))
read -r -a procs < <(status "$three")
sup=${procs[0]}
p_cpu=$(idle_cpu "$sup" "${procs[@]:2}")

# type_in VM TEXT: types TEXT on VM's console stream (the API's HTTP upgrade).
type_in() {
    python3 - "$three/api.sock" "$1" "$2" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(("GET /vms/%s/console HTTP/1.1\r\nHost: phone\r\nConnection: upgrade\r\n"
           "Upgrade: pocketvisor-console\r\n\r\n" % sys.argv[2]).encode())
head = b""
while b"\r\n\r\n" not in head:
    d = s.recv(4096)
    if not d:
        sys.exit("the console stream closed")
    head += d
if b" 101 " not in head.split(b"\r\n")[0]:
    sys.exit("no console stream: %r" % head)
s.sendall(sys.argv[3].encode())
s.shutdown(socket.SHUT_WR)
# The phone closes the stream once it has passed on what was typed.
s.settimeout(10)
try:
    while s.recv(65536):
        pass
except OSError:
    pass
PY
}
# run_in VM COMMAND [SECONDS]: types COMMAND and waits for it to finish.
step=0
run_in() {
    step=$((step + 1))
    local sep="; "
    case "$2" in *"&") sep=" " ;; esac
    type_in "$1" "$2${sep}echo PV-BENCH-\$((${step}000+1))"$'\n'
    wait_for "$three/vms/$1/console.log" "PV-BENCH-${step}001" "${3:-60}"
}
log() { tr -d '\r' <"$three/vms/$1/console.log"; }

echo "phone bench: vsock personal → keys, $bytes bytes and $rtts round trips" >&2
run_in keys "vsock-tool sink 5001 &"
wait_for "$three/vms/keys/console.log" "VSOCK-LISTENING 5001" 30
run_in personal "vsock-tool source 5 5001 $bytes" 600
wait_for "$three/vms/keys/console.log" "VSOCK-SINK" 30
src=$(log personal | grep -ao 'VSOCK-SOURCE.*' | tail -1)
sink=$(log keys | grep -ao 'VSOCK-SINK.*' | tail -1)
case "$sink" in *" 0 wrong "*) ;; *) fail "data corrupted personal → keys: $sink" ;; esac
run_in keys "vsock-tool echo 5002 &"
wait_for "$three/vms/keys/console.log" "VSOCK-LISTENING 5002" 30
run_in personal "vsock-tool rtt 5 5002 $rtts" 600
rtt=$(log personal | grep -ao 'VSOCK-RTT.*' | tail -1)
[ -n "$rtt" ] || fail "no VSOCK-RTT line: $(log personal | grep -a VSOCK | tail -3)"
src_mbs=$(sed -n 's/.* \([0-9.]*\) MB\/s.*/\1/p' <<<"$src")
sink_mbs=$(sed -n 's/.* \([0-9.]*\) MB\/s.*/\1/p' <<<"$sink")
rtt_p50=$(sed -n 's/.*p50 \([0-9]*\) us.*/\1/p' <<<"$rtt")
rtt_p99=$(sed -n 's/.*p99 \([0-9]*\) us.*/\1/p' <<<"$rtt")

echo "phone bench: console echo of the foreground VM, $samples samples (idle, then work spinning)" >&2
echo_run() {
    cargo run --release -q -p phone --example console_echo -- "$three" personal "$samples" \
        | grep -a '^CONSOLE-ECHO'
}
echo_idle=$(echo_run)
run_in work 'while :; do :; done &'
sleep 2
work_cpu=$("$pv" phone status --phone "$three" --json | jq -r '.vms[] | select(.name == "work") | .cpu_percent')
echo_busy=$(echo_run)
e_idle_p50=$(sed -n 's/.*p50 \([0-9]*\) us.*/\1/p' <<<"$echo_idle")
e_idle_p99=$(sed -n 's/.*p99 \([0-9]*\) us.*/\1/p' <<<"$echo_idle")
e_busy_p50=$(sed -n 's/.*p50 \([0-9]*\) us.*/\1/p' <<<"$echo_busy")
e_busy_p99=$(sed -n 's/.*p99 \([0-9]*\) us.*/\1/p' <<<"$echo_busy")
phone_down "$three"

echo "vsock personal → keys: source $src; sink $sink"
echo "vsock round trips: $rtt"
echo "console echo, idle: $echo_idle"
echo "console echo, work spinning (its worker at ${work_cpu}% of a core): $echo_busy"
echo
awk -v pb3="$p_boot3" -v qb3="$q_boot3" -v pb1="$p_boot1" -v qb1="$q_boot1" \
    -v pr3="$p_rss3" -v pr1="$p_rss1" -v qr3="$q_rss3" -v qr1="$q_rss1" \
    -v pp3="$p_pss3" -v pp1="$p_pss1" -v qp3="$q_pss3" -v qp1="$q_pss1" -v ksm="$ksm_run" -v ksmm="$ksm_mib" -v qksmm="$q_ksm_mib" \
    -v pc="$p_cpu" -v qc="$q_cpu" -v secs="$idle_secs" -v settle="$settle_secs" \
    -v sm="$src_mbs" -v km="$sink_mbs" -v r50="$rtt_p50" -v r99="$rtt_p99" \
    -v ei50="$e_idle_p50" -v ei99="$e_idle_p99" -v eb50="$e_busy_p50" -v eb99="$e_busy_p99" 'BEGIN {
    f = "%-44s %12s %12s %8s\n"
    printf f, "phone bench", "pocketvisor", "qemu", "ours/qemu"
    printf f, "boot, 3 VMs together to shell (s)", sprintf("%.2f", pb3), sprintf("%.2f", qb3), sprintf("%.2f", pb3 / qb3)
    printf f, "boot, 1 VM to shell (s)", sprintf("%.2f", pb1), sprintf("%.2f", qb1), sprintf("%.2f", pb1 / qb1)
    printf f, "RSS, 3 VMs (MiB)", sprintf("%.1f", pr3 / 1024), sprintf("%.1f", qr3 / 1024), sprintf("%.2f", pr3 / qr3)
    printf f, "RSS, 1 VM (MiB)", sprintf("%.1f", pr1 / 1024), sprintf("%.1f", qr1 / 1024), sprintf("%.2f", pr1 / qr1)
    printf f, "RSS 3 VMs / 1 VM (goal <= 1.6 ours)", sprintf("%.2f", pr3 / pr1), sprintf("%.2f", qr3 / qr1), ""
    printf f, "PSS 3 VMs / 1 VM", (pp1 > 0 ? sprintf("%.2f", pp3 / pp1) : "-"), (qp1 > 0 ? sprintf("%.2f", qp3 / qp1) : "-"), ""
    printf f, "idle CPU, % of a core (ours 3 VMs, qemu 1)", sprintf("%.2f", pc), sprintf("%.2f", qc), (qc > 0 ? sprintf("%.2f", pc / qc) : "-")
    printf f, "vsock personal->keys, MB/s (source/sink)", sm " / " km, "-", ""
    printf f, "vsock 1-byte round trip p50 / p99 (us)", r50 " / " r99, "-", ""
    printf f, "console echo, idle p50 / p99 (us)", ei50 " / " ei99, "-", ""
    printf f, "console echo, bg VM spinning p50 / p99 (us)", eb50 " / " eb99, "-", ""
    printf "(idle CPU over %s s: the supervisor and all workers, vs one QEMU; RSS %s s after boot;\n", secs, settle
    printf " ours = workers + supervisor; host KSM run=%s, merged at the 3-VM measurement: ours %d MiB, QEMU %d MiB;\n", ksm, ksmm, qksmm
    printf " RSS counts a merged page in every process that maps it, PSS splits it between them)\n"
    printf " QEMU has no guest-to-guest vsock or phone console to compare)\n"
}'
