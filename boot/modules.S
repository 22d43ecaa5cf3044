/*
 * The boot modules: user programs packed into the kernel image. The first is
 * the root task. The assembler finds the files through -I (the Makefile points
 * it at the user build directory).
 */
	.section .rodata.modules, "a"
	.balign 16
	.globl mica_modules
mica_modules:
	.dword	root_name, root_start, root_end
	.dword	child_name, child_start, child_end
	.dword	mmtest_name, mmtest_start, mmtest_end
	.dword	0, 0, 0

root_name:	.asciz "root"
child_name:	.asciz "child"
mmtest_name:	.asciz "mmtest"

	.balign 16
root_start:
	.incbin "root.elf"
root_end:
	.balign 16
child_start:
	.incbin "child.elf"
child_end:
	.balign 16
mmtest_start:
	.incbin "mmtest.elf"
mmtest_end:
