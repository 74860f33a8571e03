#!/usr/bin/env python3
"""Opening a large checkpoint reads its index, not its tensors: with the file dropped from the
page cache, `ckpt info` and `ckpt scan` leave only a small part of a torch zip and of a legacy
stream resident (mincore), where read-ahead around each record's header used to read it all.
A behaviour test (pages read), not a timed one. When the kernel will not drop the file from the
cache here, the test cannot judge and fails saying so."""
import argparse
import ctypes
import ctypes.util
import os
import shutil
import subprocess
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from results import Results  # noqa: E402

libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
PROT_READ, MAP_SHARED = 1, 1
PAGE = os.sysconf("SC_PAGE_SIZE")


def resident_fraction(path):
    """Fraction of the file's pages in the page cache (mapping it faults nothing in)."""
    size = os.path.getsize(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        addr = libc.mmap(None, size, PROT_READ, MAP_SHARED, fd, 0)
        if addr in (None, ctypes.c_void_p(-1).value):
            raise OSError(ctypes.get_errno(), "mmap failed for " + path)
        pages = (size + PAGE - 1) // PAGE
        vec = (ctypes.c_ubyte * pages)()
        rc = libc.mincore(addr, size, vec)
        libc.munmap(addr, size)
        if rc != 0:
            raise OSError(ctypes.get_errno(), "mincore failed for " + path)
        return sum(v & 1 for v in vec) / pages
    finally:
        os.close(fd)


def evict(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)  # dirty pages are not dropped
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--workdir", default=None, help="where the ~100 MB inputs are written (deleted after)")
    a = ap.parse_args()
    results = Results()
    check = results.check
    work = tempfile.mkdtemp(prefix="ckpt-cold-", dir=a.workdir)
    try:
        # 768 records of 128 KiB (96 MiB): more than a read-ahead window apart, as the records of
        # an LLM's checkpoint are, so reading ahead around each header reads all of them.
        torch.manual_seed(0)
        sd = {f"layers.{i}.weight": torch.randn(32768) for i in range(768)}
        files = {"zip": os.path.join(work, "many_records.pth"), "legacy": os.path.join(work, "many_records_legacy.pth")}
        torch.save(sd, files["zip"])
        torch.save(sd, files["legacy"], _use_new_zipfile_serialization=False)
        del sd
        for kind, path in files.items():
            for command in (["info"], ["scan"], ["tensors"]):
                evict(path)
                before = resident_fraction(path)
                if before > 0.01:
                    check(False, f"{kind}: the kernel kept {before:.0%} of {path} in the page cache after "
                                 "posix_fadvise(DONTNEED); this machine cannot run this test")
                    continue
                r = subprocess.run([a.ckpt, *command, path], capture_output=True, text=True, timeout=120)
                after = resident_fraction(path)
                check(r.returncode == 0, f"{kind}: ckpt {command[0]} exit {r.returncode}: {r.stderr[:300]}")
                check(after < 0.10, f"{kind}: ckpt {command[0]} read {after:.0%} of the file from a cold cache, "
                                    "expected under 10% (its index, not its tensors)")
                print(f"{kind}: ckpt {command[0]} left {after:.1%} of {os.path.getsize(path) >> 20} MiB resident")
        # A pass over the data still reads it all (and gives torch's numbers elsewhere): the hint
        # that keeps opening small does not stop statistics from reading.
        evict(files["zip"])
        r = subprocess.run([a.ckpt, "tensors", "--stats", files["zip"]], capture_output=True, text=True, timeout=300)
        check(r.returncode == 0, f"tensors --stats exit {r.returncode}: {r.stderr[:300]}")
        check(resident_fraction(files["zip"]) > 0.9, "tensors --stats did not read the tensors")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return results.finish()


if __name__ == "__main__":
    sys.exit(main())
