# gdb extension for fiberized programs: gdb sees carriers (the OS threads),
# not the program's threads, which are fibers.  This lists the fibers and
# lets gdb look at a parked one as if it were a thread.
#
#   (gdb) source /path/to/scripts/fiberize-gdb.py
#   (gdb) info fibers            every live fiber: id, tid, name, state, where
#   (gdb) fiber N                gdb's view moves to fiber N: bt, frame, print
#   (gdb) fiber restore          back to the carrier's own registers
#
# Works on a live process (attached or started under gdb) and on a core
# file (gcore, or a crash).  It reads libfiberize.so's own variables, so the
# library must have its debug information (the default build has it).
#
# How `fiber N` works: a parked fiber's registers are where fz_switch
# (runtime/switch.S) pushed them on the fiber's stack, at fiber->sp:
#   sp+0 MXCSR and x87 control word, sp+8 r15, +16 r14, +24 r13, +32 r12,
#   +40 rbx, +48 rbp, +56 the return address; the stack pointer after the
#   switch returns is sp+64.
# On a live process the command saves the selected thread's registers,
# writes the fiber's into it and flushes gdb's frame cache, so every frame
# command unwinds the fiber's stack, from frame #0 on.  These are the
# carrier's real registers: run `fiber restore` before `continue`, `step`
# or `detach` (the extension also restores them by itself when the program
# is about to run).  A running fiber is shown by switching to its carrier's
# thread instead.
#
# gdb cannot write registers of a core file, so there a frame unwinder
# (gdb.unwinder) stands in: while a fiber is shown, the innermost frames of
# the selected thread stay the carrier's (its pc and sp are in the core),
# and the unwinder says that the carrier's innermost real frame was called
# with the fiber's saved registers, so the frames under it are the fiber's
# own stack (`fiber N` says from which frame number on; the carrier's
# frames above may show wrong arguments meanwhile).  On a live process
# loading the registers is better (frame #0 is the fiber, so `finish` and
# the innermost frame's locals work), so both ways are kept.
#
# gcore and fiber stacks: their guard pages are page-table markers
# (MADV_GUARD_INSTALL, runtime/stack.c); reads through /proc/PID/mem fail
# on them and gdb's gcore then leaves the whole stack out (zeros in the
# core, with a "Memory read failed" warning).  The extension's `gcore`
# runs gdb's, then copies those mappings, minus the guard pages, from the
# stopped process into the core.  Rejected: lifting the guards from inside
# the program around the dump -- gdb's inferior calls fail on this machine
# ("Couldn't write extended state status"), and a program that runs code
# for its debugger can be stopped anywhere, locks held.  A core the kernel
# writes (a crash) has the stacks already: it skips guard pages itself.

import bisect
import os
import struct

import gdb
import gdb.unwinder

STATE_NAMES = {0: "runnable", 1: "running", 2: "parked", 3: "done"}
FZ_FIBER_DONE = 3
SAVED = ["r15", "r14", "r13", "r12", "rbx", "rbp"]  # from sp+8 upwards


def _value(name):
    sym = gdb.lookup_static_symbol(name) or gdb.lookup_global_symbol(name)
    if sym is None:
        raise gdb.GdbError(
            "fiberize: no symbol %s: is libfiberize.so loaded, with debug info?" % name
        )
    return sym.value()


def _fibers():
    """Every fiber struct the runtime made (a list it never frees)."""
    f = _value("all_fibers")
    seen = 0
    while int(f) != 0:
        yield f.dereference()
        f = f.dereference()["all_next"]
        seen += 1
        if seen > 10000000:
            raise gdb.GdbError("fiberize: fiber list does not end (corrupt memory?)")


def _live(f):
    return int(f["state"]) != FZ_FIBER_DONE and int(f["tid"]) != 0


def _where(pc):
    block_fn = gdb.current_progspace().block_for_pc(pc)
    if block_fn is not None and block_fn.function is not None:
        return str(block_fn.function.print_name)
    sym = gdb.execute("info symbol 0x%x" % pc, to_string=True).strip()
    return sym.split(" in section")[0] if "No symbol" not in sym else "0x%x" % pc


def _read_u64(addr):
    mem = gdb.selected_inferior().read_memory(addr, 8)
    return int.from_bytes(bytes(mem), "little")


def _saved_regs(f):
    sp = int(f["sp"])
    regs = {name: _read_u64(sp + 8 * (i + 1)) for i, name in enumerate(SAVED)}
    regs["rip"] = _read_u64(sp + 56)
    regs["rsp"] = sp + 64
    return regs


def _carrier_thread(f):
    """The gdb thread of the carrier running fiber f, or None."""
    tid = int(f["carrier"].dereference()["tid"]) if int(f["carrier"]) else 0
    for t in gdb.selected_inferior().threads():
        if t.ptid[1] == tid:
            return t
    return None


def _flush():
    gdb.execute("maintenance flush register-cache", to_string=True)


def _set_regs(regs):
    # Registers are set in the innermost frame: in an outer frame gdb would
    # write them into that frame's save slots on the stack.
    gdb.newest_frame().select()
    for reg, val in regs.items():
        gdb.execute("set $%s = %d" % (reg, val), to_string=True)
    _flush()


def _get_regs(names):
    gdb.newest_frame().select()
    return {r: int(gdb.parse_and_eval("$" + r)) & 0xFFFFFFFFFFFFFFFF for r in names}


def _in_runtime(frame):
    """True for frames of libfiberize.so itself (interposers, the runtime)."""
    lib = gdb.solib_name(frame.pc())
    return lib is not None and "libfiberize" in lib


def _walk(frame):
    """'call: fn <- caller' from a parked fiber's innermost frame: the
    runtime call it waits in, then its own two innermost functions."""
    call, mine = None, []
    depth = 0
    while frame is not None and depth < 64 and len(mine) < 2:
        name = frame.name() or "0x%x" % frame.pc()
        if _in_runtime(frame):
            if not mine:
                call = name
        else:
            mine.append(name)
        frame, depth = frame.older(), depth + 1
    return "%s: %s" % (call or "?", " <- ".join(mine) if mine else "(runtime)")


def _core_show(thread, regs):
    """On a core: make the selected thread's frames run on into the fiber
    whose saved registers are regs (_CoreFiberUnwinder); returns the
    fiber's innermost frame, or None (then nothing is shown)."""
    gdb.newest_frame().select()
    pc = int(gdb.parse_and_eval("$pc")) & 0xFFFFFFFFFFFFFFFF
    sp = int(gdb.parse_and_eval("$sp")) & 0xFFFFFFFFFFFFFFFF
    _CoreFiberUnwinder.shown = (thread.num, pc, sp, regs)
    gdb.invalidate_cached_frames()
    frame = gdb.newest_frame()
    while frame is not None and frame.pc() != regs["rip"]:
        frame = frame.older()
    if frame is None:
        _CoreFiberUnwinder.shown = None
        gdb.invalidate_cached_frames()
    return frame


def _summary_core(regs):
    """_summary for a core file, through the unwinder."""
    try:
        frame = _core_show(gdb.selected_thread(), regs)
        return _walk(frame) if frame is not None else _where(regs["rip"])
    except (gdb.error, gdb.MemoryError) as e:
        return "(%s)" % e
    finally:
        _CoreFiberUnwinder.shown = None
        gdb.invalidate_cached_frames()


def _summary(regs):
    """'call: fn <- caller' for a parked fiber, walking its stack with its
    registers loaded into the selected thread (live processes only)."""
    saved = _get_regs(regs.keys())
    try:
        _set_regs(regs)
        return _walk(gdb.newest_frame())
    except (gdb.error, gdb.MemoryError) as e:
        return "(%s)" % e
    finally:
        _set_regs(saved)


def _live_process():
    """A running process whose registers gdb may write (not a core file)."""
    inf = gdb.selected_inferior()
    if inf.pid == 0 or gdb.selected_thread() is None:
        return False
    conn = getattr(inf, "connection", None)
    return conn is None or conn.type != "core"


class _FrameId:
    """What gdb.unwinder wants as a frame id (gdb 13 has no class for it).
    The carrier's frame is given the fiber's saved stack pointer (where
    fz_switch's pushes begin), below every fiber frame: gdb checks that
    each older frame's stack address is outer to the newer one's, and the
    carrier's real sp, on another stack, would stop the backtrace with
    'previous frame inner to this frame'."""

    def __init__(self, sp, pc):
        # gdb 13 takes only gdb.Value here, not Python ints
        u64 = gdb.lookup_type("unsigned long")
        self.sp, self.pc = gdb.Value(sp).cast(u64), gdb.Value(pc).cast(u64)


class _CoreFiberUnwinder(gdb.unwinder.Unwinder):
    """On a core, while `fiber N` shows a parked fiber: the selected
    thread's innermost frame (the carrier's own pc and sp) unwinds to the
    fiber's saved registers."""

    shown = None  # (thread num, carrier pc, carrier sp, {reg: value})

    def __init__(self):
        super().__init__("fiberize-core-fiber")

    def __call__(self, pending):
        # The innermost frame gdb asks Python about: frame #0, or the
        # frame under #0 when #0 is inlined code (read's syscall).  It is
        # the one with the carrier's own pc and sp.
        shown = _CoreFiberUnwinder.shown
        if shown is None or pending.level() > 4:
            return None
        num, pc, sp, regs = shown
        thread = gdb.selected_thread()
        if thread is None or thread.num != num:
            return None
        if int(pending.read_register("rip")) != pc or int(pending.read_register("rsp")) != sp:
            return None
        info = pending.create_unwind_info(_FrameId(regs["rsp"] - 64, pc))
        u64 = gdb.lookup_type("unsigned long")
        for reg, val in regs.items():
            info.add_saved_register(reg, gdb.Value(val).cast(u64))
        return info


def _load_segments(path):
    """(vaddr, filesz, offset) of every PT_LOAD of an ELF64 core."""
    with open(path, "rb") as core:
        head = core.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:
            raise gdb.GdbError("fiberize: %s is not an ELF64 core" % path)
        phoff, = struct.unpack_from("<Q", head, 32)
        phentsize, phnum = struct.unpack_from("<HH", head, 54)
        core.seek(phoff)
        table = core.read(phentsize * phnum)
    segs = []
    for i in range(phnum):
        p_type, _, p_offset, p_vaddr, _, p_filesz = struct.unpack_from(
            "<IIQQQQ", table, i * phentsize
        )
        if p_type == 1 and p_filesz:
            segs.append((p_vaddr, p_filesz, p_offset))
    return segs


def _copy_range(inf, core, seg, low, high):
    """Copy [low, high) of the live process into core segment seg, 64 KiB
    at a time, page by page where a piece does not read (a guard)."""
    addr = low
    while addr < high:
        n = min(65536, high - addr)
        try:
            pieces = [(addr, bytes(inf.read_memory(addr, n)))]
        except gdb.MemoryError:
            pieces = []
            for page in range(addr, addr + n, 4096):
                try:
                    pieces.append((page, bytes(inf.read_memory(page, min(4096, high - page)))))
                except gdb.MemoryError:
                    pass
        for at, data in pieces:
            core.seek(seg[2] + at - seg[0])
            core.write(data)
        addr += n


def _fill_guarded(path):
    """Write into a core gdb just wrote the mappings it left out.  gdb's
    gcore reads each mapping whole; a guard marker (MADV_GUARD_INSTALL,
    runtime/stack.c: every fiber stack, the carriers' idle stacks) makes
    that read fail, and gdb leaves the segment as zeros.  Such a segment
    is one whose first page does not read; the rest reads fine page by
    page and is copied in here (adjacent stacks may share one mapping, with
    guards inside it: those pages are skipped).  Of a parked fiber's stack
    only the part from just below its saved sp (red zone included) up is
    copied: what lies lower is unused, and with many fibers reading it
    would be slow.  Returns the number of segments written."""
    inf = gdb.selected_inferior()
    guarded = []
    for seg in _load_segments(path):
        try:
            inf.read_memory(seg[0], 1)
        except gdb.MemoryError:
            guarded.append(seg)
    if not guarded:
        return 0
    guarded.sort()
    skips = {seg: [] for seg in guarded}
    for f in _fibers():
        if not _live(f) or int(f["state"]) not in (0, 2):
            continue
        base, sp = int(f["stack"]["base"]), int(f["sp"])
        i = bisect.bisect_right(guarded, (sp, float("inf"), 0)) - 1
        if i >= 0 and guarded[i][0] <= base <= sp < guarded[i][0] + guarded[i][1]:
            skips[guarded[i]].append((base, max(base, (sp - 512) & ~4095)))
    with open(path, "r+b") as core:
        for seg in guarded:
            at = seg[0]
            for low, high in sorted(skips[seg]) + [(seg[0] + seg[1], seg[0] + seg[1])]:
                if low > at:
                    _copy_range(inf, core, seg, at, low)
                at = max(at, high)
    return len(guarded)


class GcoreCommand(gdb.Command):
    """gcore [FILE]: gdb's gcore (generate-core-file), then the fiber stacks
    are written into the core (gdb alone leaves them out: see the top of
    scripts/fiberize-gdb.py)."""

    def __init__(self):
        super().__init__("gcore", gdb.COMMAND_FILES, gdb.COMPLETE_FILENAME)

    def invoke(self, arg, from_tty):
        FiberCommand.restore()
        arg = arg.strip()
        path = arg or "core.%d" % gdb.selected_inferior().pid
        gdb.execute("generate-core-file %s" % path, from_tty=from_tty)
        path = os.path.expanduser(path)  # as gdb's own gcore reads ~
        if not _live_process():
            return
        try:
            n = _fill_guarded(path)
        except (OSError, gdb.error) as e:
            raise gdb.GdbError("fiberize: fiber stacks not written into %s: %s" % (path, e))
        gdb.write("fiberize: %d guarded mappings (fiber stacks) written into %s\n" % (n, path))


class InfoFibers(gdb.Command):
    """List the fibers of a fiberized program: id, tid (what gettid() says
    in the program), name, state, and where a parked one waits."""

    def __init__(self):
        super().__init__("info fibers", gdb.COMMAND_STATUS)

    def invoke(self, arg, from_tty):
        n = 0
        live = _live_process()
        FiberCommand.restore()
        for f in _fibers():
            if not _live(f):
                continue
            n += 1
            state = STATE_NAMES.get(int(f["state"]), "?")
            name = f["name"].string(length=16).split("\0")[0]
            where = ""
            if int(f["state"]) in (0, 2):
                try:
                    regs = _saved_regs(f)
                    where = "in " + (_summary(regs) if live else _summary_core(regs))
                    if regs["rip"] == 0:
                        where = "(its stack is not in this core)"
                except gdb.MemoryError:
                    where = "(its stack is not readable)"
            elif int(f["state"]) == 1 and int(f["carrier"]):
                where = "on carrier %d (tid %d)" % (
                    int(f["carrier"].dereference()["index"]),
                    int(f["carrier"].dereference()["tid"]),
                )
            main = " main" if bool(f["is_main"]) else ""
            gdb.write(
                "  %-6d tid %-10d %-16s %-9s%s %s\n"
                % (int(f["id"]), int(f["tid"]), '"%s"' % name, state, main, where)
            )
        gdb.write("%d fibers\n" % n)


class FiberCommand(gdb.Command):
    """fiber N: look at fiber N's stack (bt, frame, print work on it).
    fiber restore: back to the selected thread's own registers."""

    saved = None  # (thread, {reg: value}) while a fiber is shown

    def __init__(self):
        super().__init__("fiber", gdb.COMMAND_STACK)

    @classmethod
    def restore(cls):
        if _CoreFiberUnwinder.shown is not None:
            _CoreFiberUnwinder.shown = None
            gdb.invalidate_cached_frames()
            return True
        if cls.saved is None:
            return False
        thread, regs = cls.saved
        cls.saved = None
        if thread.is_valid():
            previous = gdb.selected_thread()
            thread.switch()
            _set_regs(regs)
            if previous is not None and previous.is_valid():
                previous.switch()
        return True

    def invoke(self, arg, from_tty):
        arg = arg.strip()
        if arg in ("restore", "restore quiet"):
            if not self.restore() and arg == "restore":
                gdb.write("fiber: no fiber is shown\n")
            return
        try:
            want = int(arg, 0)
        except ValueError:
            raise gdb.GdbError("usage: fiber N | fiber restore")
        target = None
        for f in _fibers():
            if _live(f) and int(f["id"]) == want:
                target = f
                break
        if target is None:
            raise gdb.GdbError("fiber: no live fiber %d (see info fibers)" % want)
        self.restore()
        if int(target["state"]) == 1:
            t = _carrier_thread(target)
            if t is None:
                raise gdb.GdbError("fiber %d runs, but its carrier is not a thread here" % want)
            t.switch()
            gdb.write("fiber %d is running: thread %d is its carrier\n" % (want, t.num))
            gdb.execute("frame", to_string=False)
            return
        if int(target["state"]) != 2 and int(target["state"]) != 0:
            raise gdb.GdbError("fiber %d has no saved context" % want)
        regs = _saved_regs(target)
        thread = gdb.selected_thread()
        if thread is None:
            raise gdb.GdbError("fiber: no thread selected")
        if not _live_process():
            frame = _core_show(thread, regs)
            if frame is None:
                raise gdb.GdbError("fiber %d: its stack is not in this core" % want)
            gdb.write(
                "fiber %d (%s), core file: the innermost frames stay thread %d's own "
                "(gdb cannot load registers into a core); from frame #%d down they are "
                "the fiber's; `fiber restore` to go back\n"
                % (want, STATE_NAMES.get(int(target["state"]), "?"), thread.num, frame.level())
            )
            frame.select()
            gdb.execute("frame", to_string=False)
            return
        FiberCommand.saved = (thread, _get_regs(regs.keys()))
        _set_regs(regs)
        gdb.write(
            "fiber %d (%s): registers of its last switch; `fiber restore` to go back\n"
            % (want, STATE_NAMES.get(int(target["state"]), "?"))
        )
        gdb.execute("frame", to_string=False)


def _before_run(*_):
    # The program must never run with a fiber's registers in a carrier.
    FiberCommand.restore()


InfoFibers()
FiberCommand()
GcoreCommand()
gdb.unwinder.register_unwinder(None, _CoreFiberUnwinder(), replace=True)
# Every command that lets the program run, or writes its state out, puts
# the carrier's registers back first (gdb runs a user-defined hook-NAME
# before the command NAME).
for _cmd in ("continue", "next", "step", "stepi", "nexti", "finish", "until", "advance",
             "jump", "signal", "detach", "kill", "run", "start", "quit"):
    gdb.execute("define hook-%s\nfiber restore quiet\nend" % _cmd, to_string=True)
# generate-core-file by its long name (gcore, above, is the extension's own
# and also fills in the fiber stacks).
gdb.execute("define hook-generate-core-file\nfiber restore quiet\nend", to_string=True)
if hasattr(gdb.events, "gdb_exiting"):  # gdb 12+: batch mode's detach at exit
    gdb.events.gdb_exiting.connect(_before_run)
