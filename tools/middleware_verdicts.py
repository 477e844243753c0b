"""Record the middleware's verdict on every file under some directories and on damaged
copies of them (cut at several lengths, three bytes flipped), to compare two versions of the
Python package (run once with each on PYTHONPATH):

    PYTHONPATH=OLD/python python tools/middleware_verdicts.py old OUT_OLD.json DIR...
    PYTHONPATH=NEW/python python tools/middleware_verdicts.py new OUT_NEW.json DIR...

`old` uses `_formats.scan_deep` (before it was removed), `new` `middleware.judged`.
"""
import sys, os, random, json
mode = sys.argv[1]
from pickleguard import PickleGuard
g = PickleGuard("ml")
if mode == "old":
    from pickleguard._formats import scan_deep as f
else:
    from pickleguard.middleware import judged as f
random.seed(1)
files = []
for d in sys.argv[3:]:
    for root, _, fs in os.walk(d):
        files += [os.path.join(root, x) for x in fs]
files.sort()
samples = []
for p in files:
    data = open(p, "rb").read()
    if len(data) > 5_000_000: continue
    samples.append((p, data))
    for cut in (len(data)//2, len(data)-3, len(data)-30, 100, 20):
        if 10 < cut < len(data): samples.append((p+f"[:{cut}]", data[:cut]))
    b = bytearray(data)
    for _ in range(3):
        i = random.randrange(len(b)); b[i] ^= 0xFF
    samples.append((p+"[flip]", bytes(b)))
out = {}
for name, data in samples:
    a = f(g, data, name)
    out[name] = [a.is_safe, a.risk_level, a.format, a.complete, sorted({x.type for x in a.findings})]
json.dump(out, open(sys.argv[2], "w"))
print(len(out))
