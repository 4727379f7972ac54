"""The families that count whole things: what is left after give-aways (remaining), equal groups
multiplied out (groups), exact sharing out (sharing), and quantities defined relative to each
other (comparison).
"""

from __future__ import annotations

import random

from vpt.data.synth.equations import Problem, _eq, _solution
from vpt.data.synth.vocabulary import BAKED, FRUITS, PEOPLE, PURCHASES, RELATIVES, THINGS, VENUES

# Each family takes an rng and a template index and returns (problem, solution, answer).


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
