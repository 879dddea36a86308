/* SPDX-License-Identifier: MIT */
/* ELF symbol lookup for uprobes: file offsets of named functions, with libelf. */
#ifndef BIZPROBE_CAPTURE_ELF_SYM_H
#define BIZPROBE_CAPTURE_ELF_SYM_H

#include <stddef.h>
#include <stdint.h>

/*
 * Looks up each of names[0..n) among the functions an ELF file defines (.dynsym, then .symtab)
 * and stores its uprobe offset (file offset of the code) in offsets[i], or 0 when absent.
 * Returns how many were found, or a negative errno when the file is not a readable ELF.
 */
int elf_sym_offsets(const char *path, const char *const *names, size_t n, uint64_t *offsets);

/* 1 when the ELF file at path has a section named one of names[0..n), 0 when it has none, or a
 * negative errno when it is not a readable ELF. */
int elf_has_section(const char *path, const char *const *names, size_t n);

#endif
