"""Screen (session 17): the grouped cross-validation with constants of
``worker/tagging/train.py`` changed, from the environment:

    PATCH=DEFAULT_C=8 .venv/bin/python tests/experiments/train_screens/constants.py \
        eval --cv 5 tests/data/corpus/corpus.jsonl

``PATCH`` is a comma-separated list of NAME=VALUE (the value takes the constant's type).
"""

import os
import sys

import worker.tagging.train as T
from worker.cli import main

for pair in filter(None, os.environ.get("PATCH", "").split(",")):
    name, value = pair.split("=")
    setattr(T, name, type(getattr(T, name))(value))
    print(f"patched {name} = {getattr(T, name)}", file=sys.stderr)
# cv_folds(examples, topics, k=5, c=DEFAULT_C, ...) bound the default when it was defined
defaults = list(T.cv_folds.__defaults__ or ())
defaults[1] = T.DEFAULT_C
T.cv_folds.__defaults__ = tuple(defaults)

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
