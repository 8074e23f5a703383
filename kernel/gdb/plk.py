"""gdb helpers for the plk kernel: load module symbols at final addresses.

The loader moves kept modules at boot, so their symbols are not where the
module objects or the image say. After the module phase the kernel
publishes each module's final class addresses in `plk_debug_modules` and
calls `plk_debug_modules_ready` (kernel/src/modules/debug.rs). This script
reads that record, and from the prelinker's plan (`link --plan-json`) the
offset of every section inside its class, and loads each kept module's
object with `add-symbol-file OBJ -s SECTION CLASS_BASE+OFFSET ...`.

    (gdb) source kernel/gdb/plk.py
    (gdb) set plk-plan build/plan.json     # the plan of the image booted
    (gdb) plk-symbols                      # now, or when the kernel publishes
    (gdb) break rtc::probe                 # a probe, at its linked address
    (gdb) continue

`plk-symbols` loads at once if the record is published. Otherwise it loads
every module of the plan at its linked address, where the kernel checks and
probes it (so a probe, failing or not, can be debugged by name), and a
breakpoint on `plk_debug_modules_ready` replaces those symbols with the
kept modules' at their final addresses when the kernel gets there,
continuing without stopping; expunged modules' symbols are then dropped.
gdb sets breakpoints again at each load (`break NAME` and `break *NAME`
alike), so one set at the start in a self-test lands where the module
runs it; the reload keeps enabled those that were. `plk-modules` lists
the record.

The record carries each module's table checksum, which the plan has too:
when the kernel publishes it, a plan of another image (a module's
checksum differs, or a module is not in it) is refused, gdb stops there,
and the module symbols loaded from that plan are unloaded. At the first
instruction there is no record yet, so that load is not checked.
"""

import json
import os
import struct

import gdb

MAGIC = int.from_bytes(b"PLKMODS\0", "little")
VERSION = 2
CLASSES = ("text", "rodata", "data")
HEADER = struct.Struct("<QIIQQ")
# The one allocated section the prelinker does not place; gdb would put it at
# 0 and name small numbers after it, so it goes to the first non-canonical
# address, which no pointer or pc can hold.
UNPLACED = {".modinfo": 0x0000_8000_0000_0000}
ENTRY = struct.Struct("<QQQQQQQ")


class PlanParameter(gdb.Parameter):
    """The prelinker plan (link --plan-json) of the image being debugged."""

    set_doc = "Set the plan JSON of the image being debugged."
    show_doc = "Show the plan JSON of the image being debugged."

    def __init__(self):
        super().__init__("plk-plan", gdb.COMMAND_DATA, gdb.PARAM_FILENAME)
        self.value = "build/plan.json"

    def get_show_string(self, svalue):
        return "The plan JSON is %s." % svalue


class ObjectsParameter(gdb.Parameter):
    """Directory of the module objects (<name>.o); empty: the plan's paths."""

    set_doc = "Set the directory holding the module objects."
    show_doc = "Show the directory holding the module objects."

    def __init__(self):
        super().__init__("plk-objects", gdb.COMMAND_DATA, gdb.PARAM_STRING)
        self.value = ""

    def get_show_string(self, svalue):
        return "Module objects are taken from %s." % (svalue or "the plan's paths")


PLAN = PlanParameter()
OBJECTS = ObjectsParameter()


def symbol_address(name):
    """Address of a kernel symbol, whatever the current language."""
    language = gdb.parameter("language")
    gdb.execute("set language c", to_string=True)
    try:
        return int(gdb.parse_and_eval("(unsigned long)&%s" % name))
    except gdb.error as e:
        raise gdb.GdbError("plk: no %s symbol (debugging build/kernel.elf?): %s" % (name, e))
    finally:
        gdb.execute("set language %s" % language, to_string=True)


def read_record():
    """The kernel's module record: a list of (name, kept, {class: addr},
    checksum), or None while the kernel has not published it."""
    at = symbol_address("plk_debug_modules")
    inf = gdb.selected_inferior()
    try:
        header = bytes(inf.read_memory(at, HEADER.size))
    except gdb.MemoryError:
        return None  # before the kernel maps itself (at the first instruction)
    magic, version, count, entries, _gen = HEADER.unpack(header)
    if magic != MAGIC:
        raise gdb.GdbError("plk: plk_debug_modules at %#x has magic %#x, not PLKMODS" % (at, magic))
    if version != VERSION:
        raise gdb.GdbError("plk: module record version %d, this script reads %d" % (version, VERSION))
    if count == 0 or entries == 0:
        return None
    raw = bytes(inf.read_memory(entries, ENTRY.size * count))
    mods = []
    for i in range(count):
        name, name_len, kept, t, r, d, checksum = ENTRY.unpack_from(raw, i * ENTRY.size)
        name = bytes(inf.read_memory(name, name_len)).decode("utf-8", "replace")
        mods.append((name, kept == 1, dict(zip(CLASSES, (t, r, d))), checksum))
    return mods


def read_plan():
    path = PLAN.value
    try:
        with open(path) as f:
            plan = json.load(f)
    except (OSError, ValueError) as e:
        raise gdb.GdbError("plk: cannot read the plan %s: %s (set plk-plan FILE)" % (path, e))
    return {m["name"]: m for m in plan["modules"]}


def check_plan(mods, plan):
    """Refuses a plan that is not the booted image's: each module of the
    record that the plan has must carry the same checksum in both (the
    table's, which the link writes into the image and the plan alike)."""
    differ = []
    for name, _kept, _addrs, checksum in mods:
        planned = plan.get(name)
        if planned is None:
            # The link's plan has every module of the table.
            differ.append("%s (not in the plan)" % name)
            continue
        try:
            want = int(planned["checksum"], 16)
        except (KeyError, TypeError, ValueError):
            raise gdb.GdbError(
                "plk: the plan %s has no checksum for %s (a hex string, as link --plan-json writes)"
                % (PLAN.value, name)
            )
        if want != checksum:
            differ.append("%s (plan %#x, kernel %#x)" % (name, want, checksum))
    if differ:
        raise gdb.GdbError(
            "plk: the plan %s is not the booted image's: modules differ: %s; "
            "set plk-plan to the plan the image's link wrote (link --plan-json)"
            % (PLAN.value, ", ".join(differ))
        )


def object_of(name, planned):
    if OBJECTS.value:
        return os.path.join(OBJECTS.value, name + ".o")
    return planned.get("file") or os.path.join("build", "modules", name + ".o")


def add_symbol_file_args(planned, addrs):
    """The `-s SECTION ADDRESS` pairs of one module: every placed section at
    its class's final address plus its offset in the class."""
    sections = planned.get("sections")
    if sections is None:
        raise gdb.GdbError(
            "plk: the plan has no section offsets for %s (a plan from `link --plan-json` has them)"
            % planned["name"]
        )
    args = ["-s %s %#x" % kv for kv in UNPLACED.items()]
    for s in sections:
        args.append("-s %s %#x" % (s["name"], addrs[s["class"]] + s["offset"]))
    return " ".join(args)


class KeptEnabled:
    """Keeps enabled the user breakpoints that a reload disables.

    gdb sets every breakpoint again when symbol files come and go (a
    `break *NAME` too: its address follows the symbol), but it disables
    one whose location was in a removed symbol file. Those that were
    enabled before the reload are enabled again after it."""

    def __enter__(self):
        self.enabled = {b.number for b in gdb.breakpoints() if b.is_valid() and b.enabled}
        return self

    def __exit__(self, *exc):
        for b in gdb.breakpoints():
            if b.is_valid() and b.number in self.enabled and not b.enabled:
                b.enabled = True
        return False


class Loader:
    """Loads and unloads module symbol files."""

    def __init__(self):
        self.loaded = {}  # module name -> object path

    def unload_all(self):
        for name, path in list(self.loaded.items()):
            gdb.execute("remove-symbol-file %s" % path, to_string=True)
            del self.loaded[name]

    def load(self, only=(), quiet=False):
        """Loads the kept modules (or those of `only`) at the final addresses
        of the kernel's record; False if it is not published yet."""
        mods = read_record()
        if mods is None:
            return False
        plan = read_plan()
        check_plan(mods, plan)
        entries = []
        for name, kept, addrs, _checksum in mods:
            if not kept or (only and name not in only):
                continue
            planned = plan.get(name)
            if planned is None:
                raise gdb.GdbError("plk: module %s is not in the plan %s" % (name, PLAN.value))
            entries.append((name, planned, addrs))
        self.replace(entries, only, "not kept or not in the record", quiet)
        return True

    def load_linked(self, only=(), quiet=False):
        """Loads every module of the plan (or those of `only`) at the
        addresses it was linked at, where the kernel probes it."""
        entries = [
            (name, planned, {c: planned["classes"][c]["addr"] for c in CLASSES})
            for name, planned in read_plan().items()
            if not only or name in only
        ]
        self.replace(entries, only, "not in the plan %s" % PLAN.value, quiet)

    def replace(self, entries, only, why_missing, quiet):
        """Unloads every module and loads `entries` ((name, plan entry,
        class addresses)) instead, keeping enabled the breakpoints that
        were; an error names the modules of `only` not among them."""
        with KeptEnabled():
            self.unload_all()
            for name, planned, addrs in entries:
                self.add(name, planned, addrs, quiet)
        missing = [n for n in only if n not in self.loaded]
        if missing:
            raise gdb.GdbError("plk: %s: %s" % (why_missing, ", ".join(missing)))

    def add(self, name, planned, addrs, quiet):
        # Absolute, as gdb names the objfile: remove-symbol-file matches it.
        path = os.path.abspath(object_of(name, planned))
        if not os.path.isfile(path):
            raise gdb.GdbError("plk: %s: no such module object" % path)
        cmd = "add-symbol-file %s %s" % (path, add_symbol_file_args(planned, addrs))
        gdb.execute(cmd, to_string=True)
        self.loaded[name] = path
        if not quiet:
            gdb.write(
                "plk: %s: text %#x rodata %#x data %#x (%s)\n"
                % (name, addrs["text"], addrs["rodata"], addrs["data"], path)
            )


LOADER = Loader()


class ReadyBreakpoint(gdb.Breakpoint):
    """Loads the symbols when the kernel publishes the record; never stops."""

    def __init__(self, only):
        super().__init__("plk_debug_modules_ready", internal=True)
        self.only = only

    def stop(self):
        try:
            LOADER.load(self.only)
        except gdb.GdbError as e:
            # The symbols at linked addresses came from the same plan.
            with KeptEnabled():
                LOADER.unload_all()
            gdb.write("%s; module symbols unloaded\n" % e)
            return True
        return False


class PlkSymbols(gdb.Command):
    """Load the symbols of the kept modules at their final addresses.

Usage: plk-symbols [MODULE...]

Reads the kernel's record of where each module lives (plk_debug_modules)
and the plan (set plk-plan FILE, default build/plan.json), and loads every
kept module's object (or only the MODULEs named) with one -s per section.
If the kernel has not published the record yet, every module (or each
MODULE) is loaded at its linked address from the plan, where it is probed,
and the kept ones are loaded again at their final addresses when the
kernel publishes them (a breakpoint on plk_debug_modules_ready that does
not stop)."""

    def __init__(self):
        super().__init__("plk-symbols", gdb.COMMAND_FILES)
        self.breakpoint = None

    def invoke(self, arg, from_tty):
        only = tuple(gdb.string_to_argv(arg))
        if self.breakpoint is not None and self.breakpoint.is_valid():
            self.breakpoint.delete()
        self.breakpoint = None
        if LOADER.load(only):
            return
        # Not published yet: the linked addresses now, for the probes, and
        # the final ones when the kernel publishes them. (Armed only then: a
        # hook armed at the stop it belongs to would fire again on resuming
        # and reload the symbols under breakpoints set meanwhile.)
        LOADER.load_linked(only, quiet=True)
        self.breakpoint = ReadyBreakpoint(only)
        gdb.write(
            "plk: %d modules loaded at their linked addresses, where they are probed; "
            "the kept ones are loaded at their final addresses when the kernel publishes them\n"
            % len(LOADER.loaded)
        )


class PlkModules(gdb.Command):
    """List the kernel's module record: name, result, final class addresses, checksum."""

    def __init__(self):
        super().__init__("plk-modules", gdb.COMMAND_DATA)

    def invoke(self, arg, from_tty):
        mods = read_record()
        if mods is None:
            gdb.write("plk: the kernel has not published its modules yet\n")
            return
        for name, kept, a, checksum in mods:
            if kept:
                gdb.write(
                    "%-16s kept     text %#x rodata %#x data %#x checksum %#018x\n"
                    % (name, a["text"], a["rodata"], a["data"], checksum)
                )
            else:
                gdb.write("%-16s expunged checksum %#018x\n" % (name, checksum))


PlkSymbols()
PlkModules()
