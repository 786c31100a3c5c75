"""The router's WebSockets: the upstream side opened with the client's
subprotocols, cookies and origin, then messages pumped both ways until one
side closes, the other closed with its code."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import Receive, Scope, Send
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidMessage
from websockets.typing import Subprotocol

from odooops.environments.router_upstream import Unreachable, address_for, forwarded, raw_target
from odooops.environments.routes import Route

CONNECT_TIMEOUT = 5.0
MAX_SIZE = 16 * 2**20  # what uvicorn lets a client send in one message
PASSED = frozenset({b"cookie", b"origin", b"user-agent", b"accept-language"})
TRY_AGAIN_LATER = 1013
BAD_GATEWAY = 1014
GOING_AWAY = 1001


async def open_upstream(scope: Scope, route: Route) -> ClientConnection:
    """Raises Unreachable when nothing answered (a bridge whose Odoo is gone
    closes without a word: InvalidMessage), and another InvalidHandshake when
    the environment refused."""
    target = raw_target(scope, scope.get("query_string", b"")).decode("latin-1")
    passed = [(name, value) for name, value in scope["headers"] if name.lower() in PASSED] + forwarded(scope)
    try:
        return await connect(f"ws://{address_for(route, scope['path'])}{target}",
                             additional_headers=[(name.decode(), value.decode("latin-1")) for name, value in passed],
                             subprotocols=[Subprotocol(name) for name in scope.get("subprotocols", [])] or None,
                             user_agent_header=None, proxy=None, open_timeout=CONNECT_TIMEOUT, max_size=MAX_SIZE,
                             ping_interval=None)  # keeping alive is the two ends' business, as without us
    except (OSError, InvalidMessage) as error:  # TimeoutError is an OSError
        raise Unreachable(str(error)) from error


def sendable(code: int | None, broken: int) -> int:
    """A close code that may go on the wire: 1005 (none was given), 1006 and
    1015 (the connection broke) are only ever reported."""
    if code in (None, 1006, 1015):
        return broken
    return 1000 if code == 1005 else code


async def pump(receive: Receive, send: Send, upstream: ClientConnection) -> None:
    """Messages both ways until one side closes; the other is then closed with its code."""
    client_left = False

    async def from_client() -> None:
        nonlocal client_left
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                client_left = True
                return await upstream.close(sendable(message.get("code"), GOING_AWAY), message.get("reason") or "")
            data: Any = message.get("text") if message.get("text") is not None else message.get("bytes")
            if data is not None:
                await upstream.send(data)

    async def from_upstream() -> None:
        async for data in upstream:
            await send({"type": "websocket.send", "text" if isinstance(data, str) else "bytes": data})

    tasks = (asyncio.ensure_future(from_client()), asyncio.ensure_future(from_upstream()))
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    await upstream.close()
    if not client_left:
        await close_client(send, sendable(upstream.close_code, BAD_GATEWAY), upstream.close_reason or "")


async def close_client(send: Send, code: int, reason: str = "") -> None:
    try:
        await send({"type": "websocket.close", "code": code, "reason": reason})
    except OSError:  # it left meanwhile
        pass


async def close_accepted(send: Send, code: int) -> None:
    """Accept, then close with `code`: a refused handshake would carry none."""
    await send({"type": "websocket.accept"})
    await close_client(send, code)
