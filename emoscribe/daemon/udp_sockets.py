"""Opening RTP sockets at start-up (so a busy port is a start-up error), alone or as a group split by SSRC.

A group is one UDP port, N sockets, and the kernel choosing the socket by RTP SSRC (Linux ``SO_REUSEPORT`` +
classic BPF). Every socket of a ``SO_REUSEPORT`` group binds the same address; a classic BPF program attached
to the group returns the index of the socket that gets each datagram. Ours reads the RTP SSRC (bytes 8-11 of
the UDP payload) and returns ``SSRC mod N``, so every packet of a call leg lands on the same worker without any
user-space dispatcher. A datagram too short to hold an SSRC goes to socket 0, whose RTP parser counts it as
malformed.

The group's socket order is fixed by the order of binding, and the sockets stay open in the process that made
them for as long as it runs: a worker that dies and is restarted receives the same socket, so no call leg
moves to another worker.

Each RTP socket also gets a large receive buffer (:func:`prepare_receive`): a burst the event loop cannot read at
once waits there instead of being dropped, and what the kernel still drops is reported with every later datagram
(``SO_RXQ_OVFL``), so loss is counted rather than invisible.
"""

from __future__ import annotations

import ctypes
import logging
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

SO_ATTACH_REUSEPORT_CBPF = 51
"""From ``<asm-generic/socket.h>``; Python's socket module does not name it."""
SO_RXQ_OVFL = 40
"""From ``<asm-generic/socket.h>``: ancillary data with the count of datagrams dropped on a full buffer."""
DROPS_CMSG_SPACE = socket.CMSG_SPACE(4)
"""Ancillary buffer for that count (a 32-bit integer) in ``recvmsg``."""
RMEM_MAX = Path("/proc/sys/net/core/rmem_max")

_BPF_LD_W_ABS = 0x00 | 0x00 | 0x20
_BPF_ALU_MOD_K = 0x04 | 0x90 | 0x00
_BPF_RET_A = 0x06 | 0x10
SSRC_OFFSET = 8


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_SockFilter))]


def ssrc_program(n: int) -> list[tuple[int, int]]:
    """The BPF program as ``(opcode, k)`` pairs: A = SSRC (network order); A = A mod n; return A."""
    return [(_BPF_LD_W_ABS, SSRC_OFFSET), (_BPF_ALU_MOD_K, n), (_BPF_RET_A, 0)]


def bind_udp(host: str, port: int) -> socket.socket:
    """A UDP socket bound to ``host:port``; an ``OSError`` names the address when it cannot be bound."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise OSError(error.errno, f"cannot listen for RTP on {host}:{port}: {error.strerror or error}") from error
    sock.setblocking(False)
    return sock


def ssrc_socket_group(host: str, port: int, n: int) -> list[socket.socket]:
    """``n`` UDP sockets bound to ``host:port`` that split datagrams by SSRC; an ``OSError`` names the address
    when the port is taken (by anything, including another daemon)."""
    if not sys.platform.startswith("linux"):
        raise OSError(f"sharding RTP over {n} workers needs Linux (SO_REUSEPORT with BPF); use workers = 1")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    group: list[socket.socket] = []
    try:
        # A plain bind first: it fails if anything holds the port, even a group of another process that would
        # otherwise let these sockets join it and take half its traffic.
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((host, port))
            port = probe.getsockname()[1]
        for _ in range(n):
            sock = socket.socket(family, socket.SOCK_DGRAM)
            group.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
        program = (_SockFilter * 3)(*(_SockFilter(code, 0, 0, k) for code, k in ssrc_program(n)))
        fprog = _SockFprog(len(program), program)
        group[0].setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, bytes(fprog))
    except OSError as error:
        for sock in group:
            sock.close()
        raise OSError(
            error.errno, f"cannot listen for RTP on {host}:{port} with {n} workers: {error.strerror or error}"
        ) from error
    for sock in group:
        sock.setblocking(False)
    return group


def prepare_receive(sock: socket.socket, buffer_bytes: int) -> int:
    """Ask for a ``buffer_bytes`` receive buffer and for drop counts with each datagram; returns the buffer size
    granted. The kernel caps the request at ``net.core.rmem_max``; a lower grant is logged with the fix."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffer_bytes)
    granted = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2  # Linux reports twice what it grants
    if granted < buffer_bytes:
        logger.warning(
            "RTP receive buffer is %d bytes, not the %d configured: net.core.rmem_max (%s) caps it; raise it "
            "(sysctl -w net.core.rmem_max=%d) so bursts are not dropped",
            granted,
            buffer_bytes,
            _read_rmem_max(),
            buffer_bytes,
        )
    if sys.platform.startswith("linux"):
        sock.setsockopt(socket.SOL_SOCKET, SO_RXQ_OVFL, 1)
    return granted


def kernel_drops(ancillary: Sequence[tuple[int, int, bytes]]) -> int | None:
    """The socket's running count of dropped datagrams from ``recvmsg`` ancillary data (``None``: not given, as
    before the first drop)."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_RXQ_OVFL and len(data) >= 4:
            return int.from_bytes(data[:4], sys.byteorder)
    return None


def _read_rmem_max() -> str:
    try:
        return RMEM_MAX.read_text().strip()
    except OSError:
        return "unknown"
