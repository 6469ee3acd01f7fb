// Entry, exception vectors and EL0 trampolines of Pocketvisor's bare-metal
// test guests. The file begins with an arm64 Linux Image header, so the
// guests boot through `pocketvisor run --kernel` like any kernel.
        .section .text.head, "ax"
        .global _head
_head:
        b       _start                  // code0
        .long   0                       // code1
        .quad   0                       // text_offset
        .quad   _end - _head            // image_size
        .quad   0                       // flags: little endian
        .quad   0, 0, 0
        .ascii  "ARM\x64"
        .long   0

        .text
        .global _start
_start:
        mov     x19, x0                 // device tree
        ldr     x1, =stack_top
        mov     sp, x1
        adr     x1, vectors
        msr     vbar_el1, x1
        isb
        ldr     x1, =__bss_start
        ldr     x2, =__bss_end
1:      cmp     x1, x2
        b.hs    2f
        str     xzr, [x1], #8
        b       1b
2:      mov     x0, x19
        bl      main
        bl      power_off
3:      wfi
        b       3b

// One vector entry: save the caller-saved registers, call the C handler
// with (frame, kind), restore, return.
.macro  entry kind
        .align  7
        sub     sp, sp, #(34 * 8)
        stp     x0, x1, [sp, #0]
        stp     x2, x3, [sp, #16]
        stp     x4, x5, [sp, #32]
        stp     x6, x7, [sp, #48]
        stp     x8, x9, [sp, #64]
        stp     x10, x11, [sp, #80]
        stp     x12, x13, [sp, #96]
        stp     x14, x15, [sp, #112]
        stp     x16, x17, [sp, #128]
        stp     x18, x30, [sp, #144]
        mov     x0, sp
        mov     x1, #\kind
        b       common_entry
.endm

        .align  11
vectors:
        entry   0       // current EL, SP0: sync
        entry   1       //                  irq
        entry   2       //                  fiq
        entry   3       //                  serror
        entry   4       // current EL, SPx: sync
        entry   5
        entry   6
        entry   7
        .align  7       // lower EL: sync -> back to run_el0's caller
        b       el0_sync
        .align  7
        b       el0_sync
        .align  7
        b       el0_sync
        .align  7
        b       el0_sync
        entry   12      // lower EL AArch32 (never used)
        entry   13
        entry   14
        entry   15

common_entry:
        bl      on_exception
        ldp     x0, x1, [sp, #0]
        ldp     x2, x3, [sp, #16]
        ldp     x4, x5, [sp, #32]
        ldp     x6, x7, [sp, #48]
        ldp     x8, x9, [sp, #64]
        ldp     x10, x11, [sp, #80]
        ldp     x12, x13, [sp, #96]
        ldp     x14, x15, [sp, #112]
        ldp     x16, x17, [sp, #128]
        ldp     x18, x30, [sp, #144]
        add     sp, sp, #(34 * 8)
        eret

// u64 run_el0(u64 pc, u64 sp): runs EL0 code at `pc` (interrupts masked)
// until it takes any exception; returns that exception's ESR_EL1.
        .global run_el0
run_el0:
        stp     x19, x20, [sp, #-96]!
        stp     x21, x22, [sp, #16]
        stp     x23, x24, [sp, #32]
        stp     x25, x26, [sp, #48]
        stp     x27, x28, [sp, #64]
        stp     x29, x30, [sp, #80]
        ldr     x2, =saved_sp
        mov     x3, sp
        str     x3, [x2]
        msr     elr_el1, x0
        msr     sp_el0, x1
        mov     x2, #0x3c0              // EL0t, DAIF masked
        msr     spsr_el1, x2
        // EL0 starts with x1 = its stack, x30 = an EL1 address, the rest zero.
        mov     x0, xzr
        .irp    r, 2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29
        mov     x\r, xzr
        .endr
        eret
el0_sync:
        ldr     x2, =saved_sp
        ldr     x3, [x2]
        mov     sp, x3
        mrs     x0, esr_el1
        ldp     x21, x22, [sp, #16]
        ldp     x23, x24, [sp, #32]
        ldp     x25, x26, [sp, #48]
        ldp     x27, x28, [sp, #64]
        ldp     x29, x30, [sp, #80]
        ldp     x19, x20, [sp], #96
        ret

// Where a secondary CPU starts (PSCI CPU_ON with context = its index, 1..3):
// a stack of its own, the vectors, then secondary_main(index); then it
// waits for interrupts forever.
        .global secondary_entry
secondary_entry:
        mov     x19, x0
        ldr     x1, =secondary_stacks
        add     x2, x0, #1
        lsl     x2, x2, #14             // 16 KiB each, growing down
        add     x1, x1, x2
        mov     sp, x1
        adr     x1, vectors
        msr     vbar_el1, x1
        isb
        mov     x0, x19
        bl      secondary_main
5:      wfi
        b       5b

// u64 hvc_call(u64 x0, u64 x1, u64 x2, u64 x3)
        .global hvc_call
hvc_call:
        hvc     #0
        ret

        .bss
        .align  4
saved_sp:
        .quad   0
        .align  4
secondary_stacks:
        .space  4 * 16384
        .align  12
        .space  65536
stack_top:
