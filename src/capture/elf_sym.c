// SPDX-License-Identifier: MIT
#include "elf_sym.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <string.h>
#include <unistd.h>

/* Converts a symbol's virtual address to the file offset uprobes want, through the PT_LOAD
 * segment that contains it (they differ in PIE executables such as node). */
static uint64_t vaddr_to_offset(Elf *elf, uint64_t vaddr)
{
	size_t nphdr = 0;

	if (elf_getphdrnum(elf, &nphdr))
		return 0;
	for (size_t i = 0; i < nphdr; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD || !(ph.p_flags & PF_X))
			continue;
		if (vaddr >= ph.p_vaddr && vaddr < ph.p_vaddr + ph.p_memsz)
			return vaddr - ph.p_vaddr + ph.p_offset;
	}
	return 0;
}

static int scan_symtab(Elf *elf, Elf_Scn *scn, const GElf_Shdr *sh, const char *const *names,
		       size_t n, uint64_t *offsets)
{
	Elf_Data *data = elf_getdata(scn, NULL);
	size_t count, found = 0;

	if (!data || !sh->sh_entsize)
		return 0;
	count = sh->sh_size / sh->sh_entsize;
	for (size_t i = 0; i < count; i++) {
		GElf_Sym sym;
		const char *name;

		if (!gelf_getsym(data, (int)i, &sym) || sym.st_shndx == SHN_UNDEF || !sym.st_value)
			continue;
		if (GELF_ST_TYPE(sym.st_info) != STT_FUNC &&
		    GELF_ST_TYPE(sym.st_info) != STT_GNU_IFUNC)
			continue;
		name = elf_strptr(elf, sh->sh_link, sym.st_name);
		if (!name)
			continue;
		for (size_t k = 0; k < n; k++) {
			if (offsets[k] || strcmp(name, names[k]) != 0)
				continue;
			offsets[k] = vaddr_to_offset(elf, sym.st_value);
			if (offsets[k])
				found++;
		}
	}
	return (int)found;
}

/* Opens path as an ELF file for reading: 0 with *fd and *elf set (elf_close releases them), or a
 * negative errno. */
static int elf_open(const char *path, int *fd, Elf **elf)
{
	if (elf_version(EV_CURRENT) == EV_NONE)
		return -EINVAL;
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return -errno;
	*elf = elf_begin(*fd, ELF_C_READ_MMAP, NULL);
	if (!*elf || elf_kind(*elf) != ELF_K_ELF) {
		if (*elf)
			elf_end(*elf);
		close(*fd);
		return -ENOEXEC;
	}
	return 0;
}

static void elf_close(int fd, Elf *elf)
{
	elf_end(elf);
	close(fd);
}

int elf_sym_offsets(const char *path, const char *const *names, size_t n, uint64_t *offsets)
{
	int fd, found = 0, err;
	Elf *elf;

	memset(offsets, 0, n * sizeof(*offsets));
	err = elf_open(path, &fd, &elf);
	if (err)
		return err;
	/* .dynsym first: exported functions are what a stripped library still names. */
	for (int pass = 0; pass < 2 && (size_t)found < n; pass++) {
		Elf32_Word want = pass == 0 ? SHT_DYNSYM : SHT_SYMTAB;
		Elf_Scn *scn = NULL;

		while ((scn = elf_nextscn(elf, scn)) != NULL) {
			GElf_Shdr sh;

			if (gelf_getshdr(scn, &sh) && sh.sh_type == want)
				found += scan_symtab(elf, scn, &sh, names, n, offsets);
		}
	}
	elf_close(fd, elf);
	return found;
}

int elf_has_section(const char *path, const char *const *names, size_t n)
{
	int fd, found = 0, err;
	size_t shstrndx;
	Elf *elf;
	Elf_Scn *scn = NULL;

	err = elf_open(path, &fd, &elf);
	if (err)
		return err;
	if (elf_getshdrstrndx(elf, &shstrndx)) {
		elf_close(fd, elf);
		return -ENOEXEC;
	}
	while (!found && (scn = elf_nextscn(elf, scn)) != NULL) {
		GElf_Shdr sh;
		const char *name;

		if (!gelf_getshdr(scn, &sh))
			continue;
		name = elf_strptr(elf, shstrndx, sh.sh_name);
		for (size_t k = 0; name && k < n && !found; k++)
			found = strcmp(name, names[k]) == 0;
	}
	elf_close(fd, elf);
	return found;
}
