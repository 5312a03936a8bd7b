"""Rebuild examples/data/warc/demo.warc.gz from the first 15 pages in examples/data/web (sorted by name)."""
import gzip
import json
import os

from pipelines.read.warcpack import write_warc

HERE = os.path.dirname(os.path.abspath(__file__))

if __name__ == "__main__":
    web = os.path.join(HERE, "data", "web")
    truth = json.load(open(os.path.join(web, "ground-truth.json")))
    names = sorted(truth)[:15]
    pages = [(truth[n]["url"], gzip.open(os.path.join(web, n + ".html.gz")).read()) for n in names]
    print(write_warc(pages, os.path.join(HERE, "data", "warc", "demo.warc.gz")), "records")
