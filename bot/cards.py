"""Offer and office cards: catalogue text and locale strings assembled into reply lines."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote_plus

from bot import numbers
from bot.catalogue import Catalogue, Offer, Office
from bot.languages import native_name
from bot.matching.normalise import tokens
from bot.reply import Button, Location
from bot.sentences import first_clause, first_sentence
from bot.text import Line, Span, bold, fact, link, plain, shorten

Gettext = Callable[[str], str]


def _labelled(icon: str, label: str, *value: Span) -> Line:
    return (plain(f"{icon} {label}: "), *value)


def offer_lines(offer: Offer, catalogue: Catalogue, lang: str, _: Gettext, ages: tuple[float, ...] = ()) -> list[Line]:
    """One phone screen: what it is (one sentence), for whom (and whether the age someone gave
    fits), the cost, what a rule that concerns it says first, and the next step. The whole
    description, the conditions, the office's contact, the map, what to bring and the desk
    sentence are one button away. A card that would still be longer than a screen keeps only
    the first clause of the cost, then of whom it serves, then of the description (the
    details have all)."""
    lines = _card(offer, catalogue, lang, _, ages)
    for cut in (frozenset({"cost"}), frozenset({"cost", "who"}), frozenset({"cost", "who", "summary"})):
        if sum(len(span.text) for line in lines for span in line) <= CARD_BUDGET:
            break
        lines = _card(offer, catalogue, lang, _, ages, cut)
    return lines


CARD_BUDGET = 1000  # characters: about one phone screen with the buttons below


def _card(offer: Offer, catalogue: Catalogue, lang: str, _: Gettext, ages: tuple[float, ...],
          cut: frozenset[str] = frozenset()) -> list[Line]:
    text = offer.text(lang)

    def field(name: str, value: str) -> Span:
        return plain(numbers.localise(first_clause(value) if name in cut else value, lang))

    lines: list[Line] = [(bold(text.title),), (field("summary", first_sentence(text.summary)),)]
    lines.append(_labelled("👥", _("For"), field("who", text.who)))
    fitting = [age for age in ages if offer.fits_age(age)]
    if fitting and offer.ages:
        lines.append((plain("✅ " + _("Fits the age you gave ({age}).").format(age=numbers.decimal(fitting[0], lang))),))
    lines.append(_labelled("💶", _("Cost"), field("cost", text.cost)))
    for ident in offer.notices:
        lines.append((plain("⚠️ " + numbers.localise(first_sentence(catalogue.notices[ident].text(lang)), lang)),))
    if text.next:
        lines.append(_labelled("➡️", _("Next step"), plain(numbers.localise(text.next, lang))))
    return lines


def details_lines(offer: Offer, catalogue: Catalogue, lang: str, _: Gettext) -> list[Line]:
    """Everything the card leaves out: the whole description, conditions, rules, links."""
    text = offer.text(lang)
    lines: list[Line] = [(bold(text.title),), (plain(numbers.localise(text.summary, lang)),)]
    if text.conditions:
        lines.append(_labelled("⚠️", _("Please note"), plain(numbers.localise(text.conditions, lang))))
    for ident in offer.notices:
        lines.append((plain("⚠️ " + numbers.localise(catalogue.notices[ident].text(lang), lang)),))
    for url in offer.links:
        lines.append(_labelled("🔗", _("More information"), link(url, url)))
    return lines


def office_lines(office: Office, lang: str, _: Gettext) -> list[Line]:
    names = office.text(lang)
    lines: list[Line] = [_labelled("🏢", _("Office"), bold(names.name))]
    if not set(tokens(office.name)) <= set(tokens(names.name)):  # show the German name staff know
        lines.append((plain("      "), fact(office.name)))
    lines.append(_labelled("📍", _("Address"), fact(office.address)) if office.address
                 else _labelled("📍", _("Address"), plain(_("not known – please see the website"))))
    hours = names.hours or office.hours
    lines.append(_labelled("🕒", _("Opening hours"), plain(hours)) if hours
                 else _labelled("🕒", _("Opening hours"), plain(_("not known – please see the website"))))
    if office.phone:
        lines.append(_labelled("📞", _("Phone"), fact(office.phone)))
    if office.email:
        lines.append(_labelled("✉️", _("E-mail"), link(office.email, f"mailto:{office.email}")))
    if office.website:
        lines.append(_labelled("🌐", _("Website"), link(office.website, office.website)))
    if office.languages:
        spoken = ", ".join(native_name(code) for code in office.languages)
        lines.append(_labelled("🗣", _("Languages spoken"), plain(spoken)))
    return lines


def bring_lines(offer: Offer, lang: str, _: Gettext) -> list[Line]:
    text = offer.text(lang)
    lines: list[Line] = [(bold(_("What to bring")), plain(f" – {text.title}"))]
    if not text.bring:
        lines.append((plain(_("No documents are listed for this offer. Please ask the office when you make an appointment.")),))
    lines.extend((plain(f"• {item}"),) for item in text.bring)
    return lines


def desk_lines(offer: Offer, lang: str, _: Gettext) -> list[Line]:
    german = offer.text("de").desk
    lines: list[Line] = [(bold(_("Show this sentence at the desk:")),), (fact(f"🇩🇪 {german}"),)]
    if lang != "de":
        lines.append((plain(_("It means:")),))
        lines.append((plain(offer.text(lang).desk),))
    return lines


def map_link(office: Office) -> str | None:
    """OpenStreetMap at the sourced coordinates, else a search for the address."""
    if office.coordinates:
        lat, lon = office.coordinates
        return f"https://www.openstreetmap.org/?mlat={lat}&mlon={lon}#map=17/{lat}/{lon}"
    if office.address:
        return f"https://www.openstreetmap.org/search?query={quote_plus(office.address)}"
    return None


def map_lines(office: Office, lang: str, _: Gettext) -> tuple[list[Line], Location | None]:
    names = office.text(lang)
    url = map_link(office)
    if url is None:
        lines = [(plain(_("The address of this office is not known.")),)]
        if office.website:
            lines.append(_labelled("🌐", _("Website"), link(office.website, office.website)))
        return lines, None
    location = None
    if office.coordinates and office.address:
        location = Location(office.coordinates[0], office.coordinates[1], names.name, office.address)
    lines = [(bold(names.name),), _labelled("📍", _("Address"), fact(office.address or "")),
             _labelled("🗺", _("Map"), link(url, url))]
    return lines, location


SHARE = "share:"  # a transport that can make a link of it turns this button into one


def offer_buttons(offer: Offer, office: Office, lang: str, _: Gettext) -> tuple[tuple[Button, ...], ...]:
    ident = offer.id
    row1 = [Button("📞 " + _("Contact"), f"o:{ident}:contact")]
    if office.address or office.coordinates:
        row1.append(Button("🗺 " + _("Map"), f"o:{ident}:map"))
    if offer.text(lang).bring:
        row1.append(Button("📄 " + _("What to bring"), f"o:{ident}:bring"))
    row2 = [Button("🗣 " + _("Sentence for the desk"), f"o:{ident}:desk"),
            Button("ℹ️ " + _("Details"), f"o:{ident}:details")]
    row3 = [Button(_("More like this"), f"o:{ident}:more"), Button(_("Share"), f"{SHARE}{lang}-o-{ident}")]
    return (tuple(row1), tuple(row2), tuple(row3))


def also_buttons(catalogue: Catalogue, others: tuple[str, ...], lang: str, _: Gettext) -> tuple[tuple[Button, ...], ...]:
    """The other offers that fit, as buttons under the answer rather than more text."""
    return tuple((Button(shorten(_("Also: {title}").format(title=catalogue.offers[i].text(lang).title)),
                         f"o:{i}:card"),) for i in others)


def offer_button(catalogue: Catalogue, ident: str, lang: str, prefix: str = "") -> Button:
    return Button(shorten(prefix + catalogue.offers[ident].text(lang).title), f"o:{ident}:card")


def topic_buttons(catalogue: Catalogue, lang: str) -> tuple[tuple[Button, ...], ...]:
    buttons = [Button(f"{t.icon} {t.name(lang)}".strip(), f"t:{t.id}") for t in catalogue.topics.values()]
    return tuple(tuple(buttons[i:i + 2]) for i in range(0, len(buttons), 2))


def language_button(_: Gettext) -> Button:
    return Button("🌐 " + _("Language"), "menu:language")
