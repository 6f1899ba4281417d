"""An echo server with permessage-deflate: Python `websockets` (pinned in
.ci/setup, venv target/deflate-venv), for tests/deflate_interop.rs.

Prints its port, then echoes every message. The text message "stats?" is
answered with "<bytes read> <bytes written>" on the socket so far (the
wire bytes, compressed), so the test can tell what compression saved.
"""
import asyncio
import sys

from websockets.asyncio.server import serve


async def handler(ws):
    transport = ws.transport
    async for message in ws:
        if message == "stats?":
            await ws.send("%d %d" % (transport.read_bytes, transport.written_bytes))
        else:
            await ws.send(message)


async def main():
    loop = asyncio.get_running_loop()
    stop = loop.create_future()

    def on_connect(connection, request):
        transport = connection.transport
        transport.read_bytes = 0
        transport.written_bytes = 0
        write = transport.write

        def counted_write(data):
            transport.written_bytes += len(data)
            write(data)

        transport.write = counted_write
        received = connection.data_received

        def counted_received(data):
            transport.read_bytes += len(data)
            received(data)

        connection.data_received = counted_received
        return None

    async with serve(
        handler,
        "127.0.0.1",
        0,
        compression="deflate",
        max_size=None,
        process_request=on_connect,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        print(port, flush=True)
        # Ends when the test closes stdin.
        await loop.run_in_executor(None, sys.stdin.read)


asyncio.run(main())
