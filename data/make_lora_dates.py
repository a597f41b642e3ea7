"""Regenerate ``lora_dates.jsonl``, the instruction data set of lesson 08 (LoRA fine-tuning).

Every example asks for the date in a short English sentence and answers with that date in ISO 8601
form (``YYYY-MM-DD``) and nothing else. The sentences, the date formats and the instructions were
written for this course; dates are drawn at random with a fixed seed, so running this script again
gives the same file byte for byte:

    python data/make_lora_dates.py          # writes data/lora_dates.jsonl

400 training and 100 held-out examples; no date appears in both splits.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path

SEED = 8
N_TRAIN, N_TEST = 400, 100
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

INSTRUCTIONS = [
    "Give the date in ISO 8601 format: {s}",
    "What is the date in YYYY-MM-DD form? {s}",
    "Convert the date to ISO format. {s}",
    "{s} Write that date as YYYY-MM-DD.",
    "Normalise the date in this sentence to ISO 8601: {s}",
]
SENTENCES = [
    "{d}",
    "The invoice is due on {d}.",
    "We first met on {d} in Lisbon.",
    "Her birthday falls on {d}.",
    "The launch has been moved to {d}.",
    "Deadline: {d}.",
    "The museum reopened on {d} after the repairs.",
    "Please book the room for {d}.",
    "He was born on {d}, in a small village.",
    "The treaty was signed on {d}.",
]


def ordinal(n: int) -> str:
    suffix = "th" if 11 <= n % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def written(day: dt.date, style: int) -> str:
    """The date as people write it, in one of six styles."""
    d, m, y = day.day, MONTHS[day.month - 1], day.year
    return [
        f"{d} {m} {y}",
        f"{m} {d}, {y}",
        f"the {ordinal(d)} of {m} {y}",
        f"{m[:3]} {d}, {y}",
        f"{WEEKDAYS[day.weekday()]}, {d} {m} {y}",
        f"{m} {ordinal(d)}, {y}",
    ][style]


def make(rng: random.Random, day: dt.date) -> dict[str, str]:
    sentence = rng.choice(SENTENCES).format(d=written(day, rng.randrange(6)))
    sentence = sentence[0].upper() + sentence[1:]
    return {"prompt": rng.choice(INSTRUCTIONS).format(s=sentence), "response": day.isoformat()}


def main() -> None:
    rng = random.Random(SEED)
    start, span = dt.date(1900, 1, 1), (dt.date(2099, 12, 31) - dt.date(1900, 1, 1)).days
    days: list[dt.date] = []
    while len(days) < N_TRAIN + N_TEST:  # distinct dates: the held-out split is truly unseen
        day = start + dt.timedelta(days=rng.randrange(span + 1))
        if day not in days:
            days.append(day)
    rows = [{"id": i, "split": "train" if i < N_TRAIN else "test", **make(rng, day)} for i, day in enumerate(days)]
    out = Path(__file__).with_name("lora_dates.jsonl")
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"wrote {len(rows)} examples to {out}")


if __name__ == "__main__":
    main()
