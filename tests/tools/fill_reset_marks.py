#!/usr/bin/python3
"""Fill the reset_conns map of the daemon PID with marks of connections that do
not exist (127.0.0.2 -> 127.0.0.3, stamped an hour ahead so that the daemon
leaves them be), until the kernel refuses one: the next reset verdict finds
the table full. --clear removes them again. Prints how many it added/removed.

Raw bpf(2) through ctypes, as tests/helpers.bash's _bpf_usable does; the map
is the one of that name among the daemon's own (its /proc/PID/fdinfo): a
daemon that exited leaves its maps behind until the kernel frees them.

usage: fill_reset_marks.py PID [--clear]
"""
import ctypes
import json
import os
import platform
import struct
import subprocess
import sys
import time

NR_BPF = {"x86_64": 321, "aarch64": 280, "riscv64": 280, "ppc64le": 361, "s390x": 351}
BPF_MAP_UPDATE_ELEM, BPF_MAP_DELETE_ELEM, BPF_MAP_GET_FD_BY_ID = 2, 3, 14
BPF_NOEXIST = 1
AF_INET = 2

libc = ctypes.CDLL(None, use_errno=True)


def bpf(cmd, attr):
    buf = ctypes.create_string_buffer(attr, 128)
    r = libc.syscall(ctypes.c_long(NR_BPF[platform.machine()]), ctypes.c_long(cmd), buf,
                     ctypes.c_long(128))
    return r, ctypes.get_errno()


def map_fd(name, pid):
    held = set()
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                held.update(int(line.split()[1]) for line in f if line.startswith("map_id:"))
        except OSError:
            pass
    maps = json.loads(subprocess.check_output(["bpftool", "-j", "map", "show"]))
    ids = [m["id"] for m in maps if m.get("name") == name and m["id"] in held]
    if len(ids) != 1:
        sys.exit(f"fill_reset_marks: {len(ids)} maps named {name} held by pid {pid}")
    fd, err = bpf(BPF_MAP_GET_FD_BY_ID, struct.pack("III", ids[0], 0, 0))
    if fd < 0:
        sys.exit(f"fill_reset_marks: BPF_MAP_GET_FD_BY_ID: {os.strerror(err)}")
    return fd


def key(netns, i):
    # struct pw_conn_key: netns, family, sport, dport, pad, saddr[16], daddr[16]
    mapped = bytes(10) + b"\xff\xff"
    return struct.pack("=IHHHH16s16s", netns, AF_INET, i & 0xFFFF, (i >> 16) + 1, 0,
                       mapped + bytes([127, 0, 0, 2]), mapped + bytes([127, 0, 0, 3]))


def main():
    pid, clear = int(sys.argv[1]), sys.argv[2:] == ["--clear"]
    fd = map_fd("reset_conns", pid)
    netns = os.stat("/proc/self/ns/net").st_ino
    # struct pw_conn_mark: ts_boot_ns, start_boottime, pid, tid, flags, pad
    ahead = time.clock_gettime_ns(time.CLOCK_BOOTTIME) + 3600 * 10**9
    value = ctypes.create_string_buffer(struct.pack("=QQIIII", ahead, 0, 0, 0, 0, 0))
    n = 0
    for i in range(1 << 20):
        k = ctypes.create_string_buffer(key(netns, i))
        if clear:
            r, err = bpf(BPF_MAP_DELETE_ELEM, struct.pack("=IIQ", fd, 0, ctypes.addressof(k)))
            if r < 0:
                break
        else:
            r, err = bpf(BPF_MAP_UPDATE_ELEM, struct.pack("=IIQQQ", fd, 0, ctypes.addressof(k),
                                                         ctypes.addressof(value), BPF_NOEXIST))
            if r < 0:
                if err not in (7, 12):  # E2BIG: full; ENOMEM
                    sys.exit(f"fill_reset_marks: update: {os.strerror(err)}")
                break
        n += 1
    print(n)


if __name__ == "__main__":
    main()
