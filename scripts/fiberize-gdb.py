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
# The command saves the selected thread's registers, writes the fiber's
# into it and flushes gdb's frame cache, so every frame command unwinds the
# fiber's stack.  On a live process these are the carrier's real registers:
# run `fiber restore` before `continue`, `step` or `detach` (the extension
# also restores them by itself when the program is about to run).  A
# running fiber is shown by switching to its carrier's thread instead.
#
# Rejected: a gdb frame unwinder (gdb.unwinder) that splices the fiber's
# frames under a carrier's -- it cannot make a parked fiber the innermost
# frame, which is what `frame`, `print` of locals and `finish` need.

import gdb

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


def _summary(regs):
    """'call: fn <- caller' for a parked fiber, walking its stack with its
    registers loaded into the selected thread (live processes only)."""
    saved = _get_regs(regs.keys())
    try:
        _set_regs(regs)
        frame, call, mine = gdb.newest_frame(), None, []
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
                    where = "in " + (_summary(regs) if live else _where(regs["rip"]))
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
            raise gdb.GdbError(
                "fiber: gdb cannot load a fiber's registers on a core file; "
                "use it on a live process (info fibers works on both)"
            )
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
# Every command that lets the program run, or writes its state out, puts
# the carrier's registers back first (gdb runs a user-defined hook-NAME
# before the command NAME).
for _cmd in ("continue", "next", "step", "stepi", "nexti", "finish", "until", "advance",
             "jump", "signal", "detach", "kill", "run", "start", "gcore",
             "generate-core-file", "quit"):
    gdb.execute("define hook-%s\nfiber restore quiet\nend" % _cmd, to_string=True)
if hasattr(gdb.events, "gdb_exiting"):  # gdb 12+: batch mode's detach at exit
    gdb.events.gdb_exiting.connect(_before_run)
