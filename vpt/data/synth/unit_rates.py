"""The families about an amount per unit: price per item (shopping), speed and other rates per
unit of time (rates), pay per hour (wages), and parts per hundred (percent).
"""

from __future__ import annotations

import random

from vpt.data.synth.equations import Problem, _eq, _percent_of, _solution
from vpt.data.synth.vocabulary import JOBS, PEOPLE, PRODUCTS, SALE_ITEMS, SHOP_ITEMS

# Each family takes an rng and a template index and returns (problem, solution, answer).


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

