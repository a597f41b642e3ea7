"""Checks for lab 11 (a local assistant app): word error rate, a validator for synthetic records
measured on held-out records, and a streaming chat handler.

Each ``check_*`` runs the learner's function on inputs it makes itself (fixed edge cases, then
random ones from a seed) and compares with the course's code (:func:`course_utils.speech.wer`,
:func:`course_utils.synth.validate_record`); a wrong result is compared with what the usual
mistakes give, so the message names the mistake and where to look. Exercise 2 builds and
measures: the validator is scored on records the check writes itself (:func:`qa_records`, with a
seed the lab never shows), each good or with one known defect, and its recall of the bad records
and its share of good records kept are printed beside the targets and the reference's numbers.

>>> def todo(*args):
...     raise NotImplementedError
>>> check_wer(todo).status
'not done'
>>> from course_utils.speech import wer
>>> check_wer(wer).status
'passed'
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Iterator
from typing import Any

from ..backends.base import GenerationResult, StreamChunk
from ..speech import normalize_words, wer
from ..synth import validate_record
from ..timing import Timings
from . import Mistake, NotDone, Verdict, call_unchanged, run_check

LESSON = "lesson 11"

WER_CASES = (
    ("what is the capital of germany", "what is the capital of germany"),  # perfect: 0
    ("what is the capital of germany", "what is a capital of germany"),  # 1 substitution / 6
    ("the cat sat on the mat", "the cat sat on mat"),  # 1 deletion
    ("turn the lights off", "turn the lights off now please"),  # 2 insertions: 0.5
    ("Hello, World!", "hello world"),  # case and punctuation do not count
    ("one two three", "three two one"),  # 2 substitutions
    ("a b c d", ""),  # everything deleted: 1.0
    ("good morning", "good good morning morning everyone"),  # 3 insertions / 2 words: WER above 1
    ("please set an alarm for seven thirty tomorrow morning and remind me to call the dentist",
     "set an alarm for seven thirty tomorrow and remind me to call a dentist please"),  # 15 words, mixed edits
    ("the quick brown fox jumps over the lazy dog near the river bank",
     "a quick brown box jumped over lazy dogs near the riverbank"),
)


def _random_wer_cases(n: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    vocab = ["alarm", "light", "music", "timer", "weather", "news", "call", "play", "stop", "start", "kitchen", "room", "today", "seven", "ten"]
    cases = []
    for _ in range(n):
        ref = [rng.choice(vocab) for _ in range(rng.randint(1, 14))]
        hyp = list(ref)
        for _ in range(rng.randint(0, 5)):
            op = rng.choice("sdi")
            k = rng.randrange(len(hyp) + (op == "i")) if hyp or op == "i" else 0
            if op == "s" and hyp:
                hyp[k] = rng.choice(vocab)
            elif op == "d" and hyp:
                del hyp[k]
            elif op == "i":
                hyp.insert(k, rng.choice(vocab))
        cases.append((" ".join(ref), " ".join(hyp)))
    return cases


def _levenshtein(a: list[str], b: list[str], sub: int = 1) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(prev + (0 if x == y else sub), row[j] + 1, row[j - 1] + 1)
    return row[-1]


def _wer_variants(ref: str, hyp: str) -> list[tuple[float, str]]:
    r, h = normalize_words(ref), normalize_words(hyp)
    raw_r, raw_h = ref.split(), hyp.split()
    edits = _levenshtein(r, h)
    out = [
        (edits / max(len(h), 1), "you divided by the number of *hypothesis* words; WER divides by the reference's"),
        (edits / max(len(r), len(h)), "you divided by the longer of the two texts; WER divides by the reference's word count (so it can exceed 1)"),
        (float(edits), "you returned the number of edits; divide it by the number of reference words"),
        (_levenshtein(r, h, sub=2) / len(r), "a substitution counts as one edit, not as a deletion plus an insertion"),
        ((sum(x != y for x, y in zip(r, h)) + abs(len(r) - len(h))) / len(r),
         "you compared the words position by position; a deleted or inserted word shifts the rest: use the edit-distance table"),
        (_levenshtein(list(" ".join(r)), list(" ".join(h))) / len(" ".join(r)), "you counted character edits: WER counts *words*"),
    ]
    if raw_r:
        out.append((_levenshtein(raw_r, raw_h) / len(raw_r), "normalise first: lower case and no punctuation, so \"Hello,\" and \"hello\" are the same word"))
    return out


def check_wer(word_error_rate: Callable[[str, str], float]) -> Verdict:
    """``word_error_rate(reference, hypothesis)``: (S + D + I) / reference words, case and punctuation
    ignored; a reference without words raises ValueError."""

    def test(fn: Callable[[str, str], float]) -> bool | str:
        cases = [*WER_CASES, *_random_wer_cases(40, seed=11)]
        got = []
        for ref, hyp in cases:
            value = fn(ref, hyp)
            if value is None:
                raise NotDone
            if isinstance(value, bool) or not isinstance(value, int | float) and not hasattr(value, "__float__"):
                return f"return one number (a float), got {type(value).__name__}"
            got.append(float(value))
        wrong = [k for k, ((ref, hyp), g) in enumerate(zip(cases, got)) if abs(g - wer(ref, hyp)) > 1e-9]
        if wrong:
            ref, hyp = cases[wrong[0]]
            where = f"word_error_rate({ref!r}, {hyp!r}) should be {wer(ref, hyp):.4f}, got {got[wrong[0]]:.4f}"
            variants = [_wer_variants(r, h) for r, h in cases]
            for v, (_, message) in enumerate(variants[wrong[0]]):
                if all(v < len(case) and abs(case[v][0] - g) <= 1e-9 for case, g in zip(variants, got)):  # explains every answer
                    return f"{where}: {message}"
            return where
        try:
            fn("", "hello there")
        except (ValueError, ZeroDivisionError) as err:
            if isinstance(err, ZeroDivisionError):
                return "a reference without words made your function divide by zero: check for it and raise ValueError"
            return True
        return "a reference without words has no word error rate: raise ValueError, do not return a number"

    return run_check("word error rate", test, word_error_rate, hint=f"{LESSON}, section 4: WER is an edit distance over words, divided by a length",
                     more="normalise (lower case, drop punctuation, split on spaces), then fill a table d[i][j] = fewest edits "
                          "turning the first i reference words into the first j hypothesis words; divide d[-1][-1] by the reference length")


# ----------------------------------------------------------------------------- 2. validator (build and measure)
PASSAGE = "The Local LLM Lab meets in room 4.12 every Thursday. Each session lasts two hours."
RECORD_CASES = (  # (record, should it pass?, what it tests)
    ({"question": "Where does the Local LLM Lab meet?", "answer": "room 4.12"}, True, "a good record"),
    ({"question": "How long does each session last?", "answer": "Two hours"}, True, "case does not matter"),
    ({"question": "Where does the lab meet?", "answer": "the library"}, False, "answer not in the passage"),
    ({"question": "Where does the lab meet", "answer": "room 4.12"}, False, "no question mark"),
    ({"question": "Does the lab meet in room 4.12?", "answer": "room 4.12"}, False, "the question gives the answer away"),
    ({"question": "Where does the lab meet?"}, False, "no answer field"),
    ({"question": "Where does the lab meet?", "answer": 412}, False, "answer is not a string"),
    ({"question": "When?", "answer": "Thursday"}, False, "question shorter than 10 characters (schema)"),
    ({"question": "How long does each session last?", "answer": "hour"}, False, "answer is part of a word of the passage, not whole words"),
    ({"question": "On which day does the lab meet?", "answer": "Thursday."}, True, "punctuation does not matter"),
)

_PLACES = ["The Birch Lane library", "The Harbour museum", "The Lantern Street canteen", "The Oak Hill pool", "The Mill Road gallery",
           "The Northgate clinic", "The Elm Court theatre", "The Riverside market"]
_FOUNDERS = ["Ada Morrow", "Tomas Reyes", "Ines Cardoso", "Li Wen", "Omar Haddad", "Greta Lind", "Kofi Mensah", "Maya Sato"]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]


def qa_records(n: int = 60, seed: int = 0) -> list[tuple[dict[str, Any], str, str]]:
    """``n`` synthetic records as a small model writes them, each ``(record, passage, label)``:
    ``label`` is ``"ok"`` or the defect it was given (one at most): not grounded, part of a word,
    no question mark, answer given away, missing or mistyped field, question too short, empty answer.

    >>> record, passage, label = qa_records(1, seed=3)[0]
    >>> sorted(record) if label == "ok" else label != ""
    ['answer', 'question']
    """
    rng = random.Random(seed)
    out: list[tuple[dict[str, Any], str, str]] = []
    while len(out) < n:
        place, founder, day = rng.choice(_PLACES), rng.choice(_FOUNDERS), rng.choice(_DAYS)
        year, hour, price = rng.randint(1890, 2015), rng.randint(7, 11), rng.randint(2, 40)
        name = place.removeprefix("The ")
        passage = (f"{place} was founded in {year} by {founder}. It opens at {hour}:30 every {day}, "
                   f"and a ticket costs {price} euros.")
        qa = rng.choice([
            (f"Who founded the {name}?", founder), (f"In which year was the {name} founded?", str(year)),
            (f"On which day does the {name} open?", day), (f"How many euros does a ticket for the {name} cost?", f"{price} euros"),
            (f"At what time does the {name} open?", f"{hour}:30"),
        ])
        question, answer = qa
        answer = rng.choice([answer, answer, answer.lower(), answer.upper(), answer + "."])
        record: dict[str, Any] = {"question": question, "answer": answer}
        label = rng.choice(["ok"] * 9 + ["not grounded", "part of a word", "no question mark", "gives it away", "no answer",
                                         "not a string", "too short", "empty answer"])
        if label == "not grounded":
            other = rng.choice([f for f in _FOUNDERS if f != founder] + [str(year + rng.randint(1, 9)), f"{price + 1} euros"])
            record["answer"] = other
        elif label == "part of a word":
            word = rng.choice([w for w in (founder.split() + [day]) if len(w) > 4])
            record["answer"] = word[: rng.randint(3, len(word) - 1)]
        elif label == "no question mark":
            record["question"] = question.rstrip("?") + rng.choice(["", ".", " "])
        elif label == "gives it away":
            record["question"] = f"Was the {name} founded by {founder}?" if answer.lower().startswith(founder.lower()) else \
                f"{question[:-1]}, {answer.rstrip('.')} or later?"
        elif label == "no answer":
            del record["answer"]
        elif label == "not a string":
            record["answer"] = rng.choice([year, price, [answer], None])
        elif label == "too short":
            record["question"] = rng.choice(["Who?", "When?", "What day?", "Cost?"])
        elif label == "empty answer":
            record["answer"] = rng.choice(["", "...", "?!"])
        bad = validate_record(record, passage)
        if (label == "ok") == (not bad):  # the course's validator agrees with the label (drops the rare clash)
            out.append((record, passage, label))
    return out


HELD_OUT_SEED = 1111  # the lab shows qa_records(seed=0); the check measures on records from this seed
RECALL_TARGET, KEEP_TARGET = 0.95, 0.95


def _reference_is_valid(record: dict[str, Any], passage: str) -> bool:
    """The exercise's four rules (the course's validator checks these and more)."""
    import jsonschema

    from ..synth import QA_SCHEMA, normalize_text

    try:
        jsonschema.validate(record, QA_SCHEMA)
    except jsonschema.ValidationError:
        return False
    q, a, p = (f" {normalize_text(t)} " for t in (record["question"], record["answer"], passage))
    return a.strip() != "" and a in p and record["question"].strip().endswith("?") and a not in q


def _rates(fn: Callable[..., Any], records: list[tuple[dict[str, Any], str, str]]) -> tuple[float, float, list[tuple[dict[str, Any], str, bool]]]:
    bad = [(r, p, lab) for r, p, lab in records if lab != "ok"]
    good = [(r, p, lab) for r, p, lab in records if lab == "ok"]
    wrong = []
    for r, p, lab in records:
        said = bool(call_unchanged(fn, copy.deepcopy(r), p))
        if said != (lab == "ok"):
            wrong.append((r, lab, said))
    missed = sum(1 for _, lab, said in wrong if lab != "ok")
    dropped = sum(1 for _, lab, said in wrong if lab == "ok")
    return 1 - missed / len(bad), 1 - dropped / len(good), wrong


def check_validator(is_valid: Callable[[dict[str, Any], str], bool], n_held_out: int = 200,
                    recall_target: float = RECALL_TARGET, keep_target: float = KEEP_TARGET) -> Verdict:
    """``is_valid(record, passage)``: True only for a usable record. First the edge cases above, then
    the measurement on ``n_held_out`` records the check writes with a seed of its own: the share of
    bad records rejected (recall) and of good records kept, beside the targets and the reference's."""

    def test(fn: Callable[[dict[str, Any], str], bool]) -> bool | str:
        for record, expected, why in RECORD_CASES:
            assert (not validate_record(record, PASSAGE)) == expected, why  # the cases themselves are right
            try:
                got = call_unchanged(fn, copy.deepcopy(record), PASSAGE)
            except (KeyError, TypeError, AttributeError) as err:
                if isinstance(err, NotImplementedError):
                    raise
                return (f"{record} made your function raise {type(err).__name__} ({why}): a record from a model can be missing a "
                        "field or have the wrong type; check the schema first and return False")
            if got is None:
                raise NotDone
            if bool(got) != expected:
                return f"{record} should be {'accepted' if expected else 'rejected'} ({why}), your function said {got!r}"
        records = qa_records(n_held_out, seed=HELD_OUT_SEED)
        recall, kept, wrong = _rates(fn, records)
        ref_recall, ref_kept, _ = _rates(_reference_is_valid, records)
        report = (f"on {n_held_out} held-out records your validator rejects {recall:.0%} of the bad ones (target {recall_target:.0%}) and keeps "
                  f"{kept:.0%} of the good ones (target {keep_target:.0%}); the reference: {ref_recall:.0%} and {ref_kept:.0%}")
        print(report)
        if recall >= recall_target and kept >= keep_target:
            return True
        record, label, said = wrong[0]
        return f"{report}. E.g. {record} ({'good' if label == 'ok' else label}) was {'accepted' if said else 'rejected'}"

    return run_check("record validator", test, is_valid,
                     hint="print your verdicts for qa_records(seed=0) beside the labels and read the records it gets wrong",
                     more="jsonschema.validate(record, QA_SCHEMA) inside try/except jsonschema.ValidationError, then compare "
                          "normalize_text(answer) with normalize_text(passage) and the question, padded with spaces so only whole words match")


# ----------------------------------------------------------------------------- 3. streaming handler
class ScriptedBackend:
    """A stand-in backend that streams fixed pieces of text (so the check is fast and exact)."""

    name = "scripted"

    def __init__(self, pieces: tuple[str, ...] = ("The", " capital", " is", " Berlin", ".")) -> None:
        self.pieces = pieces
        self.calls: list[list[dict[str, str]]] = []

    def chat_stream(self, messages: Any, **options: Any) -> Iterator[StreamChunk]:
        self.calls.append([dict(m) for m in messages])
        for piece in self.pieces:
            yield StreamChunk(piece)
        text = "".join(self.pieces)
        timings = Timings(0.1, 0.01, 0.14, 10, len(self.pieces))
        yield StreamChunk("", done=True, result=GenerationResult(text, 10, len(self.pieces), "stop", timings, self.name))


def _updates(fn: Callable[..., Any], backend: Any, message: str, history: list[dict[str, str]]) -> list[Any]:
    before = copy.deepcopy(history)
    updates = fn(backend, message, history)
    if updates is None:
        raise NotDone
    if isinstance(updates, str):
        raise Mistake("stream_reply should be a generator (use yield), so the UI can redraw at every piece; it returned one string")
    updates = list(updates)
    if history != before:
        raise Mistake("your handler changed the history list it was given (append?): build a new list of messages for the model")
    return updates


def check_stream_handler(stream_reply: Callable[..., Iterator[str]], backend: Any = None) -> Verdict:
    """``stream_reply(backend, message, history)`` yields the reply so far (growing), one update per piece
    with text; an empty (or blank) message yields one line starting with "⚠️" and does not call the model.
    ``backend``: also compare with a real backend's greedy answer."""

    def test(fn: Callable[..., Iterator[str]]) -> bool | str:
        history = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
        question = "What is the capital of Germany?"
        for pieces in (("The", " capital", " is", " Berlin", "."), ("Ber", "", "lin", " it is", "", "!")):
            fake = ScriptedBackend(pieces)
            updates = _updates(fn, fake, question, history)
            want = [("".join(pieces[: k + 1])) for k, p in enumerate(pieces) if p]
            if updates != want:
                where = f"for the pieces {list(pieces)} expected the growing reply {want}, got {updates[:7]}"
                if updates == [p for p in pieces if p] or updates == list(pieces):
                    return f"{where}: you yielded each piece; yield the reply *so far* (the UI redraws the whole text each time)"
                if updates == want[-1:]:
                    return f"{where}: you yielded only the finished reply; yield after every piece so the text grows on screen"
                if len(updates) > len(want) and [u for i, u in enumerate(updates) if i == 0 or u != updates[i - 1]] == want:
                    return f"{where}: a chunk without text (the last one, done=True, has none) should not yield a repeated update"
                return where
            sent = fake.calls[-1] if fake.calls else []
            if [m.get("content") for m in sent][-3:] != ["Hi", "Hello!", question] or sent[-1].get("role") != "user":
                return f"the model got {[m.get('content') for m in sent]}: send the history, then the new message as the last user message"
        for blank in ("", "   ", "\n\t"):
            fake = ScriptedBackend()
            empty = _updates(fn, fake, blank, [])
            if len(empty) != 1 or not str(empty[0]).startswith("⚠️"):
                return f"the message {blank!r} should yield one warning starting with '⚠️', got {empty!r}"
            if fake.calls:
                return f"the blank message {blank!r} must not reach the model"
        if backend is not None:
            real = _updates(fn, backend, question, [])
            reference = backend.chat([{"role": "user", "content": question}], max_tokens=64, temperature=0.0).text
            if not real or real[-1].strip() != reference.strip():
                return f"with the real model the last update should be {reference!r} (greedy, max_tokens=64), got {(real or [''])[-1]!r}"
        return True

    return run_check("streaming handler", test, stream_reply, hint=f"{LESSON}, section 1 streams a reply from scratch; section 2 turns it into a generator",
                     more="if not message.strip(): yield '⚠️ ...'; return. Otherwise loop over backend.chat_stream(history + [user message], "
                          "max_tokens=64, temperature=0.0), add each chunk.text to the reply and yield the reply so far")
