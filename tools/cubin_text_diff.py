#!/usr/bin/env python3
"""Compare the machine code (.text* sections) of the CUBINs in two folders, file by file.

usage: tools/cubin_text_diff.py BEFORE_DIR AFTER_DIR

The folders come from MOEFORGE_CUBIN_DUMP (tests/codegen/test_cuda_cubin_dump.cpp). A refactor that should not change
the kernels passes when every CUBIN's .text is byte-identical; exit status 1 lists the ones that differ or are missing.
"""
import os
import struct
import sys


def text_sections(path):
    data = open(path, 'rb').read()
    if data[:4] != b'\x7fELF' or data[4] != 2:
        raise SystemExit(f'{path}: not a 64-bit ELF file (a CUBIN)')
    shoff, = struct.unpack_from('<Q', data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from('<HHH', data, 0x3A)
    sections = [struct.unpack_from('<IIQQQQ', data, shoff + i * shentsize) for i in range(shnum)]
    names_at = sections[shstrndx][4]
    out = {}
    for name, _type, _flags, _addr, offset, size in sections:
        start = names_at + name
        section = data[start:data.index(b'\0', start)].decode()
        if section.startswith('.text'):
            out[section] = data[offset:offset + size]
    return out


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    before, after = sys.argv[1], sys.argv[2]
    names = sorted(set(os.listdir(before)) | set(os.listdir(after)))
    same, bad = 0, []
    for name in names:
        a, b = os.path.join(before, name), os.path.join(after, name)
        if not (os.path.exists(a) and os.path.exists(b)):
            bad.append(f'{name}: only in {before if os.path.exists(a) else after}')
        elif text_sections(a) != text_sections(b) or not text_sections(a):
            bad.append(f'{name}: .text differs')
        else:
            same += 1
    for line in bad:
        print(line)
    print(f'{same} CUBINs with identical .text, {len(bad)} not')
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
