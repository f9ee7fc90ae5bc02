#!/usr/bin/env python3
"""One loopback connection in one process, with blocking sockets, driven by stdin lines, for
the datapath's leave-safety test. A blocking send that waits for buffer space sits inside the
kernel's sendmsg, holding its socket's psock; Node cannot do that (its sockets never block).

  blocked_sender.py PORT  -> {"event": "connected", "client_port": N}
  commands (one JSON line each):
    handoff N    the client sends N separate 64-byte messages; the server reads them
    block BYTES  the server starts a blocking sendall(BYTES) the client does not read yet
    poke         the client sends 64 bytes the server reads only at `drain` (its ACK comes back)
    drain        the client reads it all and checks the pattern; the server reads the pokes
    ping         one 64-byte message each way
"""
import json
import select
import socket
import sys
import threading


def out(v):
    sys.stdout.write(json.dumps(v) + "\n")
    sys.stdout.flush()


def recv_exact(sock, n):
    # With sk_msg redirection a blocking recv can fail with a spurious EAGAIN: wait and retry.
    parts, have = [], 0
    while have < n:
        try:
            b = sock.recv(min(n - have, 1 << 20))
        except BlockingIOError:
            select.select([sock], [], [], 0.1)
            continue
        if not b:
            raise EOFError(f"closed after {have} of {n} bytes")
        parts.append(b)
        have += len(b)
    return b"".join(parts)


def pattern(n):
    block = bytes(range(251))
    return (block * (n // len(block) + 1))[:n]


def main():
    port = int(sys.argv[1])
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(1)
    client = socket.create_connection(("127.0.0.1", port))
    server, _ = ls.accept()
    for s in (client, server):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    out({"event": "connected", "client_port": client.getsockname()[1]})
    sender = None
    pending = 0
    pokes = 0
    for line in sys.stdin:
        cmd, *args = line.split()
        try:
            if cmd == "handoff":
                n = int(args[0])
                for _ in range(n):
                    client.send(b"m" * 64)
                recv_exact(server, 64 * n)
                out({"ok": True})
            elif cmd == "block":
                pending = int(args[0])
                sender = threading.Thread(target=server.sendall, args=(pattern(pending),))
                sender.start()
                sender.join(0.3)
                out({"ok": True, "blocked": sender.is_alive()})
            elif cmd == "poke":
                client.send(b"k" * 64)
                pokes += 1
                out({"ok": True})
            elif cmd == "drain":
                got = recv_exact(client, pending)
                sender.join()
                recv_exact(server, 64 * pokes)
                pokes = 0
                out({"ok": got == pattern(pending)})
            elif cmd == "ping":
                client.send(b"p" * 64)
                recv_exact(server, 64)
                server.send(b"q" * 64)
                recv_exact(client, 64)
                out({"ok": True})
            elif cmd == "quit":
                out({"ok": True})
                return
            else:
                out({"ok": False, "error": f"unknown command {cmd}"})
        except Exception as e:  # reported to the test, which fails with it
            out({"ok": False, "error": repr(e)})


main()
