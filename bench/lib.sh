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
