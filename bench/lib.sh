# Sourced by the benchmarks: small helpers they share.

# Seconds since the epoch, with nanoseconds.
now() { date +%s.%N; }
# Stops the benchmark with a message naming it.
fail() { echo "bench/$(basename "$0"): $*" >&2; exit 1; }
# wait_for FILE TEXT SECONDS: until FILE holds TEXT, or fail.
wait_for() {
    local deadline=$((SECONDS + $3))
    until grep -aq -- "$2" "$1" 2>/dev/null; do
        [ "$SECONDS" -lt "$deadline" ] || fail "no '$2' in $1 within $3 s"
        sleep 0.02
    done
}

# qmp SOCKET COMMAND-JSON... -> talks to QEMU's QMP socket: prints each reply
# ("wait-migrated" and "wait-incoming" poll until a migration is done) as JSON, one per line.
qmp() {
    python3 - "$@" <<'PY'
import json, socket, sys, time
s = socket.socket(socket.AF_UNIX)
for _ in range(500):
    try:
        s.connect(sys.argv[1]); break
    except OSError:
        time.sleep(0.01)
f = s.makefile("rw")
json.loads(f.readline())
def call(cmd):
    f.write(cmd + "\n"); f.flush()
    while True:
        r = json.loads(f.readline())
        if "return" in r or "error" in r:
            return r
call('{"execute":"qmp_capabilities"}')
for cmd in sys.argv[2:]:
    if cmd == "wait-migrated":
        while True:
            r = call('{"execute":"query-migrate"}')["return"]
            if r.get("status") in ("completed", "failed"):
                print(json.dumps(r)); break
            time.sleep(0.005)
    elif cmd == "wait-incoming":
        while call('{"execute":"query-status"}')["return"]["status"] == "inmigrate":
            time.sleep(0.005)
        print("{}")
    else:
        print(json.dumps(call(cmd)))
PY
}
