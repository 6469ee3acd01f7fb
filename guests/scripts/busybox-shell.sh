# Shell features (ash builtins, pipelines, subshells, functions) and applets that busybox
# runs inside the shell's own process, so qemu-user can run it too. Compared byte for
# byte between our CPU and qemu-aarch64 by crates/a64-run/tests/busybox.rs.
x=7; y=5
echo "arith $((x * y + 3)) $((x / 2)) $((x % y)) $((1 << 20)) $((-17 / 3)) $((0x7fffffff + 1))"
fib() { if [ "$1" -lt 2 ]; then echo "$1"; else echo $(( $(fib $(($1 - 1))) + $(fib $(($1 - 2))) )); fi; }
echo "fib $(fib 12)"
count=0; for w in alpha beta gamma delta; do count=$((count + ${#w})); done; echo "letters $count"
i=0; while [ $i -lt 50 ]; do i=$((i + 3)); done; echo "while $i"
for f in a.c b.h c.txt; do case "$f" in *.c) echo "$f: C" ;; *.h) echo "$f: header" ;; *) echo "$f: other" ;; esac; done
( x=99; echo "in subshell x=$x" ); echo "outside x=$x"
echo "nested $( echo "a$( echo "b$( echo c )" )" )"
printf 'line %d\n' 1 2 3 | while read -r a b; do echo "read:$a:$b"; done
set -- one two three; echo "args $# $2 ${3}"; shift; echo "shifted $*"
s="Hello, World"; echo "${#s} ${s%,*} ${s#*, } ${s:-unset} ${unset_var:-default}"
while read -r l; do echo "heredoc: $l"; done <<EOT
first $x
second
EOT
seq 1 100 | md5sum
seq -w 1 3
ls / >/dev/null && echo "ls ok"
printf '%s|%5s|%-5s|%03d|%.3f|%e\n' str ab cd 7 2.71828 31415.9
test -d / && test ! -f /nonexistent && echo "tests ok"
true; echo "status $?"; false; echo "status $?"
trap 'echo "trapped USR1"' USR1; kill -USR1 $$; echo "after trap"; trap - USR1
(while :; do :; done) & bg=$!; kill -TERM $bg; wait $bg; echo "killed job status $?"
trap 'echo "alarm trapped"' ALRM; (kill -ALRM $$) & wait; echo "after wait"; trap - ALRM
echo done
