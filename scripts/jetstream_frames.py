#!/usr/bin/env python3
"""Rebuilds tests/data/jetstream/frames.bin: each event of events_v1.jsonl compressed on its own
with Jetstream's dictionary by the reference zstd command-line tool (Debian's `zstd` package), as
`[u32 little-endian length][zstd frame]...`. The decoder's tests and the Jetstream stand-in use
these as frames made by the reference implementation, beside the stand-in's own encoder."""
import os, struct, subprocess, sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
data = os.path.join(root, "tests/data/jetstream")
dictionary = os.path.join(root, "src/source/jetstream/dictionary/legacy_subscribe.zdict")
with open(os.path.join(data, "events_v1.jsonl"), "rb") as f, open(os.path.join(data, "frames.bin"), "wb") as out:
    for line in f:
        event = line.rstrip(b"\n")
        if not event:
            continue
        frame = subprocess.run(["zstd", "-q", "-c", "-D", dictionary], input=event,
                               capture_output=True, check=True).stdout
        out.write(struct.pack("<I", len(frame)))
        out.write(frame)
sys.exit(0)
