"""The floor of ess-bot's chosen stack: the echo bot plus SQLAlchemy (ORM, asyncio, aiosqlite), with
none of ess-bot's own code. At start it creates its one table; each message is recorded (its event id,
committed) before the reply, as ess-bot records every command it handles.

Its cold start shows what the stack alone costs over matrix-nio: ess-bot cannot start faster than this.

Usage: python -m bench.stack_bot HOMESERVER USER_ID ACCESS_TOKEN DEVICE_ID SQLITE_PATH
"""

import asyncio
import sys

from nio import AsyncClient, RoomMessageText
from sqlalchemy import String
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bench.echo_bot import FILTER, FIRST


class Base(DeclarativeBase):
    pass


class Handled(Base):
    __tablename__ = "handled"
    event_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    room_id: Mapped[str] = mapped_column(String(255))


async def main(homeserver: str, user_id: str, token: str, device_id: str, path: str) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    sessions = async_sessionmaker(engine)
    client = AsyncClient(homeserver, user_id, device_id=device_id)
    client.restore_login(user_id, device_id, token)

    async def echo(room, event):
        if event.sender != user_id:
            async with sessions.begin() as session:
                session.add(Handled(event_id=event.event_id, room_id=room.room_id))
            await client.room_send(room.room_id, "m.room.message", {
                "msgtype": "m.notice", "body": event.body, "m.mentions": {},
                "m.relates_to": {"m.in_reply_to": {"event_id": event.event_id}}})

    await client.sync(timeout=0, sync_filter=FIRST, full_state=True)
    client.add_event_callback(echo, RoomMessageText)
    print("ready", flush=True)
    await client.sync_forever(timeout=30000, sync_filter=FILTER)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
