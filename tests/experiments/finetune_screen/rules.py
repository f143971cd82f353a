import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from worker.tagging import Tagger
from worker.tagging.train import DEFAULT_CORPUS, prepare, read_corpus

tagger = Tagger.from_config_dir(Path("configs"), model=False)
topics = list(tagger.topics)
print(topics)
ex = prepare(read_corpus(DEFAULT_CORPUS), tagger)
WORK = Path(os.environ.get("SCREEN_WORK", "/tmp/ftscreen"))
WORK.mkdir(exist_ok=True)
np.save(WORK / "R.npy", np.array([[t in e.rule_topics for t in topics] for e in ex]))
