# Exercised under `busybox sh` by crates/a64-run/tests/busybox.rs, on our CPU and
# under qemu-aarch64; the outputs must be byte-identical. Deterministic on purpose.
# It runs with PATH=/nonexistent, so every command is a busybox applet run inside
# the shell's process (qemu-user cannot exec a new aarch64 process without binfmt).
set -e
T="${TMPDIR:-/tmp}/bbtest.$$"
rm -rf "$T"; mkdir -p "$T"; cd "$T"

echo "== shell"
x=7; y=5
echo "arith $((x * y + 3)) $((x / 2)) $((x % y)) $((1 << 20)) $((-17 / 3))"
f() { local a="$1"; echo "func:$a:$#"; }
f one two three
for i in 1 2 3; do printf '%s,' "$i"; done; echo
i=0; while [ $i -lt 4 ]; do i=$((i + 1)); done; echo "while $i"
case "hello.c" in *.c) echo "case c" ;; *) echo "case other" ;; esac
( cd /; echo "subshell $(pwd)" ); echo "after $(basename "$(pwd)" | cut -c1-6)"
echo "cmdsub $(echo inner | tr a-z A-Z)"

echo "== text"
seq 1 12 > nums
seq 20 -3 1 | tr '\n' ' '; echo
sort -n -r nums | head -3 | tr '\n' ' '; echo
printf 'b\na\nc\na\nb\n' | sort | uniq -c
awk '{ s += $1 } END { print "awk sum", s, NR }' nums
awk -F: '{ print $2 "-" $1 }' <<'E'
a:1
b:2
E
sed -e 's/1/one/g' -e '/^2$/d' nums | head -4 | tr '\n' ' '; echo
grep -E '^(1|2)[0-9]?$' nums | wc -l
echo "a b c d" | cut -d' ' -f2,4
echo "hello world" | tr 'a-y' 'b-z'
printf 'x\ty\n' | expand | od -c | head -2
echo "rev me" | rev
echo "wc: $(wc -l < nums) $(cat nums | wc -c)"
tail -n 2 nums | tr '\n' ' '; echo
yes ab | head -n 3 | xargs echo
paste -d, nums nums | head -2
nl nums | tail -1
fold -w 5 <<'E'
abcdefghijklmnop
E
echo "x=$(expr 6 \* 7) $(expr length hello) $(expr substr hello 2 3)"
printf '%5.2f|%-4s|%04d|%x|%e\n' 3.14159 ab 42 255 1234.5
test 3 -gt 2 && echo "test ok"
[ -z "" ] && echo "bracket ok"

echo "== files"
mkdir -p d/sub; echo data > d/sub/f1; echo more > d/f2
cp d/f2 d/f3; mv d/f3 d/f4; ln -s f4 d/link
ls d | tr '\n' ' '; echo
find d -type f | sort
readlink d/link
basename /a/b/c.txt .txt; dirname /a/b/c.txt
du -s d >/dev/null && echo "du ok"
stat -c '%s %F' d/f2
tar cf a.tar d; rm -rf d; tar xf a.tar; cat d/sub/f1
chmod 600 d/f2; stat -c '%a' d/f2
touch -d '2001-02-03 04:05:06' d/f2 && date -r d/f2 -u +%Y
diff d/f2 d/f4 >/dev/null || echo "diff found changes"
printf 'l1\nl2\n' > a; printf 'l1\nl3\n' > b; diff a b | tail -2
rm -r d; ls | sort | tr '\n' ' '; echo

echo "== hashes and compression"
seq 1 2000 > big
md5sum big | cut -c1-32
sha1sum big | cut -c1-40
sha256sum big | cut -c1-64
sha512sum big | cut -c1-32
gzip -c big > big.gz; gunzip -c big.gz | md5sum | cut -c1-32
bzip2 -c big > big.bz2; bunzip2 -c big.bz2 | cmp - big && echo "bzip2 round trip"
xz -c big > big.xz 2>/dev/null && unxz -c big.xz | cmp - big && echo "xz round trip" || echo "xz n/a"
od -A x -t x1 big | head -2
hexdump -C big | head -1
base64 big | head -1
echo "aGVsbG8=" | base64 -d; echo

echo "== misc"
date -u -d @0 +'%Y-%m-%d %H:%M:%S'
date -u -d @1000000000 +%s
echo "$(printf '%s' abc | wc -c) bytes"
uname -m
id -u >/dev/null && echo "id ok"
true && echo "true"; false || echo "false"
sleep 0 && echo "slept"
echo done
cd /; rm -rf "$T"
