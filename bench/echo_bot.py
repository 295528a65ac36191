"""The floor: a minimal matrix-nio bot that answers every text message with an m.notice reply.

Usage: python -m bench.echo_bot HOMESERVER USER_ID ACCESS_TOKEN DEVICE_ID
"""

import asyncio
import sys

from nio import AsyncClient, RoomMessageText

# nio skips the gap of a "limited" sync: a big timeline limit keeps this naive bot from losing burst messages
FILTER = {"room": {"timeline": {"limit": 1000}}}
FIRST = {"room": {"timeline": {"limit": 1}}}  # the history is skipped: no need to download it (as ess-bot)


async def main(homeserver: str, user_id: str, token: str, device_id: str) -> None:
    client = AsyncClient(homeserver, user_id, device_id=device_id)
    client.restore_login(user_id, device_id, token)

    async def echo(room, event):
        if event.sender != user_id:
            await client.room_send(room.room_id, "m.room.message", {
                "msgtype": "m.notice", "body": event.body, "m.mentions": {},
                "m.relates_to": {"m.in_reply_to": {"event_id": event.event_id}}})

    await client.sync(timeout=0, sync_filter=FIRST, full_state=True)  # skip history, as ess-bot does
    client.add_event_callback(echo, RoomMessageText)
    print("ready", flush=True)
    await client.sync_forever(timeout=30000, sync_filter=FILTER)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
