"""The words of the synthetic world, in English and in Chinese.

Everything the data generators say is built from the small lists below. Keeping
the vocabulary small is deliberate: a tiny character-level model trained for a
minute can learn a world of ~150 words, and every story, question and
translation is made from the same words, so pretraining on stories helps the
later fine-tuning tasks.

Each entry carries what a sentence needs to use it correctly in both
languages: English plurals and articles, Chinese measure words (一*只*猫,
一*本*书), the Chinese form used after 在/住在/去, and so on.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Person:
    """A named person. ``gender`` picks the pronouns ("f" -> she/her, "m" -> he/him/his)."""

    name: str  # English, may be two words ("Li Na")
    zh: str  # Chinese rendering of the name
    gender: str  # "f" or "m"

    @property
    def subj(self) -> str:
        return "she" if self.gender == "f" else "he"

    @property
    def obj(self) -> str:
        return "her" if self.gender == "f" else "him"

    @property
    def poss(self) -> str:
        return "her" if self.gender == "f" else "his"

    @property
    def zh_pronoun(self) -> str:
        return "她" if self.gender == "f" else "他"


@dataclass(frozen=True)
class Place:
    """A place. English always uses the article ("the park"), which is part of the name.

    The prepositions differ by place in English (in the forest, on the farm, by the
    river) and the Chinese form differs by use: 去公园 (go), 在森林里 (at), 住在公园附近
    (live near).
    """

    name: str  # "the park"
    live_prep: str  # "lives {live_prep} the park"
    at_prep: str  # "sings {at_prep} the park"
    zh: str  # after 去 ("去森林")
    zh_at: str  # after 在 ("在森林里")
    zh_live: str  # after 住在 ("住在公园附近")


@dataclass(frozen=True)
class Animal:
    name: str
    plural: str
    zh: str
    mw: str  # Chinese measure word: 一只猫, 一匹马


@dataclass(frozen=True)
class Thing:
    """A small object a person can own, give or paint a colour."""

    name: str
    plural: str
    zh: str
    mw: str  # 一本书, 一顶帽子


@dataclass(frozen=True)
class Colour:
    name: str
    zh: str  # the full colour word (红色), used as 红色的帽子 / 是红色的


@dataclass(frozen=True)
class Food:
    """Something to eat or drink. ``plural`` foods take "are" ("the noodles are cold")."""

    name: str
    verb: str  # English third person: "eats" or "drinks"
    zh: str
    zh_verb: str  # 吃 or 喝 (soup is eaten in English but 喝 in Chinese)
    plural: bool


@dataclass(frozen=True)
class Action:
    base: str  # "likes to swim"
    third: str  # "Mia swims"
    zh: str


@dataclass(frozen=True)
class Feeling:
    name: str
    zh: str  # used as 很{zh}: 很开心


PEOPLE: tuple[Person, ...] = (
    Person("Mia", "米娅", "f"),
    Person("Anna", "安娜", "f"),
    Person("Lily", "莉莉", "f"),
    Person("Emma", "艾玛", "f"),
    Person("Nina", "妮娜", "f"),
    Person("Lucy", "露西", "f"),
    Person("Zoe", "佐伊", "f"),
    Person("Rosa", "罗莎", "f"),
    Person("Ivy", "艾薇", "f"),
    Person("Eva", "伊娃", "f"),
    Person("Li Na", "李娜", "f"),
    Person("Wang Fang", "王芳", "f"),
    Person("Tom", "汤姆", "m"),
    Person("Sam", "萨姆", "m"),
    Person("Paul", "保罗", "m"),
    Person("Max", "马克斯", "m"),
    Person("Leo", "利奥", "m"),
    Person("Jack", "杰克", "m"),
    Person("Omar", "奥马尔", "m"),
    Person("Kai", "凯", "m"),
    Person("Hugo", "雨果", "m"),
    Person("Dan", "丹", "m"),
    Person("Zhang Wei", "张伟", "m"),
    Person("Chen Jie", "陈杰", "m"),
)

PLACES: tuple[Place, ...] = (
    Place("the forest", "in", "in", "森林", "森林里", "森林里"),
    Place("the village", "in", "in", "村子", "村子里", "村子里"),
    Place("the city", "in", "in", "城里", "城里", "城里"),
    Place("the farm", "on", "on", "农场", "农场", "农场"),
    Place("the river", "by", "by", "河边", "河边", "河边"),
    Place("the lake", "by", "by", "湖边", "湖边", "湖边"),
    Place("the old mill", "near", "at", "老磨坊", "老磨坊", "老磨坊附近"),
    Place("the park", "near", "in", "公园", "公园", "公园附近"),
    Place("the market", "near", "at", "市场", "市场", "市场附近"),
    Place("the school", "near", "at", "学校", "学校", "学校附近"),
    Place("the train station", "near", "at", "火车站", "火车站", "火车站附近"),
    Place("the library", "near", "in", "图书馆", "图书馆", "图书馆附近"),
)

ANIMALS: tuple[Animal, ...] = (
    Animal("cat", "cats", "猫", "只"),
    Animal("dog", "dogs", "狗", "只"),
    Animal("rabbit", "rabbits", "兔子", "只"),
    Animal("horse", "horses", "马", "匹"),
    Animal("cow", "cows", "牛", "头"),
    Animal("duck", "ducks", "鸭子", "只"),
    Animal("fox", "foxes", "狐狸", "只"),
    Animal("owl", "owls", "猫头鹰", "只"),
    Animal("goat", "goats", "山羊", "只"),
    Animal("frog", "frogs", "青蛙", "只"),
    Animal("bird", "birds", "鸟", "只"),
    Animal("bear", "bears", "熊", "只"),
)

THINGS: tuple[Thing, ...] = (
    Thing("book", "books", "书", "本"),
    Thing("cup", "cups", "杯子", "个"),
    Thing("hat", "hats", "帽子", "顶"),
    Thing("ball", "balls", "球", "个"),
    Thing("kite", "kites", "风筝", "个"),
    Thing("box", "boxes", "盒子", "个"),
    Thing("lamp", "lamps", "灯", "盏"),
    Thing("key", "keys", "钥匙", "把"),
    Thing("bag", "bags", "包", "个"),
    Thing("umbrella", "umbrellas", "伞", "把"),
    Thing("chair", "chairs", "椅子", "把"),
    Thing("pen", "pens", "笔", "支"),
    Thing("scarf", "scarves", "围巾", "条"),
    Thing("bike", "bikes", "自行车", "辆"),
    Thing("coat", "coats", "外套", "件"),
)

COLOURS: tuple[Colour, ...] = (
    Colour("red", "红色"),
    Colour("blue", "蓝色"),
    Colour("green", "绿色"),
    Colour("yellow", "黄色"),
    Colour("white", "白色"),
    Colour("black", "黑色"),
    Colour("orange", "橙色"),
    Colour("purple", "紫色"),
    Colour("pink", "粉色"),
    Colour("brown", "棕色"),
)

FOODS: tuple[Food, ...] = (
    Food("bread", "eats", "面包", "吃", False),
    Food("rice", "eats", "米饭", "吃", False),
    Food("soup", "eats", "汤", "喝", False),
    Food("tea", "drinks", "茶", "喝", False),
    Food("milk", "drinks", "牛奶", "喝", False),
    Food("cake", "eats", "蛋糕", "吃", False),
    Food("cheese", "eats", "奶酪", "吃", False),
    Food("noodles", "eats", "面条", "吃", True),
    Food("apples", "eats", "苹果", "吃", True),
    Food("eggs", "eats", "鸡蛋", "吃", True),
    Food("pears", "eats", "梨", "吃", True),
    Food("dumplings", "eats", "饺子", "吃", True),
)

ACTIONS: tuple[Action, ...] = (
    Action("sing", "sings", "唱歌"),
    Action("dance", "dances", "跳舞"),
    Action("read", "reads", "看书"),
    Action("swim", "swims", "游泳"),
    Action("run", "runs", "跑步"),
    Action("paint", "paints", "画画"),
    Action("cook", "cooks", "做饭"),
    Action("sleep", "sleeps", "睡觉"),
    Action("walk", "walks", "散步"),
    Action("write", "writes", "写字"),
)

FEELINGS: tuple[Feeling, ...] = (
    Feeling("happy", "开心"),
    Feeling("sad", "难过"),
    Feeling("tired", "累"),
    Feeling("angry", "生气"),
    Feeling("calm", "平静"),
    Feeling("excited", "兴奋"),
    Feeling("scared", "害怕"),
    Feeling("hungry", "饿"),
)

# Small counts written as words in sentences ("Mia has three cats"). Chinese uses
# 两, not 二, before a measure word: 两只猫.
NUMBER_WORDS: tuple[tuple[int, str, str], ...] = (
    (2, "two", "两"),
    (3, "three", "三"),
    (4, "four", "四"),
    (5, "five", "五"),
)


def article(phrase: str) -> str:
    """Put "a" or "an" in front of ``phrase``: article("owl") -> "an owl"."""
    return ("an " if phrase[:1].lower() in "aeiou" else "a ") + phrase


def person_named(name: str) -> Person:
    """Look a person up by English name; ValueError lists the names if unknown."""
    for person in PEOPLE:
        if person.name == name:
            return person
    names = ", ".join(p.name for p in PEOPLE)
    raise ValueError(f"unknown person {name!r}; the world's people are: {names}")


def chinese_fragments() -> list[str]:
    """Every Chinese string in the lexicon (used to build the alphabet)."""
    out: list[str] = []
    for p in PEOPLE:
        out += [p.zh, p.zh_pronoun]
    for pl in PLACES:
        out += [pl.zh, pl.zh_at, pl.zh_live]
    for a in ANIMALS:
        out += [a.zh, a.mw]
    for t in THINGS:
        out += [t.zh, t.mw]
    out += [c.zh for c in COLOURS]
    for f in FOODS:
        out += [f.zh, f.zh_verb]
    out += [a.zh for a in ACTIONS]
    out += [f.zh for f in FEELINGS]
    out += [zh for _, _, zh in NUMBER_WORDS]
    out += ["她", "他"]
    return out


def spelling_words() -> tuple[str, ...]:
    """Single English words of 3-8 letters from the lexicon, sorted (for spelling tasks).

    Names keep their capital letter ("Mia"); two-word names and places are left out.
    """
    words: set[str] = set()
    words.update(p.name for p in PEOPLE if " " not in p.name)
    words.update(pl.name.split()[-1] for pl in PLACES if len(pl.name.split()) == 2)
    words.update(a.name for a in ANIMALS)
    words.update(t.name for t in THINGS)
    words.update(c.name for c in COLOURS)
    words.update(f.name for f in FOODS)
    words.update(a.base for a in ACTIONS)
    words.update(f.name for f in FEELINGS)
    # sorted(): iterating a set of str depends on PYTHONHASHSEED; sorting does not.
    return tuple(sorted(w for w in words if 3 <= len(w) <= 8))
