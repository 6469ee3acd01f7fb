# Runs inside the guest (pv.run=boot-check): checks the basics of a booted
# system and prints one CHECK line each. Exits non-zero if any fails.
fail=0
check() { # name ok|FAIL detail
    echo "CHECK $1 $2 $3"
    [ "$2" = ok ] || fail=1
}

m=$(uname -m)
[ "$m" = aarch64 ] && check uname-m ok "$m" || check uname-m FAIL "$m"

n=$(grep -c '^processor' /proc/cpuinfo)
feat=$(grep -m1 '^Features' /proc/cpuinfo | cut -d: -f2)
[ "$n" -ge 1 ] && check cpuinfo ok "cpus=$n features:$feat" || check cpuinfo FAIL "no processor entry"

year=$(date +%Y)
[ "$year" -ge 2025 ] && check rtc-date ok "$(date -u '+%Y-%m-%dT%H:%M:%SZ')" || check rtc-date FAIL "$(date)"

t0=$(cut -d' ' -f1 /proc/uptime)
sleep 1
t1=$(cut -d' ' -f1 /proc/uptime)
ms=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%d", (b - a) * 1000 }')
[ "$ms" -ge 900 ] && [ "$ms" -le 2000 ] && check sleep-1 ok "${ms}ms" || check sleep-1 FAIL "${ms}ms"

sum=$(dd if=/dev/zero bs=1M count=64 2>/dev/null | md5sum | cut -d' ' -f1)
[ "$sum" = 7f614da9329cd3aebf59b91aadc30bf0 ] && check dd-md5 ok "$sum" || check dd-md5 FAIL "$sum"

exit $fail
