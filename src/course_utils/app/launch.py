"""Serving the assistant on this machine only, and stopping it cleanly.

:func:`launch_app` serves the UI on 127.0.0.1 (never on other interfaces, never through a Gradio
share link) and returns a handle that stops it::

    with launch_app("llamacpp") as app:        # a free port unless port= is given
        print(app.url)                          # open it in a browser, or use gradio_client
    # stopped here

From a terminal: ``course app`` (``--docs FOLDER`` for your own documents, ``--port 0`` for any free
port); Ctrl-C stops it within seconds from any state (:class:`ShutdownSignals`, :func:`serve_forever`).
Apps layer. Taught in lesson 11.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..errors import InvalidOption
from .chat import DEFAULT_SYSTEM_PROMPT, ChatApp
from .ui import import_gradio

if TYPE_CHECKING:
    from ..backends.base import Backend
    from ..speech import Transcriber

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class AppHandle:
    """A running app: ``url``, the :class:`ChatApp` (``app``), and :meth:`close` (also on leaving ``with``)."""

    def __init__(self, demo: Any, app: ChatApp, url: str, owns_backend: bool) -> None:
        self.demo, self.app, self.url, self._owns_backend = demo, app, url, owns_backend
        self.closed = False

    def close(self, timeout_s: float = 2.0) -> None:
        """Stop the server and free the port (and the model, if :func:`launch_app` loaded it). Safe twice.

        In this order: replies in flight stop at their next token and we wait (at most ``timeout_s``)
        until none uses the model; the web server stops, waiting at most a second for open
        connections (uvicorn would otherwise wait for every one of them); then the model is freed,
        but only if no reply uses it any more (freeing a llama.cpp model under a running generation
        crashes the process).
        """
        if self.closed:
            return
        self.closed = True
        self.app.cancel()
        idle = self.app.wait_idle(timeout_s)  # the stopped reply's last update reaches its browser tab
        server = getattr(self.demo, "server", None)
        if server is not None:
            server.config.timeout_graceful_shutdown = 1
        # connections still open after that second are cut on purpose: not an error worth a traceback
        logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)
        self.demo.close(verbose=False)
        self.app.close()
        if self._owns_backend and idle:
            self.app.backend.close()

    def __enter__(self) -> AppHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<AppHandle {self.url} {'closed' if self.closed else 'running'}>"


def launch_app(backend: Backend | str = "auto", *, model: str | None = None, documents: Any = None, voice: bool = True,
               port: int = 0, host: str = "127.0.0.1", system_prompt: str = DEFAULT_SYSTEM_PROMPT,
               store_dir: str | os.PathLike | None = None, transcriber: Transcriber | None = None) -> AppHandle:
    """Start the app in a background thread and return its handle (``.url``, ``.close()``).

    ``backend``: a backend object (left open on close) or a name for :func:`get_backend` (closed with
    the app). ``port=0`` picks a free port. ``host`` must be a loopback address: the app has no login,
    so it must not be reachable from other machines.
    """
    if host not in LOOPBACK:
        raise InvalidOption(f"host={host!r} would expose the app to other machines", fix="use host='127.0.0.1' (the app has no login)")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port < 65536:
        raise InvalidOption(f"port must be a whole number from 0 to 65535, got {port!r}", fix="use port=0 for any free port, or e.g. 7860")
    gr = import_gradio()
    owns = isinstance(backend, str)
    if owns:
        from ..backends import get_backend

        backend = get_backend(backend, model=model)
    demo = None
    try:
        app = ChatApp(backend, documents=documents, transcriber=(transcriber or True) if voice else False,
                      system_prompt=system_prompt, store_dir=store_dir)
        demo = app.build_ui()
        demo.queue(default_concurrency_limit=1)
        bind = host if host != "localhost" else "127.0.0.1"
        try:
            demo.launch(server_name=bind, server_port=port or free_port(bind), share=False, inbrowser=False,
                        prevent_thread_lock=True, quiet=True, show_error=True, inline=False, ssr_mode=False,
                        mcp_server=False, pwa=False, enable_monitoring=False, footer_links=["api"],
                        theme=gr.themes.Default())
        except OSError as err:
            raise InvalidOption(f"cannot listen on {bind}:{port} ({err})", fix="use another --port, or --port 0 for any free port") from None
    except BaseException:  # an error, or Ctrl-C while starting: leave nothing running
        if demo is not None:
            demo.close(verbose=False)
        if owns:
            backend.close()
        raise
    url = f"http://{bind if ':' not in bind else f'[{bind}]'}:{demo.server_port}/"
    return AppHandle(demo, app, url, owns)


class ShutdownSignals:
    """Ctrl-C and SIGTERM for a server process, installed explicitly.

    Python's own SIGINT handler is not enough: a process started with SIGINT ignored (what a CI
    runner, or ``cmd &`` in a script, does to its children) would never notice Ctrl-C. The first
    signal sets :attr:`requested`; while the server is still starting (``serving`` is False) it
    also raises KeyboardInterrupt, so loading stops at once. A second signal ends the process.
    """

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.serving = False
        self._previous: dict[int, Any] = {}

    def install(self) -> ShutdownSignals:
        if threading.current_thread() is threading.main_thread():  # Python allows handlers only there
            self._previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.requested.is_set():
            os._exit(128 + signum)  # a second Ctrl-C: the user means it
        self.requested.set()
        if not self.serving:
            raise KeyboardInterrupt

    def __enter__(self) -> ShutdownSignals:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.restore()


def serve_forever(handle: AppHandle, poll_s: float = 0.2, grace_s: float = 4.5, signals: ShutdownSignals | None = None) -> None:
    """Block until Ctrl-C or SIGTERM, then close the app (at most ``grace_s`` seconds, then the
    process exits): what ``course app`` runs. Pass ``signals`` when the caller installed them earlier."""
    with contextlib.ExitStack() as stack:
        if signals is None:
            signals = stack.enter_context(ShutdownSignals())
        signals.serving = True
        try:
            while not handle.closed and not signals.requested.wait(poll_s):
                pass
        finally:
            with exit_if_slower_than(grace_s):
                handle.close()


def exit_watchdog(seconds: float) -> threading.Timer:
    """End the process (exit status 124, with a message) unless it is gone within ``seconds``.

    A daemon timer: it keeps running while the interpreter waits for other threads at exit, so it
    also guards that last step. Cancel it if the process is meant to go on.
    """
    def give_up() -> None:
        print(f"shutdown took longer than {seconds:.1f} s: exiting now", flush=True)
        os._exit(124)

    timer = threading.Timer(seconds, give_up)
    timer.daemon = True
    timer.start()
    return timer


@contextlib.contextmanager
def exit_if_slower_than(seconds: float) -> Iterator[None]:
    """Run the block under :func:`exit_watchdog`."""
    timer = exit_watchdog(seconds)
    try:
        yield
    finally:
        timer.cancel()
