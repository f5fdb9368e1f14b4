"""`flip search`: the faces of an index most like a description or a face, under attribute filters.

    flip search faces.index "a smiling woman with glasses" --where hair_color=grey --k 5
    flip search faces.index --image me.jpg --where emotion=happy,neutral --json

`--where attr=value` keeps the faces whose predicted attribute is that class (comma: any of
several); repeat it for several attributes (all must hold). The query is embedded by the model the
index was built with; another model is refused.
"""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="flip search", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("index", metavar="INDEX", help="an index folder from `flip index`")
    parser.add_argument("text", nargs="?", default=None, help="describe the face you look for")
    parser.add_argument("--image", default=None, metavar="FACE", help="search by a face image instead of a text")
    parser.add_argument("--where", action="append", default=[], metavar="ATTR=VALUE",
                        help="keep faces whose predicted ATTR is VALUE (VALUE1,VALUE2: any); repeatable")
    parser.add_argument("--k", type=int, default=10, help="how many faces (default 10)")
    parser.add_argument("--json", action="store_true", help="JSON Lines, one object per face")
    parser.add_argument("--model", default=None, help="the query model (default: the one the index names)")
    args = parser.parse_args(argv)
    if (args.text is None) == (args.image is None):
        parser.error('give a text or --image FACE (one of them)')
    if args.k < 1:
        parser.error(f"--k must be >= 1, got {args.k}")

    from flip.tasks.search import FaceIndex, encode_query, parse_where

    try:
        where = parse_where(args.where)
        index = FaceIndex.open(args.index)
        index.mask(where)  # bad columns or values fail before the model loads
        from flip.hub import DEFAULT_MODEL, load

        model, processor = load(args.model or index.meta.get("model") or DEFAULT_MODEL)
        index.check_model(model, processor)
        query = encode_query(model, processor, text=args.text, image=args.image)
        hits = index.search(query, k=args.k, where=where)
    except (FileNotFoundError, ValueError, KeyError, ImportError, OSError) as err:
        return _fail(err.args[0] if isinstance(err, KeyError) else str(err))
    if args.json:
        for hit in hits:
            print(json.dumps(hit.record(), ensure_ascii=False))
    else:
        shown = [t for t in index.tasks if t not in where][:4]
        for rank, hit in enumerate(hits, 1):
            extras = "  ".join(f"{t}={hit.predictions[t]}" for t in shown)
            print(f"{rank:>3}  {hit.score:+.3f}  {hit.path}  {extras}")
    print(f"{len(hits)} face(s) of {len(index)} in {args.index}"
          + (f" meeting {' and '.join(f'{k} in {v}' for k, v in where.items())}" if where else ""), file=sys.stderr)
    return 0


def _fail(message: str) -> int:
    print(f"flip search: {message}", file=sys.stderr)
    return 2
