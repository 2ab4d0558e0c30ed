#!/usr/bin/env python3
"""gen_tweets.py - deterministic generator of realistic Twitter API v1.1 streaming records.

What it is for
    tweetpipe's tests, demos and benchmarks need input that looks like what
    statuses/sample.json or statuses/filter.json actually sends, without access
    to Twitter: one JSON object per line, 3-5 KB per tweet, compact encoding,
    non-ASCII escaped as \\uXXXX and "/" as "\\/", the usual ~40 user fields,
    entities with correct indices, retweets and quote tweets with the original
    embedded, 140-character compatibility-mode text with `extended_tweet`, and
    optional `{"delete":...}` notices interleaved.

Where the words come from
    The tweet texts are the 4,200 real, anonymised tweets of the VADER sentiment
    ground-truth set (Hutto & Gilbert, ICWSM 2014, MIT licence), read from
    <repo>/tests/data/vader/tweets_groundtruth.tsv (id<TAB>rating<TAB>text)
    unless --text-source says otherwise. They contain `@anonymous` mentions and
    `http://url_removed` links, which get proper entities. Everything else
    (users, ids, places, counts, clients, ...) is synthetic and derived from
    --seed, so the same arguments always give byte-identical output (gzip
    output included: its header carries no name and no time).

Shape of the output (what a consumer may rely on)
    * every line is one JSON object terminated by "\\n"; no raw newline inside;
    * tweet ids (`id`, `id_str`) are unique and strictly increasing from
      --start-id, and are Twitter "snowflakes": `timestamp_ms` == (id >> 22) +
      1288834974657 and `created_at` is the same instant ("Wed Oct 10 20:19:24
      +0000 2018");
    * `text` is at most 140 characters. When the full text does not fit (long
      source text, or an appended photo link / hashtags pushing it over), the
      tweet has `truncated: true`, `text` ends with "\u2026 https://t.co/..." and
      `extended_tweet.full_text` / `extended_tweet.entities` hold the whole.
      As on the real API, a retweet's own `text` is "RT @user: ..." cut at 140
      with "\u2026" and `truncated: false`; the full text is in
      `retweeted_status` (which may itself be truncated + extended_tweet);
    * every tweet line is 3,072..5,000 bytes (3 KiB .. 5 KB; mean ~3.95 KB).
      Real plain tweets are often ~2.5 KB and retweets ~6 KB, so the size is
      steered: the author is chosen among users (each with one fixed profile
      throughout the file) whose profile makes the tweet fit, a short tweet
      may get a place, a long one loses its places; what still does not fit
      is redrawn. This over-represents photos (~48% of tweets carry their own
      photo) and geotags (~18%) compared to the real stream;
    * ~20% retweets (`retweeted_status`), ~8% quote tweets (`quoted_status`),
      ~30% replies (text starting with @anonymous), ~33% truncated (some
      texts are two source tweets joined, as in the 280-character era),
      `place` null or an object, `coordinates`/`geo` always null, `lang`
      ~88% "en", ~7% "und", the rest es/pt/fr/in/tl/nl/de/ja/it/tr (the
      texts are English whatever the label); all streamed counts are 0, an
      embedded original's counts are not;
    * delete notices (--deletes) look like
      {"delete":{"status":{"id":..,"id_str":"..","user_id":..,"user_id_str":".."},"timestamp_ms":".."}}
      and refer to older tweets that are NOT in the file (ids below --start-id),
      so a tweet id never appears twice in a file.

Examples
    scripts/gen_tweets.py --count 1000 --out /tmp/tweets.jsonl
    scripts/gen_tweets.py --count 100000 --deletes 0.01 --out /tmp/big.jsonl.gz
    scripts/gen_tweets.py --count 5 --out - | head -1 | python3 -m json.tool
    # the bundled demo sample, tests/data/sample/tweets.jsonl.gz:
    scripts/gen_tweets.py --count 5000 --deletes 0.01 --seed 42 --out tests/data/sample/tweets.jsonl.gz

A size summary (min/mean/max bytes per tweet, counts of each kind) goes to
stderr; the records go to --out. Only the Python standard library is used.
"""

import argparse
import bisect
import gzip
import json
import os
import random
import re
import string
import sys
import time
import zlib
from pathlib import Path

TWEPOCH_MS = 1288834974657  # Twitter snowflake epoch
DEFAULT_START_ID = 1300000000000000000
MIN_BYTES = 3072  # 3 KiB
MAX_BYTES = 5000  # < 5 KB (and < 5 KiB)
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TEXT_SOURCE = REPO_ROOT / "tests" / "data" / "vader" / "tweets_groundtruth.tsv"

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]

# (weight, source html) -- the client that posted the tweet
SOURCES = [
    (38, '<a href="http://twitter.com/download/iphone" rel="nofollow">Twitter for iPhone</a>'),
    (30, '<a href="http://twitter.com/download/android" rel="nofollow">Twitter for Android</a>'),
    (14, '<a href="https://mobile.twitter.com" rel="nofollow">Twitter Web App</a>'),
    (4, '<a href="http://twitter.com" rel="nofollow">Twitter Web Client</a>'),
    (3, '<a href="https://about.twitter.com/products/tweetdeck" rel="nofollow">TweetDeck</a>'),
    (2, '<a href="http://twitter.com/#!/download/ipad" rel="nofollow">Twitter for iPad</a>'),
    (2, '<a href="https://buffer.com" rel="nofollow">Buffer</a>'),
    (2, '<a href="http://instagram.com" rel="nofollow">Instagram</a>'),
    (2, '<a href="https://ifttt.com" rel="nofollow">IFTTT</a>'),
    (1, '<a href="https://www.hootsuite.com" rel="nofollow">Hootsuite Inc.</a>'),
    (1, '<a href="http://publicize.wp.com/" rel="nofollow">WordPress.com</a>'),
    (1, '<a href="https://www.sprinklr.com" rel="nofollow">Sprinklr</a>'),
]
# (weight, lang) of the tweet; the texts are English, the labels are what the API would say
LANGS = [(880, "en"), (70, "und"), (12, "es"), (8, "pt"), (6, "fr"), (5, "tl"), (5, "in"),
         (4, "nl"), (3, "ja"), (3, "de"), (2, "it"), (2, "tr")]
USER_LANGS = [(60, None), (30, "en"), (3, "es"), (2, "pt"), (2, "fr"), (1, "ja"), (1, "de"), (1, "en-gb")]

FIRST = ["James", "Mary", "Jennifer", "Michael", "Linda", "David", "Sarah", "Chris", "Jessica", "Daniel",
         "Ashley", "Matt", "Emily", "Josh", "Amanda", "Ryan", "Megan", "Kevin", "Lauren", "Brandon",
         "Nicole", "Tyler", "Rachel", "Andrew", "Hannah", "Alex", "Olivia", "Jordan", "Taylor", "Sam",
         "Priya", "Aisha", "Carlos", "Sofia", "Lucas", "Chloe", "Mateo", "Yuki", "Omar", "Zoe",
         "Jos\u00e9", "Ren\u00e9e", "Zo\u00eb", "Bj\u00f6rn", "Fran\u00e7ois", "Ma\u00eblle", "In\u00e9s"]
LAST = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
        "Martinez", "Wilson", "Anderson", "Thomas", "Moore", "Jackson", "Martin", "Lee", "Thompson",
        "White", "Harris", "Clark", "Lewis", "Walker", "Hall", "Young", "King", "Wright", "Scott",
        "Nguyen", "Patel", "Kim", "O'Brien", "M\u00fcller", "Nakamura", "Silva", "Rossi", "Dubois"]
NAME_DECOR = ["", "", "", "", "", "", " \u2728", " \U0001F33B", " \U0001F3B8", " \u26BD\uFE0F",
              " \U0001F1FA\U0001F1F8", " \u2615\uFE0F", " \U0001F31F", " | MBA", " \U0001F499"]
WORDS = ["sun", "moon", "pixel", "coffee", "blue", "wild", "happy", "lazy", "real", "its", "the", "just",
         "mr", "miss", "lil", "big", "team", "daily", "cosmic", "tiny", "urban", "retro", "neon", "quiet"]
LOCATIONS = ["", "", "", "", "", "New York, NY", "Los Angeles, CA", "Chicago, IL", "Houston, TX", "London",
             "London, England", "Toronto, Ontario", "Sydney, New South Wales", "Austin, TX", "Seattle, WA",
             "Boston, MA", "Atlanta, GA", "Dublin City, Ireland", "Manchester, England", "Lagos, Nigeria",
             "Manila, Philippines", "Mumbai, India", "Jakarta Capital Region, Indonesia", "Paris, France",
             "S\u00e3o Paulo, Brasil", "M\u00e9xico", "Deutschland", "\u6771\u4eac", "Earth", "somewhere \U0001F30D",
             "she/her", "United States", "California, USA", "Florida, USA", "Ohio, USA", "Philadelphia, PA"]
DESC_BITS = ["Coffee addict.", "Dog mom \U0001F436", "Opinions are my own.", "Retweets are not endorsements.",
             "Proud dad of two.", "Software engineer", "Writer, reader, dreamer.", "Living my best life \u2728",
             "#GoBlue", "Photographer \U0001F4F7", "Student at State U", "Music is life \U0001F3B6",
             "Marketing @ a startup", "Runner. Foodie. Traveler.", "Be kind.", "IG: same handle",
             "Nurse \U0001F469\u200D\u2695\uFE0F", "Teacher \U0001F34E", "Gamer", "He/him", "Views my own",
             "Just here for the memes", "Lover of all things vintage", "Chasing sunsets \U0001F305",
             "Mom, wife, and coffee lover", "Sports fanatic", "Entrepreneur | Speaker | Author",
             "Follow for daily inspiration", "Tweeting since forever", "Business inquiries: see link",
             "Part-time poet, full-time cat person", "Sarcasm is my love language",
             "Making the world a better place, one tweet at a time", "God first \U0001F64F",
             "Aspiring chef", "DM for collabs"]
EXTRA_TAGS = ["tbt", "MondayMotivation", "FF", "love", "photography", "music", "NowPlaying", "travel",
              "fitness", "blessed", "Friday", "mood", "foodie", "nature", "art", "quote", "news", "tech",
              "gameday", "SuperBowl", "Oscars", "selfie", "summer", "coffee", "weekend", "nofilter",
              "marketing", "startup", "books", "WednesdayWisdom", "ThrowbackThursday", "goals"]
COLORS = ["1DA1F2", "F5F8FA", "C0DEED", "000000", "FFFFFF", "333333", "DDEEF6", "0084B4", "E81C4F",
          "19CF86", "FAB81E", "981CEB", "ABB8C2", "89C9FA", "3B94D9", "9266CC", "F58EA8", "94D487"]
BG_IMAGES = ["http://abs.twimg.com/images/themes/theme1/bg.png", "http://abs.twimg.com/images/themes/theme14/bg.gif",
             "http://abs.twimg.com/images/themes/theme15/bg.png", "http://abs.twimg.com/images/themes/theme9/bg.gif",
             ""]
PLACES = [  # (id, type, name, full_name, country_code, country, (lon_min, lat_min, lon_max, lat_max))
    ("01a9a39529b27f36", "city", "Manhattan", "Manhattan, NY", "US", "United States", (-74.026675, 40.683935, -73.910408, 40.877483)),
    ("3b77caf94bfc81fe", "city", "Los Angeles", "Los Angeles, CA", "US", "United States", (-118.668404, 33.704538, -118.155409, 34.337041)),
    ("1d9a5370a355ab0c", "city", "Chicago", "Chicago, IL", "US", "United States", (-87.940033, 41.644102, -87.523993, 42.0230669)),
    ("e0060cda70f5f341", "city", "Houston", "Houston, TX", "US", "United States", (-95.788087, 29.523624, -95.014496, 30.110732)),
    ("457b4814b4240d87", "city", "London", "London, England", "GB", "United Kingdom", (-0.187894, 51.483718, -0.109978, 51.5164655)),
    ("3797791ff9c0e4c6", "city", "Toronto", "Toronto, Ontario", "CA", "Canada", (-79.639319, 43.403221, -78.90582, 43.855401)),
    ("0073b76548e5984f", "city", "Sydney", "Sydney, New South Wales", "AU", "Australia", (150.520934, -34.118345, 151.343018, -33.578141)),
    ("c3f37afa9efcf94b", "city", "Austin", "Austin, TX", "US", "United States", (-97.928935, 30.127892, -97.5805133, 30.5187994)),
    ("300bcc6e23a88361", "city", "Seattle", "Seattle, WA", "US", "United States", (-122.436232, 47.495315, -122.224973, 47.734319)),
    ("96683cc9126741d1", "country", "United States", "United States", "US", "United States", (-179.231086, 13.182335, 179.859685, 71.434357)),
    ("fd70c22040963ac7", "admin", "Florida", "Florida, USA", "US", "United States", (-87.634643, 24.396308, -79.974307, 31.001056)),
    ("5c2b5e46ab891f07", "city", "Manila", "Manila, National Capital Region", "PH", "Republika ng Pilipinas", (120.941179, 14.557234, 121.027078, 14.636431)),
    ("09f6a7707f18e0b1", "city", "Paris", "Paris, France", "FR", "France", (2.224101, 48.815521, 2.469922, 48.902146)),
    ("68e019afec7d0ba5", "city", "S\u00e3o Paulo", "S\u00e3o Paulo, Brasil", "BR", "Brasil", (-46.826039, -24.008814, -46.365052, -23.356792)),
]

HASHTAG_RE = re.compile(r"(?<![\w&])#(\w*[A-Za-z_]\w*)")
MENTION_RE = re.compile(r"(?<![\w])@(\w{1,15})(?!\w)")
URL_RE = re.compile(r"https?://[\w./?=&%#~+-]*[\w/=&#~+-]")
CASHTAG_RE = re.compile(r"(?<![\w$])\$([A-Za-z]{1,6})(?![\w])")

ALNUM = string.ascii_letters + string.digits
TCO_LEN = 23  # len("https://t.co/") + 10


def weighted(rng, table):
    total = sum(w for w, _ in table)
    x = rng.random() * total
    for w, v in table:
        x -= w
        if x < 0:
            return v
    return table[-1][1]


def twitter_time(ms):
    t = time.gmtime(ms // 1000)
    return "%s %s %02d %02d:%02d:%02d +0000 %d" % (
        DAYS[t.tm_wday], MONTHS[t.tm_mon - 1], t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, t.tm_year)


def snowflake_ms(tweet_id):
    return (tweet_id >> 22) + TWEPOCH_MS


def tco(rng):
    return "https://t.co/" + "".join(rng.choice(ALNUM) for _ in range(10))


def heavy_tail(rng, scale, cap):
    """A Pareto-ish count: mostly small, occasionally huge."""
    return min(cap, int(scale * (rng.paretovariate(1.2) - 1.0)))


def stable_id(name, lo=10_000_000, hi=1_200_000_000_000_000_000):
    """A deterministic user id for a screen name seen in text (e.g. @anonymous)."""
    return lo + (zlib.crc32(name.lower().encode()) * 2654435761) % (hi - lo)


# ---------------------------------------------------------------------------
# users


def make_user(rng, idx, now_ms):
    first, last = rng.choice(FIRST), rng.choice(LAST)
    style = rng.random()
    if style < 0.35:
        screen = (first + last).replace("'", "")
    elif style < 0.6:
        screen = first.lower() + "_" + last.lower().replace("'", "") + str(rng.randint(1, 99))
    elif style < 0.85:
        screen = rng.choice(WORDS) + rng.choice(WORDS).capitalize() + str(rng.randint(0, 9999))
    else:
        screen = first + str(rng.randint(1980, 2009))
    screen = screen.encode("ascii", "ignore").decode()[:15] or "user%d" % idx
    name = first + " " + last + rng.choice(NAME_DECOR) if rng.random() < 0.8 else screen
    # account age: 2007 .. shortly before "now"
    created_ms = rng.randint(1_175_000_000_000, now_ms - 86_400_000)
    if created_ms > 1_450_000_000_000 and rng.random() < 0.7:  # post-2015 accounts have snowflake ids
        uid = ((created_ms - TWEPOCH_MS) << 22) | rng.getrandbits(22)
    else:
        uid = rng.randint(12_000, 4_900_000_000)
    desc = None
    if rng.random() < 0.88:  # bios: up to 160 characters, often with emoji and hashtags
        target = rng.choice([30, 60, 90, 120, 140, 160, 160])
        bits = []
        for b in rng.sample(DESC_BITS, len(DESC_BITS)):
            if len(" ".join(bits + [b])) > target:
                break
            bits.append(b)
        desc = " ".join(bits) or rng.choice(DESC_BITS)
    followers = heavy_tail(rng, 300, 40_000_000)
    verified = followers > 200_000 and rng.random() < 0.5
    has_url = rng.random() < 0.45
    default_profile = rng.random() < 0.55
    bg = "" if default_profile else rng.choice(BG_IMAGES)
    img = "%d/%s_normal.jpg" % (rng.randint(10**17, 10**19), "".join(rng.choice(ALNUM) for _ in range(8)))
    u = {
        "id": uid,
        "id_str": str(uid),
        "name": name,
        "screen_name": screen,
        "location": rng.choice(LOCATIONS) or None,
        "url": tco(rng) if has_url else None,
        "description": desc,
        "translator_type": "none" if rng.random() < 0.97 else "regular",
        "protected": False,
        "verified": verified,
        "followers_count": followers,
        "friends_count": heavy_tail(rng, 250, 400_000),
        "listed_count": heavy_tail(rng, 3, 200_000),
        "favourites_count": heavy_tail(rng, 2000, 900_000),
        "statuses_count": heavy_tail(rng, 3000, 1_500_000) + 1,
        "created_at": twitter_time(created_ms),
        "utc_offset": None,
        "time_zone": None,
        "geo_enabled": rng.random() < 0.4,
        "lang": weighted(rng, USER_LANGS),
        "contributors_enabled": False,
        "is_translator": False,
        "profile_background_color": "F5F8FA" if default_profile else rng.choice(COLORS),
        "profile_background_image_url": bg,
        "profile_background_image_url_https": bg.replace("http://", "https://"),
        "profile_background_tile": (not default_profile) and rng.random() < 0.3,
        "profile_link_color": "1DA1F2" if default_profile else rng.choice(COLORS),
        "profile_sidebar_border_color": "C0DEED" if default_profile else rng.choice(COLORS),
        "profile_sidebar_fill_color": "DDEEF6" if default_profile else rng.choice(COLORS),
        "profile_text_color": "333333" if default_profile else rng.choice(COLORS),
        "profile_use_background_image": default_profile or rng.random() < 0.7,
        "profile_image_url": "http://pbs.twimg.com/profile_images/" + img,
        "profile_image_url_https": "https://pbs.twimg.com/profile_images/" + img,
        "profile_banner_url": "https://pbs.twimg.com/profile_banners/%d/%d" % (uid, created_ms // 1000 + rng.randint(0, 10**8)),
        "default_profile": default_profile,
        "default_profile_image": False,
        "following": None,
        "follow_request_sent": None,
        "notifications": None,
        "withheld_in_countries": [],
    }
    if rng.random() < 0.25:
        del u["profile_banner_url"]  # many accounts never set a banner
    return u


AUTHOR = "@@AUTHOR@@"  # stands for the outer author's screen name until the author is chosen


def anonymous_user_stub(screen):
    uid = stable_id(screen)
    return {"screen_name": screen, "name": screen.capitalize(), "id": uid, "id_str": str(uid)}


# ---------------------------------------------------------------------------
# text and entities


def entities_for(text, rng, media=None, extra_urls=()):
    """Entities of `text` with indices in code points, as Twitter does.

    extra_urls: [(start, url, expanded, display)] for links we put in ourselves."""
    hashtags = [{"text": m.group(1), "indices": [m.start(), m.end()]} for m in HASHTAG_RE.finditer(text)]
    mentions = []
    for m in MENTION_RE.finditer(text):
        stub = anonymous_user_stub(m.group(1))
        mentions.append({"screen_name": stub["screen_name"], "name": stub["name"], "id": stub["id"],
                         "id_str": stub["id_str"], "indices": [m.start(), m.end()]})
    urls = []
    own = {start: (u, e, d) for start, u, e, d in extra_urls}
    for m in URL_RE.finditer(text):
        if m.start() in own:
            u, e, d = own[m.start()]
            urls.append({"url": u, "expanded_url": e, "display_url": d, "indices": [m.start(), m.end()]})
        elif media and m.group(0) == media["url"]:
            continue
        else:
            u = m.group(0)
            disp = re.sub(r"^https?://(www\.)?", "", u)
            urls.append({"url": u, "expanded_url": u, "display_url": disp, "indices": [m.start(), m.end()]})
    symbols = [{"text": m.group(1), "indices": [m.start(), m.end()]} for m in CASHTAG_RE.finditer(text)]
    ent = {"hashtags": hashtags, "urls": urls, "user_mentions": mentions, "symbols": symbols}
    if media is not None:
        at = text.rfind(media["url"])
        if at >= 0:
            med = dict(media)
            med["indices"] = [at, at + len(media["url"])]
            ent["media"] = [med]
    return ent


def clip_entities(ent, limit):
    """Keep the entities that lie entirely inside text[:limit] (compat-mode text)."""
    out = {}
    for k, v in ent.items():
        kept = [e for e in v if e["indices"][1] <= limit]
        if k != "media" or kept:
            out[k] = kept
    return out


def make_media(rng, owner, tweet_id):
    mid = tweet_id - rng.randint(1, 4000) * (1 << 22)
    key = "".join(rng.choice(ALNUM + "_-") for _ in range(15))
    link = tco(rng)
    w, h = rng.choice([(1200, 900), (1080, 1350), (1536, 2048), (1920, 1080), (750, 1334), (1024, 1024)])

    def fit(maxdim):
        s = min(1.0, maxdim / max(w, h))
        return {"w": int(w * s), "h": int(h * s), "resize": "fit"}

    return {
        "id": mid, "id_str": str(mid), "indices": [0, 0],
        "media_url": "http://pbs.twimg.com/media/%s.jpg" % key,
        "media_url_https": "https://pbs.twimg.com/media/%s.jpg" % key,
        "url": link, "display_url": "pic.twitter.com/" + link[-10:],
        "expanded_url": "https://twitter.com/%s/status/%d/photo/1" % (owner["screen_name"] if owner else AUTHOR, tweet_id),
        "type": "photo",
        "sizes": {"thumb": {"w": 150, "h": 150, "resize": "crop"}, "medium": fit(1200),
                  "small": fit(680), "large": fit(2048)},
    }


def cut_text(full, room):
    """Cut `full` to at most `room` code points at a word boundary."""
    if len(full) <= room:
        return full
    cut = full[:room]
    sp = cut.rfind(" ")
    if sp > room // 2:
        cut = cut[:sp]
    return cut.rstrip()


# ---------------------------------------------------------------------------
# tweets


class Generator:
    def __init__(self, texts, seed, start_id):
        self.rng = random.Random(seed)
        self.texts = texts
        self.order = []
        self.next_id = start_id
        self.first = True
        now_ms = snowflake_ms(start_id)
        self.now_ms = now_ms
        n_users = 3000
        self.users = [make_user(self.rng, i, now_ms) for i in range(n_users)]
        self.originals = []  # (status dict) popular tweets that get retweeted more than once
        self.user_len = [len(encode(u)) for u in self.users]
        self.user_sizes = sorted((n, k) for k, n in enumerate(self.user_len))

    def next_text(self):
        if not self.order:
            self.order = list(range(len(self.texts)))
            self.rng.shuffle(self.order)
        return self.texts[self.order.pop()]

    def tweet_text(self, long_p=0.18):
        """A source text; sometimes two joined, as in the 280-character era (those get truncated)."""
        text = self.next_text()
        if len(text) <= 140 and self.rng.random() < long_p:
            more = self.next_text()
            if len(text) + 1 + len(more) <= 280:
                text = text + " " + more
        return text

    def alloc_id(self):
        if self.first:
            self.first = False
        else:
            # ~50 tweets/s in the 1% sample stream: 1..60 ms apart, random low bits
            gap_ms = self.rng.randint(1, 60)
            self.next_id = (((self.next_id >> 22) + gap_ms) << 22) | self.rng.getrandbits(22)
        return self.next_id

    def pick_user_index(self):
        # a few accounts tweet a lot
        if self.rng.random() < 0.3:
            return int(len(self.users) * self.rng.random() ** 3)
        return self.rng.randrange(len(self.users))

    def pick_user(self):
        return self.users[self.pick_user_index()]

    def status(self, tid, user, text, *, allow_media=True, stream=True, quote=None, media_p=0.15):
        """A complete status object (without retweet/quote embedding)."""
        rng = self.rng
        ms = snowflake_ms(tid)
        # sometimes add hashtags of our own
        if rng.random() < 0.22:
            tags = " ".join("#" + t for t in rng.sample(EXTRA_TAGS, rng.choice([1, 1, 2, 3])))
            text = text + " " + tags
        extra_urls = []
        if quote is not None:
            link = tco(rng)
            permalink = "https://twitter.com/%s/status/%s" % (quote["user"]["screen_name"], quote["id_str"])
            extra_urls.append((len(text) + 1, link, permalink,
                               "twitter.com/%s/status/\u2026" % quote["user"]["screen_name"]))
            text = text + " " + link
        media = None
        if allow_media and rng.random() < media_p:
            media = make_media(rng, user, tid)
            text = text + " " + media["url"]
        full_ent = entities_for(text, rng, media, extra_urls)
        display_end = len(text) - (len(media["url"]) + 1 if media else 0)

        s = {"created_at": twitter_time(ms), "id": tid, "id_str": str(tid)}
        reply_to = None
        if text.startswith("@") and full_ent["user_mentions"] and rng.random() < 0.9:
            reply_to = full_ent["user_mentions"][0]
        if len(text) <= 140:
            s["text"] = text
            compat_ent, truncated = full_ent, False
        else:
            link = tco(rng)
            head = cut_text(text[:display_end], 140 - 2 - TCO_LEN)
            s["text"] = head + "\u2026 " + link
            compat_ent = clip_entities(full_ent, len(head))
            compat_ent.pop("media", None)
            compat_ent["urls"].append({
                "url": link, "expanded_url": "https://twitter.com/i/web/status/%d" % tid,
                "display_url": "twitter.com/i/web/status/1\u2026", "indices": [len(head) + 2, len(head) + 2 + TCO_LEN]})
            truncated = True
        s["source"] = weighted(rng, SOURCES)
        s["truncated"] = truncated
        if reply_to:
            rid = tid - rng.randint(1, 10**6) * (1 << 22) - rng.getrandbits(22)
            s.update(in_reply_to_status_id=rid, in_reply_to_status_id_str=str(rid),
                     in_reply_to_user_id=reply_to["id"], in_reply_to_user_id_str=reply_to["id_str"],
                     in_reply_to_screen_name=reply_to["screen_name"])
        else:
            s.update(in_reply_to_status_id=None, in_reply_to_status_id_str=None, in_reply_to_user_id=None,
                     in_reply_to_user_id_str=None, in_reply_to_screen_name=None)
        s["user"] = user if user is not None else {}
        s["geo"] = None
        s["coordinates"] = None
        s["place"] = self.place() if rng.random() < 0.12 else None
        s["contributors"] = None
        if quote is not None:
            s["quoted_status_id"] = quote["id"]
            s["quoted_status_id_str"] = quote["id_str"]
            s["quoted_status"] = quote
            s["quoted_status_permalink"] = {"url": extra_urls[0][1], "expanded": extra_urls[0][2],
                                            "display": extra_urls[0][3]}
        s["is_quote_status"] = quote is not None
        if truncated:
            ext = {"full_text": text, "display_text_range": [0, display_end], "entities": full_ent}
            if media:
                ext["extended_entities"] = {"media": full_ent["media"]}
            s["extended_tweet"] = ext
        if stream:
            s.update(quote_count=0, reply_count=0, retweet_count=0, favorite_count=0)
        else:  # an embedded original has had time to collect reactions
            rts = heavy_tail(rng, 20, 2_000_000)
            s.update(quote_count=rts // 12, reply_count=heavy_tail(rng, 3, 100_000), retweet_count=rts,
                     favorite_count=rts * rng.randint(2, 6) + heavy_tail(rng, 5, 100_000))
        s["entities"] = compat_ent
        if media and not truncated:
            s["extended_entities"] = {"media": compat_ent["media"]}
        s["favorited"] = False
        s["retweeted"] = False
        if media or compat_ent["urls"]:
            s["possibly_sensitive"] = rng.random() < 0.02
        s["filter_level"] = "low" if rng.random() < 0.97 else "medium"
        s["lang"] = weighted(rng, LANGS)
        if stream:
            s["timestamp_ms"] = str(ms)
        return s

    def place(self):
        pid, ptype, name, full, cc, country, (x0, y0, x1, y1) = self.rng.choice(PLACES)
        return {"id": pid, "url": "https://api.twitter.com/1.1/geo/id/%s.json" % pid, "place_type": ptype,
                "name": name, "full_name": full, "country_code": cc, "country": country,
                "bounding_box": {"type": "Polygon", "coordinates": [[[x0, y0], [x0, y1], [x1, y1], [x1, y0]]]},
                "attributes": {}}

    def older_id(self, tid, max_hours):
        return tid - self.rng.randint(60_000, max_hours * 3_600_000) * (1 << 22) - self.rng.getrandbits(22)

    def retweet(self, tid):
        rng = self.rng
        if self.originals and rng.random() < 0.3:
            orig = rng.choice(self.originals)  # a popular tweet, retweeted again
        else:
            oid = self.older_id(tid, 72)
            orig = self.status(oid, self.pick_user(), self.tweet_text(), stream=False)
            if len(self.originals) < 200:
                self.originals.append(orig)
        full = orig["extended_tweet"]["full_text"] if orig["truncated"] else orig["text"]
        prefix = "RT @%s: " % orig["user"]["screen_name"]
        rt_full = prefix + full
        if len(rt_full) > 140:
            text = rt_full[:139] + "\u2026"
            limit = 139
        else:
            text, limit = rt_full, len(rt_full)
        inner_ent = orig["extended_tweet"]["entities"] if orig["truncated"] else orig["entities"]
        ent = {"hashtags": [], "urls": [], "user_mentions": [], "symbols": []}
        ou = orig["user"]
        ent["user_mentions"].append({"screen_name": ou["screen_name"], "name": ou["name"], "id": ou["id"],
                                     "id_str": ou["id_str"], "indices": [3, 4 + len(ou["screen_name"])]})
        shift = len(prefix)
        for k in ("hashtags", "urls", "user_mentions", "symbols", "media"):
            for e in inner_ent.get(k, []):
                if e["indices"][1] + shift <= limit:
                    e2 = dict(e)
                    e2["indices"] = [e["indices"][0] + shift, e["indices"][1] + shift]
                    ent.setdefault(k, []).append(e2)
        ms = snowflake_ms(tid)
        s = {"created_at": twitter_time(ms), "id": tid, "id_str": str(tid), "text": text,
             "source": weighted(rng, SOURCES), "truncated": False,
             "in_reply_to_status_id": None, "in_reply_to_status_id_str": None, "in_reply_to_user_id": None,
             "in_reply_to_user_id_str": None, "in_reply_to_screen_name": None,
             "user": {}, "geo": None, "coordinates": None, "place": None, "contributors": None,
             "retweeted_status": orig, "is_quote_status": False,
             "quote_count": 0, "reply_count": 0, "retweet_count": 0, "favorite_count": 0,
             "entities": ent}
        if "media" in ent:
            s["extended_entities"] = {"media": ent["media"]}
        s["favorited"] = False
        s["retweeted"] = False
        if "possibly_sensitive" in orig:
            s["possibly_sensitive"] = orig["possibly_sensitive"]
        s["filter_level"] = "low"
        s["lang"] = orig["lang"]
        s["timestamp_ms"] = str(ms)
        return s

    def kind(self):
        r = self.rng.random()
        return "retweet" if r < 0.20 else "quote" if r < 0.28 else "tweet"

    def tweet(self, kind):
        """A tweet whose own author is still open: "user" is {} and AUTHOR stands for its screen name."""
        tid = self.alloc_id()
        if kind == "retweet":
            return self.retweet(tid)
        if kind == "quote":
            q = self.status(self.older_id(tid, 48), self.pick_user(), self.tweet_text(), stream=False)
            return self.status(tid, None, self.next_text(), allow_media=False, quote=q)
        return self.status(tid, None, self.tweet_text(), media_p=0.3)

    def user_fitting(self, lo, hi, n_author):
        """A random user whose object makes the tweet lo..hi bytes long, or None."""
        i, j = bisect.bisect_left(self.user_sizes, (lo - 100,)), bisect.bisect_right(self.user_sizes, (hi + 100,))
        for _ in range(8):
            if i >= j:
                return None
            size, k = self.user_sizes[self.rng.randrange(i, j)]
            u = self.users[k]
            real = size + n_author * (len(u["screen_name"]) - len(AUTHOR))
            if lo <= real <= hi:
                return u
        return None

    def delete(self):
        rng = self.rng
        ms = snowflake_ms(self.next_id) + rng.randint(0, 30)
        # a tweet from before this file started (so it never collides with one in the file)
        did = self.next_id - rng.randint(1, 90 * 24 * 3600) * 1000 * (1 << 22) - rng.getrandbits(22)
        did = max(did, 1)
        uid = rng.choice(self.users)["id"] if rng.random() < 0.5 else rng.randint(10**6, 1_300_000_000_000_000_000)
        return {"delete": {"status": {"id": did, "id_str": str(did), "user_id": uid, "user_id_str": str(uid)},
                           "timestamp_ms": str(ms)}}


TWITTER_ESCAPES = True


def encode(obj):
    """Compact and ASCII-only (non-ASCII as \\uXXXX) like the streaming API, which also writes
    "/" as "\\/" and "<", ">" as "\\u003c", "\\u003e" (outside strings JSON has none of these)."""
    line = json.dumps(obj, separators=(",", ":"), ensure_ascii=True)
    if TWITTER_ESCAPES:
        line = line.replace("/", "\\/").replace("<", "\\u003c").replace(">", "\\u003e")
    return line


def fit_size(gen):
    """One tweet of MIN_BYTES..MAX_BYTES: (encoded line, the object).

    The size is steered by choosing the author: among the users whose (fixed) profile
    makes the tweet fit, prefer the one picked at random; failing that add a place
    (short tweets) or drop the places (long ones); failing that draw another tweet
    with the same id. Users keep one profile each across the whole file."""
    saved = (gen.next_id, gen.first)
    kind = gen.kind()  # kept across attempts so that the mix of kinds stays as drawn
    for _attempt in range(200):
        t = gen.tweet(kind)
        for _step in range(3):
            line = encode(t)
            rest = len(line) - 2  # without the "{}" of the open author
            n_author = line.count(AUTHOR)
            lo, hi = MIN_BYTES - rest, MAX_BYTES - rest
            k = gen.pick_user_index()
            u = gen.users[k]
            real = gen.user_len[k] + n_author * (len(u["screen_name"]) - len(AUTHOR))
            if not lo <= real <= hi:
                u = gen.user_fitting(lo, hi, n_author)
            if u is not None:
                t["user"] = u
                line = encode(t).replace(AUTHOR, u["screen_name"])
                assert MIN_BYTES <= len(line) <= MAX_BYTES
                return line, t
            if hi < gen.user_sizes[0][0] + 50:  # too big even for the smallest profile
                embedded = [t[k] for k in ("retweeted_status", "quoted_status") if k in t]
                if all(o["place"] is None for o in [t] + embedded):
                    break
                for o in [t] + embedded:
                    o["place"] = None
            elif lo > gen.user_sizes[-1][0] - 50 and t["place"] is None:  # too small: geotag it
                t["place"] = gen.place()
            else:
                break
        gen.next_id, gen.first = saved
    raise RuntimeError("could not fit a tweet into %d..%d bytes" % (MIN_BYTES, MAX_BYTES))


def load_texts(path):
    texts = []
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            raw = raw.rstrip("\r\n")
            if not raw.strip():
                continue
            parts = raw.split("\t")
            text = "\t".join(parts[2:]) if len(parts) >= 3 else parts[-1]
            text = " ".join(text.split())  # no raw newlines/tabs in tweet text
            if text:
                texts.append(text)
    return texts


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", "-n", type=int, default=1000,
                    help="number of tweets to write, delete notices not included (default 1000)")
    ap.add_argument("--out", "-o", default="-",
                    help="output file; '-' = stdout (default); a name ending in .gz is gzip-compressed")
    ap.add_argument("--seed", type=int, default=42, help="random seed; same seed + args = same bytes (default 42)")
    ap.add_argument("--deletes", type=float, default=0.0, metavar="FRACTION",
                    help="fraction (0..1) of output lines that are {\"delete\":...} notices (default 0)")
    ap.add_argument("--start-id", type=int, default=DEFAULT_START_ID,
                    help="id of the first tweet; later ids increase monotonically as snowflakes, and "
                         "created_at/timestamp_ms follow them (default %d, i.e. Sep 2020)" % DEFAULT_START_ID)
    ap.add_argument("--text-source", default=str(DEFAULT_TEXT_SOURCE),
                    help="TSV of id<TAB>rating<TAB>text to take tweet texts from "
                         "(default <repo>/tests/data/vader/tweets_groundtruth.tsv)")
    ap.add_argument("--plain-escapes", action="store_true",
                    help="write '/' '<' '>' as themselves instead of Twitter's \\/ \\u003c \\u003e "
                         "(non-ASCII stays \\uXXXX either way)")
    ap.add_argument("--quiet", "-q", action="store_true", help="no size summary on stderr")
    a = ap.parse_args()

    if a.count < 0:
        ap.error("--count must be >= 0")
    if not 0.0 <= a.deletes < 1.0:
        ap.error("--deletes must be a fraction in [0, 1)")
    if a.start_id < (1 << 22) or a.start_id >= (1 << 63) - (a.count + 1) * 60 * (1 << 22):
        ap.error("--start-id must be a snowflake between 2^22 and ~2^63 (got %d)" % a.start_id)
    src = Path(a.text_source)
    if not src.is_file():
        sys.exit("gen_tweets.py: text source not found: %s\n"
                 "  (expected the VADER ground-truth TSV at <repo>/tests/data/vader/tweets_groundtruth.tsv;"
                 " pass --text-source PATH)" % src)
    texts = load_texts(src)
    if not texts:
        sys.exit("gen_tweets.py: no texts in %s" % src)

    global TWITTER_ESCAPES
    TWITTER_ESCAPES = not a.plain_escapes
    gen = Generator(texts, a.seed, a.start_id)
    if a.out == "-":
        out = sys.stdout.buffer
        close = out.flush
    elif a.out.endswith(".gz"):
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        raw = open(a.out, "wb")
        out = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6)
        close = lambda: (out.close(), raw.close())
    else:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        out = open(a.out, "wb")
        close = out.close

    sizes = []
    kinds = {"retweets": 0, "quotes": 0, "truncated": 0, "replies": 0, "with_place": 0, "with_photo": 0,
             "deletes": 0}
    # exactly round(count * p / (1 - p)) delete notices, at random places, so that they are
    # the fraction p of all lines
    n_del = int(round(a.count * a.deletes / (1.0 - a.deletes))) if a.deletes else 0
    del_at = set(random.Random(a.seed ^ 0x5EED).sample(range(a.count + n_del), n_del))
    try:
        for lineno in range(a.count + n_del):
            if lineno in del_at:
                out.write(encode(gen.delete()).encode() + b"\n")
                kinds["deletes"] += 1
                continue
            line, t = fit_size(gen)
            out.write(line.encode() + b"\n")
            sizes.append(len(line))
            kinds["retweets"] += "retweeted_status" in t
            kinds["quotes"] += "quoted_status" in t
            kinds["truncated"] += t["truncated"]
            kinds["replies"] += t["in_reply_to_status_id"] is not None
            kinds["with_place"] += t["place"] is not None
            kinds["with_photo"] += '"type":"photo"' in line and "retweeted_status" not in t
        close()
    except BrokenPipeError:
        try:
            sys.stdout = None
        finally:
            os._exit(0)

    if not a.quiet and sizes:
        sizes.sort()
        n = len(sizes)
        pct = lambda p: sizes[min(n - 1, int(p * n))]
        print("gen_tweets: %d tweets + %d deletes -> %s" % (n, kinds["deletes"], a.out), file=sys.stderr)
        print("  tweet size bytes: min %d  p10 %d  median %d  mean %.0f  p90 %d  max %d" % (
            sizes[0], pct(0.1), pct(0.5), sum(sizes) / n, pct(0.9), sizes[-1]), file=sys.stderr)
        print("  of tweets: retweets %.1f%%  quotes %.1f%%  truncated %.1f%%  replies %.1f%%  "
              "geotagged %.1f%%  own photo %.1f%%" % tuple(100.0 * kinds[k] / n for k in (
                  "retweets", "quotes", "truncated", "replies", "with_place", "with_photo")), file=sys.stderr)


if __name__ == "__main__":
    main()
