"""/websocket: the handshake as Odoo 17.0's bus checks it (the same headers
required, Origin among them; the same 400 and 426 answers), then, where
Odoo runs its bus protocol, an echo (RFC 6455 on a plain socket): text and
binary messages come back as sent, fragmented or not; a ping gets its pong;
a close gets the same code and reason back, as Odoo answers one; a frame
not masked, reserved bits or a bad control frame close with 1002, text that
is not UTF-8 with 1007, a message over 1 MiB with 1009."""

from __future__ import annotations

import base64
import binascii
import hashlib
import socket
import struct

GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'
REQUIRED = ('connection', 'host', 'sec-websocket-key', 'sec-websocket-version', 'upgrade', 'origin')
MAX_MESSAGE = 2 ** 20  # Odoo's MESSAGE_MAX_SIZE
CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
PROTOCOL_ERROR, INCONSISTENT_DATA, TOO_BIG = 1002, 1007, 1009


def wants_upgrade(method: str, headers) -> bool:
    """What makes werkzeug match a websocket route (any other request on one is a 400)."""
    return (method == 'GET' and 'upgrade' in (headers.get('Connection') or '').lower()
            and (headers.get('Upgrade') or '').lower() == 'websocket')


def handshake(headers) -> tuple[int, str, list]:
    """(101, '', headers of the answer), or the status and message of the refusal."""
    missing = [name for name in REQUIRED if not headers.get(name)]
    if missing:
        return 400, f"Empty or missing header(s): {', '.join(missing)}", []
    if headers['upgrade'].lower() != 'websocket':
        return 400, 'Invalid upgrade header', []
    if 'upgrade' not in headers['connection'].lower():
        return 400, 'Invalid connection header', []
    if headers['sec-websocket-version'] != '13':
        return 426, 'Wrong websocket version was given during the handshake', [('Sec-WebSocket-Version', '13')]
    key = headers['sec-websocket-key']
    try:
        decoded = base64.b64decode(key, validate=True)
    except binascii.Error:
        return 400, 'Sec-WebSocket-Key should be b64 encoded', []
    if len(decoded) != 16:
        return 400, 'Sec-WebSocket-Key should be of length 16 once decoded', []
    accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()  # RFC 6455 says sha-1
    return 101, '', [('Upgrade', 'websocket'), ('Connection', 'Upgrade'), ('Sec-WebSocket-Accept', accept)]


class Closed(Exception):
    pass


class Echo:
    """One connection after the handshake: reads frames from `rfile`,
    answers on `wfile` (the handler's files on `sock`) until a close."""

    def __init__(self, rfile, wfile, sock):
        self.rfile, self.wfile, self.sock = rfile, wfile, sock

    def serve(self) -> None:
        try:
            while True:
                opcode, payload = self._message()
                if opcode is not None:
                    self._send(opcode, payload)
        except Closed:
            self._terminate()
        except (OSError, ValueError):
            pass  # the client went away

    def _terminate(self) -> None:
        """As Odoo ends one: no more writes, then what the client still sends
        read and dropped for a second, so that the close frame is not lost
        to a reset."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
            self.sock.settimeout(1)
            while self.sock.recv(65536):
                pass
        except OSError:
            pass

    def _read(self, size: int) -> bytes:
        data = self.rfile.read(size)
        if len(data) != size:
            raise Closed()
        return data

    def _frame(self) -> tuple[bool, int, bytes]:
        first, second = self._read(2)
        fin, opcode = bool(first & 0x80), first & 0x0F
        if first & 0x70:
            self._close(PROTOCOL_ERROR, 'Reserved bits must be unset')
        if not second & 0x80:
            self._close(PROTOCOL_ERROR, 'Frame must be masked')
        length = second & 0x7F
        if length == 126:
            length = struct.unpack('!H', self._read(2))[0]
        elif length == 127:
            length = struct.unpack('!Q', self._read(8))[0]
        if opcode >= CLOSE and (not fin or length > 125):
            self._close(PROTOCOL_ERROR, 'Control frames cannot be fragmented' if not fin else 'Control frame too big')
        if length > 16 * MAX_MESSAGE:
            self._close(TOO_BIG, 'Message too big')
        mask = self._read(4)
        data = self._read(length)
        if length > MAX_MESSAGE:  # read first, so that the client reads the close
            self._close(TOO_BIG, 'Message too big')
        keys = (mask * (length // 4 + 1))[:length]
        return fin, opcode, (int.from_bytes(data, 'big') ^ int.from_bytes(keys, 'big')).to_bytes(length, 'big')

    def _message(self) -> tuple[int | None, bytes]:
        """The next data message whole, (None, b'') after a control frame."""
        fin, opcode, payload = self._frame()
        if opcode >= CLOSE:
            self._control(opcode, payload)
            return None, b''
        if opcode not in (TEXT, BINARY):
            self._close(PROTOCOL_ERROR, 'Unexpected continuation frame' if opcode == CONTINUATION else 'Bad opcode')
        parts = [payload]
        while not fin:
            fin, next_opcode, more = self._frame()
            if next_opcode >= CLOSE:
                self._control(next_opcode, more)
                continue
            if next_opcode != CONTINUATION:
                self._close(PROTOCOL_ERROR, 'A continuation frame was expected')
            parts.append(more)
            if sum(map(len, parts)) > MAX_MESSAGE:
                self._close(TOO_BIG, 'Message too big')
        message = b''.join(parts)
        if opcode == TEXT:
            try:
                message.decode('utf-8')
            except UnicodeDecodeError:
                self._close(INCONSISTENT_DATA, 'Invalid UTF-8')
        return opcode, message

    def _control(self, opcode: int, payload: bytes) -> None:
        if opcode == PING:
            self._send(PONG, payload)
        elif opcode == CLOSE:
            if len(payload) == 1:
                self._close(PROTOCOL_ERROR, 'Malformed closing frame')
            self._send(CLOSE, payload)  # the same code and reason back, as Odoo answers a close
            raise Closed()
        elif opcode != PONG:
            self._close(PROTOCOL_ERROR, 'Bad opcode')

    def _close(self, code: int, reason: str) -> None:
        self._send(CLOSE, struct.pack('!H', code) + reason.encode())
        raise Closed()

    def _send(self, opcode: int, payload: bytes) -> None:
        length = len(payload)
        if length < 126:
            header = struct.pack('!BB', 0x80 | opcode, length)
        elif length < 2 ** 16:
            header = struct.pack('!BBH', 0x80 | opcode, 126, length)
        else:
            header = struct.pack('!BBQ', 0x80 | opcode, 127, length)
        self.wfile.write(header + payload)
        self.wfile.flush()
