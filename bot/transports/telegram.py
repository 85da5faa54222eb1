"""Telegram: python-telegram-bot's Application as a thin adapter around the service.

Updates are fetched by our own long-polling loop and handed to `Application.process_update`. An
update is finished when its reply was delivered, or failed for good (403: the person blocked the
bot; 400): then it is marked answered in the store, and once that mark and the update's effects
are durable (store.durable), Telegram may forget it: the next getUpdates confirms it by offset.
Sending is retried with backoff through 5xx, timeouts and dropped connections; an update whose
reply still did not get through stays unconfirmed and comes again. After a crash Telegram sends
the unconfirmed updates again and those already marked answered are skipped, so only the ones
truly in flight (at most CONCURRENT) can be answered twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import quote, urlsplit

from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    MessageEntity,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.cards import SHARE
from bot.config import DEFAULT_MUNICIPALITY, ReplicaSettings, TelegramSettings
from bot.i18n import translator
from bot.languages import LANGUAGES
from bot.news import PermanentSendError
from bot.replicas import SharedRateLimiter
from bot.reply import Incoming, Reply
from bot.service import Service
from bot.text import render_html

if TYPE_CHECKING:  # aiohttp's server is loaded only in webhook mode
    from bot.transports.webhook import WebhookServer

log = logging.getLogger(__name__)
MAX_TEXT = 4096
MAX_BUTTONS = 100
CONCURRENT = 4  # chats answered at the same time: Telegram allows ~30 messages/s anyway
USER_COMMANDS = ("start", "help", "language", "topics", "district", "privacy", "forget", "stop")
ADMIN_COMMANDS = ("reload", "stats")
AdminAction = Callable[[str], Awaitable[str]]  # command -> answer text
SEND_ATTEMPTS = 5  # a send that fails on the way is tried this often (backoff 0.5, 1, 2, 4 s)
T = TypeVar("T")


def transient(exc: BaseException) -> bool:
    """A failure on the way (5xx, timeout, dropped connection, 429 beyond the limiter), worth a retry;
    not one of the request itself (400, 403 blocked, a chat that is gone) or of our code."""
    return isinstance(exc, RetryAfter) or (isinstance(exc, NetworkError) and not isinstance(exc, BadRequest))


async def deliver(call: Callable[[], Awaitable[T]], attempts: int = SEND_ATTEMPTS) -> T:
    """`call()`, retried with backoff while it fails on the way; the last failure is raised."""
    delay = 0.5
    for attempt in range(attempts):
        try:
            return await call()
        except TelegramError as exc:
            if not transient(exc) or attempt == attempts - 1:
                raise
            wait = exc.retry_after if isinstance(exc, RetryAfter) else delay
            await asyncio.sleep(float(wait if isinstance(wait, int | float) else wait.total_seconds()))
            delay *= 2
    raise AssertionError("unreachable")


def split_text(html: str, limit: int = MAX_TEXT) -> list[str]:
    """Split at line boundaries so each part fits; our markup never spans a line break."""
    parts, current = [], ""
    for line in html.split("\n"):
        while len(line) > limit:  # a single overlong line: cut it (rare: no catalogue text is that long)
            if current:
                parts.append(current)
                current = ""
            parts.append(line[:limit])
            line = line[limit:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            parts.append(current)
            current = line
        else:
            current = candidate
    if current or not parts:
        parts.append(current)
    return parts


def command_menu(lang: str) -> list[BotCommand]:
    _ = translator(lang)
    descriptions = {
        "start": _("Start and choose a topic"),
        "help": _("How to use the bot"),
        "language": _("Choose your language"),
        "topics": _("Browse the topics"),
        "district": _("Choose your part of the city"),
        "privacy": _("What the bot keeps about you"),
        "forget": _("Delete everything the bot keeps about you"),
        "stop": _("End the conversation with a counsellor"),
    }
    return [BotCommand(name, descriptions[name][:256]) for name in USER_COMMANDS]


class TelegramTransport:
    def __init__(self, settings: TelegramSettings, service: Service, admin: AdminAction | None = None,
                 rate_limit: bool = True, read_timeout: float = 10.0, replicas: ReplicaSettings | None = None,
                 holder: str = "", webhook_server: WebhookServer | None = None) -> None:
        if not settings.token:
            raise ValueError("no Telegram token")
        self.settings = settings
        self.service = service
        self.admin = admin
        # Replicas: updates are claimed under this replica's name for update_lease_s; sends are
        # counted in Redis when there is one. One webhook server may serve several cities' bots.
        self.replicas = replicas or ReplicaSettings()
        self.holder = holder or "single"
        self.webhook_server = webhook_server
        store = service.store
        # Update ids are per bot: each city's bot has its own.
        self.bot_name = ("telegram" if store is None or store.municipality == DEFAULT_MUNICIPALITY
                         else f"telegram@{store.municipality}")
        # A small connection pool, and chats answered at most CONCURRENT at a time: httpx scans
        # its whole pool on every request, so hundreds of idle connections cost more than they give.
        builder: ApplicationBuilder = (
            Application.builder().token(settings.token).base_url(settings.base_url)
            .connection_pool_size(CONCURRENT).pool_timeout(30.0).read_timeout(read_timeout)
        )
        builder = builder.updater(None)  # we poll ourselves (see poll), or serve the webhook (see serve)
        if rate_limit and self.replicas.redis_url:
            builder = builder.rate_limiter(SharedRateLimiter(self.replicas.redis_url, f"{self.bot_name}:"
                                                             f"{settings.token.split(':')[0]}",
                                                             self.replicas.send_per_second))
        elif rate_limit:
            builder = builder.rate_limiter(AIORateLimiter(max_retries=5))
        self.app: Application = builder.build()
        self.username = ""
        self._stop = asyncio.Event()
        self._concurrent = asyncio.Semaphore(CONCURRENT)
        self._unfinished: set[int] = set()  # update ids whose reply did not get through this time
        private = filters.ChatType.PRIVATE
        mentioned = filters.Entity(MessageEntity.MENTION) & filters.ChatType.GROUPS
        self.app.add_handler(CommandHandler(ADMIN_COMMANDS, self._on_admin))
        self.app.add_handler(CommandHandler(USER_COMMANDS, self._on_command))
        self.app.add_handler(CallbackQueryHandler(self._on_button))
        self.app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND & (private | mentioned), self._on_text))
        self.app.add_error_handler(self._on_error)

    # -- life cycle ----------------------------------------------------------------------
    async def start(self) -> None:
        await self.app.initialize()
        self.username = self.app.bot.username
        await self.app.start()
        await self._set_menus()

    async def _set_menus(self) -> None:
        await self.app.bot.set_my_commands(command_menu("en"))
        for lang in LANGUAGES:
            await self.app.bot.set_my_commands(command_menu(lang), language_code=lang)

    def stop(self) -> None:
        """Ask the polling loop to finish its batch, confirm it, and return."""
        self._stop.set()

    async def shutdown(self) -> None:
        await self.app.stop()
        await self.app.shutdown()

    async def serve(self) -> None:
        """Webhook mode until stop(): our endpoint (bot/transports/webhook.py) checks the secret
        token on every request and answers 200 only once the update is answered."""
        if not self.settings.webhook_url:
            await self.poll()
            return
        own = self.webhook_server is None
        from bot.transports.webhook import WebhookServer

        server = self.webhook_server or WebhookServer(self.settings.webhook_listen, self.settings.webhook_port)
        server.add(urlsplit(self.settings.webhook_url).path, self.settings.webhook_secret, self.handle_webhook)
        if own:
            await server.start()
        try:
            # Every replica sets the same webhook: idempotent, and a new deployment needs no extra step.
            await deliver(partial(self.app.bot.set_webhook, self.settings.webhook_url,
                                  secret_token=self.settings.webhook_secret,
                                  allowed_updates=["message", "callback_query"], max_connections=40))
            await self._stop.wait()
        finally:
            if own:
                await server.stop()

    async def handle_webhook(self, data: dict) -> int:
        """Answer one update posted to the webhook, once among all replicas; the HTTP status says
        whether Telegram may forget it (200) or must deliver it again (503)."""
        update = Update.de_json(data, self.app.bot)
        store = self.service.store
        if store is None:
            await self.app.process_update(update)
            return 200
        try:
            claim = await store.claim(self.bot_name, update.update_id, self.holder, self.replicas.update_lease_s)
        except Exception as exc:  # noqa: BLE001 - the database does not answer: Telegram tries again
            log.warning("telegram: cannot claim update %d (%s); it will come again", update.update_id, exc)
            return 503
        if claim == "answered":
            return 200
        if claim == "busy":  # another replica answers it now; if that one dies, a later delivery claims it
            return 503
        self._unfinished.discard(update.update_id)
        keeping = asyncio.create_task(self._keep_claim(update.update_id))
        try:
            await self.app.process_update(update)
        except BaseException:
            await store.release(self.bot_name, update.update_id)
            raise
        finally:
            keeping.cancel()
        if update.update_id in self._unfinished:
            await store.release(self.bot_name, update.update_id)
            return 503
        await store.durable()  # its effects are in the database before the update counts as answered
        await store.finish(self.bot_name, update.update_id)
        return 200

    async def _keep_claim(self, update_id: int) -> None:
        """Renew the claim every third of its lease while the update is being answered: only a
        replica that died lets its lease run out."""
        store = self.service.store
        assert store is not None
        every = self.replicas.update_lease_s / 3
        while True:
            await asyncio.sleep(every)
            try:
                await store.extend(self.bot_name, update_id, self.holder, self.replicas.update_lease_s)
            except Exception as exc:  # noqa: BLE001 - the next renewal may get through
                log.warning("telegram: cannot renew the claim of update %d (%s)", update_id, exc)

    async def poll(self, timeout: int = 30) -> None:
        """Long polling until stop(): fetch a batch, answer it, confirm what is finished by the next offset."""
        offset: int | None = None
        backoff = 1.0
        stopping = asyncio.create_task(self._stop.wait())
        try:
            while not self._stop.is_set():
                fetch = asyncio.create_task(self.app.bot.get_updates(
                    offset=offset, timeout=timeout, allowed_updates=["message", "callback_query"]))
                done, _ = await asyncio.wait({fetch, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if fetch not in done:
                    fetch.cancel()  # nothing fetched is lost: unconfirmed updates come again
                    break
                try:
                    updates = fetch.result()
                except RetryAfter as exc:
                    await asyncio.sleep(float(exc.retry_after if isinstance(exc.retry_after, int | float)
                                              else exc.retry_after.total_seconds()))
                    continue
                except (NetworkError, TelegramError) as exc:
                    log.warning("telegram: getUpdates failed (%s); retrying in %.0f s", exc, backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 30.0)
                    continue
                if not updates:
                    backoff = 1.0
                    continue
                finished = await self._process(updates)
                if finished:
                    offset = updates[finished - 1].update_id + 1
                if finished < len(updates):  # a reply did not get through: the rest comes again, later
                    log.warning("telegram: %d update(s) not answered yet (sending failed); retrying in %.0f s",
                                len(updates) - finished, backoff)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), backoff)
                    backoff = min(backoff * 2, 30.0)
                else:
                    backoff = 1.0
            if offset is not None:  # a graceful stop confirms what is finished
                with contextlib.suppress(TelegramError):
                    await self.app.bot.get_updates(offset=offset, timeout=0, allowed_updates=["message", "callback_query"])
        finally:
            stopping.cancel()

    async def _process(self, updates: list[Update]) -> int:
        """Answer a batch: each chat's updates in order, different chats at the same time; skip those
        answered before (a crash, a retry). Returns how many updates from the start of the batch are
        finished and durable, i.e. may be confirmed."""
        store = self.service.store
        answered = await store.answered(self.bot_name, [u.update_id for u in updates]) if store else set()
        finished = {u.update_id for u in updates if str(u.update_id) in answered}
        per_chat: dict[int, list[Update]] = defaultdict(list)
        for update in updates:
            if update.update_id not in finished:
                per_chat[update.effective_chat.id if update.effective_chat else 0].append(update)

        async def run(chat_updates: list[Update]) -> None:
            async with self._concurrent:
                for update in chat_updates:
                    self._unfinished.discard(update.update_id)
                    await self.app.process_update(update)
                    if update.update_id in self._unfinished:
                        return  # the chat's later updates wait for this one: their order matters
                    if store:
                        store.mark_answered(self.bot_name, update.update_id)
                        await store.durable()  # the mark and the update's effects survive a crash now
                    finished.add(update.update_id)

        await asyncio.gather(*(run(u) for u in per_chat.values()))
        count = 0
        for update in updates:
            if update.update_id not in finished:
                break
            count += 1
        return count

    # -- handlers --------------------------------------------------------------------------
    async def _answer(self, update: Update, incoming: Incoming) -> None:
        user, chat = update.effective_user, update.effective_chat
        if user is None or chat is None:
            return
        incoming = Incoming(user="", text=incoming.text, payload=incoming.payload, language_hint=user.language_code)
        reply = await self.service.handle(user.id, incoming, address=str(chat.id))
        await self.send(chat.id, reply)

    async def _on_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message and message.text:
            command = message.text.split()[0].split("@")[0]
            await self._answer(update, Incoming(user="", text=" ".join([command, *(context.args or [])])))

    async def _on_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if not message or not message.text:
            return
        text = message.text
        if message.chat.type != "private":
            mention = f"@{self.username}"
            if mention.lower() not in text.lower():
                return
            text = text.replace(mention, " ").replace(mention.lower(), " ")
        await self._answer(update, Incoming(user="", text=text))

    async def _on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
        await deliver(query.answer)
        await self._answer(update, Incoming(user="", payload=query.data or ""))

    async def _on_admin(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        user, chat, message = update.effective_user, update.effective_chat, update.effective_message
        if not (user and chat and message and message.text):
            return
        # Only in a private chat: in a group, /stats would show the unanswered questions to everyone.
        if self.admin is None or user.id not in self.settings.admins or chat.type != "private":
            await self._answer(update, Incoming(user="", text="/help"))
            return
        command = message.text.split()[0].split("@")[0].lstrip("/")
        answer = await self.admin(command)
        for part in split_text(answer):
            await deliver(partial(self.app.bot.send_message, chat.id, part))

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """PTB's one place for errors: a reply that failed on the way leaves its update unconfirmed
        (it comes again); one that failed for good (blocked, 400) or our own error is logged and the
        update finished. Never the message text in the log."""
        error = context.error
        update_id = update.update_id if isinstance(update, Update) else None
        if error is not None and transient(error) and update_id is not None:
            self._unfinished.add(update_id)
            log.warning("telegram: update %d: the reply did not get through (%s); it will be answered again",
                        update_id, type(error).__name__)
        elif isinstance(error, Forbidden | BadRequest):
            log.warning("telegram: update %s: the reply cannot be delivered (%s); given up", update_id, error)
        else:
            log.error("telegram: update %s failed: %s", update_id, error, exc_info=error)

    # -- sending ---------------------------------------------------------------------------
    def _markup(self, rows, reply: Reply) -> InlineKeyboardMarkup | None:
        keyboard, count = [], 0
        for row in rows:
            buttons = []
            for button in row:
                if count >= MAX_BUTTONS:
                    break
                count += 1
                if button.payload.startswith(SHARE):
                    link = f"https://t.me/{self.username}?start={button.payload[len(SHARE):]}"
                    buttons.append(InlineKeyboardButton(button.label, url=f"https://t.me/share/url?url={quote(link, safe='')}"))
                else:
                    buttons.append(InlineKeyboardButton(button.label, callback_data=button.payload))
            if buttons:
                keyboard.append(buttons)
        return InlineKeyboardMarkup(keyboard) if keyboard else None

    async def send(self, chat_id: int | str, reply: Reply) -> None:
        bot = self.app.bot
        for message in reply.messages:
            parts = split_text(render_html(list(message.lines), reply.rtl))
            markup = self._markup(message.buttons, reply)
            for index, part in enumerate(parts):
                await deliver(partial(bot.send_message, chat_id, part, parse_mode=ParseMode.HTML,
                                      reply_markup=markup if index == len(parts) - 1 else None,
                                      link_preview_options=LinkPreviewOptions(is_disabled=True)))
            if message.location:
                where = message.location
                await deliver(partial(bot.send_venue, chat_id, latitude=where.latitude, longitude=where.longitude,
                                      title=where.title, address=where.address))

    async def send_news(self, address: str, reply: Reply) -> None:
        """The news sender for the broadcaster: a blocked bot or a vanished chat is permanent."""
        try:
            await self.send(int(address), reply)
        except (Forbidden, BadRequest) as exc:
            raise PermanentSendError(str(exc)) from exc
