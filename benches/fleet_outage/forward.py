#!/usr/bin/env python3
"""A TCP forwarder that can be cut: `forward.py LISTEN_PORT TARGET_PORT`, on loopback.

SIGUSR1 cuts it (every connection it carries is closed, every new one closed at once, as a
lost route or a dead node looks to the process behind it); SIGUSR2 restores it.
"""
import asyncio
import signal
import sys

listen_port, target_port = int(sys.argv[1]), int(sys.argv[2])
cut = False
carried = set()


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def handle(reader, writer):
    if cut:
        writer.close()
        return
    try:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
    except OSError:
        writer.close()
        return
    tasks = {asyncio.ensure_future(pipe(reader, up_writer)), asyncio.ensure_future(pipe(up_reader, writer))}
    carried.update(tasks)
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in tasks:
        task.cancel()
        carried.discard(task)
    writer.close()
    up_writer.close()


def set_cut(value):
    global cut
    cut = value
    if value:
        for task in list(carried):
            task.cancel()


async def main():
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, set_cut, True)
    loop.add_signal_handler(signal.SIGUSR2, set_cut, False)
    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
    async with server:
        await server.serve_forever()


asyncio.run(main())
