"""A DNS server for the image checks: answers A queries for one name with 127.0.0.1, on a
loopback address of its own (port 53, as resolv.conf cannot name a port). Every other query gets
an empty NOERROR answer, so a resolver finds nothing else there."""

import socket
import struct
import threading


class NameServer:
    def __init__(self, address, name):
        self.name = name.lower().rstrip(".")
        self.queries = []
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind((address, 53))
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                query, client = self.socket.recvfrom(512)
            except OSError:  # closed
                return
            self.socket.sendto(self.answer(query), client)

    def answer(self, query):
        ident, _flags, _count = struct.unpack_from(">HHH", query)
        labels, offset = [], 12
        while query[offset]:
            length = query[offset]
            labels.append(query[offset + 1:offset + 1 + length].decode().lower())
            offset += 1 + length
        qtype, = struct.unpack_from(">H", query, offset + 1)
        question = query[12:offset + 5]
        name = ".".join(labels)
        self.queries.append((name, qtype))
        found = name == self.name and qtype == 1
        header = struct.pack(">HHHHHH", ident, 0x8180, 1, 1 if found else 0, 0, 0)
        record = struct.pack(">HHHIH4s", 0xC00C, 1, 1, 5, 4, socket.inet_aton("127.0.0.1")) if found else b""
        return header + question + record

    def close(self):
        self.socket.close()
