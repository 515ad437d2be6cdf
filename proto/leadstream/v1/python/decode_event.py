#!/usr/bin/env python3
"""Decode the body of a leadstream EVENTS message (a protobuf leadstream.v1.Event).

Needs only the protobuf runtime (Debian: python3-protobuf; pip: protobuf) and the committed
descriptor set proto/leadstream/v1/event.binpb: no protoc, no generated code.

    python3 decode_event.py [EVENT_BINPB] < body.bin

prints the event as protojson: the JSON that Go's protojson writes and that the webhook
adapter sends as `data` (int64 as strings, enums by name, lowerCamelCase names, RFC 3339
timestamps, bytes as base64).
"""

import sys
from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

DESCRIPTOR_SET = Path(__file__).resolve().parent.parent / "event.binpb"


def event_class(descriptor_set=DESCRIPTOR_SET):
    """Return the message class of leadstream.v1.Event, built from the descriptor set."""
    fds = descriptor_pb2.FileDescriptorSet.FromString(Path(descriptor_set).read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for f in fds.file:  # imports come first in the set
        pool.AddSerializedFile(f.SerializeToString())
    desc = pool.FindMessageTypeByName("leadstream.v1.Event")
    if hasattr(message_factory, "GetMessageClass"):  # protobuf >= 4.22
        return message_factory.GetMessageClass(desc)
    return message_factory.MessageFactory(pool).GetPrototype(desc)


def main():
    Event = event_class(*sys.argv[1:2])
    ev = Event.FromString(sys.stdin.buffer.read())
    # ev.type, ev.aggregate_id, ...; the typed data is the set case of the oneof:
    # getattr(ev, ev.WhichOneof("data")) is e.g. the Lead of a lead.created.
    print(json_format.MessageToJson(ev, indent=2))


if __name__ == "__main__":
    main()
