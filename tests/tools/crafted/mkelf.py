#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
"""Crafted ELF files for tests/selfsafety.bats: each one costs an unbounded
examiner seconds or gigabytes. Usage: mkelf.py KIND OUT

  itab-storm     a "Go program" (a .gopclntab naming crypto/tls) with 4,000
                 sections and 500,000 .itablink entries: a section lookup per
                 entry is 2e9 steps
  fat-libssl     a "libssl" (SSL_ctrl, SSL_set_fd, OPENSSL_init_ssl, an import of
                 d2i_X509) with 128 MiB of call instructions to disassemble
  many-sections  100,000 section headers
  huge-section   a section that claims 1 TiB at an offset past the end
  sparse         a 2 GiB sparse file behind a valid ELF header
  truncated      fat-libssl's headers, the file cut at 64 KiB
"""
import struct
import sys

BASE = 0x400000


def sym(name_off, info, shndx, value, size):
    return struct.pack("<IBBHQQ", name_off, info, 0, shndx, value, size)


class Elf:
    def __init__(self):
        self.secs = []  # (name, type, flags, data|None, link, info, entsize, size_override, off_override)

    def add(self, name, stype, flags=0, data=b"", link=0, info=0, entsize=0, size=None, off=None):
        self.secs.append([name, stype, flags, data, link, info, entsize, size, off])
        return len(self.secs)  # its index (0 is the null section)

    def write(self, out, extra_headers=0, pad_to=None, hole=0):
        shstr = b"\0"
        names = []
        for s in self.secs + [[".shstrtab"]]:
            names.append(len(shstr))
            shstr += s[0].encode() + b"\0"
        body = bytearray()
        offs = []
        hdr = 64 + 56
        for s in self.secs:
            while (hdr + len(body)) % 16:
                body += b"\0"
            offs.append(hdr + len(body))
            if s[3]:
                body += s[3]
        shstr_off = hdr + len(body)
        body += shstr
        # a hole: the section headers start `hole` bytes further (a sparse file)
        while (hdr + len(body)) % 8:
            body += b"\0"
        shoff = hdr + len(body) + hole
        nsh = len(self.secs) + 2 + extra_headers
        end = shoff + nsh * 64
        ph = struct.pack("<IIQQQQQQ", 1, 5, 0, BASE, BASE, end, end, 0x1000)
        eh = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8
        shnum = nsh if nsh < 0xFF00 else 0
        shstrndx = len(self.secs) + 1
        # an executable whose entry waits (the first section starts with PAUSE_LOOP): the
        # daemon examines it through /proc/PID/map_files while it lives
        eh += struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, BASE + offs[0], 64, shoff, 0, 64, 56, 1, 64,
                          shnum, shstrndx)
        with open(out, "wb") as f:
            f.write(eh + ph + body)
            f.seek(shoff)
            # null section; with extended numbering it holds the count
            f.write(struct.pack("<IIQQQQIIQQ", 0, 0, 0, 0, 0, nsh if not shnum else 0, 0, 0, 0, 0))
            for i, s in enumerate(self.secs):
                name, stype, flags, data, link, info, entsize, size, off = s
                o = off if off is not None else offs[i]
                sz = size if size is not None else len(data)
                addr = BASE + o if flags & 2 else 0
                f.write(struct.pack("<IIQQQQIIQQ", names[i], stype, flags, addr, o, sz, link, info,
                                    16 if stype == 1 else 8, entsize))
            f.write(struct.pack("<IIQQQQIIQQ", names[-1], 3, 0, 0, shstr_off, len(shstr), 0, 0,
                                1, 0))
            filler = struct.pack("<IIQQQQIIQQ", 0, 1, 0, 0, 0, 0, 0, 0, 1, 0)
            f.write(filler * extra_headers)
            if pad_to:
                f.truncate(pad_to)


# for (;;) pause();  mov eax, 34; syscall; jmp back
PAUSE_LOOP = b"\xb8\x22\0\0\0\x0f\x05\xeb\xf7"

SHT_PROGBITS, SHT_SYMTAB, SHT_STRTAB, SHT_RELA, SHT_DYNSYM = 1, 2, 3, 4, 11
ALLOC, EXEC = 2, 4


def gopclntab(names):
    """A Go 1.18 function table whose names include `names` (none found by entry)."""
    funcnames = b"".join(n.encode() + b"\0" for n in names)
    nfunc = len(names)
    hdr_len = 8 + 8 * 8
    names_off = hdr_len
    cu_off = names_off + len(funcnames)
    pcln_off = cu_off
    hdr = struct.pack("<IBBBB", 0xFFFFFFF0, 0, 0, 1, 8)
    hdr += struct.pack("<QQQQQQQQ", nfunc, 0, BASE, names_off, cu_off, cu_off, cu_off, pcln_off)
    pcln = b""
    for i in range(nfunc + 1):
        pcln += struct.pack("<II", i * 16, 0xFFFFFF)  # funcoff outside: no name is found
    return hdr + funcnames + pcln


def itab_storm(out):
    e = Elf()
    e.add(".text", SHT_PROGBITS, ALLOC | EXEC, PAUSE_LOOP)
    e.add(".gopclntab", SHT_PROGBITS, ALLOC, gopclntab([
        "crypto/tls.(*Conn).verifyServerCertificate", "crypto/tls.hostnameInSNI", "main.main"]))
    entries = 500000
    # every entry points at an address no section holds: each lookup walks them all
    e.add(".itablink", SHT_PROGBITS, ALLOC, struct.pack("<Q", 0x7fff00000000) * entries)
    for i in range(3990):
        e.add(".d%d" % i, SHT_PROGBITS, ALLOC, b"\0" * 8)
    e.write(out)


def fat_libssl(out, cut=None):
    e = Elf()
    text_size = 128 << 20
    dynstr = b"\0SSL_ctrl\0SSL_set_fd\0OPENSSL_init_ssl\0d2i_X509\0"
    off = {n: dynstr.index(n.encode() + b"\0") for n in
           ("SSL_ctrl", "SSL_set_fd", "OPENSSL_init_ssl", "d2i_X509")}
    text_idx = 1
    dynsym = sym(0, 0, 0, 0, 0)
    for n in ("SSL_ctrl", "SSL_set_fd", "OPENSSL_init_ssl"):
        dynsym += sym(off[n], 0x12, text_idx, BASE + 0x1000, 16)
    dynsym += sym(off["d2i_X509"], 0x12, 0, 0, 0)
    # call rel32 over and over: every instruction a call the examiner keeps
    call = b"\xe8\0\0\0\0"
    text = PAUSE_LOOP + call * (text_size // 5)
    e.add(".text", SHT_PROGBITS, ALLOC | EXEC, text)
    e.add(".dynstr", SHT_STRTAB, ALLOC, dynstr)
    e.add(".dynsym", SHT_DYNSYM, ALLOC, dynsym, link=2, info=1, entsize=24)
    rela = struct.pack("<QQq", BASE + 0x100, (4 << 32) | 7, 0)  # JUMP_SLOT d2i_X509
    e.add(".rela.plt", SHT_RELA, ALLOC, rela, link=3, entsize=24)
    e.add(".plt", SHT_PROGBITS, ALLOC | EXEC, b"\xff\x25\0\0\0\0" + b"\x90" * 10)
    e.write(out)
    if cut:
        with open(out, "r+b") as f:
            f.truncate(cut)


def many_sections(out):
    e = Elf()
    e.add(".text", SHT_PROGBITS, ALLOC | EXEC, PAUSE_LOOP)
    e.write(out, extra_headers=100000)


def huge_section(out):
    e = Elf()
    e.add(".text", SHT_PROGBITS, ALLOC | EXEC, PAUSE_LOOP)
    e.add(".gopclntab", SHT_PROGBITS, ALLOC, b"", size=1 << 40, off=1 << 41)
    e.add(".symtab", SHT_SYMTAB, 0, b"", size=1 << 40, off=1 << 41, entsize=24, link=4)
    e.add(".strtab", SHT_STRTAB, 0, b"\0")
    e.write(out)


def sparse(out):
    e = Elf()
    e.add(".text", SHT_PROGBITS, ALLOC | EXEC, PAUSE_LOOP)
    e.write(out, hole=2 << 30)


KINDS = {
    "itab-storm": itab_storm,
    "fat-libssl": fat_libssl,
    "many-sections": many_sections,
    "huge-section": huge_section,
    "sparse": sparse,
    "truncated": lambda out: fat_libssl(out, cut=64 << 10),
}

if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in KINDS:
        sys.exit(__doc__)
    KINDS[sys.argv[1]](sys.argv[2])
