"""Who a question is about, and how old: "عمره ٣ سنين", "сыну 17", "16 yaşında", "2,5 Jahre",
"my mother". An answer must never contradict what the person said: an offer "for 6 to 16" is
no first answer for a 17-year-old.

Works on normalised text (bot.matching.normalise): lower case, no accents, Arabic-Indic digits
as ASCII, ё/є/і/ї folded. In the word lists, a word ending in "-" is a stem (a token matches
when it starts with it); any other word must match a token exactly.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bot.matching.normalise import normalise

# Units after a number. Years and months, in all ten languages (normalised spelling).
_YEARS = (
    "jahr-", "jahrig-", "jaehrig-", "j",  # de: 3 jahre, 3-jährig, 3j
    "year-", "yr", "yrs", "yo", "y",  # en: 3 years, 3yo, 3 y/o
    "سنه", "سنين", "سنوات", "سنا", "عام", "اعوام", "سني",  # ar
    "ساله-", "سال", "سالش-", "سالم-",  # fa
    "yas-", "yasli",  # tr: yaşında, yaşındaki
    "лет", "год-",  # ru: год, года, годик, годиков, годовалый
    "рок-", "рик", "рочк-", "ричн-",  # uk: років, рік, рочки, річна
    "ani", "an", "anisor-", "anul",  # ro
    "годин-", "годиш-", "г",  # bg
    "lat", "lata", "latek", "letni-", "roku", "rok", "rocz-",  # pl
    "sana", "sanawat", "sene", "sal", "sale", "saleh", "god", "goda", "let", "rokiv", "rokiw", "rokov",
    "godin-", "godishn-",  # bg in Latin letters
)
_MONTHS = (
    "monat-", "month-", "mo", "mos", "شهر-", "شهور", "اشهر", "ماه-", "ay", "aylik-",
    "месяц-", "мес", "мисяц-", "luna", "luni", "месец-", "месеч-", "miesiac-", "miesiec-", "mies",
    "mahe", "mah", "mahash-", "mahesh-", "shahr-", "shuhur", "shhur", "ashhur", "ashhor", "mesyac-", "mesiac-",
    "mesec-",
)
# Dual forms and words that are an age by themselves.
_WORD_AGES = {"سنتين": 2.0, "سنتان": 2.0, "شهرين": 2 / 12, "عامين": 2.0, "годовалый": 1.0, "годовалая": 1.0,
              "годовалого": 1.0, "годовалой": 1.0, "sanatain": 2.0, "santen": 2.0, "sanateen": 2.0}
# Words that make the next number an age: "alt", "old", "عمره", "age", "возраст".
_AGE_WORDS = ("alt", "old", "age", "aged", "alter", "عمر-", "سنه", "سن", "yasinda", "возраст-", "вик",
              "вику", "varsta", "възраст", "wiek", "omr-", "3omr-", "umr-", "omre", "sen", "sinni",
              # turned, turns: "навърши 16", "исполнилось 17", "a împlinit 16", "skończył 17", "turned 17"
              "навърш-", "navarsh-", "исполни-", "виповни-", "implin-", "konczy-", "skonczy-", "turned", "turns")
# Bulgarian says "is at 5" for "is 5": "детето е на 5", "az sam na 45".
_BE = ("е", "e", "съм", "sam", "sum", "си", "si", "сме", "sme", "са", "sa")
_AT = ("на", "na")
# After these, a number is something else: class 8, 9 uhr, 20 euro, 3 kinder.
_NOT_AGES = ("klass-", "class-", "grade-", "uhr", "hour-", "stund-", "euro-", "eur", "€", "%", "prozent",
             "kind-", "child-", "kid-", "km", "minut-", "tag-", "day-", "woch-", "week-", "ساعه", "يورو",
             "صف-", "كلاس-", "ساعت-", "كلاس", "يورو", "sinif-", "saat-", "класс-", "час-", "евро", "клас-",
             "clasa", "ora", "ore", "klas-", "godzin-", "semester-", "unterrichtseinheit-", "ue", "lesson-",
             "a1", "a2", "b1", "b2", "c1", "c2", "уро-", "часов", "dars", "درس-", "kinder-",
             # weeks and days: "3 hafta önce", "2 недели", "5 روز"
             "hafta-", "gun-", "день", "дня", "дней", "недел-", "тиж-", "тижн-", "روز-", "هفته-", "يوم-", "ايام",
             "اسبوع-", "zi", "zile", "saptaman-", "dni", "dzien", "tydz-", "tygodn-", "седмиц-", "дни", "ден",
             "week-", "woche-", "tage", "tagen", "nacht-", "night-")
# After a year word, these make it time spent doing something: "10 години стаж", "5 Jahre Erfahrung".
_EXPERIENCE = ("стаж-", "опыт-", "досвид-", "experience", "erfahrung-", "berufserfahrung-", "doswiadczeni-",
               "experienta", "tecrube-", "deneyim-", "سابقه-", "خبره", "خبرة", "تجربه-", "worked", "gearbeitet",
               "arbeit-", "работ-", "праців-", "lucr-", "calisti-", "calistim", "pracy", "pracowal-", "کار", "شغل-",
               "in", "im", "hier", "here", "в", "у", "na", "w", "la", "de", "burada", "inja", "اینجا", "هنا", "هون",
               "живем", "живу", "живемо", "живеем", "zivem", "traiesc", "mieszkam", "yasiyorum", "wohne-", "live-",
               "ago", "назад", "тому", "once", "temu", "acum", "پیش", "قبل")
_TOKEN = re.compile(r"[^\W_]+(?:[.,]\d)?|€|%")
_CLAUSE_END = re.compile(r"[,;:.!?()\[\]–—،؛؟]")  # between two words: they are not one phrase
_NUMBER = re.compile(r"^(\d{1,3})(?:[.,](\d))?$")
# Numbers written as words, 1 to 20, as people write ages ("drei Jahre", "عمره ثلاث سنين", "beş
# yaşında", "пять лет"). Many are everyday words too (German "ein", Persian "نه" is "no"), so a
# number word is an age only with a year or month word or an age word beside it.
_NUMBER_WORDS = {
    1: "ein eine einem einen eins one un unu o bir один одна одного одной один одна одно един една едно jeden jedna "
       "jednego واحد واحده يک",
    2: "zwei two doi doua iki два две дві два двама dwa dwie dwoch dwóch اثنين اثنان اتنين تنين دو",
    3: "drei three trei uc три trzy trzech ثلاث ثلاثه تلات تلاته سه",
    4: "vier four patru dort четыре чотири четири cztery czterech اربع اربعه اربعة چهار",
    5: "fünf five cinci bes пять п'ять пет piec pięć pieciu pięciu خمس خمسه پنج",
    6: "sechs six sase şase alti шесть шість шест szesc sześć szesciu sześciu ست سته شش شيش",
    7: "sieben seven sapte şapte yedi семь сім седем siedem siedmiu سبع سبعه هفت",
    8: "acht eight opt sekiz восемь вісім осем osiem osmiu ośmiu ثمان ثماني ثمانيه تمن تمان تماني هشت",
    9: "neun nine noua nouă dokuz девять дев'ять девет dziewiec dziewięć dziewieciu تسع تسعه نه",
    10: "zehn ten zece on десять десет dziesiec dziesięć dziesieciu عشر عشره ده",
    11: "elf eleven unsprezece одиннадцать одинадцять единадесет единайсет jedenascie jedenaście احدعش حداعش يازده",
    12: "zwölf twelve doisprezece douasprezece двенадцать дванадцять дванадесет дванайсет dwanascie dwanaście "
        "اتنعش اطنعش طنعش دوازده",
    13: "dreizehn thirteen treisprezece тринадцать тринадцять тринадесет тринайсет trzynascie trzynaście تلتعش "
        "ثلطعش سيزده",
    14: "vierzehn fourteen paisprezece четырнадцать чотирнадцять четиринадесет четиринайсет czternascie czternaście "
        "اربعتعش اربطعش چهارده",
    15: "fünfzehn fifteen cincisprezece cinsprezece cinspe cinșpe пятнадцать п'ятнадцять петнадесет петнайсет "
        "pietnascie piętnaście خمستعش خمسطعش پانزده پونزده",
    16: "sechzehn sixteen saisprezece şaisprezece saispe şaişpe шестнадцать шістнадцять шестнадесет шестнайсет "
        "szesnascie szesnaście ستعش سطعش شانزده",
    17: "siebzehn seventeen saptesprezece şaptesprezece saptespe şapteşpe семнадцать сімнадцять седемнадесет "
        "седемнайсет siedemnascie siedemnaście سبعتعش سبعطعش هفده هيفده",
    18: "achtzehn eighteen optsprezece optspe optişpe восемнадцать вісімнадцять осемнадесет осемнайсет "
        "osiemnascie osiemnaście تمنتعش تمنطعش ثمنطعش هجده هيجده هژده",
    19: "neunzehn nineteen nouasprezece nouăsprezece девятнадцать дев'ятнадцять деветнадесет деветнайсет "
        "dziewietnascie dziewiętnaście تسعتعش تسعطعش نوزده",
    20: "zwanzig twenty douazeci douăzeci двадцать двадцять двадесет двайсет dwadziescia dwadzieścia عشرين عشرون بيست",
}
NUMBER_WORDS = {normalise(word): float(value) for value, words in _NUMBER_WORDS.items() for word in words.split()}
# "ثلاثة عشر" (three ten) is thirteen, Turkish "on yedi" (ten seven) seventeen.
_TEENS_AFTER = frozenset({"عشر", "عشره"})
_TENS_BEFORE = frozenset({"on"})
_ONE_AND_A_HALF = {normalise(word): 1.5 for word in ("anderthalb", "eineinhalb", "полтора", "півтора", "pivtora",
                                                     "poltora", "półtora")}
_GLUED = re.compile(r"^(\d{1,2})([^\W\d_]+)$")  # "3jahre", "17yo", "5ani"
# Glued to a digit, these are Arabic written in Latin letters, not units: "3an" is عن ("about").
_NOT_GLUED = frozenset({"an"})

# The people questions are about. Child words: the offer is for the child, ages matter most.
_CHILD = (
    "kind-", "sohn-", "tochter-", "baby-", "kleinkind-", "enkel-", "neffe-", "nichte-", "junge", "jungen",
    "madchen", "maedchen", "child-", "kid", "kids", "son", "sons", "daughter-", "toddler-", "boy", "boys",
    "girl", "girls", "nephew-", "niece-", "grandchild-", "grandson-", "granddaughter-",
    "ابن-", "بنت-", "ابنت-", "طفل-", "اطفال-", "ولد-", "اولاد-", "بيبي", "رضيع-", "ولاد-",
    "پسر-", "دختر-", "بچه-", "بچم", "فرزند-", "كودك-", "نوزاد-", "طفلم",
    "ogl-", "kiz-", "cocu-", "cocuk-", "bebe-", "torun-", "yegen-",
    "сын-", "доч-", "дочк-", "ребен-", "дет-", "малыш-", "внук-", "племян-", "дитин-", "дити", "дитя-",
    "малюк-", "онук-", "fiul-", "fiic-", "fata", "fetita", "baiat-", "copil-", "copii-", "nepot-",
    "син", "сина", "сину", "синов-", "синок-", "синочк-", "донечк-", "донька-", "доньц-", "доньк-", "синът", "дъщер-", "дете-", "деца-", "бебе-",
    "syn-", "cork-", "coreczk-", "dzieck-", "dzieci-", "niemowl-", "wnuk-",
    "ibni", "ebni", "binti", "benti", "tifl-", "walad-", "awlad-", "pesar-", "pesaram", "dokhtar-", "bache-",
    "bacha-", "bachem", "syna", "synu", "doch-", "ditina", "dytyna", "dytynu", "rebenok", "rebenka",
    "bint", "bent", "bnti", "ibnti", "ebnti", "wladi", "weladi", "awladi",  # Arabic in Latin letters
    "sinat", "sinut", "sina", "dashter-", "dushter-", "dashtery", "dete", "deteto", "deca", "detsa",  # bg in Latin
)
_ADULT_OTHER = (
    "frau", "mann", "ehemann", "ehefrau", "mutter", "vater", "mama", "papa", "oma", "opa", "eltern",
    "schwester", "bruder", "wife", "husband", "mother", "father", "mum", "mom", "dad", "grandma", "grandpa",
    "parents", "sister", "brother", "زوجت-", "زوجي", "مرتي", "جوزي", "امي", "ابوي", "والدي", "والدت-",
    "اختي", "اخوي", "همسر-", "زنم", "شوهر-", "مادر-", "پدر-", "خواهر-", "برادر-",
    "esim", "esimin", "kocam-", "annem-", "babam-", "kardes-", "ablam-", "abim-",
    "жена", "жене", "жену", "муж", "мужа", "мужу", "мам-", "пап-", "мать", "матери", "отец", "отца",
    "бабушк-", "дедушк-", "сестр-", "брат", "брата", "дружин-", "чолов-", "бабус-",
    "sotia", "sotul", "sotului", "mama", "tata", "bunica", "sora", "fratele",
    "съпруг-", "майка", "майка ми", "баща", "баба", "дядо",
    "zona", "zony", "maz", "meza", "matka", "mama", "ojciec", "babcia", "siostra", "brat",
)


@dataclass(frozen=True, slots=True)
class People:
    """Ages stated in a question (years; months as fractions) and whom it is about."""

    ages: tuple[float, ...] = ()
    child: bool = False  # a child of the asker is named
    other_adult: bool = False  # a partner, parent or sibling is named

    @property
    def known(self) -> bool:
        return bool(self.ages)


class _Words:
    """A word list: exact words, and stems (written with a trailing "-")."""

    def __init__(self, words: tuple[str, ...]) -> None:
        self.exact = frozenset(normalise(w) for w in words if not w.endswith("-"))
        self.stems = tuple(normalise(w[:-1]) for w in words if w.endswith("-"))

    def __contains__(self, token: str) -> bool:
        return token in self.exact or token.startswith(self.stems)


# Units that only ever tell an age ("3-jährig", "16 yaşında", "5 ساله", "2 годика").
_AGE_UNITS = ("jahrig-", "jaehrig-", "yo", "y", "yas-", "yasli", "ساله", "سالشه", "سالمه", "سالش", "سالم",
              "годик-", "годовал-", "рочк-", "годишен", "годишна", "годишно", "годинк-", "latek", "letni-",
              "letnia", "aylik-", "monatig-", "saleh", "sale")
# Words before a number that make it a duration, not an age ("seit 3 Jahren", "منذ سنتين").
_DURATION = ("seit", "seid", "vor", "fur", "since", "for", "ago", "past", "last", "منذ", "صرلي", "صارلي", "صرلنا",
             "صارلنا", "قبل", "لمدة", "خلال", "از", "پیش", "مدت", "است", "dir", "beri", "once", "уже", "через", "назад",
             "около", "вже", "тому", "за", "де", "от", "преди", "od", "temu", "przez", "acum", "pentru", "in", "im",
             "after", "nach", "بعد", "بقالي", "sonra", "suresince")
# "من" is "since" before an Arabic year or month ("من ٦ سنين بألمانيا"), but "I" in Persian.
_SINCE_AR = ("من", "mn", "men", "min")
_ARABIC_UNITS = ("سنه", "سنين", "سنوات", "سنا", "عام", "اعوام", "شهر-", "شهور", "اشهر", "sana", "sanawat", "snin",
                 "shahr-", "shuhur", "shhur", "ashhur", "ashhor")
_SELF = ("bin", "am", "im", "انا", "ana", "ben", "мне", "мени", "mam", "съм", "jestem", "sunt", "من")
_LINKS = ("de", "und", "and", "و", "и", "i", "si", "va", "ve")
_HALF = ("halb", "half", "نص", "نیم", "buçuk", "bucuk", "половина", "пол", "половиною", "jumatate", "половин", "pol")

YEARS, MONTHS, WORD_AGES = _Words(_YEARS), _Words(_MONTHS), _WORD_AGES
AGE_UNITS, DURATION, SELF = _Words(_AGE_UNITS), _Words(_DURATION), _Words(_SELF)
LINKS, HALF, EXPERIENCE = _Words(_LINKS), _Words(_HALF), _Words(_EXPERIENCE)
SINCE_AR, ARABIC_UNITS = _Words(_SINCE_AR), _Words(_ARABIC_UNITS)
AGE_WORDS, NOT_AGES, CHILD, ADULT_OTHER = _Words(_AGE_WORDS), _Words(_NOT_AGES), _Words(_CHILD), _Words(_ADULT_OTHER)
BE, AT = _Words(_BE), _Words(_AT)


def _unit(token: str) -> float | None:
    """1.0 for a year word, 1/12 for a month word, None otherwise."""
    if token in YEARS:
        return 1.0
    if token in MONTHS:
        return 1 / 12
    return None


def read_people(text: str) -> People:
    """Ages a question states about a person, and whom it names. An age counts only when the
    words around it make it one ("my son is 17", "عمره ٣ سنين", "16 yaşında", "2,5 Jahre alt"):
    "seit 3 Jahren in Kassel" is a duration, and a wrong age would hide the right offer."""
    folded = normalise(text)
    spans = list(_TOKEN.finditer(folded))
    tokens = [span.group() for span in spans]

    def after(index: int) -> str:
        """The word after `index` in the same clause ("17 ani, in Romania": none)."""
        if index + 1 >= len(tokens) or _CLAUSE_END.search(folded, spans[index].end(), spans[index + 1].start()):
            return ""
        return tokens[index + 1]

    ages: list[float] = []
    last = -9  # the index of the last number read as an age
    for index, token in enumerate(tokens):
        if token in WORD_AGES:
            ages.append(WORD_AGES[token])
            continue
        value, unit, end = _amount(tokens, index)
        if value is None:
            continue
        before = tokens[max(0, index - 3):index]
        # The next of a list of ages ("my kids are 2 and 5", "Kinder 3, 7"): the first says what they are.
        listed = last == index - 1 or (last == index - 2 and before[-1] in LINKS)
        is_at = listed or (len(before) >= 2 and before[-1] in AT and before[-2] in BE)  # "е на 5"
        following = after(end)
        told = is_at or any(word in AGE_WORDS for word in before) or following in AGE_WORDS
        if not (_NUMBER.match(token) or _GLUED.match(token)) and not told and (
                unit is None or (NUMBER_WORDS.get(token) == 1 and tokens[end] not in AGE_UNITS)):
            continue  # a number word alone ("eine Frage", "نه": no), or an article ("einen Monat Ferien")
        if any(word in DURATION for word in before[-2:]) or following in DURATION:
            continue
        if before and before[-1] in SINCE_AR and tokens[end] in ARABIC_UNITS:
            continue  # "من ٦ سنين", "mn 3 sanawat": since, not an age
        named = is_at or any(word in AGE_WORDS or word in CHILD or word in ADULT_OTHER or word in SELF for word in before)
        if any(word in NOT_AGES and word not in CHILD for word in before[-1:]):
            continue  # "Klasse 8", "B1 600"; but "Kinder (2 und 5)" are ages ("3 Kinder" is a count)
        if unit is None:
            if named and value <= 99:
                ages.append(value)  # "сыну 17", "my son is 17", "عمره 5"
                last = index
            continue
        if following in EXPERIENCE and tokens[end] not in AGE_UNITS:
            continue  # "10 години стаж", "3 Jahre in Deutschland", "2 года назад"
        specific = tokens[end] in AGE_UNITS or following in AGE_WORDS
        if specific or named:
            ages.append(value * unit)
            last = end
    plausible = tuple(a for a in ages if 0 < a <= 99)
    words = tokens + [t[1:] for t in tokens if t.startswith("و") and len(t) > 3]  # "وابني": and my son
    child = any(t in CHILD for t in words)
    other = any(t in ADULT_OTHER for t in words)
    return People(plausible, child, other)


def _amount(tokens: list[str], index: int) -> tuple[float | None, float | None, int]:
    """A number at `index` with its unit: (value, 1.0 for years / 1/12 for months / None, index
    of the unit word). None as the value when the token is no number or counts something else."""
    token = tokens[index]
    glued = _GLUED.match(token)
    if glued and glued.group(2) not in _NOT_GLUED and (unit := _unit(glued.group(2))) is not None:
        return float(glued.group(1)), unit, index  # "3jahre", "17yo"
    number = _NUMBER.match(token)
    end = index + 1
    if number:
        value = int(number.group(1)) + (int(number.group(2)) / 10 if number.group(2) else 0.0)
    elif token in _ONE_AND_A_HALF:
        value = _ONE_AND_A_HALF[token]
    elif token in NUMBER_WORDS and not (index and (tokens[index - 1] in _TENS_BEFORE or (
            token in _TEENS_AFTER and tokens[index - 1] in NUMBER_WORDS))):  # the second word of "on yedi", "ثلاثة عشر"
        value = NUMBER_WORDS[token]
        if end < len(tokens) and token in _TENS_BEFORE and tokens[end] in NUMBER_WORDS and NUMBER_WORDS[tokens[end]] < 10:
            value, end = 10 + NUMBER_WORDS[tokens[end]], end + 1  # "on yedi"
        elif end < len(tokens) and tokens[end] in _TEENS_AFTER and value < 10:
            value, end = value + 10, end + 1  # "ثلاثة عشر"
        index = end - 1  # the unit comes after the whole number
    else:
        return None, None, index
    if end < len(tokens) and tokens[end] in LINKS and end + 1 < len(tokens):
        end += 1  # "25 de ani", "2 und halb jahre" (then the unit two words on)
        if tokens[end] in HALF and end + 1 < len(tokens):
            value, end = value + 0.5, end + 1
    if end >= len(tokens):
        return value, None, index
    if tokens[end] in NOT_AGES:
        return None, None, index
    unit = _unit(tokens[end])
    return value, unit, end if unit is not None else index


USUAL_MIN = 8  # ages an offer's examples must state before they say which ages are usual for it


def usual_ages(people: Sequence[People], owners: Sequence[int], offers: int) -> np.ndarray:
    """Per offer, the range of ages its example questions usually state (10th to 90th
    percentile, a year wider), or NaN where they state too few. Where the catalogue has no
    sourced ages ("children before school entry"), the examples still show that a question
    about a 17-year-old is unusual for it; the fusion learns how much that is worth."""
    stated: list[list[float]] = [[] for _ in range(offers)]
    for person, owner in zip(people, owners, strict=True):
        if owner >= 0:
            stated[owner].extend(person.ages)
    ranges = np.full((offers, 2), np.nan, dtype=np.float32)
    for offer, ages in enumerate(stated):
        if len(ages) >= USUAL_MIN:
            low, high = np.percentile(ages, [10, 90])
            ranges[offer] = (low - 1.0, high + 1.0)
    return ranges


def unusual(people: Sequence[People], ranges: np.ndarray) -> np.ndarray:
    """rows x offers: 1 where every age the question states is outside the offer's usual range."""
    out = np.zeros((len(people), len(ranges)), dtype=np.float32)
    known = ~np.isnan(ranges[:, 0])
    for row, person in enumerate(people):
        if person.ages:
            ages = np.array(person.ages, dtype=np.float32)[:, None]
            outside = (ages < ranges[None, :, 0]) | (ages > ranges[None, :, 1])
            out[row] = known & outside.all(axis=0)
    return out
