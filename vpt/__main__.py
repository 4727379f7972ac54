import atexit
import os
import sys
import threading

from vpt.cli import main


def exit_without_teardown(code: int) -> None:
    """Exit with `code` after the atexit handlers and a flush, skipping the interpreter's module
    teardown: with torch, transformers and timm imported that teardown alone takes ~2.6 s of CPU
    per process, paid by every job of the workflow. Outputs are already complete (written by
    rename), so nothing is lost. Only as the process's own entry point (`python -m vpt`): run in
    another process's interpreter (vpt.launch's inline backend, a test, under runpy) it raises
    SystemExit like any module, and with another non-daemon thread still running it exits normally."""
    entry_point = sys.modules["__main__"].__dict__ is globals()  # runpy.run_module runs us in a fresh namespace
    if not entry_point or any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)
    atexit._run_exitfuncs()  # logging.shutdown, tempfile cleanup, torch.distributed and library hooks
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


exit_without_teardown(main())
