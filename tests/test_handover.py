"""The counsellor handover without a homeserver: engine, service, store, hours, detection, the
relay worker with a recording counsellors' side. Synapse and Telegram: test_handover_live.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.engine import Engine, Sessions
from bot.handover.cases import CaseStore
from bot.handover.detect import asks_for_person
from bot.handover.dialogue import OFFER, STOP, YES, Desk
from bot.handover.figures import figures, render
from bot.handover.hours import HoursError, parse_hours
from bot.handover.relay import Relayer, summary
from bot.handover.tables import cases as case_table
from bot.handover.tables import relays as relay_table
from bot.i18n import translator
from bot.languages import LANGUAGES
from bot.news import PermanentSendError
from bot.reply import Incoming, Reply
from bot.service import Service
from bot.store import Pseudonyms, Store

WEEKDAYS = parse_hours(["Mon-Fri 09:00-16:00"], "Europe/Berlin")
WEDNESDAY_NOON = datetime(2026, 12, 2, 11, 0, tzinfo=UTC)  # 12:00 in Kassel
SATURDAY = datetime(2026, 12, 5, 11, 0, tzinfo=UTC)
NOTHING_FITS = "Wann spielt Borussia Dortmund am Samstag?"
# Requests for a person, written for these tests (ten languages, several phrasings).
ASKING = {
    "de": ["Kann ich bitte mit einem Menschen reden?", "Gibt es eine echte Person, mit der ich schreiben kann?"],
    "en": ["I would like to speak with a human", "is there a real person I can chat with"],
    "ar": ["أريد أن أتكلم مع موظف", "ممكن احكي مع شخص حقيقي؟"],
    "fa": ["میشه با یک مشاور صحبت کنم؟", "می‌خواهم با یک آدم واقعی حرف بزنم"],
    "tr": ["Bir danışmanla konuşabilir miyim?", "gerçek bir kişiye ulaşmak istiyorum"],
    "ru": ["Можно связаться с сотрудником?", "я хочу говорить с человеком, а не с ботом"],
    "uk": ["Хочу поговорити з консультантом", "чи можу я поспілкуватися з живою людиною"],
    "ro": ["Aș vrea să vorbesc cu un consilier", "pot discuta cu o persoană reală?"],
    "bg": ["Може ли да говоря с консултант?", "искам да се свържа с истински човек"],
    "pl": ["Czy mogę porozmawiać z doradcą?", "chcę rozmawiać z prawdziwą osobą"],
}
# A short wish for a human, with no word for talking (verb-final in Persian and Turkish).
WANTS_A_HUMAN = {
    "de": "ich will einen Menschen bitte", "en": "I want a human", "ar": "بدي موظف لو سمحت",
    "fa": "یک انسان میخوام", "tr": "insan istiyorum", "ru": "дайте оператора", "uk": "хочу людину",
    "ro": "vreau un om", "bg": "искам човек", "pl": "poproszę konsultanta",
}
# "I need a counsellor" where the need is a noun and a verb of having.
NEEDS_A_HUMAN = ["یه مشاور لازم دارم", "به یک مشاور نیاز دارم", "bir danışmana ihtiyacım var", "am nevoie de un consilier",
                 "أحتاج مستشار"]
NOT_ASKING = ["Deutschkurs für Menschen, die kein Deutsch sprechen", "a course for people who speak no German",
              "Welche Sprachkurse gibt es für Menschen mit Behinderung?", "Wo finde ich eine Kita?",
              "Курсы немецкого для взрослых людей", "kurs dla osób, które mówią po arabsku",
              "ich will neue Menschen kennenlernen", "ich brauche einen Job als Mitarbeiter",
              "danışman olarak iş istiyorum", "من یک سوال دارم", "kursa ihtiyacım var", "am nevoie de un curs de germana",
              "أحتاج كورس ألماني"]


def payloads(reply: Reply) -> list[str]:
    return [b.payload for m in reply.messages for row in m.buttons for b in row]


@pytest.fixture
def desk_engine(catalogue, matcher) -> Engine:
    return Engine(catalogue, matcher, Sessions(), desk=Desk(WEEKDAYS, clock=lambda: WEDNESDAY_NOON))


@pytest.fixture
async def store(target):
    """The store on SQLite, and on PostgreSQL in a schema of its own whenever a server answers."""
    url, connect_args = target
    opened = await Store.open(url, Pseudonyms(b"handover-test"), connect_args=connect_args)
    yield opened
    await opened.close()


# -- detection and hours ------------------------------------------------------------------------
@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_request_for_a_person_is_recognised_in_every_language(lang):
    for text in (*ASKING[lang], WANTS_A_HUMAN[lang]):
        assert asks_for_person(text), (lang, text)


@pytest.mark.parametrize("text", NEEDS_A_HUMAN)
def test_a_need_for_a_counsellor_is_a_request_for_a_person(text):
    assert asks_for_person(text)


@pytest.mark.parametrize("text", NOT_ASKING)
def test_questions_about_offers_for_people_are_not_requests_for_a_person(text):
    assert not asks_for_person(text)


def test_hours_are_read_from_configuration_and_wrong_ones_refused():
    assert WEEKDAYS.is_open(WEDNESDAY_NOON) and not WEEKDAYS.is_open(SATURDAY)
    monday = WEEKDAYS.next_opening(SATURDAY)
    assert monday is not None and (monday.weekday(), monday.hour, monday.minute) == (0, 9, 0)
    assert parse_hours([], "Europe/Berlin").is_open(SATURDAY)  # none configured: nothing to wait for
    for wrong in (["Mo-Fr 9-16"], ["Fri-Mon 09:00-16:00"], ["Mon 16:00-09:00"], ["Mon 25:00-26:00"]):
        with pytest.raises(HoursError):
            parse_hours(wrong)
    with pytest.raises(HoursError):
        parse_hours(["Mon 09:00-12:00"], "Mars/Olympus")


def test_config_reads_the_handover_section(tmp_path):
    from bot.config import ConfigError, load_config

    path = tmp_path / "config.yaml"
    path.write_text("handover:\n  room: '#beratung:example.org'\n  hours: ['Mon-Thu 09:00-15:00', 'Fri 09:00-12:00']\n")
    config = load_config(path)
    assert config.handover.room == "#beratung:example.org" and len(config.handover.hours) == 2
    path.write_text("handover:\n  room: '#beratung:example.org'\n  hours: ['Mon-Fri 16:00-09:00']\n")
    with pytest.raises(ConfigError, match="config.yaml:3"):
        load_config(path)


# -- the engine ---------------------------------------------------------------------------------
def test_talk_to_a_person_under_nothing_fits_not_helpful_and_help(desk_engine, catalogue):
    nothing = desk_engine.handle(Incoming(user="u1", text=NOTHING_FITS, language_hint="de"))
    assert nothing.answered is False and OFFER in payloads(nothing)
    ident = next(iter(catalogue.offers))
    assert OFFER in payloads(desk_engine.handle(Incoming(user="u1", payload=f"fb:{ident}:0")))
    assert OFFER not in payloads(desk_engine.handle(Incoming(user="u1", payload=f"fb:{ident}:1")))
    assert OFFER in payloads(desk_engine.handle(Incoming(user="u1", text="/help")))


def test_without_a_desk_nothing_changes(engine):
    assert OFFER not in payloads(engine.handle(Incoming(user="u0", text=NOTHING_FITS)))
    assert OFFER not in payloads(engine.handle(Incoming(user="u0", text="/help")))


@pytest.mark.parametrize("lang", LANGUAGES)
def test_consent_says_what_is_shared_and_when_in_the_language_asked(desk_engine, lang):
    reply = desk_engine.handle(Incoming(user=f"c-{lang}", text=ASKING[lang][0], chosen_language=lang))
    _ = translator(lang)
    assert reply.language == lang and reply.effects == ()  # nothing shared before consent
    text = reply.plain()
    assert _("If you agree, I share only your question and your language with the counsellors – not your name and not your number.") in text
    assert "09:00–16:00" in text and _("Monday") in text and _("Friday") in text
    assert {YES, "hv:no"} <= set(payloads(reply))
    if lang in ("ar", "fa"):
        assert "\u200f" in text  # right to left


def test_off_hours_says_when_to_expect_an_answer(catalogue, matcher):
    engine = Engine(catalogue, matcher, desk=Desk(WEEKDAYS, clock=lambda: SATURDAY))
    reply = engine.handle(Incoming(user="s", payload=OFFER, chosen_language="de"))
    assert "Montag, 09:00" in reply.plain()
    engine = Engine(catalogue, matcher, desk=Desk(WEEKDAYS, clock=lambda: WEDNESDAY_NOON))
    assert "Montag, 09:00" not in engine.handle(Incoming(user="s", payload=OFFER, chosen_language="de")).plain()


def test_consent_hands_over_the_question_topic_and_offers_suggested(desk_engine):
    desk_engine.handle(Incoming(user="q", text="Wo melde ich mein Kind für die Kita an?", language_hint="de"))
    feedback = desk_engine.handle(Incoming(user="q", payload="fb:kita-anmeldung:0"))
    assert OFFER in payloads(feedback)
    desk_engine.handle(Incoming(user="q", payload=OFFER))
    reply = desk_engine.handle(Incoming(user="q", payload=YES))
    (effect,) = reply.effects
    assert effect.question == "Wo melde ich mein Kind für die Kita an?" and effect.topic == "daycare"
    assert effect.offers and effect.offers[0] == "kita-anmeldung" and effect.language == "de"


def test_with_a_case_open_messages_go_to_the_counsellor_and_stop_ends(desk_engine):
    relayed = desk_engine.handle(Incoming(user="o", text="Danke, ich warte", with_counsellor=True))
    assert [type(e).__name__ for e in relayed.effects] == ["ToCounsellor"] and relayed.messages == ()
    assert desk_engine.handle(Incoming(user="o", text="/topics", with_counsellor=True)).effects == ()  # commands still work
    for way in (Incoming(user="o", text="/stop", with_counsellor=True), Incoming(user="o", payload=STOP, with_counsellor=True)):
        assert [type(e).__name__ for e in desk_engine.handle(way).effects] == ["EndHandover"]
    assert desk_engine.handle(Incoming(user="o", text="/stop")).effects == ()  # nothing open: nothing to end


# -- the service and the store ------------------------------------------------------------------
async def _rows(store: Store, table) -> list:
    async with store.engine.connect() as conn:
        return list((await conn.execute(select(table))).all())


async def test_declined_consent_shares_and_stores_nothing(desk_engine, store):
    service = Service(desk_engine, store, "telegram", CaseStore(store))
    await service.handle(501, Incoming(user="", text=NOTHING_FITS), address="501")
    await service.handle(501, Incoming(user="", payload=OFFER), address="501")
    reply = await service.handle(501, Incoming(user="", payload="hv:no"), address="501")
    assert reply.effects == () and await _rows(store, case_table) == [] and await _rows(store, relay_table) == []


async def test_a_case_keeps_no_platform_id_and_relays_until_stop(desk_engine, store):
    cases = CaseStore(store)
    service = Service(desk_engine, store, "telegram", cases)
    await service.handle(777123, Incoming(user="", text=NOTHING_FITS, language_hint="de"), address="777123")
    await service.handle(777123, Incoming(user="", payload=OFFER), address="777123")
    opened = await service.handle(777123, Incoming(user="", payload=YES), address="777123")
    (row,) = await _rows(store, case_table)
    assert row.number in opened.plain() and row.state == "consented" and STOP in payloads(opened)
    assert b"777123" not in row.address and "777123" not in row.user_key and b"Dortmund" not in row.question
    assert (await cases.active(row.user_key)).question == NOTHING_FITS
    relayed = await service.handle(777123, Incoming(user="", text="Meine Frage ist noch offen"), address="777123")
    assert relayed.messages == ()
    (relay,) = await _rows(store, relay_table)
    assert relay.direction == "to_counsellors" and b"offen" not in relay.body
    ended = await service.handle(777123, Incoming(user="", text="/stop"), address="777123")
    assert "ended" in ended.plain() or ended.language != "en"
    (row,) = await _rows(store, case_table)
    assert row.state == "closed" and row.closed_by == "newcomer"
    again = await service.handle(777123, Incoming(user="", text="Noch eine Frage zur Kita"), address="777123")
    assert again.answered is True  # the bot answers again


async def test_forget_ends_an_open_case_and_deletes_what_identifies_it(desk_engine, store):
    cases = CaseStore(store)
    service = Service(desk_engine, store, "matrix", cases)
    for step in (Incoming(user="", payload=OFFER), Incoming(user="", payload=YES), Incoming(user="", text="hallo")):
        await service.handle("@n:localhost", step, address="!room:localhost")
    reply = await service.handle("@n:localhost", Incoming(user="", text="/forget"), address="!room:localhost")
    assert reply.plain() == desk_engine.forget_reply(reply.language, "done").plain()
    (row,) = await _rows(store, case_table)
    assert row.state == "closed" and row.closed_by == "forget" and row.user_key == "" and row.address == b""
    assert [(r.direction, r.kind) for r in await _rows(store, relay_table)] == [("to_counsellors", "closed")]


async def test_closed_cases_are_purged_after_the_retention_period(desk_engine, store):
    cases = CaseStore(store)
    service = Service(desk_engine, store, "telegram", cases)
    for uid in (1, 2):
        await service.handle(uid, Incoming(user="", payload=OFFER), address=str(uid))
        await service.handle(uid, Incoming(user="", payload=YES), address=str(uid))
    await service.handle(1, Incoming(user="", text="/stop"), address="1")
    assert await cases.purge(30) == 0
    assert await cases.purge(30, now=datetime.now(UTC) + timedelta(days=31)) == 1
    assert [r.state for r in await _rows(store, case_table)] == ["consented"]  # the open one stays


class Room:
    """The counsellors' side as the relay sees it, recording what it was given."""

    def __init__(self) -> None:
        self.threads: dict[str, list[str]] = {}
        self.fail = 0

    async def open_thread(self, text: str) -> str:
        if self.fail:
            self.fail -= 1
            raise ConnectionError("homeserver away")
        root = f"$t{len(self.threads)}"
        self.threads[root] = [text]
        return root

    async def post_in_thread(self, thread_id: str, text: str) -> None:
        self.threads[thread_id].append(text)


async def test_two_newcomers_get_their_own_replies_and_a_failure_loses_nothing(desk_engine, store, catalogue):
    cases = CaseStore(store)
    service = Service(desk_engine, store, "telegram", cases)
    delivered: list[tuple[str, str]] = []

    async def send(address: str, reply: Reply) -> None:
        if address == "gone":
            raise PermanentSendError("blocked")
        delivered.append((address, reply.plain()))

    # Platform ids longer than a case number, so a randomly drawn number cannot contain one.
    questions = {"40917263": "Wo finde ich einen Deutschkurs am Abend?", "52830174": "Meine Tochter braucht einen Schulplatz"}
    for uid, question in questions.items():
        await service.handle(int(uid), Incoming(user="", text=question, language_hint="de"), address=uid)
        await service.handle(int(uid), Incoming(user="", payload=OFFER), address=uid)
        await service.handle(int(uid), Incoming(user="", payload=YES), address=uid)
    room = Room()
    room.fail = 1
    relayer = Relayer(cases, lambda: catalogue, room, {"telegram": send}, desk_engine.desk)
    with pytest.raises(ConnectionError):
        await relayer.deliver()
    assert await relayer.deliver() == 2
    roots = {thread[0].split("Frage: ")[1].splitlines()[0]: root for root, thread in room.threads.items()}
    assert set(roots) == set(questions.values())
    assert all(uid not in t[0] for t in room.threads.values() for uid in questions)  # no platform ids
    for uid, question in questions.items():
        case = await cases.by_thread(roots[question])
        assert await cases.relay_from_counsellor(case, f"Antwort für {uid}", f"$ev{uid}")
        assert not await cases.relay_from_counsellor(case, f"Antwort für {uid}", f"$ev{uid}")  # a repeated sync
    await relayer.deliver()
    assert sorted((a, "Antwort für " + a in text) for a, text in delivered) == [(uid, True) for uid in sorted(questions)]
    assert all(translator("de")("A counsellor (a person) writes:") in text for _, text in delivered)
    await relayer.deliver()
    assert len(delivered) == 2  # delivered once


async def test_summary_and_figures(desk_engine, store, catalogue):
    cases = CaseStore(store)
    service = Service(desk_engine, store, "telegram", cases)
    await service.handle(9, Incoming(user="", text="Wo melde ich mein Kind für die Kita an?", language_hint="de"), address="9")
    await service.handle(9, Incoming(user="", payload="fb:kita-anmeldung:0"), address="9")
    await service.handle(9, Incoming(user="", payload=OFFER), address="9")
    await service.handle(9, Incoming(user="", payload=YES), address="9")
    (case,) = await cases.open_cases()
    text = summary(case, catalogue)
    assert case.number in text and "Deutsch (de)" in text and catalogue.offers["kita-anmeldung"].text("de").title in text
    assert await cases.relay_from_counsellor(case, "Hallo", "$x")
    rows = figures(await cases.all_cases(), "topic")
    assert [(r.group, r.opened, r.answered) for r in rows] == [("daycare", 1, 1), ("all", 1, 1)]
    assert rows[0].median_minutes is not None and "median" in render(await cases.all_cases())


def test_consent_after_a_restart_still_hands_over_and_asks_for_the_question(catalogue, matcher):
    fresh = Engine(catalogue, matcher, desk=Desk(WEEKDAYS, clock=lambda: WEDNESDAY_NOON))  # the offer was made before
    reply = fresh.handle(Incoming(user="r", payload=YES, chosen_language="uk"))
    (effect,) = reply.effects
    assert effect.question is None and effect.language == "uk"
    opened = fresh.handed_over("uk", "ABCDE", with_question=False)
    assert "ABCDE" in opened.plain() and translator("uk")("Write your question now: it goes to the counsellors.") in opened.plain()


async def test_the_admin_stats_include_the_handover_figures(desk_engine, store, catalogue):
    from bot.config import Config
    from bot.runner import Runtime

    cases = CaseStore(store)
    service = Service(desk_engine, store, "telegram", cases)
    await service.handle(3, Incoming(user="", payload=OFFER, chosen_language="ar"), address="3")
    await service.handle(3, Incoming(user="", payload=YES), address="3")
    runtime = Runtime(Config(), Config().catalogue, desk_engine, store, cases=cases)
    table = await runtime.admin("stats")
    handover = table.split("Counsellor handover")[1]
    assert "\nar " in handover and "median" in handover


def test_the_stats_command_prints_the_handover_figures(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tests.helpers import TEST_SECRET

    config = tmp_path / "config.yaml"
    config.write_text(f"data_dir: {tmp_path / 'data'}\nhandover:\n  room: '#beratung:example.org'\n", encoding="utf-8")
    env = {**os.environ, "BILDUNGSLOTSE_SECRET": TEST_SECRET}
    result = subprocess.run([sys.executable, "-m", "bot", "--config", str(config), "stats"], capture_output=True,
                            text=True, cwd=Path(__file__).resolve().parents[1], env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Counsellor handover" in result.stdout and "median min to 1st answer" in result.stdout
