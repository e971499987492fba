#!/usr/bin/env python3
"""An HTTP/2 client that never reads: `frozen_h2.py PORT`. It sends the connection preface
and an empty SETTINGS frame, then holds the connection open without reading a byte, as a
client behind a NAT that dropped the connection looks to the server. Ends when killed."""
import socket
import sys
import time

sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
# Keep the receive window small, so that the server's frames pile up unread.
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
print("frozen", flush=True)
while True:
    time.sleep(3600)
