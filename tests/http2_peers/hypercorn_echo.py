"""A WebSocket echo app (ASGI) served by Hypercorn over TLS with ALPN h2
and http/1.1, for tests/http2_hypercorn.rs: an independent server that
speaks RFC 8441 (Hypercorn from PyPI, pinned in .ci/setup, venv
target/hypercorn-venv).

Usage: python hypercorn_echo.py CERT.pem KEY.pem [PORT]
Binds 127.0.0.1:PORT (0: any), prints the port, serves until stdin closes.

Every text or binary message is echoed, except the text messages:
- "version?": answered with the scope's http_version ("2" or "1.1");
- "close:CODE": the server closes the Websocket with CODE.
"""
import asyncio
import socket
import sys

from hypercorn.asyncio import serve
from hypercorn.config import Config


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "websocket":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"websocket only\n"})
        return
    await receive()  # websocket.connect
    offered = scope.get("subprotocols") or []
    accept = {"type": "websocket.accept"}
    if offered:
        accept["subprotocol"] = offered[0]
    await send(accept)
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text == "version?":
            await send({"type": "websocket.send", "text": scope["http_version"]})
        elif text is not None and text.startswith("close:"):
            await send({"type": "websocket.close", "code": int(text[6:])})
            return
        elif text is not None:
            await send({"type": "websocket.send", "text": text})
        else:
            await send({"type": "websocket.send", "bytes": message.get("bytes")})


async def main():
    cert, key = sys.argv[1], sys.argv[2]
    port = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    sock.set_inheritable(True)
    config = Config()
    config.bind = ["fd://%d" % sock.fileno()]
    config.certfile = cert
    config.keyfile = key
    config.alpn_protocols = ["h2", "http/1.1"]
    config.accesslog = None
    config.errorlog = "-"
    print(sock.getsockname()[1], flush=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.run_in_executor(None, lambda: (sys.stdin.read(), loop.call_soon_threadsafe(stop.set)))
    await serve(app, config, shutdown_trigger=stop.wait)


asyncio.run(main())
