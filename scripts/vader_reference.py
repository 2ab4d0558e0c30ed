#!/usr/bin/env python3
"""Reference scores for the Rust VADER port (src/enrich/vader.rs).

Runs the real Python `vaderSentiment` 3.3.2 (MIT, from PyPI) over the human-rated tweet
corpus and writes what it says, so `tests/vader.rs` can hold the Rust port to it without
needing Python at test time. The output is data: generate it once and check it in; re-run
only if the corpus or the pinned reference version changes.

    python3 -m venv /tmp/vader-venv
    /tmp/vader-venv/bin/pip install --no-deps vaderSentiment==3.3.2   # its only dep, requests, is demo-only
    /tmp/vader-venv/bin/python scripts/vader_reference.py

Input  (default tests/data/vader/tweets_groundtruth.tsv, the corpus bundled with the tests):
    id<TAB>mean human rating -4..4<TAB>text
Output (default tests/data/vader_reference.tsv), one header line then one row per tweet:
    id<TAB>neg<TAB>neu<TAB>pos<TAB>compound
with the floats exactly as vaderSentiment returns them (already rounded by it), printed with
repr() so they read back bit-for-bit.

The checked-in file was made with Python 3.11, whose float sum() adds left to right as the
Rust port does. Python 3.12 made sum() compensated (Neumaier); emulating that in 3.11 gives
this same file for this corpus, but it could move a score on other texts.

The script refuses to run against any other vaderSentiment version, and checks that the
package's lexicon files are byte-identical to the copies the Rust port embeds (src/enrich/vader/),
so the reference and the port provably score with the same data.
"""
import argparse
import importlib.metadata
import math
import os
import platform
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WANT_VERSION = "3.3.2"


def read_corpus(path):
    # Split on '\n' only (not str.splitlines, which would also break on U+2028 and friends) and
    # keep the text exactly as it is: the Rust test reads the file the same way.
    with open(path, encoding="utf-8", newline="") as f:
        data = f.read()
    rows = []
    for line in data.split("\n"):
        if not line:
            continue
        tweet_id, rating, text = line.split("\t", 2)
        rows.append((tweet_id, float(rating), text))
    return rows


def pearson(xs, ys):
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    return sxy / math.sqrt(sxx * syy)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--input", default=os.path.join(ROOT, "tests", "data", "vader", "tweets_groundtruth.tsv"))
    ap.add_argument("--output", default=os.path.join(ROOT, "tests", "data", "vader_reference.tsv"))
    args = ap.parse_args()

    version = importlib.metadata.version("vaderSentiment")
    if version != WANT_VERSION:
        sys.exit(f"vaderSentiment {version} installed; the reference must be {WANT_VERSION}")
    from vaderSentiment import vaderSentiment as vs

    pkg_dir = os.path.dirname(os.path.abspath(vs.__file__))
    for name in ("vader_lexicon.txt", "emoji_utf8_lexicon.txt"):
        with open(os.path.join(pkg_dir, name), "rb") as a, open(os.path.join(ROOT, "src", "enrich", "vader", name), "rb") as b:
            if a.read() != b.read():
                sys.exit(f"src/enrich/vader/{name} differs from the one in vaderSentiment {version}")

    analyzer = vs.SentimentIntensityAnalyzer()
    rows = read_corpus(args.input)
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    compounds, ratings = [], []
    with open(args.output, "w", encoding="utf-8", newline="\n") as out:
        out.write("id\tneg\tneu\tpos\tcompound\n")
        for tweet_id, rating, text in rows:
            s = analyzer.polarity_scores(text)
            out.write(f"{tweet_id}\t{s['neg']!r}\t{s['neu']!r}\t{s['pos']!r}\t{s['compound']!r}\n")
            compounds.append(s["compound"])
            ratings.append(rating)

    print(
        f"vaderSentiment {version} on Python {platform.python_version()}: {len(rows)} tweets -> {args.output}; "
        f"Pearson r(compound, human mean) = {pearson(compounds, ratings):.4f}"
    )


if __name__ == "__main__":
    main()
