"""A loopback TCP forwarder that a test can cut, to take a server away from the farm only.

    with TcpProxy(("127.0.0.1", 5432)) as proxy:      # clients connect to 127.0.0.1:proxy.port
        proxy.down()   # every open connection is closed on both sides, new ones are refused
        proxy.up()     # listening again on the same port

To its clients `down()` looks like a database server that stopped: sessions end mid-query with
"server closed the connection", reconnects get "connection refused". The server side of each
closed connection sees EOF, so PostgreSQL ends those sessions and rolls their transactions back.
Other tests on the same server are not affected.
"""
from __future__ import annotations

import socket
import threading

_ACCEPT_POLL_S = 0.1
_CHUNK = 64 * 1024


class TcpProxy:
    def __init__(self, target: tuple[str, int], host: str = "127.0.0.1") -> None:
        self.target, self.host = target, host
        self.port = 0
        self.connections_total = 0
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None

    # -- control -----------------------------------------------------------------------------------

    def up(self) -> None:
        """Listen (on the same port as before, if there was one) and forward new connections."""
        assert self._listener is None, "already up"
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(64)
        listener.settimeout(_ACCEPT_POLL_S)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._acceptor = threading.Thread(target=self._accept, args=(listener,), name=f"proxy-accept-{self.port}",
                                          daemon=True)
        self._acceptor.start()

    def down(self) -> int:
        """Stop listening and close every forwarded connection; returns how many were open."""
        listener, self._listener = self._listener, None
        assert listener is not None, "already down"
        listener.close()
        if self._acceptor is not None:
            self._acceptor.join()
        with self._lock:
            open_now, self._sockets = self._sockets, set()
        for sock in open_now:
            _close(sock)
        return len(open_now) // 2

    def close(self) -> None:
        if self._listener is not None:
            self.down()

    def __enter__(self) -> TcpProxy:
        self.up()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- forwarding --------------------------------------------------------------------------------

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _addr = listener.accept()
            except socket.timeout:
                if self._listener is not listener:
                    return
                continue
            except OSError:  # closed by down()
                return
            if self._listener is not listener:
                _close(client)
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client)
                continue
            upstream.settimeout(None)
            client.settimeout(None)
            with self._lock:
                self._sockets |= {client, upstream}
                self.connections_total += 1
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(_CHUNK):
                dst.sendall(data)
        except OSError:
            pass
        with self._lock:
            self._sockets -= {src, dst}
        _close(src)
        _close(dst)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
