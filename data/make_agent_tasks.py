"""Regenerate ``agent_task_splits.jsonl``: train and held-out tasks for the agent of lesson 10.

Each task is a question for one of the lesson's tools, or for none, with the expected answer and a
reference call (the arguments a good agent would send), so the file serves both to measure an agent
on tasks it has never seen and to write tool-call traces to learn from:

* ``calculate``: arithmetic in words ("What is 48 times 73?"), numbers drawn at random;
* ``search``: facts from the made-up handbook (``agent_handbook.jsonl``); the held-out facts are
  asked about nowhere else: not in the train split, not in ``agent_tasks.jsonl``;
* ``run_python``: small string and number programs; held-out words and numbers are never used in train;
* ``none``: general knowledge a chat model answers without a tool (the right first step is
  ``final_answer``); held-out questions are a separate hand-written list.

No question of either split is one of the 30 in ``agent_tasks.jsonl`` (what lesson 10 shows), and
no question is in both splits. Fixed seed: running this again gives the same file byte for byte::

    python data/make_agent_tasks.py          # writes data/agent_task_splits.jsonl
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from pathlib import Path

SEED = 10
HERE = Path(__file__).parent
OUT = HERE / "agent_task_splits.jsonl"
N_CALC = {"train": 80, "test": 20}
N_PYTHON = {"train": 48, "test": 16, "train, added": 48}
N_SEARCH_TEST_FACTS = 12

# ----------------------------------------------------------------------------- search: one line per handbook fact
# (fact id, handbook topic, expected answer, ways to ask); lesson 10's own questions are marked by agent_tasks.jsonl
FACTS = [
    ("lib-weekday-open", "library", "9:30", ["At what time does the library open from Monday to Friday?", "What is the library's opening time on a weekday?"]),
    ("lib-weekday-close", "library", "18:00", ["When does the library close on weekdays?", "Until what time is the Lantern Street library open on a Tuesday?"]),
    ("lib-sat-open", "library", "10:00", ["What time does the library open on Saturdays?", "When can I get into the library on a Saturday morning?"]),
    ("lib-sat-close", "library", "14:00", ["Until when is the library open on a Saturday?", "At what time does the library shut on Saturdays?"]),
    ("lib-sunday", "library", "closed", ["Is the Lantern Street library open on Sundays?", "What are the library's hours on a Sunday?"]),
    ("wifi-name", "wifi", "lantern-guest", ["What is the name of the guest Wi-Fi network?", "Which Wi-Fi network should visitors join at the office?"]),
    ("wifi-password", "wifi", "tidepool42", ["What password do guests use for the Wi-Fi?", "Tell me the guest Wi-Fi password."]),
    ("wifi-change", "wifi", "month", ["How often is the guest Wi-Fi password changed?", "How frequently does the guest Wi-Fi get a new password?"]),
    ("park-garage", "parking", "Birch Lane", ["Where is the staff parking?", "In which garage do staff park?"]),
    ("park-level", "parking", "3", ["On which level of the garage is staff parking?", "Which garage level is reserved for staff?"]),
    ("park-cost", "parking", "45", ["What is the price of a parking permit per month?", "How many euros is a monthly parking permit?"]),
    ("park-order", "parking", "front desk", ["Where do I order a parking permit?", "Who do I ask for a monthly parking permit?"]),
    ("lunch-start", "canteen", "11:45", ["When does the canteen start serving lunch?", "From what time can I get lunch in the canteen?"]),
    ("lunch-end", "canteen", "14:15", ["Until what time does the canteen serve lunch?", "When does lunch end in the canteen?"]),
    ("soup-day", "canteen", "Thursday", ["Which day of the week is soup day?", "On what weekday can I get soup in the canteen?"]),
    ("soup-price", "canteen", "3", ["How much does the soup cost in the canteen?", "What is the price of the soup on soup day?"]),
    ("mascot-animal", "mascot", "tortoise", ["What kind of animal is the office mascot?", "Which animal is the office mascot?"]),
    ("mascot-name", "mascot", "Pebble", ["What is the office mascot called?", "What name does the office tortoise have?"]),
    ("mascot-age", "mascot", "31", ["How old is the office mascot?", "What is the age of Pebble the tortoise?"]),
    ("mascot-home", "mascot", "garden", ["Where does the office mascot live?", "In which part of the office does the mascot live?"]),
    ("support-floor", "support", "second", ["On which floor is the IT support desk?", "Which floor do I go to for IT support?"]),
    ("support-room", "support", "214", ["What is the room number of IT support?", "Which room is IT support in?"]),
    ("support-phone", "support", "4417", ["Which extension do I dial for IT support?", "What number do I call for the IT support desk?"]),
    ("holiday-days", "holidays", "27", ["How many paid holiday days are there in a year?", "How much paid holiday does an employee get each year?"]),
    ("holiday-carry", "holidays", "5", ["How many unused holiday days can be carried over to next year?", "What is the most holiday days I can carry over?"]),
    ("founded-year", "founding", "1987", ["In which year was the company founded?", "When was the company started?"]),
    ("founder", "founding", "Ada Morrow", ["What is the name of the company's founder?", "Which person started the company?"]),
    ("founded-where", "founding", "bakery", ["In what kind of building was the company founded?", "Where did the company start out?"]),
    ("printer-name", "printer", "Magpie", ["What is the name of the colour printer?", "What do people call the colour printer on the first floor?"]),
    ("printer-cost", "printer", "8", ["How much does a colour page cost to print?", "What is the price of printing one colour page?"]),
    ("printer-floor", "printer", "first", ["On which floor is the colour printer?", "Where is the colour printer Magpie?"]),
    ("bikes-count", "bikes", "12", ["How many shared bicycles are there?", "How many bikes can staff share in the courtyard?"]),
    ("bikes-days", "bikes", "3", ["What is the longest I may borrow a shared bike for?", "How many days can I keep a shared bicycle?"]),
]
# the facts lesson 10's own 12 search tasks ask about: never held out
LESSON_FACTS = {"lib-weekday-open", "wifi-password", "park-cost", "soup-day", "mascot-name", "support-phone", "holiday-days",
                "founder", "printer-name", "bikes-days", "support-room", "lib-sat-close"}

# ----------------------------------------------------------------------------- no tool: general knowledge
NO_TOOL = {
    "train": [("What is the capital of Germany?", "Berlin"), ("What is the capital of Italy?", "Rome"),
              ("What is the capital of Spain?", "Madrid"), ("What is the capital of Japan?", "Tokyo"),
              ("What colour is grass?", "green"), ("What colour is the sky on a clear day?", "blue"),
              ("What is the opposite of hot?", "cold"), ("What is the opposite of up?", "down"),
              ("Which animal says moo?", "cow"), ("What do bees make?", "honey"), ("What is frozen water called?", "ice"),
              ("Which planet do we live on?", "Earth"), ("How do you say hello in Spanish?", "hola"),
              ("Which season comes after winter?", "spring"), ("What do you call a baby dog?", "puppy"),
              ("What is the largest ocean on Earth?", "Pacific"), ("Who wrote Romeo and Juliet?", "Shakespeare"),
              ("In which country are the pyramids of Giza?", "Egypt"), ("What is the main language spoken in Brazil?", "Portuguese"),
              ("What is the capital of Canada?", "Ottawa")],
    # more of the kind the first adapter got least right (1 of 12 held out): questions that need no tool
    "train, added": [
        ("What is the capital of France?", "Paris"), ("What is the capital of Egypt?", "Cairo"),
        ("What is the capital of China?", "Beijing"), ("What is the capital of Ireland?", "Dublin"),
        ("What is the capital of Austria?", "Vienna"), ("What is the capital of Poland?", "Warsaw"),
        ("What colour is coal?", "black"), ("What colour is a tomato?", "red"),
        ("What is the opposite of big?", "small"), ("What is the opposite of fast?", "slow"),
        ("What is the opposite of left?", "right"), ("Which animal says meow?", "cat"),
        ("Which animal has a trunk?", "elephant"), ("Which bird is a symbol of peace?", "dove"),
        ("Which season comes after summer?", "autumn"), ("Who painted the Mona Lisa?", "Leonardo da Vinci"),
        ("What is the closest star to Earth?", "the Sun"), ("What do caterpillars turn into?", "butterflies"),
        ("What is the chemical formula of water?", "H2O"), ("How do you say hello in French?", "bonjour"),
        ("How do you say water in Spanish?", "agua"), ("What is the main language spoken in Mexico?", "Spanish"),
        ("What is the main language spoken in Germany?", "German"), ("In which country is the Eiffel Tower?", "France"),
        ("In which city is the Colosseum?", "Rome"), ("Which planet is known as the red planet?", "Mars"),
        ("What do you call a baby sheep?", "lamb"), ("What do you call a baby cow?", "calf"),
        ("What do you write on a blackboard with?", "chalk"), ("Which ocean lies between Europe and America?", "Atlantic"),
        ("What is the longest river in Africa?", "Nile"), ("What is the tallest mountain in the world?", "Everest"),
        ("Who discovered gravity when an apple fell?", "Newton"), ("Who was the first person to walk on the Moon?", "Neil Armstrong"),
        ("What do pandas eat?", "bamboo"), ("What is the capital of Australia?", "Canberra")],
    "test": [("What is the capital of Portugal?", "Lisbon"), ("What is the capital of Russia?", "Moscow"),
             ("What is the capital of England?", "London"), ("What colour is snow?", "white"),
             ("What colour is a ripe banana?", "yellow"), ("What is the opposite of day?", "night"),
             ("Which animal barks?", "dog"), ("What is the warmest season of the year?", "summer"),
             ("What do you call a baby cat?", "kitten"), ("What is the largest planet in our solar system?", "Jupiter"),
             ("How do you say thank you in French?", "merci"), ("What is the capital of Greece?", "Athens")],
}

# ----------------------------------------------------------------------------- Python: words never shared by the splits
WORDS = {
    "train": ["lighthouse", "marmalade", "umbrella", "harbour", "pumpkin", "orchestra", "volcano", "satchel", "meadow",
              "compass", "blanket", "cinnamon", "tortoise", "windmill", "quarry", "saddle", "pebble", "lantern",
              "kettle", "thimble", "sparrow", "galaxy", "chestnut", "riverbank"],
    "test": ["avalanche", "bramble", "cathedral", "dolphin", "emerald", "falcon", "glacier", "hammock", "igloo",
             "jasmine", "kingfisher", "labyrinth"],
}
LESSON_WORDS = {"lanternfish", "encyclopedia", "python"}


def ordinal(n: int) -> str:
    suffix = "th" if 11 <= n % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def number_text(value: float) -> str:
    """A number as the expected answer: whole numbers without a decimal point."""
    value = round(value, 6)
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def fibonacci(n: int) -> int:
    a, b = 1, 1
    for _ in range(n - 1):
        a, b = b, a + b
    return a


# ----------------------------------------------------------------------------- task makers: (key, question, arguments, answer)
def calc_tasks(rng: random.Random) -> Iterator[tuple[tuple, str, dict, str]]:
    """An endless stream of arithmetic questions with the expression that answers them and its value."""
    items = [("ticket", "tickets"), ("notebook", "notebooks"), ("coffee", "coffees"), ("lamp", "lamps"), ("chair", "chairs")]

    def one() -> tuple[tuple, str, str, float]:
        kind = rng.choice(["mul", "add", "sub", "div", "pct", "sqrt", "pow", "buy", "sec", "min", "dec", "paren"])
        if kind in ("mul", "dec"):
            a, b = (rng.randint(11, 99), rng.randint(11, 99)) if kind == "mul" else (rng.randint(3, 19) / 2, rng.randint(11, 99) / 10)
            return (kind, a, b), f"What is {a} times {b}?", f"{a} * {b}", a * b
        if kind == "add":
            a, b = rng.randint(100, 9999), rng.randint(100, 9999)
            return (kind, a, b), f"What is {a} plus {b}?", f"{a} + {b}", a + b
        if kind == "sub":
            a, b = rng.randint(5000, 9999), rng.randint(100, 4999)
            return (kind, a, b), f"What is {a} minus {b}?", f"{a} - {b}", a - b
        if kind == "div":
            b, q = rng.randint(3, 25), rng.randint(4, 99)
            return (kind, b * q, b), f"What is {b * q} divided by {b}?", f"{b * q} / {b}", q
        if kind == "pct":
            p, n = rng.choice([5, 10, 15, 20, 25, 30, 40, 60, 75]), 20 * rng.randint(3, 60)
            return (kind, p, n), f"What is {p}% of {n}?", f"{p} / 100 * {n}", p * n / 100
        if kind == "sqrt":
            r = rng.randint(11, 99)
            return (kind, r), f"What is the square root of {r * r}?", f"sqrt({r * r})", r
        if kind == "pow":
            a, k = rng.randint(2, 9), rng.randint(3, 12)
            return (kind, a, k), f"What is {a} to the power of {k}?", f"{a} ** {k}", a**k
        if kind == "buy":
            (item, items_), p, n = rng.choice(items), rng.randint(3, 49), rng.randint(6, 60)
            return (kind, item, p, n), f"A {item} costs {p} euros. How much do {n} {items_} cost?", f"{p} * {n}", p * n
        if kind == "sec":
            h = rng.randint(2, 48)
            return (kind, h), f"How many seconds are there in {h} hours?", f"{h} * 3600", h * 3600
        if kind == "min":
            d = rng.randint(2, 30)
            return (kind, d), f"How many minutes are there in {d} days?", f"{d} * 1440", d * 1440
        a, b, c = rng.randint(10, 90), rng.randint(10, 90), rng.randint(3, 30)
        return (kind, a, b, c), f"What is ({a} + {b}) * {c}?", f"({a} + {b}) * {c}", (a + b) * c

    while True:
        key, question, expression, value = one()
        yield key, question, {"expression": expression}, number_text(value)


def python_tasks(rng: random.Random, words: list[str]) -> Iterator[tuple[tuple, str, dict, str]]:
    """An endless stream of small programs over ``words`` (and numbers) with a program that answers them."""
    def word_task() -> tuple[tuple, str, dict, str]:
        w = rng.choice(words)
        kind = rng.choice(["reverse", "length", "sort", "vowels", "letter"])
        if kind == "reverse":
            return (kind, w), f"Use Python to reverse the string '{w}'.", {"code": f"print('{w}'[::-1])"}, w[::-1]
        if kind == "length":
            return (kind, w), f"Use Python to count the letters in the word '{w}'.", {"code": f"print(len('{w}'))"}, str(len(w))
        if kind == "sort":
            return (kind, w), f"Use Python to sort the letters of '{w}' alphabetically.", {"code": f"print(''.join(sorted('{w}')))"}, "".join(sorted(w))
        if kind == "vowels":
            return (kind, w), f"Use Python to count the vowels in '{w}'.", {"code": f"print(sum(c in 'aeiou' for c in '{w}'))"}, str(sum(c in "aeiou" for c in w))
        c = rng.choice(sorted(set(w)))
        return (kind, w, c), f"Use Python to count how many times the letter '{c}' appears in '{w}'.", {"code": f"print('{w}'.count('{c}'))"}, str(w.count(c))

    def number_task() -> tuple[tuple, str, dict, str]:
        kind = rng.choice(["sum", "factorial", "fibonacci", "squares"])
        if kind == "sum":
            n = rng.randint(20, 999)
            return (kind, n), f"Use Python to compute the sum of the numbers from 1 to {n}.", {"code": f"print(sum(range(1, {n} + 1)))"}, str(n * (n + 1) // 2)
        if kind == "factorial":
            n = rng.randint(5, 20)
            return (kind, n), f"Use Python to compute {n} factorial.", {"code": f"import math\nprint(math.factorial({n}))"}, str(math.factorial(n))
        if kind == "fibonacci":
            n = rng.randint(8, 40)
            code = f"a, b = 1, 1\nfor _ in range({n} - 1):\n    a, b = b, a + b\nprint(a)"
            return (kind, n), f"Use Python to compute the {ordinal(n)} Fibonacci number (starting 1, 1).", {"code": code}, str(fibonacci(n))
        n = rng.randint(5, 60)
        return (kind, n), f"Use Python to compute the sum of the squares of the numbers from 1 to {n}.", {"code": f"print(sum(i * i for i in range(1, {n} + 1)))"}, str(sum(i * i for i in range(1, n + 1)))

    while True:
        yield word_task() if rng.random() < 0.5 else number_task()


def take(stream: Iterator[tuple[tuple, str, dict, str]], n: int, seen: set) -> list[tuple[str, dict, str]]:
    """The first ``n`` tasks of ``stream`` whose key and question are new to ``seen`` (which grows)."""
    tasks = []
    while len(tasks) < n:
        key, question, arguments, answer = next(stream)
        if key in seen or question in seen:
            continue
        seen.update({key, question})
        tasks.append((question, arguments, answer))
    return tasks


def build_rows() -> list[dict]:
    """Every task of both splits, in file order (held-out first), ids numbered per split and tool."""
    rng = random.Random(SEED)
    lesson = [json.loads(line) for line in (HERE / "agent_tasks.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    seen: set = {t["question"] for t in lesson}
    seen |= {("reverse", "lanternfish"), ("length", "encyclopedia"), ("sort", "python"), ("sum", 100), ("factorial", 12), ("fibonacci", 15)}
    held_out_facts = set(rng.sample(sorted(f[0] for f in FACTS if f[0] not in LESSON_FACTS), N_SEARCH_TEST_FACTS))
    assert not set(WORDS["train"]) & set(WORDS["test"]) and not LESSON_WORDS & set(WORDS["train"] + WORDS["test"])

    by_split: dict[str, list[tuple[str, str, dict, str]]] = {"test": [], "train": []}
    calc = calc_tasks(rng)
    for split in ("test", "train"):  # held-out first, so train can only take what is left
        by_split[split] += [("calculate", *task) for task in take(calc, N_CALC[split], seen)]
        by_split[split] += [("run_python", *task) for task in take(python_tasks(rng, WORDS[split]), N_PYTHON[split], seen)]
        for fact, _, answer, questions in FACTS:
            if (fact in held_out_facts) == (split == "test"):
                chosen = [rng.choice(questions)] if split == "test" else questions  # train sees every phrasing
                by_split[split] += [("search", q, {"query": q.rstrip("?.")}, answer) for q in chosen if q not in seen]
                seen.update(chosen)
        by_split[split] += [("none", q, {"answer": a}, a) for q, a in NO_TOOL[split]]

    rows = []
    counters: dict[str, dict[str, int]] = {"test": {}, "train": {}}
    for group in ("test", "train", "train, added"):
        if group == "train, added":
            # Added later, for the kinds the first adapter got wrong most (no tool needed; Python such as counting
            # letters). Drawn last, so the held-out split and the first train tasks stay as they were, byte for byte.
            by_split[group] = [("run_python", *task) for task in take(python_tasks(rng, WORDS["train"]), N_PYTHON[group], seen)]
            by_split[group] += [("none", q, {"answer": a}, a) for q, a in NO_TOOL[group] if q not in seen]
        tasks, split = by_split[group], group.split(",")[0]
        rng.shuffle(tasks)
        for tool, question, arguments, answer in tasks:
            counters[split][tool] = counters[split].get(tool, 0) + 1
            prefix = {"calculate": "calc", "run_python": "py", "search": "search", "none": "none"}[tool]
            rows.append({"id": f"{split}-{prefix}-{counters[split][tool]:03d}", "split": split, "question": question,
                         "tool": tool, "answer": answer, "arguments": arguments})
    return rows


def main() -> None:
    rows = build_rows()
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    tmp = OUT.with_name(f".tmp-{OUT.name}")  # write beside, then rename: never a half-written file
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(OUT)
    counts = {s: sum(r["split"] == s for r in rows) for s in ("train", "test")}
    print(f"wrote {len(rows)} tasks to {OUT} ({counts['train']} train, {counts['test']} held out)")


if __name__ == "__main__":
    main()
