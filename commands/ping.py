"""!ping — is the bot alive? Version and uptime."""

from ess_bot.formatting import elapsed_fr
from ess_bot.framework.command import ROOM_KINDS, command
from ess_bot.framework.context import Context

TRANSPORT_LABELS = {"matrix": "Matrix", "console": "terminal"}


@command("ping", group="Général", summary="vérifier que le bot répond (version et durée de service)",
         usage="!ping", examples=["!ping"], where=ROOM_KINDS)
async def ping(ctx: Context, args: list[str]) -> None:
    uptime = elapsed_fr(ctx.clock.monotonic() - ctx.runtime.started_monotonic)
    ctx.reply(f"🏓 Pong ! ess-bot {ctx.runtime.version} — en service depuis {uptime} "
              f"(transport : {TRANSPORT_LABELS.get(ctx.runtime.transport, ctx.runtime.transport)}).")
