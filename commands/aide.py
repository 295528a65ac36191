"""!aide — the commands the sender may use, grouped; ``!aide <commande>`` for syntax and examples."""

from ess_bot.config import ROLE_LABELS, ROLE_LABELS_PLURAL
from ess_bot.framework.command import ROOM_KINDS, command, help_text, with_prefix
from ess_bot.formatting import md_code, md_escape
from ess_bot.framework.context import Context, UserError
from ess_bot.parsing import shorten


@command("aide", group="Général", summary="la liste des commandes, ou l'aide d'une commande",
         usage="!aide [commande]", examples=["!aide", "!aide ping"], aliases=["help", "aides"], where=ROOM_KINDS)
async def aide(ctx: Context, args: list[str]) -> None:
    p = ctx.prefix
    if args:
        name = args[0].lstrip(p)
        cmd = ctx.registry.get(name)
        if cmd is None:
            suggestion = ctx.registry.suggest(name, ctx.role)
            hint = f" Vouliez-vous dire `{p}aide {suggestion}` ?" if suggestion else ""
            raise UserError(f"Je ne connais pas la commande {md_code(shorten(p + name, 60))}.{hint} "
                            f"Tapez `{p}aide` pour toutes les voir.")
        if not cmd.allowed(ctx.role):
            raise UserError(f"`{p}{cmd.name}` est réservé aux {ROLE_LABELS_PLURAL[cmd.role]} et plus.")
        ctx.reply(help_text(cmd, ctx.role, p))
        return
    groups: dict[str, list[str]] = {}
    for cmd in ctx.registry.all():
        if cmd.allowed(ctx.role):
            groups.setdefault(cmd.group, []).append(f"- `{with_prefix(p, cmd.usage)}` — {cmd.summary}")
    lines = [f"Bonjour {md_escape(ctx.member.display)} ! Voici les commandes que vous pouvez utiliser "
             f"(rôle : {ROLE_LABELS[ctx.role]}) :"]
    for group, items in groups.items():
        lines.append(f"\n**{group}**\n" + "\n".join(items))
    lines.append(f"\nPour le détail et des exemples : `{p}aide <commande>`, par exemple `{p}aide ping`.")
    ctx.reply("\n".join(lines))
