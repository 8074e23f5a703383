#!/usr/bin/env python3
"""Benchmarks for the prelinker and the boot-time module loader.

Run through `make bench` (which builds the image, the prelinker and the
synthetic-kernel example first). Python 3 standard library only.

Writes bench/results/latest.json (raw numbers) and bench/results/latest.md
(summary). See docs/benchmarks.md for what each measure means.
"""

import glob
import json
import os
import platform
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "bench", "results")
# Where cargo puts what it builds (CARGO_TARGET_DIR if set, as in the Makefile).
TARGET_DIR = os.path.join(ROOT, os.environ.get("CARGO_TARGET_DIR") or "target")
PRELINKER = os.path.join(TARGET_DIR, "release", "prelinker")
SYNTH = os.path.join(TARGET_DIR, "release", "examples", "synth_kernel")
MODULES_DIR = os.path.join(ROOT, "build", "modules")
IMAGE = os.path.join(ROOT, "build", "image.elf")
REPLAY = os.path.join(TARGET_DIR, "release", "examples", "relocate_replay")
QEMU = os.environ.get("QEMU", "qemu-system-x86_64")
MOLD = shutil.which("mold")

RUNS = int(os.environ.get("BENCH_RUNS", "5"))
SCALES = [int(x) for x in os.environ.get("BENCH_SCALES", "1,10,100,1000").split(",")]
# Region size (MiB per class) of the synthetic kernel used at every scale,
# so that all scales write the same image size.
REGION_MIB = int(os.environ.get("BENCH_REGION_MIB", "16"))
POLICIES = ["keep", "holes", "compact"]
BOOT_TIMEOUT = 60


def rel(p):
    return os.path.relpath(p, ROOT)


def median(xs):
    return statistics.median(xs) if xs else None


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def timed_together(cmds, runs):
    """Wall times (s) of `runs` runs of each command in `cmds` (a dict), after
    one warm-up run of each; the commands take turns run by run, so that a
    change in the machine's speed during the measurement (other guests on
    the host) affects all of them alike instead of biasing their ratio."""
    for cmd in cmds.values():
        r = run(cmd)
        if r.returncode != 0:
            raise RuntimeError("%s failed:\n%s" % (" ".join(cmd[:3]), r.stderr.decode(errors="replace")[-3000:]))
    ts = {k: [] for k in cmds}
    for _ in range(runs):
        for k, cmd in cmds.items():
            t = time.perf_counter()
            r = run(cmd)
            ts[k].append(time.perf_counter() - t)
            if r.returncode != 0:
                raise RuntimeError("%s failed" % cmd[0])
    return ts


# ---------------------------------------------------------------- machine


def machine_facts():
    model = "unknown"
    flags = set()
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name") and model == "unknown":
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    qv = run([QEMU, "--version"]).stdout.decode().splitlines()
    sysroot = run(["rustc", "--print", "sysroot"]).stdout.decode().strip()
    rustc = run(["rustc", "--version"]).stdout.decode().strip()
    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "cpu_virt_flags": sorted(flags & {"vmx", "svm", "hypervisor"}),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "qemu": qv[0] if qv else "not found",
        "rustc": rustc,
        "rust_lld": os.path.join(sysroot, "lib/rustlib/x86_64-unknown-linux-gnu/bin/rust-lld"),
        "mold": mold_version(),
    }


def mold_version():
    """mold's version line, or "not installed"."""
    if not MOLD:
        return "not installed"
    r = run([MOLD, "--version"])
    return r.stdout.decode().strip() or MOLD


def mold_cmd(bases, out, defsyms, objs, one_thread):
    """The mold link equivalent to the lld one. mold does not take the
    SECTIONS script, so the classes are placed with --section-start (its
    own output sections: .text, .rodata, .data), above an image base below
    the regions; everything else is as for lld."""
    two_mib = 2 << 20
    image_base = (min(bases.values()) - two_mib) & ~(two_mib - 1)
    cmd = [MOLD, "-static", "--no-pie", "--build-id=none", "-z", "norelro", "--strip-debug",
           "--allow-multiple-definition", "-e", "__module_probe", "--image-base=%#x" % image_base]
    cmd += ["--section-start=.%s=%#x" % (c, bases[c]) for c in ("text", "rodata", "data")]
    if one_thread:
        cmd.append("--no-threads")
    return cmd + ["-o", out] + defsyms + objs


def boot(accel, cmdline="", timeout=BOOT_TIMEOUT, image=IMAGE, extra=()):
    cmd = [QEMU, "-machine", "pc,accel=%s" % accel, "-m", "256M", "-display", "none",
           "-serial", "stdio", "-no-reboot",
           "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-kernel", image,
           "-append", cmdline] + list(extra)
    t = time.perf_counter()
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
        out, status = r.stdout.decode(errors="replace"), r.returncode
    except subprocess.TimeoutExpired as e:
        out, status = (e.stdout or b"").decode(errors="replace"), "timeout"
    wall = time.perf_counter() - t
    report = None
    for line in out.splitlines():
        i = line.find("REPORT {")
        if i >= 0:
            report = json.loads(line[i + len("REPORT "):])
    return status, wall, report, out


def accel_probe():
    """Is KVM usable? /dev/kvm must be accessible and a guest must boot."""
    info = {"dev_kvm": os.path.exists("/dev/kvm"),
            "dev_kvm_rw": os.access("/dev/kvm", os.R_OK | os.W_OK)}
    if not info["dev_kvm_rw"]:
        info["kvm_usable"] = False
        info["kvm_note"] = "/dev/kvm missing or not accessible"
        return info
    status, _, report, out = boot("kvm", timeout=15)
    info["kvm_boot_status"] = status
    if status == 33 and report:
        info["kvm_usable"] = True
        info["kvm_note"] = "guest booted under KVM"
    else:
        err = [l.strip() for l in out.splitlines() if "KVM" in l or "error" in l.lower()][:2]
        info["kvm_usable"] = False
        info["kvm_note"] = "/dev/kvm opens but the guest does not boot (status %s%s)" % (
            status, ": " + "; ".join(err) if err else "")
    return info


# ---------------------------------------------------------------- ELF helpers


def elf_counts(data):
    """(relocations against allocated sections, allocated bytes) of an ELF64 object."""
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    secs = []
    for i in range(shnum):
        o = shoff + i * shentsize
        name, typ, flags, addr, off, size, link, info, align, entsize = struct.unpack_from(
            "<IIQQQQIIQQ", data, o)
        secs.append((typ, flags, size, info, entsize))
    relocs = alloc = 0
    for typ, flags, size, info, entsize in secs:
        if typ == 4 and info < len(secs) and secs[info][1] & 2:  # SHT_RELA -> SHF_ALLOC
            relocs += size // (entsize or 24)
        if flags & 2:
            alloc += size
    return relocs, alloc


# ---------------------------------------------------------------- synthetic modules


B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def b36(i, width):
    s = ""
    for _ in range(width):
        s = B36[i % 36] + s
        i //= 36
    return s


def make_module_set(n, outdir):
    """pci.o (which exports to the others) once, then n-1 copies of the other
    real modules in turn, each with its .modinfo name patched in place to a
    unique name of the same length (sizes, code and relocations unchanged)."""
    objs = sorted(glob.glob(os.path.join(MODULES_DIR, "*.o")))
    pci = [o for o in objs if os.path.basename(o) == "pci.o"]
    rest = [o for o in objs if os.path.basename(o) != "pci.o"]
    cache = {o: open(o, "rb").read() for o in objs}
    os.makedirs(outdir, exist_ok=True)
    paths = []
    for o in pci:
        p = os.path.join(outdir, "pci.o")
        with open(p, "wb") as f:
            f.write(cache[o])
        paths.append(p)
    for i in range(n - len(paths)):
        src = rest[i % len(rest)]
        data = cache[src]
        m = re.search(rb"name=([a-z0-9_]+)\0", data)
        old = m.group(1)
        new = ("x" + b36(i, len(old) - 1)).encode()
        assert len(new) == len(old) and i < 36 ** (len(old) - 1), "name too short for %d copies" % n
        patched = data[:m.start(1)] + new + data[m.end(1):]
        p = os.path.join(outdir, "%s.o" % new.decode())
        with open(p, "wb") as f:
            f.write(patched)
        paths.append(p)
    return paths


def lld_script(kernel_plan):
    """Linker script putting every module's classes at the region bases."""
    return """SECTIONS {
  .mtext %(text)#x : { *(.text .text.*) }
  .mrodata %(rodata)#x : { *(.rodata .rodata.* .data.rel.ro .data.rel.ro.*) }
  .mdata %(data)#x : { *(.data .data.* .bss .bss.* COMMON) }
  /DISCARD/ : { *(.modinfo) *(.note .note.*) *(.comment) *(.eh_frame) }
}
""" % kernel_plan


def region_bases(plan_json):
    """Lowest slot address per class from a prelinker plan (the region bases)."""
    with open(plan_json) as f:
        plan = json.load(f)
    bases = {}
    for m in plan["modules"]:
        for c, d in m["classes"].items():
            a = d["addr"]
            a = int(a, 16) if isinstance(a, str) else a
            bases[c] = min(bases.get(c, a), a)
    return bases


def prelinker_bench(machine):
    out = {"runs": RUNS, "region_mib": REGION_MIB, "scales": []}
    lld = machine["rust_lld"]
    # Outputs go to a RAM file system when there is one, for both tools, so
    # that disk write-back noise does not dominate.
    shm = "/dev/shm" if os.path.isdir("/dev/shm") and shutil.disk_usage("/dev/shm").free > (2 << 30) else None
    out["tmpdir"] = shm or "default temp dir"
    with tempfile.TemporaryDirectory(prefix="plk-bench-", dir=shm) as tmp:
        kernel = os.path.join(tmp, "kernel.elf")
        r = run([SYNTH, kernel, str(REGION_MIB)])
        if r.returncode:
            raise RuntimeError("synth_kernel failed: " + r.stderr.decode())
        defsyms = r.stdout.decode().split()
        out["kernel_bytes"] = os.path.getsize(kernel)

        # The prelinker must write the whole image: time a plain copy of the
        # kernel file (read + write of the same bytes) as its floor.
        def kcopy():
            t = time.perf_counter()
            with open(kernel, "rb") as f, open(os.path.join(tmp, "kcopy.elf"), "wb") as w:
                w.write(f.read())
            return time.perf_counter() - t
        kcopy()
        out["kernel_copy_s"] = [kcopy() for _ in range(RUNS)]
        out["kernel_copy_median_s"] = median(out["kernel_copy_s"])
        os.unlink(os.path.join(tmp, "kcopy.elf"))
        for n in SCALES:
            mdir = os.path.join(tmp, "m%d" % n)
            objs = make_module_set(n, mdir)
            datas = [open(p, "rb").read() for p in objs]
            relocs = sum(elf_counts(d)[0] for d in datas)
            alloc = sum(elf_counts(d)[1] for d in datas)
            in_bytes = sum(len(d) for d in datas)
            image = os.path.join(tmp, "image%d.elf" % n)
            plan = os.path.join(tmp, "plan%d.json" % n)
            # The plan (for the region bases lld is given) is written once,
            # untimed: lld is not asked for a map file either.
            r = run([PRELINKER, "link", "--kernel", kernel, "--output", image, "--plan-json", plan] + objs)
            if r.returncode:
                raise RuntimeError("prelinker failed: " + r.stderr.decode())
            pcmd = [PRELINKER, "link", "--kernel", kernel, "--output", image] + objs
            # The same objects into the smallest synthetic kernel they fit
            # (regions sized for the module set, as a real kernel would be).
            fit = None
            for mib in (2, 4, 8, 16, 32):
                if mib >= REGION_MIB:
                    break
                fk = os.path.join(tmp, "kernel%d.elf" % mib)
                if not os.path.exists(fk):
                    run([SYNTH, fk, str(mib)])
                fcmd = [PRELINKER, "link", "--kernel", fk, "--output", image + ".fit"] + objs
                if run(fcmd).returncode == 0:
                    fit = (mib, fcmd)
                    break
            bases = region_bases(plan)
            lds = os.path.join(tmp, "m%d.ld" % n)
            with open(lds, "w") as f:
                f.write(lld_script(bases))
            lout = os.path.join(tmp, "lld%d.elf" % n)
            lcmd = [lld, "-flavor", "gnu", "-static", "-O0", "--no-pie", "--build-id=none",
                    "-z", "norelro", "--strip-debug", "--allow-multiple-definition",
                    "--threads=1", "-e", "__module_probe", "-T", lds, "-o", lout] + defsyms + objs
            lcmd_mt = [a for a in lcmd if a != "--threads=1"]
            cmds = {"pre": pcmd, "lld": lcmd, "lld_mt": lcmd_mt}
            if fit:
                cmds["fit"] = fit[1]
            mout = os.path.join(tmp, "mold%d.elf" % n)
            if MOLD:
                cmds["mold"] = mold_cmd(bases, mout, defsyms, objs, True)
                cmds["mold_mt"] = mold_cmd(bases, mout, defsyms, objs, False)
            # Small sets link in a few milliseconds, where run-to-run jitter
            # is of the order of the differences the scale figures take
            # between them: measure those five times as often (it is cheap).
            tt = timed_together(cmds, RUNS if n >= 100 else 5 * RUNS)
            pre, lt, lt_mt = tt["pre"], tt["lld"], tt["lld_mt"]
            if fit:
                pre_fit = tt["fit"]
                fit_image_bytes = os.path.getsize(image + ".fit")
                os.unlink(image + ".fit")
            else:
                pre_fit, fit_image_bytes, fit = pre, os.path.getsize(image), (REGION_MIB, None)

            # Plain copy of the same input bytes (read every object, write one file).
            def copy_once():
                t = time.perf_counter()
                with open(os.path.join(tmp, "copy.bin"), "wb") as w:
                    for p in objs:
                        with open(p, "rb") as f:
                            w.write(f.read())
                return time.perf_counter() - t
            copy_once()
            ct = [copy_once() for _ in range(RUNS)]
            cp_cmd = ["cp", "-r", mdir, os.path.join(tmp, "cpdir")]
            cpt = []
            for _ in range(RUNS):
                shutil.rmtree(os.path.join(tmp, "cpdir"), ignore_errors=True)
                t = time.perf_counter()
                run(cp_cmd)
                cpt.append(time.perf_counter() - t)
            shutil.rmtree(os.path.join(tmp, "cpdir"), ignore_errors=True)
            s = {
                "modules": n, "input_bytes": in_bytes, "alloc_bytes": alloc, "relocations": relocs,
                "prelinker_s": pre, "lld_1thread_s": lt, "lld_default_threads_s": lt_mt,
                "py_copy_s": ct, "cp_s": cpt,
                "image_bytes": os.path.getsize(image), "lld_output_bytes": os.path.getsize(lout),
                "fitted_region_mib": fit[0], "prelinker_fitted_s": pre_fit,
                "fitted_image_bytes": fit_image_bytes,
                "prelinker_cmd": "prelinker link --kernel KERNEL --output IMAGE <%d objects>" % n,
                "lld_cmd": " ".join(["rust-lld"] + lcmd[1:lcmd.index("-T")] + ["-T", "SCRIPT", "-o", "OUT",
                                     "<%d --defsym>" % len(defsyms), "<%d objects>" % n]),
            }
            pm, lm = median(pre), median(lt)
            s["median"] = {"prelinker_s": pm, "lld_1thread_s": lm, "lld_default_threads_s": median(lt_mt),
                           "py_copy_s": median(ct), "cp_s": median(cpt)}
            s["median"]["prelinker_fitted_s"] = median(pre_fit)
            s["ratio_fitted_prelinker_lld_1thread"] = median(pre_fit) / lm
            s["ratio_fitted_prelinker_lld_default"] = median(pre_fit) / median(lt_mt)
            s["ratio_prelinker_lld_1thread"] = pm / lm
            s["ratio_prelinker_lld_default"] = pm / median(lt_mt)
            s["ratio_prelinker_py_copy"] = pm / median(ct)
            s["ratio_prelinker_cp"] = pm / median(cpt)
            s["prelinker_relocs_per_s"] = relocs / pm
            s["lld_relocs_per_s"] = relocs / lm
            if MOLD:
                mm, mm_mt = median(tt["mold"]), median(tt["mold_mt"])
                s["mold_1thread_s"], s["mold_default_threads_s"] = tt["mold"], tt["mold_mt"]
                s["median"]["mold_1thread_s"], s["median"]["mold_default_threads_s"] = mm, mm_mt
                s["ratio_prelinker_mold_1thread"] = pm / mm
                s["ratio_prelinker_mold_default"] = pm / mm_mt
                s["mold_relocs_per_s"] = relocs / mm
                s["mold_output_bytes"] = os.path.getsize(mout)
                s["mold_cmd"] = " ".join(["mold"] + cmds["mold"][1:cmds["mold"].index("-o")] + [
                    "-o", "OUT", "<%d --defsym>" % len(defsyms), "<%d objects>" % n])
                os.unlink(mout)
            s["prelinker_us_per_module"] = pm / n * 1e6
            out["scales"].append(s)
            print("  %4d modules: prelinker %.1f ms, lld %.1f ms (1 thread), %.1f ms (default), copy %.1f ms"
                  % (n, pm * 1e3, lm * 1e3, median(lt_mt) * 1e3, median(ct) * 1e3), flush=True)
            shutil.rmtree(mdir)
            for p in (image, lout):
                os.unlink(p)
        by_n = {s["modules"]: s for s in out["scales"]}
        if 1 in by_n and len(by_n) > 2:
            # Fixed cost = the 1-module link; per-module cost above it.
            t1 = by_n[1]["median"]["prelinker_s"]
            ns = sorted(n for n in by_n if n > 1)
            out["fixed_cost_s"] = t1
            out["excess_us_per_module"] = {
                n: (by_n[n]["median"]["prelinker_s"] - t1) / (n - 1) * 1e6 for n in ns}
            a, c = out["excess_us_per_module"][ns[0]], out["excess_us_per_module"][ns[-1]]
            out["excess_ratio"] = c / a if a > 0 else None
            del by_n[1]
        lo, hi = min(by_n), max(by_n)
        if lo != hi:
            pl, ph = by_n[lo]["median"]["prelinker_s"], by_n[hi]["median"]["prelinker_s"]
            out["per_module_ratio"] = (ph / hi) / (pl / lo)
            out["per_module_ratio_scales"] = [hi, lo]
            mids = sorted(by_n)
            if len(mids) >= 3:
                a, b, c = mids[0], mids[1], mids[-1]
                ma = (by_n[b]["median"]["prelinker_s"] - by_n[a]["median"]["prelinker_s"]) / (b - a)
                mc = (by_n[c]["median"]["prelinker_s"] - by_n[b]["median"]["prelinker_s"]) / (c - b)
                out["marginal_us_per_module"] = {"%d-%d" % (a, b): ma * 1e6, "%d-%d" % (b, c): mc * 1e6}
                out["marginal_ratio"] = mc / ma if ma > 0 else None
    return out


# ---------------------------------------------------------------- boot


def boot_bench(accel):
    res = {"accel": accel, "runs": RUNS, "policies": {}}
    for pol in POLICIES:
        runs = []
        for _ in range(RUNS):
            status, wall, report, _ = boot(accel, "reclaim=%s" % pol)
            if status != 33 or report is None:
                runs.append({"status": status, "report": None})
                continue
            runs.append({"status": status, "wall_s": wall, "report": report})
        res["policies"][pol] = runs
    return res


def presets():
    """QEMU presets from tests/presets/<name>.args, if the tree has them."""
    out = {}
    for p in sorted(glob.glob(os.path.join(ROOT, "tests", "presets", "*.args"))):
        args = []
        for line in open(p):
            line = line.strip()
            if line and not line.startswith("#"):
                args.append(line)
        out[os.path.basename(p)[:-5]] = args
    return out


def preset_bench(accel):
    """One boot per (preset, policy): the memory numbers are deterministic."""
    res = {}
    ps = presets()
    with tempfile.TemporaryDirectory(prefix="plk-bench-") as tmp:
        disk = os.path.join(tmp, "disk.img")
        with open(disk, "wb") as f:
            f.truncate(1 << 20)
        for name, args in ps.items():
            args = [a.replace("{build}/disk.img", disk).replace("{build}", os.path.join(ROOT, "build"))
                    for a in args]
            for pol in POLICIES:
                status, wall, report, _ = boot(accel, "reclaim=%s" % pol, extra=args)
                res.setdefault(name, {})[pol] = {"status": status, "report": report}
    return res


def memory_rows(rep):
    failed_slot = padding_kept = used_kept = 0
    for m in rep["modules"]:
        slot, used = sum(m["slot"].values()), sum(m["used"].values())
        if m["result"] == "kept":
            padding_kept += slot - used
            used_kept += used
        else:
            failed_slot += slot
    theo = failed_slot + padding_kept
    live = sum(r["live_bytes"] for r in rep["regions"].values())
    # Gaps between kept modules inside the span they occupy (the 64-byte
    # packing alignment under compact; slot padding and failed slots under
    # keep/holes), without the partly used last page of each region.
    gaps = 0
    for c in ("text", "rodata", "data"):
        kept = [(int(m["new_addr"][c], 16), m["packed"][c]) for m in rep["modules"]
                if m["result"] == "kept" and m["packed"][c] > 0]
        if kept:
            base = min(int(m["old_addr"][c], 16) for m in rep["modules"])
            gaps += max(a + n for a, n in kept) - base - sum(n for _, n in kept)
    return {
        "reclaimed_bytes": rep["reclaimed_bytes"], "tail_bytes": rep["tail_bytes"],
        "reclaimed_from_slots": rep["reclaimed_bytes"] - rep["tail_bytes"],
        "theoretical_max_from_slots": theo,
        "share_of_max": (rep["reclaimed_bytes"] - rep["tail_bytes"]) / theo if theo else None,
        "kept_used_bytes": used_kept, "live_bytes": live,
        "padding_packed_layout": live - used_kept,
        "gaps_between_kept": gaps,
        "padding_page_aligned_layout": rep["page_aligned_kept_bytes"] - used_kept,
        "mappings_before": rep["mappings_before"], "mappings_after": rep["mappings_after"],
        "kept": rep.get("kept"), "expunged": rep.get("expunged"),
    }


def boot_summary(bres):
    """Per-module move/memmove, per-relocation times (median over runs) from
    the compact (default) policy; memory facts per policy."""
    out = {}
    ok = [r["report"] for r in bres["policies"]["compact"] if r["report"]]
    out["compact_ok_runs"] = len(ok)
    if ok:
        mods = {}
        per_run = []
        for rep in ok:
            mv = mm = rl = pr = 0
            moved_mods = 0
            for m in rep["modules"]:
                d = mods.setdefault(m["name"], {"move_ns": [], "memmove_ns": [], "probe_ns": [],
                                                "relocs": m["relocs_redone"], "result": m["result"],
                                                "bytes": sum(m["used"].values())})
                d["move_ns"].append(m["move_ns"])
                d["memmove_ns"].append(m["memmove_ns"])
                d["probe_ns"].append(m["probe_ns"])
                if m["memmove_ns"] > 0:
                    mv += m["move_ns"]
                    mm += m["memmove_ns"]
                    moved_mods += 1
                rl += m["relocs_redone"]
                pr += m["probe_ns"]
            allmove = sum(m["move_ns"] for m in rep["modules"])
            per_run.append({
                "move_over_memmove": mv / mm if mm else None,
                "moved_modules": moved_mods,
                "move_ns_total": allmove,
                "probe_ns_total": pr,
                "relocs_total": rl,
                "move_ns_per_module": allmove / len(rep["modules"]),
                "move_ns_per_reloc": allmove / rl if rl else None,
                "modules_ns": rep["modules_ns"], "boot_ns": rep["boot_ns"],
                "modules_share": rep["modules_ns"] / rep["boot_ns"],
                "modules_ns_per_module": rep["modules_ns"] / len(rep["modules"]),
            })
        out["per_run"] = per_run
        out["median"] = {k: median([p[k] for p in per_run if p[k] is not None])
                         for k in per_run[0]}
        out["modules"] = {
            n: {"result": d["result"], "bytes": d["bytes"], "relocs": d["relocs"],
                "move_ns": median(d["move_ns"]), "memmove_ns": median(d["memmove_ns"]),
                "probe_ns": median(d["probe_ns"]),
                "ratio": (median(d["move_ns"]) / median(d["memmove_ns"])) if median(d["memmove_ns"]) else None}
            for n, d in mods.items()}
    mem = {}
    for pol, runs in bres["policies"].items():
        reps = [r["report"] for r in runs if r["report"]]
        if not reps:
            mem[pol] = {"ok_runs": 0}
            continue
        rep = reps[-1]
        mem[pol] = dict(
            memory_rows(rep),
            ok_runs=len(reps),
            failed_bytes=rep["failed_bytes"],
            padding_bytes=rep["padding_bytes"],
            packed_bytes=rep["packed_bytes"],
            page_aligned_kept_bytes=rep["page_aligned_kept_bytes"],
            identical_across_runs=all(
                (r["reclaimed_bytes"], r["mappings_after"]) == (rep["reclaimed_bytes"], rep["mappings_after"])
                for r in reps),
        )
    out["memory"] = mem
    return out


# ---------------------------------------------------------------- report


def fmt_ms(s):
    return "%.1f ms" % (s * 1e3)


def kib(b):
    return "%.1f KiB" % (b / 1024)


def write_md(data):
    m, acc, pl, bs = data["machine"], data["accel"], data["prelinker"], data["boot_summary"]
    L = []
    L.append("# Benchmark results\n")
    L.append("Generated by `make bench` on %s (UTC). Medians of %d runs unless noted.\n"
             % (data["date"], data["runs"]))
    L.append("## Machine\n")
    L.append("| fact | value |\n|---|---|")
    L.append("| CPU | %s |" % m["cpu_model"])
    L.append("| cores | %d |" % m["cores"])
    L.append("| CPU flags | %s |" % (", ".join(m["cpu_virt_flags"]) or "none of vmx/svm/hypervisor"))
    L.append("| QEMU | %s |" % m["qemu"])
    L.append("| rustc | %s |" % m["rustc"])
    L.append("| mold | %s |" % m["mold"])
    L.append("| accelerator used | **%s** (KVM: %s) |" % (data["boot"]["accel"].upper(), acc["kvm_note"]))
    L.append("")
    L.append("## 1. Prelinker vs rust-lld (same objects, synthetic kernel with %d MiB regions)\n" % pl["region_mib"])
    L.append("The link commands take turns run by run; medians of %d runs (%d at fewer than 100 modules).\n"
             % (RUNS, 5 * RUNS))
    L.append("| modules | relocs | input | prelinker | rust-lld 1 thread | rust-lld default threads | "
             "prelinker / lld (1 thr) | prelinker / lld (default) | prelinker relocs/s | lld relocs/s | "
             "read+write copy | prelinker / copy | `cp -r` | prelinker / cp |")
    L.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for s in pl["scales"]:
        md = s["median"]
        L.append("| %d | %d | %s | %s | %s | %s | %.2f | %.2f | %.2fM | %.2fM | %s | %.1f | %s | %.1f |" % (
            s["modules"], s["relocations"], kib(s["input_bytes"]), fmt_ms(md["prelinker_s"]),
            fmt_ms(md["lld_1thread_s"]), fmt_ms(md["lld_default_threads_s"]),
            s["ratio_prelinker_lld_1thread"], s["ratio_prelinker_lld_default"],
            s["prelinker_relocs_per_s"] / 1e6, s["lld_relocs_per_s"] / 1e6,
            fmt_ms(md["py_copy_s"]), s["ratio_prelinker_py_copy"], fmt_ms(md["cp_s"]), s["ratio_prelinker_cp"]))
    L.append("")
    L.append("Same objects, prelinker into the smallest synthetic kernel they fit (regions sized for "
             "the module set, so the image it writes is smaller):\n")
    L.append("| modules | region size | image written | prelinker | prelinker / lld (1 thr) | "
             "prelinker / lld (default) | prelinker relocs/s |")
    L.append("|---:|---:|---:|---:|---:|---:|---:|")
    for s in pl["scales"]:
        L.append("| %d | %d MiB | %s | %s | **%.2f** | **%.2f** | %.2fM |" % (
            s["modules"], s["fitted_region_mib"], kib(s["fitted_image_bytes"]),
            fmt_ms(s["median"]["prelinker_fitted_s"]), s["ratio_fitted_prelinker_lld_1thread"],
            s["ratio_fitted_prelinker_lld_default"], s["relocations"] / s["median"]["prelinker_fitted_s"] / 1e6))
    L.append("")
    if MOLD:
        L.append("mold (%s), same objects and kernel exports; it does not take the linker script, so "
                 "the classes are placed with `--section-start` (command in latest.json):\n" % m["mold"])
        L.append("| modules | mold 1 thread | mold default threads | prelinker / mold (1 thr) | "
                 "prelinker / mold (default) | mold relocs/s |")
        L.append("|---:|---:|---:|---:|---:|---:|")
        for s in pl["scales"]:
            md = s["median"]
            L.append("| %d | %s | %s | **%.2f** | **%.2f** | %.2fM |" % (
                s["modules"], fmt_ms(md["mold_1thread_s"]), fmt_ms(md["mold_default_threads_s"]),
                s["ratio_prelinker_mold_1thread"], s["ratio_prelinker_mold_default"],
                s["mold_relocs_per_s"] / 1e6))
        L.append("")
        L.append("Goal prelinker/lld <= 0.5.\n")
    else:
        L.append("Goal prelinker/lld <= 0.5. mold: not installed, not measured (`make bench` installs "
                 "Debian's `mold` when it can).\n")
    L.append("Output sizes: the prelinker writes a bootable kernel image (%s with %d MiB regions), sparsely: "
             "the kernel's own bytes, the used slot bytes and the module table (the regions' unused tails "
             "are holes); lld writes only the module sections (%s at %d modules). The prelinker is timed "
             "without `--plan-json` (lld writes no map either).\n" % (
                 kib(pl["scales"][-1]["image_bytes"]), pl["region_mib"],
                 kib(pl["scales"][-1]["lld_output_bytes"]), pl["scales"][-1]["modules"]))
    L.append("For reference, a plain read+write copy of the whole synthetic kernel file "
             "(%s) takes %s (median).\n" % (kib(pl["kernel_bytes"]), fmt_ms(pl["kernel_copy_median_s"])))
    L.append("## 2. Scale\n")
    if "per_module_ratio" in pl:
        L.append("| scale | value |\n|---|---:|")
        for s in pl["scales"]:
            L.append("| prelinker time per module at %d | %.1f us |" % (s["modules"], s["prelinker_us_per_module"]))
        L.append("| average per-module cost %d vs %d (fixed cost included) | %.2fx |" % (
            pl["per_module_ratio_scales"][0], pl["per_module_ratio_scales"][1], pl["per_module_ratio"]))
        if "excess_us_per_module" in pl:
            L.append("| fixed cost (1-module link, same kernel) | %s |" % fmt_ms(pl["fixed_cost_s"]))
            for n, v in pl["excess_us_per_module"].items():
                L.append("| cost per module above the fixed cost at %s: (t(N) - t(1)) / (N - 1) | %.1f us |" % (n, v))
            if pl.get("excess_ratio"):
                L.append("| per-module cost above fixed cost, %d vs %d (goal <= 1.2x) | **%.2fx** |" % (
                    max(pl["excess_us_per_module"]), min(pl["excess_us_per_module"]), pl["excess_ratio"]))
        for k, v in pl.get("marginal_us_per_module", {}).items():
            L.append("| marginal cost per added module, %s | %.1f us |" % (k, v))
        if pl.get("marginal_ratio"):
            L.append("| marginal cost ratio (last step / first step) | %.2fx |" % pl["marginal_ratio"])
        L.append("")
    L.append("Boot side: only the real image (%d modules) was booted; per-module move+relocate and probe "
             "times are in section 3. A 1000-module boot was **not measured** (no 1000-module bootable "
             "image is built).\n" % len(bs.get("modules", {})))
    L.append("## 3. Boot cost (%s, policy compact, %d boots)\n" % (data["boot"]["accel"].upper(),
                                                                   bs.get("compact_ok_runs", 0)))
    if bs.get("median"):
        md = bs["median"]
        L.append("| measure | median |\n|---|---:|")
        L.append("| move+relocate / plain memmove, summed over moved modules (goal <= 1.5) | **%.2f** |"
                 % md["move_over_memmove"])
        L.append("| move+relocate time per module (all modules) | %.1f us |" % (md["move_ns_per_module"] / 1e3))
        L.append("| move+relocate time per relocation redone | %.0f ns |" % md["move_ns_per_reloc"])
        L.append("| relocations redone per boot | %d |" % md["relocs_total"])
        L.append("| probe time, all modules | %.2f ms |" % (md["probe_ns_total"] / 1e6))
        L.append("| modules_ns (whole module phase) | %.2f ms |" % (md["modules_ns"] / 1e6))
        L.append("| modules_ns per module | %.2f ms |" % (md["modules_ns_per_module"] / 1e6))
        L.append("| boot_ns | %.2f ms |" % (md["boot_ns"] / 1e6))
        L.append("| modules_ns / boot_ns (goal < 1 %%) | **%.1f %%** |" % (md["modules_share"] * 100))
        L.append("")
        L.append("| module | result | bytes | relocs | move_ns | memmove_ns | ratio | probe_ns |")
        L.append("|---|---|---:|---:|---:|---:|---:|---:|")
        for n, d in bs["modules"].items():
            L.append("| %s | %s | %d | %d | %d | %d | %s | %d |" % (
                n, d["result"], d["bytes"], d["relocs"], d["move_ns"], d["memmove_ns"],
                "%.1f" % d["ratio"] if d["ratio"] else "n/a (memmove timed for kept modules only)", d["probe_ns"]))
        L.append("")
    rp = data.get("replay") or []
    if rp:
        L.append("### Native replay on the host (no emulator)\n")
        L.append("`target/release/examples/relocate_replay build/image.elf`: the same module table and "
                 "relocation redo (`Table::redo`) as the kernel, every module moved to a 64-byte packing cursor, "
                 "best of %d repetitions per module, median of %d runs.\n" % (rp[0]["runs"], len(rp)))
        L.append("| measure | median |\n|---|---:|")
        L.append("| modules / bytes / relocations | %d / %d / %d |" % (rp[0]["modules"], rp[0]["bytes"], rp[0]["relocs"]))
        L.append("| move + relocate, all modules | %.1f us |" % (median([r["move_relocate_ns"] for r in rp]) / 1000))
        L.append("| memmove of the same bytes | %.1f us |" % (median([r["memmove_ns"] for r in rp]) / 1000))
        L.append("| move+relocate / memmove (goal <= 1.5) | **%.2f** |" % median([r["ratio"] for r in rp]))
        L.append("| per relocation, above the memmove | %.2f ns |" % median([r["ns_per_reloc"] for r in rp]))
        L.append("")
    L.append("## 4. Memory (default image, machine `pc`, %d boots per policy)\n" % data["runs"])
    L.append("| policy | reclaimed total | of which region tails | reclaimed from slots | theoretical max from slots "
             "| share | live bytes | live bytes not module bytes | gaps between kept modules | padding if page-aligned "
             "| page-aligned padding / gaps | mappings before (4k/2M) | mappings after (4k/2M) |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for pol, d in bs["memory"].items():
        if not d.get("ok_runs"):
            L.append("| %s | boot failed | | | | | | | | | | | |" % pol)
            continue
        gaps = d.get("gaps_between_kept", 0)
        L.append("| %s | %s | %s | %s | %s | %.0f %% | %s | %s | %d B | %s | %s | %d / %d | %d / %d |" % (
            pol, kib(d["reclaimed_bytes"]), kib(d["tail_bytes"]), kib(d["reclaimed_from_slots"]),
            kib(d["theoretical_max_from_slots"]), 100 * d["share_of_max"], kib(d["live_bytes"]),
            kib(d["padding_packed_layout"]), gaps, kib(d["padding_page_aligned_layout"]),
            "%.1fx" % (d["padding_page_aligned_layout"] / gaps) if gaps else "n/a",
            d["mappings_before"]["4k"], d["mappings_before"]["2m"],
            d["mappings_after"]["4k"], d["mappings_after"]["2m"]))
    L.append("")
    if data.get("presets"):
        L.append("### Per QEMU preset (tests/presets/*.args; one boot each, a blank 1 MiB disk for virtio)\n")
        L.append("| preset | policy | kept/expunged | reclaimed total | reclaimed from slots | theoretical max "
                 "| share | live bytes not module bytes | padding if page-aligned | mappings after (4k/2M) |")
        L.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for name, pols in data["presets"].items():
            for pol, d in pols.items():
                r = d.get("memory")
                if not r:
                    L.append("| %s | %s | boot failed (status %s) | | | | | | | |" % (name, pol, d["status"]))
                    continue
                L.append("| %s | %s | %s/%s | %s | %s | %s | %s | %s | %s | %d / %d |" % (
                    name, pol, r["kept"], r["expunged"], kib(r["reclaimed_bytes"]), kib(r["reclaimed_from_slots"]),
                    kib(r["theoretical_max_from_slots"]),
                    "%.0f %%" % (100 * r["share_of_max"]) if r["share_of_max"] is not None else "n/a",
                    kib(r["padding_packed_layout"]), kib(r["padding_page_aligned_layout"]),
                    r["mappings_after"]["4k"], r["mappings_after"]["2m"]))
        L.append("")
    L.append("## 5. TLB\n")
    L.append(data["tlb"] + "\n")
    with open(os.path.join(RESULTS, "latest.md"), "w") as f:
        f.write("\n".join(L))


def main():
    os.makedirs(RESULTS, exist_ok=True)
    for p in (PRELINKER, SYNTH, REPLAY, IMAGE):
        if not os.path.exists(p):
            sys.exit("missing %s: run `make image` and build the synth_kernel and relocate_replay examples" % rel(p))
    machine = machine_facts()
    print("bench: machine: %s, %d cores, %s" % (machine["cpu_model"], machine["cores"], machine["qemu"]), flush=True)
    acc = accel_probe()
    accel = "kvm" if acc["kvm_usable"] else "tcg"
    print("bench: accelerator %s (%s)" % (accel, acc["kvm_note"]), flush=True)
    print("bench: prelinker vs rust-lld", flush=True)
    pl = prelinker_bench(machine)
    print("bench: boots (%s)" % accel, flush=True)
    b = boot_bench(accel)
    bs = boot_summary(b)
    print("bench: native replay of move + relocate", flush=True)
    replays = []
    for _ in range(RUNS):
        r = run([REPLAY, IMAGE])
        if r.returncode:
            raise RuntimeError("relocate_replay failed: " + r.stderr.decode())
        replays.append(json.loads(r.stdout))
    print("bench: presets x policies", flush=True)
    pres = preset_bench(accel)
    for pols in pres.values():
        for d in pols.values():
            if d["report"]:
                d["memory"] = memory_rows(d["report"])
            del d["report"]
    tlb = ("Not measured. " + ("KVM is usable, but no TLB-miss counter was read. " if acc["kvm_usable"] else
           "KVM is not usable here (%s) and the host CPU shows no vmx/svm flag (we run inside a VM), "
           "so there is no virtual PMU; under TCG QEMU has no TLB-miss counters for the guest. "
           "No TLB numbers are given; the mapping counts in section 4 are the available proxy."
           % acc["kvm_note"]))
    data = {"date": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), "runs": RUNS, "machine": machine,
            "accel": acc, "prelinker": pl, "boot": b, "boot_summary": bs, "presets": pres, "tlb": tlb,
            "replay": replays}
    data["machine"]["rust_lld"] = "$(rustc --print sysroot)/lib/rustlib/x86_64-unknown-linux-gnu/bin/rust-lld"
    # Keep the raw file small: per boot, the totals only (not every module).
    for runs in b["policies"].values():
        for r in runs:
            if r.get("report"):
                r["report"] = {k: v for k, v in r["report"].items() if k not in ("modules", "regions")}
    with open(os.path.join(RESULTS, "latest.json"), "w") as f:
        json.dump(data, f, indent=1)
    write_md(data)
    print("bench: wrote %s and %s" % (rel(os.path.join(RESULTS, "latest.md")),
                                      rel(os.path.join(RESULTS, "latest.json"))), flush=True)


if __name__ == "__main__":
    main()
