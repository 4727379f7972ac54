"""Seeded generator of grade-school math word problems in the NuminaMath-CoT schema.

This is the unlabeled pretraining corpus of the offline default, and the lab experiments steer
which skills it contains through the family weights. Each family is therefore one distinct
arithmetic skill, and its templates vary wording and sentence structure while keeping the skill.

Every solution is GSM8K style: one sentence per step, each with an explicit equation
`a op b = c` over non-negative integers, and a last line `#### N`. Equations are built with
`_eq`, which computes the value itself and refuses anything that leaves the integers, so a
template can only be wrong in its wording, never in its arithmetic.

Document i depends only on (seed, i) and the family weights: it has its own
`random.Random(f"{seed}:{i}")`, so a corpus of n documents is a prefix of any longer one and
output does not depend on PYTHONHASHSEED.
"""

from __future__ import annotations

import json
import math
import os
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from vpt.io import atomic_path

FAMILIES: tuple[str, ...] = (
    "shopping",
    "remaining",
    "groups",
    "sharing",
    "rates",
    "wages",
    "percent",
    "comparison",
)

SOURCE_PREFIX = "synth"


@dataclass
class SynthConfig:
    n_docs: int
    seed: int = 0
    families: dict[str, float] = field(default_factory=lambda: {f: 1.0 for f in FAMILIES})  # family -> sampling weight
    # family -> the template indices it may use (held-out-template splits); a family not listed
    # uses all of its templates. None keeps the original draw, so existing corpora are unchanged.
    templates: dict[str, list[int]] | None = None


# --------------------------------------------------------------------------------------------
# Vocabulary


@dataclass(frozen=True)
class Person:
    name: str
    he: str
    his: str
    him: str

    @property
    def He(self) -> str:  # noqa: N802 - reads like the word it stands for in templates
        return self.he.capitalize()

    @property
    def His(self) -> str:  # noqa: N802
        return self.his.capitalize()


def _people(names: str, he: str, his: str, him: str) -> list[Person]:
    return [Person(n, he, his, him) for n in names.split()]


PEOPLE: tuple[Person, ...] = tuple(
    _people(
        "Maya Olivia Priya Sofia Amara Chloe Fatima Hannah Isabel Jasmine Keiko Lucia Mei Nadia "
        "Rosa Zoe Grace Aisha Elena Ingrid",
        "she", "her", "her",
    )
    + _people(
        "Liam Mateo Omar Kenji Daniel Ethan Hassan Ivan Jamal Lucas Noah Rahul Samuel Tomas Wei "
        "Diego Felix Kwame Marco Arjun",
        "he", "his", "him",
    )
)

# Small countable things (singular, plural) for the counting families.
THINGS: tuple[tuple[str, str], ...] = (
    ("marble", "marbles"), ("sticker", "stickers"), ("pencil", "pencils"), ("cookie", "cookies"),
    ("trading card", "trading cards"), ("seashell", "seashells"), ("stamp", "stamps"),
    ("bead", "beads"), ("crayon", "crayons"), ("balloon", "balloons"), ("button", "buttons"),
    ("toy car", "toy cars"), ("postcard", "postcards"), ("eraser", "erasers"),
    ("candy bar", "candy bars"), ("coin", "coins"),
)

# (singular, plural, lowest price, highest price) in whole dollars.
SHOP_ITEMS: tuple[tuple[str, str, int, int], ...] = (
    ("notebook", "notebooks", 2, 6), ("pen", "pens", 1, 3), ("sandwich", "sandwiches", 4, 9),
    ("T-shirt", "T-shirts", 8, 20), ("comic book", "comic books", 3, 8),
    ("bag of rice", "bags of rice", 5, 15), ("candle", "candles", 2, 7),
    ("flower pot", "flower pots", 3, 12), ("toy robot", "toy robots", 10, 25),
    ("pack of batteries", "packs of batteries", 4, 10), ("jar of honey", "jars of honey", 5, 11),
    ("pair of socks", "pairs of socks", 2, 6), ("bottle of juice", "bottles of juice", 2, 5),
    ("board game", "board games", 12, 30), ("loaf of bread", "loaves of bread", 2, 5),
    ("watermelon", "watermelons", 3, 8),
)

BAKED = ("muffins", "cupcakes", "rolls", "cookies", "croissants", "bagels")
FRUITS = ("apples", "oranges", "pears", "peaches", "plums", "lemons")
JOBS = ("bookstore", "cafe", "grocery store", "library", "bike shop", "garden center", "pet shop", "bakery")
VENUES = ("theater", "concert hall", "school auditorium", "stadium", "lecture hall")
PRODUCTS = ("bottles", "jars", "cans", "boxes", "bags")
PURCHASES = ("book", "gift", "bus pass", "pair of gloves", "plant", "board game")
RELATIVES = ("brother", "sister", "cousin")
SALE_ITEMS = (
    ("jacket", "a clothing store"), ("bicycle", "a sports shop"), ("lamp", "a furniture store"),
    ("backpack", "the mall"), ("pair of boots", "a shoe store"), ("guitar", "a music shop"),
    ("tent", "an outdoor store"), ("video game", "an electronics store"),
)


# --------------------------------------------------------------------------------------------
# Arithmetic


_PRECEDENCE = {"+": 0, "-": 0, "*": 1, "/": 1}


@dataclass(frozen=True)
class Eq:
    """A rendered equation and its value; formats as the equation so templates can embed it."""

    text: str
    value: int

    def __str__(self) -> str:
        return self.text


def _eq(first: int, *rest: int | str) -> Eq:
    """`_eq(3, "*", 4)` -> Eq("3 * 4 = 12", 12), evaluated left to right.

    A readers' evaluation uses the usual precedence, so an operator may not bind tighter than
    the one before it (`a + b * c` is refused); every partial result must stay a non-negative
    integer so the text never shows a fraction, a negative number or a remainder.
    """
    if len(rest) % 2:
        raise ValueError(f"unbalanced equation parts: {(first, *rest)!r}")
    value = first
    text = str(first)
    prev: str | None = None
    for op, x in zip(rest[0::2], rest[1::2]):
        if not isinstance(op, str) or op not in _PRECEDENCE or not isinstance(x, int):
            raise ValueError(f"bad equation parts: {(first, *rest)!r}")
        if prev is not None and _PRECEDENCE[op] > _PRECEDENCE[prev]:
            raise ValueError(f"left-to-right order would disagree with precedence: {(first, *rest)!r}")
        if op == "+":
            value += x
        elif op == "-":
            value -= x
        elif op == "*":
            value *= x
        else:
            if x == 0 or value % x:
                raise ValueError(f"inexact division in {(first, *rest)!r}")
            value //= x
        if value < 0:
            raise ValueError(f"negative intermediate in {(first, *rest)!r}")
        text += f" {op} {x}"
        prev = op
    return Eq(f"{text} = {value}", value)


def _solution(steps: Sequence[str], answer: Eq) -> tuple[str, int]:
    return "\n".join([*steps, f"#### {answer.value}"]), answer.value


def _percent_of(rng: random.Random, percents: Sequence[int], lo: int, hi: int) -> tuple[int, int]:
    """A percent and a base in [lo, hi] such that percent% of base is a whole number."""
    pct = rng.choice(percents)
    step = 100 // math.gcd(pct, 100)
    return pct, step * rng.randint(-(-lo // step), hi // step)


# --------------------------------------------------------------------------------------------
# Families: each takes an rng and a template index and returns (problem, solution, answer).

Problem = tuple[str, str, int]
FamilyFn = Callable[[random.Random, int], Problem]


def _shopping(rng: random.Random, t: int) -> Problem:
    """Total cost of items bought at unit prices."""
    p, q = rng.sample(PEOPLE, 2)
    (s1, pl1, lo1, hi1), (s2, pl2, lo2, hi2), (s3, pl3, lo3, hi3) = rng.sample(SHOP_ITEMS, 3)
    p1, p2, p3 = rng.randint(lo1, hi1), rng.randint(lo2, hi2), rng.randint(lo3, hi3)
    a, b, c = rng.randint(2, 9), rng.randint(2, 9), rng.randint(2, 6)
    if t == 0:
        problem = (
            f"{p.name} goes to the store to get supplies for the week. {p.He} buys {a} {pl1} that "
            f"cost ${p1} each and {b} {pl2} that cost ${p2} each. How much money does {p.he} "
            f"spend in total?"
        )
        c1, c2 = _eq(a, "*", p1), _eq(b, "*", p2)
        total = _eq(c1.value, "+", c2.value)
        steps = [f"The {pl1} cost {c1} dollars.", f"The {pl2} cost {c2} dollars.",
                 f"In total {p.he} spends {total} dollars."]
    elif t == 1:
        problem = (
            f"For the class party, {p.name} has a shopping list with {a} {pl1}, {b} {pl2} and "
            f"{c} {pl3}. At the shop one {s1} costs ${p1}, one {s2} costs ${p2} and one {s3} "
            f"costs ${p3}. What is the total cost of everything on {p.his} list?"
        )
        c1, c2, c3 = _eq(a, "*", p1), _eq(b, "*", p2), _eq(c, "*", p3)
        total = _eq(c1.value, "+", c2.value, "+", c3.value)
        steps = [f"{a} {pl1} cost {c1} dollars.", f"{b} {pl2} cost {c2} dollars.",
                 f"{c} {pl3} cost {c3} dollars.", f"Everything on the list costs {total} dollars."]
    elif t == 2:
        problem = (
            f"A local shop sells {pl1} for ${p1} each. On Saturday morning {p.name} bought {a} of "
            f"them for {p.his} family, and later that day {q.name} bought {b} more for a picnic. "
            f"How much did the two of them spend at the shop altogether?"
        )
        n = _eq(a, "+", b)
        total = _eq(n.value, "*", p1)
        steps = [f"Together they bought {n} {pl1}.",
                 f"At {p1} dollars each, that costs {total} dollars."]
    elif t == 3:
        problem = (
            f"How much does {p.name} pay at the market if {p.he} picks up {a} {pl1} at ${p1} "
            f"apiece, {b} {pl2} at ${p2} apiece, and a single {s3} for ${p3}, with nothing else "
            f"in the basket?"
        )
        c1, c2 = _eq(a, "*", p1), _eq(b, "*", p2)
        total = _eq(c1.value, "+", c2.value, "+", p3)
        steps = [f"The {pl1} come to {c1} dollars.", f"The {pl2} come to {c2} dollars.",
                 f"Adding the {s3}, {p.he} pays {total} dollars."]
    else:
        raise ValueError(f"shopping has no template {t}")
    return (problem, *_solution(steps, total))


def _remaining(rng: random.Random, t: int) -> Problem:
    """A starting amount minus several give-aways or uses."""
    p, q = rng.sample(PEOPLE, 2)
    _, things = rng.choice(THINGS)
    if t == 0:
        a, b, left = rng.randint(3, 30), rng.randint(3, 30), rng.randint(2, 40)
        n = a + b + left
        relative = rng.choice(RELATIVES)
        problem = (
            f"{p.name} collected {n} {things} over the summer. {p.He} gave {a} of them to "
            f"{p.his} friend {q.name} and {b} to {p.his} little {relative}. How many {things} "
            f"does {p.name} have left?"
        )
        given = _eq(a, "+", b)
        rest = _eq(n, "-", given.value)
        steps = [f"{p.He} gave away {given} {things}.", f"So {p.he} has {rest} {things} left."]
    elif t == 1:
        a, b, c, left = (rng.randint(2, 20) for _ in range(4))
        n = a + b + c + left
        problem = (
            f"At the start of the school year, {p.name} had a box of {n} {things}. During the "
            f"first month {p.he} used {a} for an art project, lost {b} on the bus, and traded "
            f"{c} with classmates. How many {things} are still in the box?"
        )
        r1 = _eq(n, "-", a)
        r2 = _eq(r1.value, "-", b)
        rest = _eq(r2.value, "-", c)
        steps = [f"After the art project there are {r1} {things}.",
                 f"After losing some on the bus there are {r2} {things}.",
                 f"After trading, {rest} {things} are still in the box."]
    elif t == 2:
        a, b, c, left = rng.randint(5, 20), rng.randint(5, 30), rng.randint(8, 15), rng.randint(1, 50)
        n = a + b + c + left
        purchase = rng.choice(PURCHASES)
        problem = (
            f"{p.name} starts the week with ${n} in {p.his} wallet. On Monday {p.he} spends ${a} "
            f"on lunch, on Tuesday ${b} on a {purchase}, and on Wednesday ${c} on a movie ticket. "
            f"How many dollars does {p.he} have left after Wednesday?"
        )
        spent = _eq(a, "+", b, "+", c)
        rest = _eq(n, "-", spent.value)
        steps = [f"From Monday to Wednesday {p.he} spends {spent} dollars.",
                 f"{p.He} has {rest} dollars left."]
    elif t == 3:
        a, b, c = rng.randint(20, 200), rng.randint(10, 100), rng.randint(2, 30)
        n = 10 * rng.randint((a + b + c) // 10 + 1, (a + b + c) // 10 + 30)
        problem = (
            f"A water tank on {p.name}'s farm holds {n} liters when it is full. One day the "
            f"garden uses {a} liters, the animals drink {b} liters, and {c} liters leak out "
            f"through a crack. How many liters of water remain in the tank at the end of the day?"
        )
        lost = _eq(a, "+", b)
        lost2 = _eq(lost.value, "+", c)
        rest = _eq(n, "-", lost2.value)
        steps = [f"The garden and the animals use {lost} liters.",
                 f"With the leak, {lost2} liters leave the tank.",
                 f"The tank still has {rest} liters."]
    elif t == 4:
        a, b, left = rng.randint(15, 80), rng.randint(15, 80), rng.randint(10, 200)
        n = a + b + left
        problem = (
            f"How many pages does {p.name} still have to read if {p.his} new library book has {n} "
            f"pages and {p.he} has already read {a} pages on Saturday and another {b} pages on "
            f"Sunday?"
        )
        r1 = _eq(n, "-", a)
        rest = _eq(r1.value, "-", b)
        steps = [f"After Saturday, {r1} pages are unread.",
                 f"After Sunday, {rest} pages are left to read."]
    else:
        raise ValueError(f"remaining has no template {t}")
    return (problem, *_solution(steps, rest))


def _groups(rng: random.Random, t: int) -> Problem:
    """Equal groups multiplied out, sometimes plus a few extras."""
    p = rng.choice(PEOPLE)
    _, things = rng.choice(THINGS)
    if t == 0:
        boxes, per, extra = rng.randint(2, 12), rng.randint(4, 25), rng.randint(1, 15)
        problem = (
            f"{p.name} is organizing {p.his} collection of {things}. {p.He} has {boxes} boxes, "
            f"and each box holds {per} {things}. {p.He} also has {extra} loose {things} on "
            f"{p.his} desk. How many {things} does {p.he} have in all?"
        )
        boxed = _eq(boxes, "*", per)
        total = _eq(boxed.value, "+", extra)
        steps = [f"The boxes hold {boxed} {things}.",
                 f"With the loose ones, {p.he} has {total} {things}."]
    elif t == 1:
        rows, seats, extra = rng.randint(8, 30), rng.randint(10, 40), rng.randint(20, 120)
        venue = rng.choice(VENUES)
        problem = (
            f"A {venue} has {rows} rows of seats with {seats} seats in each row, plus a balcony "
            f"with {extra} more seats. If every seat is taken for tonight's show, how many people "
            f"are sitting in the {venue}?"
        )
        main = _eq(rows, "*", seats)
        total = _eq(main.value, "+", extra)
        steps = [f"The rows hold {main} people.",
                 f"Adding the balcony gives {total} people."]
    elif t == 2:
        trays, per, days = rng.randint(2, 8), rng.randint(6, 24), rng.randint(2, 7)
        food = rng.choice(BAKED)
        problem = (
            f"Every morning {p.name} bakes {trays} trays of {food} for the corner bakery, and each "
            f"tray holds {per} {food}. {p.He} bakes the same amount every day. How many {food} "
            f"does {p.he} bake in {days} days?"
        )
        daily = _eq(trays, "*", per)
        total = _eq(daily.value, "*", days)
        steps = [f"Each day {p.he} bakes {daily} {food}.",
                 f"In {days} days {p.he} bakes {total} {food}."]
    elif t == 3:
        a, x = rng.randint(2, 12), rng.randint(2, 8)
        b, y = rng.randint(2, 12), rng.randint(9, 20)
        problem = (
            f"{p.name} is packing party bags for a birthday. {p.He} fills {a} small bags with {x} "
            f"{things} each and {b} large bags with {y} {things} each. How many {things} does "
            f"{p.he} put into the bags altogether?"
        )
        small, large = _eq(a, "*", x), _eq(b, "*", y)
        total = _eq(small.value, "+", large.value)
        steps = [f"The small bags get {small} {things}.", f"The large bags get {large} {things}.",
                 f"Altogether {p.he} packs {total} {things}."]
    else:
        raise ValueError(f"groups has no template {t}")
    return (problem, *_solution(steps, total))


def _sharing(rng: random.Random, t: int) -> Problem:
    """Exact division among people or into groups; one template asks for the remainder."""
    p = rng.choice(PEOPLE)
    _, things = rng.choice(THINGS)
    if t == 0:
        packs, per = rng.randint(2, 8), rng.randint(4, 12)
        n = packs * per
        people = rng.choice([d for d in range(2, 13) if n % d == 0])
        problem = (
            f"{p.name} buys {packs} packs of {things} with {per} {things} in each pack. {p.He} "
            f"wants to share all of them equally among {people} friends. How many {things} will "
            f"each friend get?"
        )
        bought = _eq(packs, "*", per)
        each = _eq(bought.value, "/", people)
        steps = [f"{p.He} has {bought} {things}.", f"Each friend gets {each} {things}."]
    elif t == 1:
        kids, share = rng.randint(4, 9), rng.randint(2, 12)
        left = rng.randint(2, kids - 1)
        n = kids * share + left
        problem = (
            f"{p.name} has {n} {things}, and {kids} children are coming to {p.his} party. {p.He} "
            f"gives every child the same number of {things}, as many as possible, and keeps the "
            f"rest. How many {things} does {p.name} keep?"
        )
        used = _eq(kids, "*", share)
        more = _eq(kids, "*", share + 1)
        each = _eq(n, "-", used.value)
        steps = [f"Giving each child {share} {things} uses {used}, while {share + 1} each would "
                 f"need {more}, which is more than {n}.",
                 f"So {p.name} keeps {each} {things}."]
    elif t == 2:
        people, share = rng.randint(3, 8), rng.randint(12, 40)
        bill = people * share
        tip = rng.randint(2, bill // 5)
        meal = bill - tip
        problem = (
            f"{p.name} and {people - 1} friends go out for dinner. The meal costs ${meal} and "
            f"they add a ${tip} tip. They agree to split the whole bill equally among the "
            f"{people} of them. How much does each person pay?"
        )
        whole = _eq(meal, "+", tip)
        each = _eq(whole.value, "/", people)
        steps = [f"The whole bill is {whole} dollars.", f"Each person pays {each} dollars."]
    elif t == 3:
        crates, share = rng.randint(2, 9), rng.randint(10, 40)
        n = crates * share
        a = rng.randint(5, n - 5)
        fruit = rng.choice(FRUITS)
        problem = (
            f"{p.name} picked {a} {fruit} from the old orchard and {n - a} {fruit} from the new "
            f"one. {p.He} puts all the {fruit} into {crates} crates so that every crate holds the "
            f"same number. How many {fruit} go into each crate?"
        )
        total = _eq(a, "+", n - a)
        each = _eq(total.value, "/", crates)
        steps = [f"{p.He} picked {total} {fruit} in all.", f"Each crate gets {each} {fruit}."]
    elif t == 4:
        size, teams, absent = rng.randint(3, 8), rng.randint(3, 12), rng.randint(2, 9)
        n = size * teams + absent
        problem = (
            f"There are {n} students in {p.name}'s grade. On sports day {absent} of them are "
            f"absent, and the teacher splits everyone else into teams of {size} students each. "
            f"How many teams are there?"
        )
        present = _eq(n, "-", absent)
        each = _eq(present.value, "/", size)
        steps = [f"{present} students are at sports day.", f"They make {each} teams."]
    else:
        raise ValueError(f"sharing has no template {t}")
    return (problem, *_solution(steps, each))


def _rates(rng: random.Random, t: int) -> Problem:
    """Distance = speed * time and time = distance / speed, plus other per-unit-time rates."""
    p = rng.choice(PEOPLE)
    if t == 0:
        unit = rng.choice(["kilometers", "miles"])
        h1, s1 = rng.randint(2, 4), 5 * rng.randint(8, 16)
        h2, s2 = rng.randint(2, 3), 5 * rng.randint(6, 14)
        problem = (
            f"{p.name} drives to visit {p.his} grandparents. For the first {h1} hours {p.he} "
            f"drives at {s1} {unit} per hour, and then for {h2} more hours at {s2} {unit} per "
            f"hour. How many {unit} does {p.he} drive in total?"
        )
        d1, d2 = _eq(s1, "*", h1), _eq(s2, "*", h2)
        answer = _eq(d1.value, "+", d2.value)
        steps = [f"The first part of the trip is {d1} {unit}.",
                 f"The second part is {d2} {unit}.", f"In total {p.he} drives {answer} {unit}."]
    elif t == 1:
        speed, hours, done = 10 * rng.randint(6, 15), rng.randint(2, 6), 5 * rng.randint(4, 40)
        rest = speed * hours
        problem = (
            f"A train must travel {rest + done} kilometers from one city to the next. After the "
            f"first stop it has already covered {done} kilometers. If it moves at {speed} "
            f"kilometers per hour for the rest of the trip, how many more hours will it take?"
        )
        left = _eq(rest + done, "-", done)
        answer = _eq(left.value, "/", speed)
        steps = [f"The train still has {left} kilometers to go.",
                 f"At {speed} kilometers per hour, that takes {answer} hours."]
    elif t == 2:
        per, morning, afternoon = rng.randint(3, 25), rng.randint(20, 90), rng.randint(20, 90)
        product = rng.choice(PRODUCTS)
        day = rng.choice(["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"])
        problem = (
            f"A machine in a factory fills {per} {product} every minute. On {day} it runs for "
            f"{morning} minutes in the morning and {afternoon} minutes in the afternoon. How many "
            f"{product} does it fill on {day}?"
        )
        minutes = _eq(morning, "+", afternoon)
        answer = _eq(minutes.value, "*", per)
        steps = [f"The machine runs for {minutes} minutes.",
                 f"It fills {answer} {product}."]
    elif t == 3:
        speed = rng.randint(2, 6)
        hours = rng.randint(1, 3) * 2 if speed % 2 else rng.randint(2, 6)
        one_way = speed * hours // 2
        problem = (
            f"{p.name}'s favorite park is {one_way} kilometers from {p.his} home. {p.He} walks "
            f"there and back at a steady speed of {speed} kilometers per hour. How many hours "
            f"does the whole round trip take?"
        )
        both = _eq(one_way, "*", 2)
        answer = _eq(both.value, "/", speed)
        steps = [f"There and back is {both} kilometers.",
                 f"At {speed} kilometers per hour, the trip takes {answer} hours."]
    elif t == 4:
        hours, speed, days = rng.randint(2, 4), rng.randint(12, 30), rng.randint(3, 14)
        problem = (
            f"{p.name} is training for a bike race. Each day {p.he} cycles for {hours} hours at "
            f"an average speed of {speed} kilometers per hour. How many kilometers does {p.he} "
            f"cycle over {days} days of training?"
        )
        daily = _eq(speed, "*", hours)
        answer = _eq(daily.value, "*", days)
        steps = [f"Each day {p.he} cycles {daily} kilometers.",
                 f"Over {days} days {p.he} cycles {answer} kilometers."]
    else:
        raise ValueError(f"rates has no template {t}")
    return (problem, *_solution(steps, answer))


def _wages(rng: random.Random, t: int) -> Problem:
    """Hourly pay times hours, with bonuses, overtime or several jobs."""
    p = rng.choice(PEOPLE)
    job = rng.choice(JOBS)
    rate = rng.randint(9, 30)
    if t == 0:
        hours, bonus = rng.randint(5, 40), 5 * rng.randint(2, 20)
        problem = (
            f"{p.name} works at a {job} and earns ${rate} per hour. This week {p.he} worked "
            f"{hours} hours, and {p.his} manager gave {p.him} a ${bonus} bonus for doing a great "
            f"job. How much money did {p.he} earn this week?"
        )
        pay = _eq(rate, "*", hours)
        total = _eq(pay.value, "+", bonus)
        steps = [f"For the hours {p.he} earned {pay} dollars.",
                 f"With the bonus, {p.he} earned {total} dollars."]
    elif t == 1:
        base = rng.choice([30, 35, 40])
        extra_rate = rate + rng.randint(3, 15)
        overtime = rng.randint(2, 12)
        worked = base + overtime
        problem = (
            f"{p.name} is paid ${rate} per hour for the first {base} hours {p.he} works each "
            f"week, and ${extra_rate} per hour for every hour after that. Last week {p.he} worked "
            f"{worked} hours. How much did {p.he} earn last week?"
        )
        regular = _eq(base, "*", rate)
        over = _eq(worked, "-", base)
        over_pay = _eq(over.value, "*", extra_rate)
        total = _eq(regular.value, "+", over_pay.value)
        steps = [f"The first {base} hours pay {regular} dollars.",
                 f"{p.He} worked {over} extra hours.",
                 f"The extra hours pay {over_pay} dollars.",
                 f"Altogether {p.he} earned {total} dollars."]
    elif t == 2:
        hours, days = rng.randint(3, 9), rng.randint(2, 6)
        problem = (
            f"During summer break, {p.name} works at the {job} for {hours} hours a day, {days} "
            f"days a week. {p.He} is paid ${rate} for each hour of work. How much does {p.he} "
            f"earn in one week?"
        )
        weekly = _eq(hours, "*", days)
        total = _eq(weekly.value, "*", rate)
        steps = [f"{p.He} works {weekly} hours a week.",
                 f"{p.He} earns {total} dollars in one week."]
    elif t == 3:
        other_rate = rng.randint(8, 25)
        h1, h2 = rng.randint(4, 30), rng.randint(4, 30)
        problem = (
            f"{p.name} has two part-time jobs. {p.He} tutors students for ${rate} an hour and "
            f"walks dogs for ${other_rate} an hour. Last month {p.he} tutored for {h1} hours and "
            f"walked dogs for {h2} hours. What were {p.his} total earnings last month?"
        )
        tutoring, walking = _eq(rate, "*", h1), _eq(other_rate, "*", h2)
        total = _eq(tutoring.value, "+", walking.value)
        steps = [f"Tutoring paid {tutoring} dollars.", f"Dog walking paid {walking} dollars.",
                 f"{p.His} total earnings were {total} dollars."]
    elif t == 4:
        hours, weeks, bonus = rng.randint(10, 40), rng.randint(2, 6), 10 * rng.randint(5, 30)
        problem = (
            f"A new employee at the {job}, {p.name}, earns ${rate} per hour and works {hours} "
            f"hours every week. After finishing training {p.he} also gets a one-time bonus of "
            f"${bonus}. How much does {p.he} earn in {p.his} first {weeks} weeks in total?"
        )
        weekly = _eq(rate, "*", hours)
        pay = _eq(weekly.value, "*", weeks)
        total = _eq(pay.value, "+", bonus)
        steps = [f"{p.He} earns {weekly} dollars each week.",
                 f"In {weeks} weeks that is {pay} dollars.",
                 f"With the bonus, {p.he} earns {total} dollars."]
    else:
        raise ValueError(f"wages has no template {t}")
    return (problem, *_solution(steps, total))


def _percent(rng: random.Random, t: int) -> Problem:
    """Discounts and percentages of a quantity; bases are chosen so every result is whole."""
    p = rng.choice(PEOPLE)
    if t == 0:
        pct, price = _percent_of(rng, [10, 15, 20, 25, 30, 40, 50, 60, 75], 20, 400)
        item, shop = rng.choice(SALE_ITEMS)
        problem = (
            f"A {item} at {shop} normally costs ${price}. This weekend everything in the store is "
            f"{pct}% off, so {p.name} decides to buy the {item} on sale. How much does {p.he} pay "
            f"for it?"
        )
        off = _eq(price, "*", pct, "/", 100)
        answer = _eq(price, "-", off.value)
        steps = [f"The discount is {off} dollars.", f"So {p.he} pays {answer} dollars."]
    elif t == 1:
        pct, n = _percent_of(rng, [10, 20, 25, 30, 40, 50, 60, 75, 80], 20, 200)
        problem = (
            f"There are {n} students in {p.name}'s school band. Exactly {pct}% of them play brass "
            f"instruments and the rest play woodwinds or drums. How many students in the band do "
            f"not play a brass instrument?"
        )
        brass = _eq(n, "*", pct, "/", 100)
        answer = _eq(n, "-", brass.value)
        steps = [f"{brass} students play brass.", f"So {answer} students do not."]
    elif t == 2:
        pct, n = _percent_of(rng, [60, 70, 75, 80, 85, 90, 95], 20, 100)
        points = rng.randint(2, 5)
        problem = (
            f"{p.name} took a math test with {n} questions and answered {pct}% of them correctly. "
            f"Each correct answer is worth {points} points, and wrong answers are worth nothing. "
            f"How many points did {p.he} score?"
        )
        right = _eq(n, "*", pct, "/", 100)
        answer = _eq(right.value, "*", points)
        steps = [f"{p.He} answered {right} questions correctly.",
                 f"{p.He} scored {answer} points."]
    elif t == 3:
        pct, n = _percent_of(rng, [2, 4, 5, 10, 12, 15, 20, 25], 500, 6000)
        problem = (
            f"Last year a small town near the coast had {n} residents. This year the population "
            f"grew by {pct}% as new families moved in. How many people live in the town now?"
        )
        grew = _eq(n, "*", pct, "/", 100)
        answer = _eq(n, "+", grew.value)
        steps = [f"The town gained {grew} people.", f"Now {answer} people live there."]
    else:
        raise ValueError(f"percent has no template {t}")
    return (problem, *_solution(steps, answer))


def _comparison(rng: random.Random, t: int) -> Problem:
    """Quantities defined relative to each other ('times as many', 'more than', 'fewer than')."""
    a, b, c = rng.sample(PEOPLE, 3)
    _, things = rng.choice(THINGS)
    k, m = rng.randint(2, 5), rng.randint(2, 20)
    if t == 0:
        x = rng.randint(3, 25)
        problem = (
            f"{a.name} has {x} {things}. {b.name} has {k} times as many {things} as {a.name}, and "
            f"{c.name} has {m} more {things} than {b.name}. How many {things} do the three "
            f"friends have together?"
        )
        bx = _eq(x, "*", k)
        cx = _eq(bx.value, "+", m)
        answer = _eq(x, "+", bx.value, "+", cx.value)
        steps = [f"{b.name} has {bx} {things}.", f"{c.name} has {cx} {things}.",
                 f"Together they have {answer} {things}."]
    elif t == 1:
        y = rng.randint(2, 15)
        x = y + rng.randint(2, 15)
        problem = (
            f"In a summer reading challenge, {a.name} read {x} books. {b.name} read {y} fewer "
            f"books than {a.name}, and {c.name} read {k} times as many books as {b.name}. How "
            f"many books did {c.name} read?"
        )
        bx = _eq(x, "-", y)
        answer = _eq(bx.value, "*", k)
        steps = [f"{b.name} read {bx} books.", f"{c.name} read {answer} books."]
    elif t == 2:
        cows = rng.randint(4, 40)
        problem = (
            f"A farm owned by {a.name} has {cows} cows. There are {k} times as many chickens as "
            f"cows, and there are {m} more pigs than cows. How many cows, chickens, and pigs are "
            f"on the farm altogether?"
        )
        chickens = _eq(cows, "*", k)
        pigs = _eq(cows, "+", m)
        answer = _eq(cows, "+", chickens.value, "+", pigs.value)
        steps = [f"There are {chickens} chickens.", f"There are {pigs} pigs.",
                 f"Altogether there are {answer} animals."]
    elif t == 3:
        x = rng.randint(3, 40)
        problem = (
            f"{a.name} and {b.name} both collect {things}. {a.name} has {x} of them in a shoebox, "
            f"while {b.name} has {k} times as many as {a.name}. How many more {things} does "
            f"{b.name} have than {a.name}?"
        )
        bx = _eq(x, "*", k)
        answer = _eq(bx.value, "-", x)
        steps = [f"{b.name} has {bx} {things}.",
                 f"{b.name} has {answer} more {things} than {a.name}."]
    elif t == 4:
        x = 2 * rng.randint(4, 20)
        problem = (
            f"{a.name} scored {x} points in the first basketball game of the season. In the "
            f"second game {a.he} scored half as many points, and in the third game {a.he} scored "
            f"{m} more than in the second. How many points did {a.he} score in all three games?"
        )
        second = _eq(x, "/", 2)
        third = _eq(second.value, "+", m)
        answer = _eq(x, "+", second.value, "+", third.value)
        steps = [f"In the second game {a.he} scored {second} points.",
                 f"In the third game {a.he} scored {third} points.",
                 f"In all three games {a.he} scored {answer} points."]
    else:
        raise ValueError(f"comparison has no template {t}")
    return (problem, *_solution(steps, answer))


# family -> (generator, number of templates)
_REGISTRY: dict[str, tuple[FamilyFn, int]] = {
    "shopping": (_shopping, 4),
    "remaining": (_remaining, 5),
    "groups": (_groups, 4),
    "sharing": (_sharing, 5),
    "rates": (_rates, 5),
    "wages": (_wages, 5),
    "percent": (_percent, 4),
    "comparison": (_comparison, 5),
}
assert tuple(_REGISTRY) == FAMILIES

N_TEMPLATES: dict[str, int] = {name: n for name, (_, n) in _REGISTRY.items()}


# --------------------------------------------------------------------------------------------
# Public API


def _check_families(families: dict[str, float]) -> tuple[list[str], list[float]]:
    """Validated (names, weights) in FAMILIES order, so key order in a config cannot matter."""
    valid = ", ".join(FAMILIES)
    if not families:
        raise ValueError(f"synth families must name at least one of: {valid}")
    for name, weight in families.items():
        if name not in _REGISTRY:
            raise ValueError(f"unknown synth family {name!r}; valid families: {valid}")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not (
            math.isfinite(weight) and weight > 0
        ):
            raise ValueError(
                f"synth family {name!r} has weight {weight!r}; weights must be positive finite "
                f"numbers (valid families: {valid})"
            )
    names = [f for f in FAMILIES if f in families]
    return names, [float(families[f]) for f in names]


def _check_templates(family: str, allowed: Sequence[int]) -> list[int]:
    n = N_TEMPLATES[family]
    if not allowed or any(isinstance(t, bool) or not isinstance(t, int) or not 0 <= t < n for t in allowed):
        raise ValueError(f"synth templates for {family!r}: {list(allowed)!r}; need a non-empty list of indices in 0..{n - 1}")
    return sorted(set(allowed))


def generate(cfg: SynthConfig) -> list[dict[str, Any]]:
    """n_docs documents, each {"problem": str, "solution": str, "source": str, "messages": list[dict]}"""
    if isinstance(cfg.n_docs, bool) or not isinstance(cfg.n_docs, int) or cfg.n_docs < 0:
        raise ValueError(f"n_docs must be a non-negative integer, got {cfg.n_docs!r}")
    names, weights = _check_families(cfg.families)
    docs: list[dict[str, Any]] = []
    for i in range(cfg.n_docs):
        rng = random.Random(f"{cfg.seed}:{i}")
        family = rng.choices(names, weights=weights)[0]
        fn, n_templates = _REGISTRY[family]
        allowed = None if cfg.templates is None else cfg.templates.get(family)
        t = rng.randrange(n_templates) if allowed is None else rng.choice(_check_templates(family, allowed))
        problem, solution, _ = fn(rng, t)
        docs.append({
            "problem": problem,
            "solution": solution,
            "source": f"{SOURCE_PREFIX}:{family}:t{t}",
            "messages": [
                {"role": "user", "content": problem},
                {"role": "assistant", "content": solution},
            ],
        })
    return docs


def write_jsonl(docs: list[dict[str, Any]], path: str | os.PathLike[str]) -> None:
    """One JSON object per line, written atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            for doc in docs:
                f.write(json.dumps(doc, ensure_ascii=False) + "\n")


def parse_source(source: str) -> tuple[str, int]:
    """'synth:<family>:t<k>' -> (family, k)"""
    parts = source.split(":")
    if (
        len(parts) != 3
        or parts[0] != SOURCE_PREFIX
        or parts[1] not in _REGISTRY
        or not parts[2].startswith("t")
        or not parts[2][1:].isdigit()
        or not parts[2][1:].isascii()
    ):
        raise ValueError(
            f"not a synth source: {source!r} (expected 'synth:<family>:t<k>' with family one of "
            f"{', '.join(FAMILIES)})"
        )
    return parts[1], int(parts[2][1:])
