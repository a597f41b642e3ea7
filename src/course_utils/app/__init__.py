"""A local assistant app: a Gradio chat UI over any course backend, on this machine only.

* :mod:`.chat`: :class:`ChatApp`, the logic (streaming replies, documents mode with numbered
  sources, voice questions, bad input as messages), usable without a browser;
* :mod:`.ui`: the Gradio page wired to it;
* :mod:`.launch`: :func:`launch_app` on 127.0.0.1, and a clean stop on Ctrl-C.

Apps layer. Taught in lesson 11.
"""

from .chat import (
    DEFAULT_SYSTEM_PROMPT,
    MODES,
    SOURCE_CHARS,
    SOURCES_HEADING,
    ChatApp,
    ReplyStats,
    message_text,
    model_messages,
    normalize_history,
)
from .launch import (
    LOOPBACK,
    AppHandle,
    ShutdownSignals,
    exit_if_slower_than,
    exit_watchdog,
    free_port,
    launch_app,
    serve_forever,
)
from .ui import build_ui, import_gradio

__all__ = [
    "DEFAULT_SYSTEM_PROMPT", "LOOPBACK", "MODES", "SOURCE_CHARS", "SOURCES_HEADING", "AppHandle", "ChatApp", "ReplyStats", "ShutdownSignals", "build_ui",
    "exit_if_slower_than", "exit_watchdog", "free_port", "import_gradio", "launch_app", "message_text", "model_messages",
    "normalize_history", "serve_forever",
]
