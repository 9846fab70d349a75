#!/usr/bin/env python3
"""Writes the frame fuzzer's seed corpus (tests/fuzz/corpus/frame/), built from the
wire format's numbers (channel/tcp/frame.hpp), not through the encoder.

Each seed is: a byte giving how many chunk sizes follow, those sizes (each
byte + 1), then a stream of frames. Run once; the files are committed.
"""
import pathlib
import struct

MAGIC = 0x43544C56


def frame(kind, op, payload=b""):
    return struct.pack("<BBHI", kind, op, 0, len(payload)) + payload


def init(complete, side, flags, name):
    n = name.encode()
    return frame(0xC0, 0x02 if complete else 0x01, struct.pack("<IHHBBH", MAGIC, 1, 0, side, flags, len(n)) + n)


def caps(response, queues, size=16384, ch_space_offset=128, type_=bytes(range(16))):
    body = struct.pack("<I", 0) + type_ + struct.pack("<QQI", size, ch_space_offset, len(queues))
    for signal_size, max_slots, sig_base_offset in queues:
        body += struct.pack("<IIQ", signal_size, max_slots, sig_base_offset)
    return frame(0x80, 0x81 if response else 0x01, body)


def write(offset, data, image=False):
    return frame(0x80, 0x12 if image else 0x10, struct.pack("<Q", offset) + data)


def index(counter_offset, counter, index_offset, idx):
    return frame(0x80, 0x11, struct.pack("<QQQI", counter_offset, counter, index_offset, idx))


def image_done(size):
    return frame(0x80, 0x13, struct.pack("<Q", size))


def heartbeat():
    return frame(0x80, 0x14)


def event(code, reason):
    return frame(0xFF, code, reason.encode())


def whole(stream):
    return bytes([0]) + stream  # no chunk sizes: fed in one piece


def chunked(sizes, stream):
    return bytes([len(sizes)] + [s - 1 for s in sizes]) + stream


QUEUES = [(64, 16, 256), (64, 16, 1152)]
SEEDS = {
    "client-handshake": whole(init(False, 1, 0, "g0/vhba0") + caps(False, [], 0, 0, bytes(16))),
    "server-handshake": whole(init(True, 0, 3, "g0/vhba0") + caps(True, QUEUES)
                              + write(0, bytes(range(64)), image=True) + image_done(16384)),
    "live-link": whole(write(1472, b"\x5a" * 64) + index(288, 1, 316, 1) + heartbeat()
                       + event(0x02, "channel g0/vhba0 closed")),
    "split-stream": chunked([1, 7, 13], init(False, 1, 1, "c") + write(12000, b"hello") + index(160, 7, 188, 7)
                            + heartbeat() + event(0x01, "no heartbeat for 81 ms")),
    "events": chunked([3, 64], event(0x01, "killed") + event(0x06, "migrated to host b") + event(0x02, "")),
}

if __name__ == "__main__":
    out = pathlib.Path(__file__).resolve().parent / "corpus" / "frame"
    out.mkdir(exist_ok=True)
    for name, data in SEEDS.items():
        (out / name).write_bytes(data)
        print(f"{out / name}: {len(data)} bytes")
