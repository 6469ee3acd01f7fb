// Copied to offset 0 of the code page at run time. Loads the whole register
// state from the state area at offset 0xc00 of the same page, then falls into
// the instruction under test at offset 0x800.
    .text
    .globl tramp_start
    .globl tramp_end
    .p2align 2
tramp_start:
    clrex
    adr x30, tramp_start + 0xc00
    ldr x0, [x30, #264]
    msr fpcr, x0
    ldr x0, [x30, #272]
    msr fpsr, x0
    ldr x0, [x30, #256]
    msr nzcv, x0
    ldr x0, [x30, #280]
    msr tpidr_el0, x0
    add x0, x30, #288
    ld1 {v0.2d, v1.2d, v2.2d, v3.2d}, [x0], #64
    ld1 {v4.2d, v5.2d, v6.2d, v7.2d}, [x0], #64
    ld1 {v8.2d, v9.2d, v10.2d, v11.2d}, [x0], #64
    ld1 {v12.2d, v13.2d, v14.2d, v15.2d}, [x0], #64
    ld1 {v16.2d, v17.2d, v18.2d, v19.2d}, [x0], #64
    ld1 {v20.2d, v21.2d, v22.2d, v23.2d}, [x0], #64
    ld1 {v24.2d, v25.2d, v26.2d, v27.2d}, [x0], #64
    ld1 {v28.2d, v29.2d, v30.2d, v31.2d}, [x0], #64
    ldr x0, [x30, #248]
    mov sp, x0
    ldp x0, x1, [x30, #0]
    ldp x2, x3, [x30, #16]
    ldp x4, x5, [x30, #32]
    ldp x6, x7, [x30, #48]
    ldp x8, x9, [x30, #64]
    ldp x10, x11, [x30, #80]
    ldp x12, x13, [x30, #96]
    ldp x14, x15, [x30, #112]
    ldp x16, x17, [x30, #128]
    ldp x18, x19, [x30, #144]
    ldp x20, x21, [x30, #160]
    ldp x22, x23, [x30, #176]
    ldp x24, x25, [x30, #192]
    ldp x26, x27, [x30, #208]
    ldp x28, x29, [x30, #224]
    ldr x30, [x30, #240]
    b tramp_start + 0x800
tramp_end:
