"""The words the templates are filled with: people (with their pronouns), countable things,
shop items with their price ranges, and the smaller word lists single templates draw from.

A template draws from these with its document's rng, so reordering or editing any list changes
every corpus generated afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass


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
