#!/usr/bin/env python3
"""bench_consumer_python.py - the baseline for tweetpipe's consume benchmark.

The approach of the original article that tweetpipe replaces: a Python consumer with
kafka-python that, for each tweet, parses the JSON, detects the language with langdetect,
scores sentiment with vaderSentiment and collects hashtags, writing one JSON line per tweet.

Usage: bench_consumer_python.py --brokers HOST:PORT --topic T --count N [--out FILE]
Reads N tweets from the earliest offset (no group, nothing committed) and prints one JSON line:
{"records":N,"seconds":S,"records_per_s":R}. The timer starts at the first record received,
so connection set-up is not counted against it. Installs its packages with pip when missing.
"""
import argparse
import json
import subprocess
import sys
import time


def ensure(pkgs):
    try:
        import kafka  # noqa: F401
        import langdetect  # noqa: F401
        import vaderSentiment  # noqa: F401
    except ImportError:
        subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *pkgs],
                              stdout=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--out", default="/dev/null")
    ap.add_argument("--timeout", type=float, default=600)
    a = ap.parse_args()
    ensure(["kafka-python", "langdetect", "vaderSentiment==3.3.2"])
    from kafka import KafkaConsumer
    from langdetect import DetectorFactory, detect
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    DetectorFactory.seed = 0
    analyzer = SentimentIntensityAnalyzer()
    consumer = KafkaConsumer(a.topic, bootstrap_servers=a.brokers.split(","), auto_offset_reset="earliest",
                             group_id=None, enable_auto_commit=False, consumer_timeout_ms=int(a.timeout * 1000),
                             fetch_max_wait_ms=100)
    n = 0
    start = None
    with open(a.out, "w") as out:
        for msg in consumer:
            if start is None:
                start = time.monotonic()
            try:
                t = json.loads(msg.value)
            except ValueError:
                continue
            if "id_str" not in t:
                continue
            text = t.get("extended_tweet", {}).get("full_text") or t.get("full_text") or t.get("text", "")
            try:
                lang = detect(text)
            except Exception:
                lang = "und"
            s = analyzer.polarity_scores(text)
            tags = [h["text"] for h in t.get("entities", {}).get("hashtags", [])]
            out.write(json.dumps({"id": t["id_str"], "text": text, "lang": lang, "sentiment": s, "hashtags": tags}) + "\n")
            n += 1
            if n >= a.count:
                break
    secs = time.monotonic() - (start or time.monotonic())
    print(json.dumps({"records": n, "seconds": round(secs, 3), "records_per_s": round(n / secs, 1) if secs else 0}))
    return 0 if n >= a.count else 3


if __name__ == "__main__":
    sys.exit(main())
