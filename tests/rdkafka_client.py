#!/usr/bin/env python3
"""rdkafka_client.py - librdkafka (confluent-kafka) cross-check client for tweetpipe's integration tests.

What it is for
    The Rust integration tests check tweetpipe's Kafka traffic against an
    independent, widely used client: they run `python3 tests/rdkafka_client.py ...`
    and parse its stdout, e.g. to read back what `tweetpipe produce` wrote, or to
    write records that tweetpipe must then consume.

Subcommands (stdout: one JSON object per line; diagnostics go to stderr)
    consume  --brokers B --topic T --count N --timeout SECS [--group G]
        Reads all partitions from their earliest offset until N records have been
        read or SECS have passed. Prints per record
            {"partition":p,"offset":o,"key":"<hex>"|null,"value_b64":"...","timestamp":ms|null}
        Exit 0 when N records were read, 3 on timeout (after printing what it got).
        Without --group the partitions are assigned directly (no group
        coordination, nothing committed); with --group G it subscribes as a member
        of group G (auto.offset.reset=earliest, still no commits).
    produce  --brokers B --topic T --file F [--partitioner murmur2_random] [--key-field id_str]
        Produces each line of F (value = the line's bytes without "\\n" or "\\r\\n";
        blank lines are skipped; F may be .gz or "-" for stdin), keyed by the JSON
        field --key-field (string value as UTF-8, other values as their JSON text;
        field absent or line not JSON -> no key), with acks=all; waits for every
        delivery report and prints, in input order, one line per delivered record
            {"partition":p,"offset":o,"key":"<hex>"|null}
        Exit 1 if any delivery failed (the failures are listed on stderr).

    committed --brokers B --topic T --group G --partitions N [--timeout SECS]
        Asks group G's coordinator for the committed offsets of partitions 0..N-1
        of T (Consumer.committed(), no subscription, nothing consumed). Prints per
        partition, in order,
            {"partition":p,"offset":o}        (o = null when nothing is committed)
    subscribe --brokers B --topic T --group G [--assignor range,roundrobin] [--timeout SECS]
        Joins group G as a subscribed member (classic protocol, eager assignors in
        the given order; session timeout 10 s, heartbeat 1 s) and prints one line
        per rebalance callback, as it happens:
            {"event":"assigned"|"revoked","member_id":"...","partitions":[p,...]}
        Reads nothing it is assigned (polls only to take part in the group), commits
        nothing. Runs until its standard input is closed (or SECS pass: exit 3),
        then closes the consumer, which leaves the group.
    commit   --brokers B --topic T --group G --offsets p:o[,p:o...] [--timeout SECS]
        Commits the given offsets (the next offset to read, Kafka's convention)
        for group G synchronously, as a simple consumer (no subscription, so
        generation -1). Prints per partition the broker's answer
            {"partition":p,"offset":o,"error":null|"<error>"}
        Exit 1 if any partition failed.

Exit codes: 0 ok, 1 Kafka/delivery/IO error, 2 bad usage, 3 consume timeout.

Notes on the broker used in CI (tansu): no topic auto-creation (create the topic
first), and a fetch waits the full fetch.wait.max.ms, hence 100 ms here.
Requires confluent-kafka; installed with pip (quietly) when missing.

Examples
    python3 tests/rdkafka_client.py produce --brokers 127.0.0.1:9092 --topic tweets --file tests/data/sample/tweets.jsonl.gz
    python3 tests/rdkafka_client.py consume --brokers 127.0.0.1:9092 --topic tweets --count 5051 --timeout 30
"""

import argparse
import base64
import gzip
import json
import os
import subprocess
import sys
import time
import uuid

EXIT_ERROR, EXIT_USAGE, EXIT_TIMEOUT = 1, 2, 3


def log(*a):
    print("rdkafka_client:", *a, file=sys.stderr, flush=True)


def import_confluent_kafka():
    """confluent_kafka, pip-installed (quietly) first if missing, as on a fresh CI machine."""
    try:
        import confluent_kafka
        return confluent_kafka
    except ImportError:
        if os.environ.get("_CK_PIP_TRIED"):
            log("confluent-kafka still not importable after pip install")
            sys.exit(1)
    log("confluent-kafka not found; installing it with pip")
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "confluent-kafka"], stdout=sys.stderr)
    if r.returncode != 0:
        log("pip install confluent-kafka failed")
        sys.exit(1)
    # start afresh so that a newly created site-packages directory is on sys.path
    os.environ["_CK_PIP_TRIED"] = "1"
    os.execv(sys.executable, [sys.executable] + sys.argv)


def base_config(brokers):
    return {
        "bootstrap.servers": brokers,
        # api.version.request is true by default; setting it only draws a deprecation warning
        "socket.timeout.ms": 10000,
        "error_cb": lambda err: log("kafka error:", err),
    }


def key_hex(k):
    return None if k is None else k.hex()


def consume(ck, a):
    conf = base_config(a.brokers)
    conf.update({
        "group.id": a.group or "rdkafka-client-" + uuid.uuid4().hex,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": False,
        "allow.auto.create.topics": False,
        "fetch.wait.max.ms": 100,
        "session.timeout.ms": 10000,
        "heartbeat.interval.ms": 1000,
    })
    deadline = time.monotonic() + a.timeout
    consumer = ck.Consumer(conf)
    got = 0
    try:
        if a.group:
            consumer.subscribe([a.topic])
        else:
            parts = None
            while parts is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    log("timeout: topic %r not found (or no partitions) on %s" % (a.topic, a.brokers))
                    return EXIT_TIMEOUT
                try:
                    md = consumer.list_topics(a.topic, timeout=min(left, 5.0))
                    tmd = md.topics.get(a.topic)
                    if tmd is not None and tmd.error is None and tmd.partitions:
                        parts = sorted(tmd.partitions)
                    else:
                        time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
                except ck.KafkaException as e:
                    log("metadata:", e)
                    time.sleep(0.2)
            consumer.assign([ck.TopicPartition(a.topic, p, ck.OFFSET_BEGINNING) for p in parts])
        while got < a.count:
            left = deadline - time.monotonic()
            if left <= 0:
                log("timeout after %.1fs: got %d of %d records" % (a.timeout, got, a.count))
                return EXIT_TIMEOUT
            msgs = consumer.consume(num_messages=min(1000, a.count - got), timeout=min(left, 0.5))
            for m in msgs:
                if m.error():
                    if m.error().code() != ck.KafkaError._PARTITION_EOF:
                        log("consume error:", m.error())
                        if m.error().fatal():
                            return EXIT_ERROR
                    continue
                ts_type, ts = m.timestamp()
                v = m.value()
                sys.stdout.write(json.dumps({
                    "partition": m.partition(), "offset": m.offset(), "key": key_hex(m.key()),
                    "value_b64": base64.b64encode(v).decode("ascii") if v is not None else None,
                    "timestamp": ts if ts_type != ck.TIMESTAMP_NOT_AVAILABLE else None,
                }, separators=(",", ":")) + "\n")
                got += 1
            sys.stdout.flush()
        return 0
    finally:
        sys.stdout.flush()
        consumer.close()


def read_lines(path):
    if path == "-":
        f = sys.stdin.buffer
    elif path.endswith(".gz"):
        f = gzip.open(path, "rb")
    else:
        f = open(path, "rb")
    with f:
        for line in f:
            if line.endswith(b"\n"):
                line = line[:-1]
                if line.endswith(b"\r"):
                    line = line[:-1]
            if line.strip():
                yield line


def key_of(line, field):
    if not field:
        return None
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    if not isinstance(obj, dict) or field not in obj or obj[field] is None:
        return None
    v = obj[field]
    return v.encode("utf-8") if isinstance(v, str) else json.dumps(v, separators=(",", ":")).encode("utf-8")


def produce(ck, a):
    conf = base_config(a.brokers)
    conf.update({
        "acks": "all",
        "partitioner": a.partitioner,
        "compression.codec": a.compression,
        "linger.ms": 5,
        "message.timeout.ms": int(a.timeout * 1000),
        "allow.auto.create.topics": False,
    })
    producer = ck.Producer(conf)
    try:  # fail fast and clearly on a missing topic instead of timing out every record
        tmd = producer.list_topics(a.topic, timeout=min(a.timeout, 10.0)).topics.get(a.topic)
        if tmd is None or tmd.error is not None:
            log("topic %r not available on %s: %s (tansu does not auto-create topics; create it first)"
                % (a.topic, a.brokers, "missing" if tmd is None else tmd.error))
            return EXIT_ERROR
    except ck.KafkaException as e:
        log("cannot get metadata from %s: %s" % (a.brokers, e))
        return EXIT_ERROR
    results = []  # index -> (partition, offset, key) or error string

    def report(i, key):
        def cb(err, msg):
            results[i] = ("err", str(err)) if err is not None else (msg.partition(), msg.offset(), key)
        return cb

    try:
        n = 0
        for line in read_lines(a.file):
            key = key_of(line, a.key_field)
            results.append(None)
            cb = report(n, key)
            while True:
                try:
                    producer.produce(a.topic, value=line, key=key, on_delivery=cb)
                    break
                except BufferError:
                    producer.poll(0.1)  # local queue full: serve delivery reports
            n += 1
            producer.poll(0)
    except OSError as e:
        log("cannot read %s: %s" % (a.file, e))
        return EXIT_ERROR
    except ck.KafkaException as e:
        log("produce failed:", e)
        return EXIT_ERROR
    remaining = producer.flush(a.timeout + 5)
    failed = 0
    out = sys.stdout
    for i, r in enumerate(results):
        if r is None or r[0] == "err":
            failed += 1
            if failed <= 20:
                log("record %d (line %d) not delivered: %s" % (i, i + 1, "no delivery report" if r is None else r[1]))
        else:
            out.write(json.dumps({"partition": r[0], "offset": r[1], "key": key_hex(r[2])},
                                 separators=(",", ":")) + "\n")
    out.flush()
    if failed or remaining:
        log("%d of %d records failed (%d still queued)" % (failed, len(results), remaining))
        return EXIT_ERROR
    log("produced %d records to %s" % (len(results), a.topic))
    return 0


def group_consumer(ck, a):
    """A consumer in group G that never subscribes: it only reads or writes committed offsets."""
    conf = base_config(a.brokers)
    conf.update({
        "group.id": a.group,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "allow.auto.create.topics": False,
    })
    return ck.Consumer(conf)


def committed(ck, a):
    consumer = group_consumer(ck, a)
    try:
        parts = consumer.committed([ck.TopicPartition(a.topic, p) for p in range(a.partitions)], timeout=a.timeout)
        for tp in sorted(parts, key=lambda tp: tp.partition):
            if tp.error is not None:
                log("partition %d: %s" % (tp.partition, tp.error))
                return EXIT_ERROR
            sys.stdout.write(json.dumps({"partition": tp.partition, "offset": tp.offset if tp.offset >= 0 else None},
                                        separators=(",", ":")) + "\n")
        return 0
    finally:
        sys.stdout.flush()
        consumer.close()


def commit(ck, a):
    offsets = []
    for item in a.offsets.split(","):
        p, _, o = item.partition(":")
        try:
            offsets.append(ck.TopicPartition(a.topic, int(p), int(o)))
        except ValueError:
            log("--offsets entry %r is not PARTITION:OFFSET" % item)
            return EXIT_USAGE
    consumer = group_consumer(ck, a)
    failed = 0
    try:
        result = consumer.commit(offsets=offsets, asynchronous=False)
        for tp in sorted(result, key=lambda tp: tp.partition):
            if tp.error is not None:
                failed += 1
            sys.stdout.write(json.dumps({"partition": tp.partition, "offset": tp.offset,
                                         "error": None if tp.error is None else str(tp.error)},
                                        separators=(",", ":")) + "\n")
        return EXIT_ERROR if failed else 0
    finally:
        sys.stdout.flush()
        consumer.close()


def subscribe(ck, a):
    import select
    conf = base_config(a.brokers)
    conf.update({
        "group.id": a.group,
        "partition.assignment.strategy": a.assignor,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "allow.auto.create.topics": False,
        "session.timeout.ms": 10000,
        "heartbeat.interval.ms": 1000,
        "fetch.wait.max.ms": 100,
    })
    consumer = ck.Consumer(conf)

    def report(event):
        def cb(c, parts):
            sys.stdout.write(json.dumps({"event": event, "member_id": c.memberid(),
                                         "partitions": sorted(p.partition for p in parts)},
                                        separators=(",", ":")) + "\n")
            sys.stdout.flush()
        return cb

    deadline = time.monotonic() + a.timeout
    try:
        consumer.subscribe([a.topic], on_assign=report("assigned"), on_revoke=report("revoked"))
        while time.monotonic() < deadline:
            consumer.poll(0.2)
            ready, _, _ = select.select([sys.stdin], [], [], 0)
            if ready and not sys.stdin.buffer.read1(4096):
                return 0  # stdin closed: leave the group
        log("timeout after %.1fs" % a.timeout)
        return EXIT_TIMEOUT
    finally:
        consumer.close()
        sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="{consume,produce,committed,commit,subscribe}")

    c = sub.add_parser("consume", help="read N records from the earliest offsets and print them",
                       description="Read all partitions of TOPIC from the earliest offset until COUNT records "
                                   "or TIMEOUT; print {\"partition\",\"offset\",\"key\"(hex|null),\"value_b64\","
                                   "\"timestamp\"(ms|null)} per record. Exit 0 when COUNT reached, 3 on timeout.")
    c.add_argument("--brokers", required=True, help="bootstrap servers, host:port[,host:port...]")
    c.add_argument("--topic", required=True)
    c.add_argument("--count", type=int, required=True, help="stop after this many records")
    c.add_argument("--timeout", type=float, required=True, help="give up after this many seconds (exit 3)")
    c.add_argument("--group", help="consume as a member of this group (subscribe) instead of assigning all "
                                   "partitions with a fresh throw-away group id; nothing is ever committed")

    p = sub.add_parser("produce", help="produce each line of a file as a record, print where each landed",
                       description="Produce each non-blank line of FILE (without its line ending) as one record "
                                   "with acks=all; key = the JSON field --key-field of the line. Print "
                                   "{\"partition\",\"offset\",\"key\"(hex|null)} per delivered record, in input "
                                   "order. Exit 1 if any delivery failed.")
    p.add_argument("--brokers", required=True, help="bootstrap servers, host:port[,host:port...]")
    p.add_argument("--topic", required=True, help="must exist (tansu does not auto-create topics)")
    p.add_argument("--file", required=True, help="input, one record per line; .gz is decompressed; - is stdin")
    p.add_argument("--partitioner", default="murmur2_random",
                   help="librdkafka partitioner (default murmur2_random = the Java client's: murmur2 of the "
                        "key, random partition for keyless records)")
    p.add_argument("--compression", default="none", choices=["none", "gzip", "snappy", "lz4", "zstd"],
                   help="compression.codec of the produced batches (default none)")
    p.add_argument("--key-field", default="id_str",
                   help="top-level JSON field used as key (default id_str); '' for no keys")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="per-record delivery timeout in seconds (message.timeout.ms; default 60)")

    k = sub.add_parser("committed", help="print a group's committed offsets",
                       description="Print {\"partition\",\"offset\"(null if none)} for partitions 0..N-1 of TOPIC "
                                   "as committed by GROUP.")
    k.add_argument("--brokers", required=True, help="bootstrap servers, host:port[,host:port...]")
    k.add_argument("--topic", required=True)
    k.add_argument("--group", required=True)
    k.add_argument("--partitions", type=int, required=True, help="partitions 0..N-1 are asked for")
    k.add_argument("--timeout", type=float, default=10.0, help="seconds (default 10)")

    m = sub.add_parser("commit", help="commit offsets for a group (simple consumer, no subscription)",
                       description="Commit PARTITION:OFFSET pairs (next offset to read) for GROUP; print "
                                   "{\"partition\",\"offset\",\"error\"} per partition. Exit 1 on any error.")
    m.add_argument("--brokers", required=True, help="bootstrap servers, host:port[,host:port...]")
    m.add_argument("--topic", required=True)
    m.add_argument("--group", required=True)
    m.add_argument("--offsets", required=True, help="p:o[,p:o...]")
    m.add_argument("--timeout", type=float, default=10.0, help="seconds (default 10)")

    s = sub.add_parser("subscribe", help="be a member of a consumer group and print each rebalance",
                       description="Join GROUP subscribed to TOPIC (range/roundrobin, eager); print "
                                   "{\"event\":\"assigned\"|\"revoked\",\"member_id\",\"partitions\"} per "
                                   "rebalance callback. Runs until stdin is closed, then leaves the group.")
    s.add_argument("--brokers", required=True, help="bootstrap servers, host:port[,host:port...]")
    s.add_argument("--topic", required=True)
    s.add_argument("--group", required=True)
    s.add_argument("--assignor", default="range,roundrobin",
                   help="partition.assignment.strategy (default range,roundrobin, librdkafka's own)")
    s.add_argument("--timeout", type=float, default=120.0, help="seconds before giving up (exit 3; default 120)")

    a = ap.parse_args()
    if a.cmd == "consume" and (a.count < 0 or a.timeout < 0):
        ap.error("--count and --timeout must be >= 0")
    ck = import_confluent_kafka()
    try:
        return {"consume": consume, "produce": produce, "committed": committed, "commit": commit,
                "subscribe": subscribe}[a.cmd](ck, a)
    except KeyboardInterrupt:
        return EXIT_ERROR
    except ck.KafkaException as e:
        log("kafka:", e)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
