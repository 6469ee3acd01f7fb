// Dirty-log test guest, a raw binary (no Image header: loaded at RAM base +
// 0x80000 and entered with the MMU off, so addresses are physical).
// Phase 1 stores to pages 0-3 of the area at 0x41000000 four times through
// `touch` (so that subroutine is compiled and its TLB write entries are
// warm), sets the flag word at 0x42000000 to 1 and waits for the host to
// set it to 2. Phase 2 stores to pages 1 and 5 through the compiled
// `touch`, to page 6 from a block that runs once (interpreted), sets the
// flag to 3 and sleeps. The host takes the log after phase 1 and after
// phase 2: the second must hold pages 1, 5, 6, the flag's page and what
// the host itself wrote, nothing else.
    .text
    .global _start
_start:
    movz    x20, #0x4100, lsl #16      // page area
    movz    x21, #0x4200, lsl #16      // flag word
    mov     x22, #4
1:  mov     x0, #0
    bl      touch
    mov     x0, #1
    bl      touch
    mov     x0, #2
    bl      touch
    mov     x0, #3
    bl      touch
    subs    x22, x22, #1
    b.ne    1b
    mov     w1, #1
    str     w1, [x21]
2:  ldr     w1, [x21]
    cmp     w1, #2
    b.ne    2b
    mov     x0, #1
    bl      touch
    mov     x0, #5
    bl      touch
    add     x2, x20, #6, lsl #12
    str     x21, [x2, #8]
    mov     w1, #3
    str     w1, [x21]
3:  wfi
    b       3b

// Stores x0 at offset 16 of page x0 of the area.
touch:
    add     x1, x20, x0, lsl #12
    str     x0, [x1, #16]
    ret
