"""`bildungslotse poster`: a printable A4 poster in one language with the QR code of the bot's link.

PNG and PDF are drawn with Pillow, whose raqm layout shapes Arabic and Persian and sets them right
to left; SVG leaves shaping to the viewer (every browser does it). Fonts: DejaVu Sans as shipped
with matplotlib (the `charts` extra), which covers Latin, Cyrillic, Arabic and Persian.
"""

from __future__ import annotations

import argparse
import html
import io
import sys
from pathlib import Path

from bot.catalogue import Catalogue
from bot.config import Config
from bot.editors import check_link_args, deep_link_payload, links
from bot.i18n import translator
from bot.languages import is_rtl, native_name

WIDTH, HEIGHT, MARGIN = 1240, 1754, 100  # A4 at 150 dpi
BLUE, INK, GREY = (32, 96, 160), (25, 25, 25), (90, 90, 90)


def poster_texts(catalogue: Catalogue, lang: str, topic: str) -> dict[str, str]:
    _ = translator(lang)
    name = catalogue.topics[topic].name(lang)
    return {
        "title": name,
        "promise": _("Ask your question in your language – answers about {topic} in {city}.").format(
            topic=name, city=catalogue.municipality),
        "scan": _("Scan the code or open the link:"),
        "languages": _("Languages:"),
        "names": "  ·  ".join(native_name(code) for code in catalogue.languages),
    }


def _fonts():
    try:
        import matplotlib
    except ImportError:
        raise SystemExit("bildungslotse: posters need the fonts of the charts extra: pip install 'bildungslotse[charts]'") from None
    folder = Path(matplotlib.__file__).parent / "mpl-data" / "fonts" / "ttf"
    return folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf"


def _qr(url: str):
    import segno

    return segno.make(url, error="m")


def _wrap(draw, text: str, font, width: int, direction: str, lang: str) -> list[str]:
    lines, current = [], ""
    for word in text.split():
        candidate = f"{current} {word}".strip()
        if draw.textlength(candidate, font=font, direction=direction, language=lang) <= width or not current:
            current = candidate
        else:
            lines.append(current)
            current = word
    return [*lines, current] if current else lines


def render_png(texts: dict[str, str], url: str, lang: str) -> Image.Image:  # noqa: F821
    from PIL import Image, ImageDraw, ImageFont

    regular, bold = _fonts()
    layout = ImageFont.Layout.RAQM
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    direction = "rtl" if is_rtl(lang) else "ltr"
    anchor_x, anchor = (WIDTH - MARGIN, "ra") if is_rtl(lang) else (MARGIN, "la")
    draw.rectangle((0, 0, WIDTH, 230), fill=BLUE)
    head = ImageFont.truetype(str(bold), 84, layout_engine=layout)
    draw.text((anchor_x, 70), texts["title"], font=head, fill="white", anchor=anchor, direction=direction, language=lang)
    y = 300
    body = ImageFont.truetype(str(regular), 46, layout_engine=layout)
    for line in _wrap(draw, texts["promise"], body, WIDTH - 2 * MARGIN, direction, lang):
        draw.text((anchor_x, y), line, font=body, fill=INK, anchor=anchor, direction=direction, language=lang)
        y += 62
    y += 40
    small = ImageFont.truetype(str(regular), 34, layout_engine=layout)
    draw.text((anchor_x, y), texts["scan"], font=small, fill=GREY, anchor=anchor, direction=direction, language=lang)
    y += 70
    buffer = io.BytesIO()
    _qr(url).save(buffer, kind="png", scale=16, border=2)
    code = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    size = min(620, code.width)
    code = code.resize((size, size), Image.NEAREST)
    image.paste(code, ((WIDTH - size) // 2, y))
    y += size + 30
    mono = ImageFont.truetype(str(regular), 30, layout_engine=layout)
    draw.text((WIDTH // 2, y), url, font=mono, fill=INK, anchor="ma", direction="ltr")
    y += 110
    draw.text((anchor_x, y), texts["languages"], font=small, fill=GREY, anchor=anchor, direction=direction, language=lang)
    y += 60
    names = ImageFont.truetype(str(regular), 34, layout_engine=layout)
    for line in _wrap(draw, texts["names"], names, WIDTH - 2 * MARGIN, "ltr", "en"):
        draw.text((WIDTH // 2, y), line, font=names, fill=INK, anchor="ma")
        y += 54
    return image


def render_svg(texts: dict[str, str], url: str, lang: str) -> str:
    rtl = is_rtl(lang)
    x, anchor = (WIDTH - MARGIN, "end") if rtl else (MARGIN, "start")
    direction = "rtl" if rtl else "ltr"
    qr = _qr(url)
    modules = qr.symbol_size(scale=1, border=2)[0]
    scale = 620 / modules
    qr_svg = qr.svg_inline(scale=scale, border=2)

    def text(y: int, value: str, size: int, weight: str = "normal", fill: str = "#191919", mid: bool = False) -> str:
        pos, anc, dire = ((WIDTH // 2, "middle", "ltr") if mid else (x, anchor, direction))
        return (f'<text x="{pos}" y="{y}" font-size="{size}" font-weight="{weight}" fill="{fill}" '
                f'text-anchor="{anc}" direction="{dire}" xml:lang="{lang}">{html.escape(value)}</text>')

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="210mm" height="297mm" viewBox="0 0 {WIDTH} {HEIGHT}" '
             f'font-family="DejaVu Sans, Noto Sans, Arial, sans-serif">',
             f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>', f'<rect width="{WIDTH}" height="230" fill="#2060a0"/>',
             text(150, texts["title"], 84, "bold", "white"), '<foreignObject width="0" height="0"/>']
    parts.append(text(350, texts["promise"], 42))
    parts.append(text(470, texts["scan"], 34, fill="#5a5a5a"))
    parts.append(f'<g transform="translate({(WIDTH - 620) // 2},520)">{qr_svg}</g>')
    parts.append(text(1190, url, 30, mid=True))
    parts.append(text(1330, texts["languages"], 34, fill="#5a5a5a"))
    parts.append(text(1400, texts["names"], 30, mid=True))
    parts.append("</svg>")
    return "\n".join(p for p in parts if "foreignObject" not in p)


def make_posters(config: Config, catalogue: Catalogue, args: argparse.Namespace) -> int:
    if not args.topic or not (args.lang or args.all_languages):
        print("bildungslotse: poster needs --topic and --lang (or --all-languages)", file=sys.stderr)
        return 2
    output = Path(args.output)
    kind = output.suffix.lower().lstrip(".")
    if kind not in ("svg", "pdf", "png"):
        print("bildungslotse: the poster file must end in .svg, .pdf or .png", file=sys.stderr)
        return 2
    languages = list(catalogue.languages) if args.all_languages else [args.lang]
    for lang in languages:
        problem = check_link_args(catalogue, lang, args.topic, None, args.district)
        if problem:
            print(f"bildungslotse: {problem}", file=sys.stderr)
            return 2
        url = links(config, deep_link_payload(catalogue, lang, args.topic, None, args.district))["telegram"]
        if url is None:
            print("bildungslotse: set telegram.username in the config: the poster's QR code opens the bot's link",
                  file=sys.stderr)
            return 2
        target = output if len(languages) == 1 else output.with_name(f"{output.stem}-{lang}{output.suffix}")
        texts = poster_texts(catalogue, lang, args.topic)
        if kind == "svg":
            target.write_text(render_svg(texts, url, lang), encoding="utf-8")
        else:
            render_png(texts, url, lang).save(target, **({"resolution": 150.0} if kind == "pdf" else {}))
        print(f"{target}: {native_name(lang)} poster for {args.topic} -> {url}")
    return 0
