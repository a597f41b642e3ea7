"""Speech to text: WER arithmetic, audio loading, and the bundled Whisper on speech made by espeak-ng."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from course_utils.errors import DataError, InvalidOption
from course_utils.speech import (
    SAMPLE_RATE,
    Transcriber,
    corpus_wer,
    load_audio,
    normalize_words,
    speak,
    wer,
    whisper_model_dir,
    word_errors,
)

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (apt-get install espeak-ng)")

SENTENCES = [
    "What is the capital of Germany?",
    "Please turn off the lights in the kitchen.",
    "How many legs does a spider have?",
    "Which planet is closest to the sun?",
]


# ----------------------------------------------------------------------------- WER
@pytest.mark.parametrize(("ref", "hyp", "errors", "rate"), [
    ("a b c", "a b c", (0, 0, 0, 3), 0.0),
    ("a b c", "a x c", (1, 0, 0, 3), 1 / 3),
    ("a b c", "a c", (0, 1, 0, 3), 1 / 3),
    ("a b c", "a b c d e", (0, 0, 2, 3), 2 / 3),
    ("a b", "", (0, 2, 0, 2), 1.0),
    ("good morning", "good good morning morning everyone", (0, 0, 3, 2), 1.5),  # WER can exceed 1
    ("kitten sitting on the mat", "sitting on a mat", (1, 1, 0, 5), 0.4),
])
def test_word_errors_and_wer(ref, hyp, errors, rate):
    assert word_errors(ref, hyp) == errors
    assert wer(ref, hyp) == pytest.approx(rate)


def test_wer_ignores_case_and_punctuation_but_not_words():
    assert normalize_words("Hello, World! It's well-known.") == ["hello", "world", "it's", "well", "known"]
    assert wer("Hello, world!", "hello world") == 0.0
    assert wer("hello world", "hello word") == 0.5


def test_wer_needs_a_reference_and_corpus_wer_pools_words():
    with pytest.raises(DataError, match="undefined"):
        wer("", "something")
    # 1 error in 2 words + 0 errors in 8 words = 1/10, not the mean of 0.5 and 0
    assert corpus_wer(["a b", "c d e f g h i j"], ["a x", "c d e f g h i j"]) == pytest.approx(0.1)
    with pytest.raises(InvalidOption):
        corpus_wer(["a"], [])


# ----------------------------------------------------------------------------- audio
def test_bundled_whisper_is_found():
    folder = whisper_model_dir()
    assert (folder / "model.bin").stat().st_size > 10_000_000 and (folder / "config.json").is_file()


def test_load_audio_converts_and_resamples():
    pcm = (np.sin(np.linspace(0, 200, 8000)) * 20000).astype(np.int16)  # 1 s at 8 kHz, 16-bit
    samples = load_audio((8000, pcm))
    assert samples.dtype == np.float32 and len(samples) == SAMPLE_RATE
    assert 0.5 < np.abs(samples).max() <= 1.0
    stereo = np.stack([pcm, pcm], axis=1)
    assert np.allclose(load_audio((8000, stereo)), samples)


def test_unreadable_audio_is_a_clear_error(tmp_path):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00this is not audio at all" * 10)
    with pytest.raises(DataError, match="could not read broken.wav"):
        load_audio(broken)
    with pytest.raises(DataError, match="no audio file"):
        load_audio(tmp_path / "missing.wav")
    with pytest.raises(DataError, match="empty"):
        Transcriber().transcribe(np.zeros(0, dtype=np.float32))


# ----------------------------------------------------------------------------- Whisper on generated speech
@pytest.fixture(scope="module")
def transcriber():
    return Transcriber().load()


@needs_espeak
def test_espeak_speech_is_transcribed_with_low_wer(transcriber, tmp_path):
    heard = []
    for i, sentence in enumerate(SENTENCES):
        wav = speak(sentence, tmp_path / f"s{i}.wav")
        assert wav.stat().st_size > 10_000
        result = transcriber.transcribe(wav)
        assert result.audio_s > 0.5 and result.seconds > 0
        heard.append(result.text)
    # each sentence mostly right, and over all of them at most one word in five wrong
    assert all(wer(s, h) <= 0.34 for s, h in zip(SENTENCES, heard)), list(zip(SENTENCES, heard))
    assert corpus_wer(SENTENCES, heard) < 0.2, heard
    assert "germany" in normalize_words(heard[0])


@needs_espeak
def test_gradio_style_input_gives_the_same_words(transcriber, tmp_path):
    import wave

    wav = speak(SENTENCES[0], tmp_path / "q.wav")
    with wave.open(str(wav)) as f:
        rate, pcm = f.getframerate(), np.frombuffer(f.readframes(f.getnframes()), dtype=np.int16)
    assert rate != SAMPLE_RATE  # espeak-ng speaks at 22,050 Hz: the pair must be resampled
    from_file = transcriber.transcribe(wav).text
    from_pair = transcriber.transcribe((rate, pcm)).text
    assert wer(from_file, from_pair) <= 0.2


def test_silence_gives_no_words(transcriber):
    assert len(normalize_words(transcriber.transcribe(np.zeros(SAMPLE_RATE, dtype=np.float32)).text)) <= 2
