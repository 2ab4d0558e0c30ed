#!/usr/bin/env python3
"""bench_rdkafka_produce.py - librdkafka baseline for tweetpipe's produce benchmark.

What it is for
    The produce benchmark compares `tweetpipe produce --from-file FILE` with the
    classic `kcat -P -l FILE` (every line of FILE becomes one keyless record).
    Debian's kcat links librdkafka 2.0.2, which cannot talk to the tansu broker
    used here, so this script is that baseline: a confluent-kafka (librdkafka 2.x)
    producer that does what `kcat -P -l` does, with kcat's (= librdkafka's)
    defaults:
        acks=all, linger.ms=5, batch.size / batch.num.messages / queue sizes at
        their defaults, no key, default partitioner (keyless -> random
        partition), compression per --compression (default none);
    then it flushes and waits for every delivery report.

Output
    One JSON line on stdout:
        {"records":N,"bytes":B,"seconds":S,"records_per_s":R,"mb_per_s":M,
         "compression":"none","errors":0,"topic":"..."}
    bytes = sum of the record values (lines without their "\\n"), MB = 10^6 bytes,
    seconds = from the producer's creation (connection and metadata included, as
    in a kcat run) to the last delivery report. Progress/errors go to stderr.
    Exit 0 if every record was delivered, 1 otherwise, 2 on bad usage.
    Peak memory is not measured here; run it under `/usr/bin/time -v` for that.

Example
    scripts/gen_tweets.py --count 10000 --out /tmp/tweets.jsonl
    /usr/bin/time -v scripts/bench_rdkafka_produce.py --brokers 127.0.0.1:9092 \\
        --topic bench --file /tmp/tweets.jsonl --compression snappy

The topic must exist (tansu does not auto-create topics). A .gz FILE is
decompressed on the fly (kcat cannot do that; use a plain file for a fair
comparison). Requires confluent-kafka; installed with pip (quietly) if missing.
"""

import argparse
import gzip
import json
import os
import sys
import time


def log(*a):
    print("bench_rdkafka_produce:", *a, file=sys.stderr, flush=True)


# The librdkafka cross-check client of the tests already knows how to get confluent-kafka onto
# a fresh machine; use that rather than a second copy.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from rdkafka_client import import_confluent_kafka  # noqa: E402


def client_version(ck):
    v = ck.version()  # a string in recent releases, (string, int) in older ones
    return v[0] if isinstance(v, tuple) else v


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--brokers", "-b", required=True, help="bootstrap servers, host:port[,host:port...]")
    ap.add_argument("--topic", "-t", required=True, help="topic to produce to; must already exist")
    ap.add_argument("--file", "-f", required=True, help="input, one record per line (.gz decompressed, - = stdin)")
    ap.add_argument("--compression", "-z", choices=["none", "gzip", "snappy"], default="none",
                    help="compression.codec (default none, as kcat)")
    ap.add_argument("--timeout", type=float, default=300.0,
                    help="give up waiting for delivery reports after this many seconds (default 300)")
    ap.add_argument("-X", dest="extra", action="append", default=[], metavar="PROP=VALUE",
                    help="extra librdkafka property, as kcat's -X (repeatable), e.g. -X linger.ms=50")
    a = ap.parse_args()

    extra = {}
    for kv in a.extra:
        if "=" not in kv:
            ap.error("-X wants PROP=VALUE, got %r" % kv)
        k, v = kv.split("=", 1)
        extra[k] = v
    try:
        f = sys.stdin.buffer if a.file == "-" else gzip.open(a.file, "rb") if a.file.endswith(".gz") \
            else open(a.file, "rb", buffering=1 << 20)
    except OSError as e:
        ap.error("cannot open --file: %s" % e)

    ck = import_confluent_kafka()
    errors = []

    def on_error_report(err, msg):  # delivery.report.only.error: called for failures only
        errors.append(str(err))

    conf = {
        "bootstrap.servers": a.brokers,
        # api.version.request is true by default; setting it only draws a deprecation warning
        "acks": "all",
        "linger.ms": 5,
        "compression.codec": a.compression,
        "delivery.report.only.error": True,
        "on_delivery": on_error_report,
        "allow.auto.create.topics": False,
        "error_cb": lambda err: log("kafka error:", err),
    }
    conf.update(extra)

    records = nbytes = 0
    t0 = time.perf_counter()
    try:
        producer = ck.Producer(conf)
        produce, poll = producer.produce, producer.poll
        topic = a.topic
        with f:
            for line in f:
                if line.endswith(b"\n"):
                    line = line[:-1]
                if not line:  # one record per non-empty line
                    continue
                try:
                    produce(topic, line)
                except BufferError:  # queue.buffering.max.* reached: wait for the broker
                    while True:
                        poll(0.05)
                        try:
                            produce(topic, line)
                            break
                        except BufferError:
                            pass
                records += 1
                nbytes += len(line)
                if records & 1023 == 0:
                    poll(0)
        remaining = producer.flush(a.timeout)
    except ck.KafkaException as e:
        log("kafka:", e)
        return 1
    except OSError as e:
        log("reading %s: %s" % (a.file, e))
        return 1
    secs = time.perf_counter() - t0

    failed = len(errors) + remaining
    if errors:
        log("%d deliveries failed, first: %s" % (len(errors), errors[0]))
    if remaining:
        log("%d records still undelivered after %.0fs" % (remaining, a.timeout))
    print(json.dumps({
        "records": records, "bytes": nbytes, "seconds": round(secs, 4),
        "records_per_s": round(records / secs, 1) if secs else None,
        "mb_per_s": round(nbytes / secs / 1e6, 3) if secs else None,
        "compression": a.compression, "errors": failed, "topic": a.topic,
        "client": "confluent-kafka %s / librdkafka %s" % (client_version(ck), ck.libversion()[0]),
    }, separators=(",", ":")), flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
