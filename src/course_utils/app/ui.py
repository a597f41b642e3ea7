"""The assistant's web page: Gradio Blocks wired to a :class:`~course_utils.app.chat.ChatApp`.

Gradio's usage analytics are switched off and nothing is fetched from the internet: the fonts and
scripts come from the installed gradio package. Apps layer. Taught in lesson 11.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from .chat import MODES

if TYPE_CHECKING:
    from .chat import ChatApp


def import_gradio() -> Any:
    """Import gradio with its usage analytics off (the setting is read at import and at launch)."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import gradio as gr
    except ImportError:
        from ..errors import BackendUnavailable

        raise BackendUnavailable("gradio is not installed", fix="pip install gradio") from None
    return gr


def build_ui(app: ChatApp) -> Any:
    """The Gradio Blocks: chat, message box, settings, voice input. API names: ``/chat``, ``/voice``."""
    gr = import_gradio()
    info = app.backend.info()
    with gr.Blocks(title="Local LLM Lab · assistant", analytics_enabled=False) as demo:
        gr.Markdown(f"### Local assistant · `{info.model}` on {info.name} ({info.device})")
        with gr.Row():
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(elem_id="chatbot", label="Chat", height=380, buttons=["copy"])
                with gr.Row():
                    box = gr.Textbox(elem_id="message", placeholder="Ask something, then press Enter", show_label=False, scale=5)
                    send = gr.Button("Send", elem_id="send", variant="primary", scale=1, min_width=80)
                status = gr.Markdown("ready", elem_id="status")
                audio = gr.Audio(sources=["microphone", "upload"], type="filepath", label="Ask by voice",
                                 elem_id="voice", visible=app.transcriber is not None)
            with gr.Column(scale=2):
                mode = gr.Radio(list(MODES), value="chat", label="Mode", elem_id="mode",
                                info=f"documents: answers from {app.describe_documents()}, with numbered sources")
                system = gr.Textbox(app.system_prompt, label="System prompt (chat mode)", lines=3, elem_id="system")
                temperature = gr.Slider(0.0, 1.5, value=0.0, step=0.05, label="Temperature (0 = greedy)", elem_id="temperature")
                max_tokens = gr.Slider(16, 512, value=128, step=16, label="Max tokens", elem_id="max-tokens")
                clear = gr.Button("Clear chat", elem_id="clear")
        settings = [system, temperature, max_tokens, mode]
        outputs = [chatbot, status, box]
        # one queue for everything that runs the model ("model"): requests wait their turn
        box.submit(app.respond, [box, chatbot, *settings], outputs, api_name="chat", concurrency_id="model", concurrency_limit=1)
        send.click(app.respond, [box, chatbot, *settings], outputs, api_name=False, concurrency_id="model", concurrency_limit=1)
        for event in (audio.stop_recording, audio.upload):
            event(app.respond_to_audio, [audio, chatbot, *settings], outputs, api_name="voice" if event == audio.upload else False,
                  concurrency_id="model", concurrency_limit=1)
        clear.click(lambda: ([], "ready", ""), None, outputs, api_name=False)
    return demo
