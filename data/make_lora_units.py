"""Regenerate ``lora_units.jsonl``, the second specialist's data set of lesson 12 (merging models).

Every example gives a quantity written out in words ("23 kilograms", "80 kilometers per hour") in
a short English sentence and answers with the quantity in standard notation, number then unit
symbol (``23 kg``, ``80 km/h``), and nothing else. The sentences, unit names and instructions were
written for this course; numbers are drawn at random with a fixed seed, so running this script
again gives the same file byte for byte:

    python data/make_lora_units.py          # writes data/lora_units.jsonl

400 training and 100 held-out examples; no (number, unit) pair appears in both splits. Every unit
occurs in both splits: the skill to learn is the mapping from names to symbols and the answer
format, which the held-out split tests on new numbers and new sentences.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

SEED = 12
N_TRAIN, N_TEST = 400, 100

# (singular name, plural name, symbol); US spellings are added for -metre/-litre below
UNITS = [
    ("kilometre", "kilometres", "km"),
    ("metre", "metres", "m"),
    ("centimetre", "centimetres", "cm"),
    ("millimetre", "millimetres", "mm"),
    ("kilogram", "kilograms", "kg"),
    ("gram", "grams", "g"),
    ("milligram", "milligrams", "mg"),
    ("litre", "litres", "L"),
    ("millilitre", "millilitres", "mL"),
    ("second", "seconds", "s"),
    ("millisecond", "milliseconds", "ms"),
    ("kilometre per hour", "kilometres per hour", "km/h"),
    ("metre per second", "metres per second", "m/s"),
    ("degree Celsius", "degrees Celsius", "°C"),
    ("kelvin", "kelvins", "K"),
    ("watt", "watts", "W"),
    ("kilowatt", "kilowatts", "kW"),
    ("kilowatt-hour", "kilowatt-hours", "kWh"),
    ("volt", "volts", "V"),
    ("ampere", "amperes", "A"),
    ("hertz", "hertz", "Hz"),
    ("megahertz", "megahertz", "MHz"),
    ("kilopascal", "kilopascals", "kPa"),
    ("newton", "newtons", "N"),
    ("joule", "joules", "J"),
]

INSTRUCTIONS = [
    "Write the quantity with its SI unit symbol: {s}",
    "Give the measurement in standard notation (number and unit symbol). {s}",
    "{s} Rewrite that quantity using the unit's symbol.",
    "Abbreviate the unit and give only the quantity: {s}",
    "What is the quantity in this sentence, written with a unit symbol? {s}",
]
SENTENCES = [
    "It came to {q}.",
    "The label says {q}.",
    "The sensor read {q} at noon.",
    "We measured {q} in the lab.",
    "The manual lists {q} as the limit.",
    "According to the report, it was {q}.",
    "Please note down {q} for the record.",
    "The display showed {q} this morning.",
    "Her notebook gives a value of {q}.",
    "The specification allows at most {q}.",
]


def us_spelling(name: str) -> str:
    """kilometre -> kilometer, litre -> liter (both spellings appear in the data)."""
    return name.replace("metre", "meter").replace("litre", "liter")


def number(rng: random.Random) -> str:
    """An integer (1-999) or a decimal with one or two places, as people write them."""
    kind = rng.randrange(4)
    if kind < 2:
        return str(rng.randint(1, 999))
    if kind == 2:
        return f"{rng.randint(0, 99)}.{rng.randint(1, 9)}"
    return f"{rng.randint(0, 9)}.{rng.randint(1, 99):02d}".rstrip("0")


def make(rng: random.Random, value: str, unit: tuple[str, str, str]) -> dict[str, str]:
    singular, plural, symbol = unit
    name = singular if value == "1" else plural
    if rng.random() < 0.4:
        name = us_spelling(name)
    sentence = rng.choice(SENTENCES).format(q=f"{value} {name}")
    sentence = sentence[0].upper() + sentence[1:]
    return {"prompt": rng.choice(INSTRUCTIONS).format(s=sentence), "response": f"{value} {symbol}"}


def main() -> None:
    rng = random.Random(SEED)
    pairs: list[tuple[str, int]] = []
    seen: set[tuple[str, int]] = set()
    # every unit 16 times in training and 4 times in the held-out split, numbers never repeated per unit
    plan = [u for u in range(len(UNITS)) for _ in range(N_TRAIN // len(UNITS))]
    plan += [u for u in range(len(UNITS)) for _ in range(N_TEST // len(UNITS))]
    for u in plan:
        while True:
            value = number(rng)
            if (value, u) not in seen:
                seen.add((value, u))
                pairs.append((value, u))
                break
    train, test = pairs[:N_TRAIN], pairs[N_TRAIN:]
    rng.shuffle(train)
    rng.shuffle(test)
    rows = [{"id": i, "split": "train" if i < N_TRAIN else "test", **make(rng, value, UNITS[u])}
            for i, (value, u) in enumerate(train + test)]
    out = Path(__file__).with_name("lora_units.jsonl")
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"wrote {len(rows)} examples to {out}")


if __name__ == "__main__":
    main()
