#!/usr/bin/env python3
"""Generates cases.rs (used by ../simd_int_qemu.rs): runs every AdvSIMD integer form on a few
input sets under qemu-aarch64 and records Vd and FPSR.QC afterwards.
Usage: python3 gen.py > cases.rs (needs aarch64-linux-gnu-gcc, qemu-aarch64)."""
import os, random, subprocess, sys, tempfile

ALL = ["8b", "16b", "4h", "8h", "2s", "4s", "2d"]
NO64 = ALL[:-1]
HS = ["4h", "8h", "2s", "4s"]
B = ["8b", "16b"]
SC = {"b": "b", "h": "h", "s": "s", "d": "d"}
insns = []

def same(m, arrs):
    for a in arrs:
        insns.append(f"{m} v0.{a}, v1.{a}, v2.{a}")

for m in ["shadd", "uhadd", "srhadd", "urhadd", "shsub", "uhsub", "smax", "umax", "smin",
          "umin", "sabd", "uabd", "saba", "uaba", "mla", "mls", "mul", "smaxp", "umaxp",
          "sminp", "uminp"]:
    same(m, NO64)
for m in ["sqadd", "uqadd", "sqsub", "uqsub", "cmgt", "cmhi", "cmge", "cmhs", "sshl", "ushl",
          "sqshl", "uqshl", "srshl", "urshl", "sqrshl", "uqrshl", "add", "sub", "cmtst", "cmeq",
          "addp"]:
    same(m, ALL)
same("pmul", B)
same("sqdmulh", HS)
same("sqrdmulh", HS)
for m in ["and", "bic", "orr", "orn", "eor", "bsl", "bit", "bif"]:
    same(m, B)
for m in ["sqadd", "uqadd", "sqsub", "uqsub", "sqshl", "uqshl", "sqrshl", "uqrshl"]:
    for r in "bhsd":
        insns.append(f"{m} {r}0, {r}1, {r}2")
for m in ["cmgt", "cmhi", "cmge", "cmhs", "sshl", "ushl", "srshl", "urshl", "add", "sub",
          "cmtst", "cmeq"]:
    insns.append(f"{m} d0, d1, d2")
for m in ["sqdmulh", "sqrdmulh"]:
    for r in "hs":
        insns.append(f"{m} {r}0, {r}1, {r}2")
insns.append("addp d0, v1.2d")
# three different
W = {"8b": "8h", "16b": "8h", "4h": "4s", "8h": "4s", "2s": "2d", "4s": "2d"}
for m in ["saddl", "uaddl", "ssubl", "usubl", "sabal", "uabal", "sabdl", "uabdl", "smlal",
          "umlal", "smlsl", "umlsl", "smull", "umull"]:
    for a in NO64:
        two = "2" if a in ("16b", "8h", "4s") else ""
        insns.append(f"{m}{two} v0.{W[a]}, v1.{a}, v2.{a}")
for m in ["saddw", "uaddw", "ssubw", "usubw"]:
    for a in NO64:
        two = "2" if a in ("16b", "8h", "4s") else ""
        insns.append(f"{m}{two} v0.{W[a]}, v1.{W[a]}, v2.{a}")
for m in ["addhn", "raddhn", "subhn", "rsubhn"]:
    for a in NO64:
        two = "2" if a in ("16b", "8h", "4s") else ""
        insns.append(f"{m}{two} v0.{a}, v1.{W[a]}, v2.{W[a]}")
for m in ["sqdmull", "sqdmlal", "sqdmlsl"]:
    for a in HS:
        two = "2" if a in ("8h", "4s") else ""
        insns.append(f"{m}{two} v0.{W[a]}, v1.{a}, v2.{a}")
    insns.append(f"{m} s0, h1, h2")
    insns.append(f"{m} d0, s1, s2")
insns += ["pmull v0.8h, v1.8b, v2.8b", "pmull2 v0.8h, v1.16b, v2.16b"]
# two-register misc
def misc(m, arrs):
    for a in arrs:
        insns.append(f"{m} v0.{a}, v1.{a}")
misc("rev64", NO64)
misc("rev32", ["8b", "16b", "4h", "8h"])
misc("rev16", B)
misc("cls", NO64)
misc("clz", NO64)
misc("cnt", B)
misc("not", B)
misc("rbit", B)
for m in ["suqadd", "usqadd", "sqabs", "sqneg", "abs", "neg"]:
    misc(m, ALL)
for m in ["cmgt", "cmge", "cmeq", "cmle", "cmlt"]:
    for a in ALL:
        insns.append(f"{m} v0.{a}, v1.{a}, #0")
    insns.append(f"{m} d0, d1, #0")
for m in ["suqadd", "usqadd", "sqabs", "sqneg"]:
    for r in "bhsd":
        insns.append(f"{m} {r}0, {r}1")
insns += ["abs d0, d1", "neg d0, d1"]
for m in ["saddlp", "uaddlp", "sadalp", "uadalp"]:
    for a in NO64:
        w = {"8b": "4h", "16b": "8h", "4h": "2s", "8h": "4s", "2s": "1d", "4s": "2d"}[a]
        insns.append(f"{m} v0.{w}, v1.{a}")
for m in ["xtn", "sqxtn", "uqxtn", "sqxtun"]:
    for a in NO64:
        two = "2" if a in ("16b", "8h", "4s") else ""
        insns.append(f"{m}{two} v0.{a}, v1.{W[a]}")
for m in ["sqxtn", "uqxtn", "sqxtun"]:
    insns += [f"{m} b0, h1", f"{m} h0, s1", f"{m} s0, d1"]
for a in NO64:
    two = "2" if a in ("16b", "8h", "4s") else ""
    bits = {"8b": 8, "16b": 8, "4h": 16, "8h": 16, "2s": 32, "4s": 32}[a]
    insns.append(f"shll{two} v0.{W[a]}, v1.{a}, #{bits}")
# across lanes
for m in ["addv", "smaxv", "sminv", "umaxv", "uminv", "saddlv", "uaddlv"]:
    for a in ["8b", "16b", "4h", "8h", "4s"]:
        r = {"8b": "b", "16b": "b", "4h": "h", "8h": "h", "4s": "s"}[a]
        if m.endswith("lv"):
            r = {"b": "h", "h": "s", "s": "d"}[r]
        insns.append(f"{m} {r}0, v1.{a}")
# by element
for m in ["mul", "mla", "mls", "sqdmulh", "sqrdmulh"]:
    for a, idx in [("4h", 5), ("8h", 7), ("2s", 1), ("4s", 3)]:
        e = a[-1]
        insns.append(f"{m} v0.{a}, v1.{a}, v2.{e}[{idx}]")
for m in ["sqdmulh", "sqrdmulh"]:
    insns += [f"{m} h0, h1, v2.h[6]", f"{m} s0, s1, v2.s[2]"]
for m in ["smull", "umull", "smlal", "umlal", "smlsl", "umlsl", "sqdmull", "sqdmlal", "sqdmlsl"]:
    for a, idx in [("4h", 3), ("8h", 6), ("2s", 2), ("4s", 1)]:
        two = "2" if a in ("8h", "4s") else ""
        insns.append(f"{m}{two} v0.{W[a]}, v1.{a}, v2.{a[-1]}[{idx}]")
for m in ["sqdmull", "sqdmlal", "sqdmlsl"]:
    insns += [f"{m} s0, h1, v2.h[5]", f"{m} d0, s1, v2.s[3]"]
# shift by immediate
EB = {"8b": 8, "16b": 8, "4h": 16, "8h": 16, "2s": 32, "4s": 32, "2d": 64}
for m in ["sshr", "ushr", "ssra", "usra", "srshr", "urshr", "srsra", "ursra", "sri"]:
    for a in ALL:
        for sh in sorted({1, EB[a] // 2 + 1, EB[a]}):
            insns.append(f"{m} v0.{a}, v1.{a}, #{sh}")
    for sh in [1, 33, 64]:
        insns.append(f"{m} d0, d1, #{sh}")
for m in ["shl", "sli", "sqshl", "uqshl", "sqshlu"]:
    for a in ALL:
        for sh in sorted({0, EB[a] // 2 + 1, EB[a] - 1}):
            insns.append(f"{m} v0.{a}, v1.{a}, #{sh}")
    for sh in [0, 31, 63]:
        insns.append(f"{m} d0, d1, #{sh}")
for m in ["sqshl", "uqshl", "sqshlu"]:
    for r, eb in [("b", 8), ("h", 16), ("s", 32)]:
        insns.append(f"{m} {r}0, {r}1, #{eb // 2 + 1}")
for m in ["shrn", "rshrn", "sqshrn", "uqshrn", "sqrshrn", "uqrshrn", "sqshrun", "sqrshrun"]:
    for a in NO64:
        two = "2" if a in ("16b", "8h", "4s") else ""
        for sh in sorted({1, EB[a] // 2 + 1, EB[a]}):
            insns.append(f"{m}{two} v0.{a}, v1.{W[a]}, #{sh}")
    if m not in ("shrn", "rshrn"):
        for r, w, eb in [("b", "h", 8), ("h", "s", 16), ("s", "d", 32)]:
            insns.append(f"{m} {r}0, {w}1, #{eb // 2 + 1}")
for m in ["sshll", "ushll"]:
    for a in NO64:
        two = "2" if a in ("16b", "8h", "4s") else ""
        for sh in sorted({0, EB[a] - 1}):
            insns.append(f"{m}{two} v0.{W[a]}, v1.{a}, #{sh}")

rng = random.Random(1234)
def r128():
    return rng.getrandbits(128)
def edge(bytes_):
    return int.from_bytes(bytes(bytes_), "little")
SETS = [
    (r128(), r128(), r128()),
    (r128(), edge([0x80, 0x7f, 0xff, 0x00, 0x01, 0x80, 0x00, 0x80, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0x80]),
     edge([0x80, 0x81, 0xff, 0x7f, 0x07, 0xf9, 0x40, 0x80, 0x01, 0xc0, 0x20, 0x7f, 0xfe, 0, 0x3f, 0xc1])),
    (0, (0x8000_0000_0000_0000_7fff_ffff_8000_0000), 0x8000_0000_0000_0000_8000_0000_8000_8000),
    (r128(), 0xffff_ffff_ffff_ffff_7fff_ffff_ffff_ffff, 0x0000_0000_0000_003f_ffff_ffff_ffff_ffc0),
]

tmp = tempfile.mkdtemp()
body = []
for k, ins in enumerate(insns):
    body.append(f"ldp q0, q1, [x19]\n ldr q2, [x19, #32]\n msr fpsr, xzr\n {ins}\n"
                f" mrs x9, fpsr\n str q0, [x20], #16\n str x9, [x20], #16")
asm = "\n".join(body)
c = r'''
#include <stdio.h>
#include <string.h>
typedef unsigned __int128 u128;
static u128 in[3]; static u128 out[%d][2];
static void run(void) {
  register void *x19 asm("x19") = in; register void *x20 asm("x20") = out;
  asm volatile(%s : "+r"(x20) : "r"(x19) : "x9", "v0", "v1", "v2", "memory");
}
int main(int argc, char **argv) {
  static const unsigned long long sets[][6] = { %s };
  for (unsigned s = 0; s < sizeof sets / sizeof sets[0]; s++) {
    memcpy(in, sets[s], 48);
    run();
    for (int i = 0; i < %d; i++)
      printf("%%016llx%%016llx %%d\n", (unsigned long long)(out[i][0] >> 64),
             (unsigned long long)out[i][0], (int)((out[i][1] >> 27) & 1));
  }
  return 0;
}
'''
def words(v):
    return [v & (2**64 - 1), v >> 64]
setinit = ",".join("{" + ",".join(f"0x{w:x}ULL" for t in st for w in words(t)) + "}" for st in SETS)
asm_c = "\n".join('"' + line.replace('"', '\\"') + '\\n"' for line in asm.split("\n"))
open(f"{tmp}/p.c", "w").write(c % (len(insns), asm_c, setinit, len(insns)))
subprocess.check_call(["aarch64-linux-gnu-gcc", "-static", "-O1", "-o", f"{tmp}/p", f"{tmp}/p.c"])
res = subprocess.check_output(["qemu-aarch64", f"{tmp}/p"]).decode().split("\n")
# encodings
open(f"{tmp}/e.s", "w").write("\n".join(insns) + "\n")
subprocess.check_call(["aarch64-linux-gnu-as", "-o", f"{tmp}/e.o", f"{tmp}/e.s"])
dump = subprocess.check_output(["aarch64-linux-gnu-objdump", "-d", f"{tmp}/e.o"]).decode()
encs = [int(l.split("\t")[1], 16) for l in dump.split("\n") if l[:1] == " " and ":\t" in l]
assert len(encs) == len(insns), (len(encs), len(insns))
print("// Generated by tests/simd_int_gen/gen.py from qemu-aarch64 runs. Do not edit.")
print("/// Input sets: (Vd, Vn, Vm) before the instruction.")
print("pub const SETS: &[(u128, u128, u128)] = &[")
for st in SETS:
    print(f"    (0x{st[0]:032x}, 0x{st[1]:032x}, 0x{st[2]:032x}),")
print("];")
print("/// Per input set: (Vd after, FPSR.QC after).")
print(f"pub type Results = [(u128, bool); {len(SETS)}];")
print("/// (assembly, encoding, results).")
print("pub const CASES: &[(&str, u32, Results)] = &[")
for k, (ins, e) in enumerate(zip(insns, encs)):
    outs = []
    for s in range(len(SETS)):
        v, q = res[s * len(insns) + k].split()
        outs.append(f"(0x{v}, {'true' if q == '1' else 'false'})")
    print(f'    ("{ins}", 0x{e:08x}, [{", ".join(outs)}]),')
print("];")
