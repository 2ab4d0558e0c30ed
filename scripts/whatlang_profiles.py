#!/usr/bin/env python3
"""whatlang_profiles.py - write src/enrich/whatlang/latin_trigrams.tsv from whatlang's source.

tweetpipe scores Latin-script texts against whatlang's own trigram profiles (see
src/enrich/trigrams.rs). whatlang keeps them private, so this script copies them, as data, out
of the whatlang crate that Cargo resolved (`cargo metadata`), from `LATIN_LANGS` in
`src/trigrams/profiles.rs`. One line per language, in whatlang's order: its ISO 639-3 code,
then its 300 trigrams from most to least frequent, all separated by tabs (a tab is never part
of a trigram: whatlang turns it into a space).

Run it again whenever the whatlang version in Cargo.lock changes; tests/lang.rs fails until
the copy matches the detector it stands in for.
"""
import json
import os
import re
import subprocess
import sys

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
meta = json.loads(subprocess.check_output(["cargo", "metadata", "--format-version", "1"], cwd=root))
pkg = next(p for p in meta["packages"] if p["name"] == "whatlang")
src = os.path.join(os.path.dirname(pkg["manifest_path"]), "src", "trigrams", "profiles.rs")
text = open(src, encoding="utf-8").read()
block = text[text.index("pub static LATIN_LANGS"):]
block = block[:block.index("];\n") + 2]

CHAR = r"'(\\.|[^'\\])'"
langs = []
for m in re.finditer(r"Lang::(\w+),\s*&\[(.*?)\]", block, re.S):
    tris = []
    for t in re.finditer(r"Trigram\(" + CHAR + r",\s*" + CHAR + r",\s*" + CHAR + r"\)", m.group(2)):
        chars = [c.encode().decode("unicode_escape") if c.startswith("\\") else c for c in t.groups()]
        tri = "".join(chars)
        assert "\t" not in tri and "\n" not in tri, tri
        tris.append(tri)
    assert len(tris) == 300, (m.group(1), len(tris))
    langs.append((m.group(1).lower(), tris))
assert langs, "no profiles found in " + src

out = os.path.join(root, "src", "enrich", "whatlang", "latin_trigrams.tsv")
with open(out, "w", encoding="utf-8", newline="\n") as f:
    for code, tris in langs:
        f.write("\t".join([code] + tris) + "\n")
print(f"{out}: {len(langs)} languages from whatlang {pkg['version']}", file=sys.stderr)
