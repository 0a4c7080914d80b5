"""Experiment: back the process's memory with transparent huge pages (MADV_HUGEPAGE + MADV_COLLAPSE)."""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
HUGE = 2 << 20
def collapse(which=("anon", "text")):
    done = {"anon": 0, "text": 0}; errs = {}
    for line in open("/proc/self/maps"):
        parts = line.split()
        lo, hi = (int(x, 16) for x in parts[0].split("-"))
        perms = parts[1]; path = parts[5] if len(parts) > 5 else ""
        kind = None
        if perms.startswith("rw") and (path == "" or path == "[heap]"):
            kind = "anon"
        elif perms.startswith("r-x") and path.startswith("/"):
            kind = "text"
        if kind not in which: continue
        a = (lo + HUGE - 1) & ~(HUGE - 1); b = hi & ~(HUGE - 1)
        if b <= a: continue
        libc.madvise(a, b - a, 14)
        if libc.madvise(a, b - a, 25) == 0: done[kind] += (b - a) >> 20
        else: errs[kind + ":" + os.strerror(ctypes.get_errno())] = errs.get(kind, 0) + 1
    sm = {}
    for l in open("/proc/self/smaps_rollup"):
        if "HugePages" in l: sm[l.split(":")[0]] = l.split()[1]
    print(f"hugepages: collapsed MiB {done} errors {errs} {sm}", file=sys.stderr, flush=True)
