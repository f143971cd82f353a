"""Every corpus and silver item embedded by one fine-tuned encoder of a finished
``python -m worker.tagging.finetune`` run (``fold-F`` or ``final``), as float16, to
$PROBE_WORK/emb-NAME.npy. Needs the finetune venv (torch). ~6 minutes an encoder on two cores.

    python tests/experiments/finetune_probe/embed.py fold-0
"""

import os
import sys
import time
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))
from worker.tagging.encoder import dequantised, item_text  # noqa: E402
from worker.tagging.finetune import _tokenizer, embed_all  # noqa: E402
from worker.tagging.train import DEFAULT_CORPUS, default_extra, read_corpus  # noqa: E402

WORK = Path(os.environ.get("PROBE_WORK", "/tmp/ftprobe"))
FT = Path(os.environ.get("FINETUNE_WORK", str(ROOT / ".finetune")))

name = sys.argv[1]
WORK.mkdir(parents=True, exist_ok=True)
records = read_corpus(DEFAULT_CORPUS) + read_corpus(default_extra(DEFAULT_CORPUS))
texts = [item_text(r.get("title"), r.get("text")) for r in records]
weights = dequantised(load_file(str(FT / name / "model.safetensors")))
tok = _tokenizer((ROOT / "configs" / "sentence-encoder" / "tokenizer.json").read_bytes())
t0 = time.time()
e = embed_all(weights, tok, texts)
print(name, len(texts), "items", round(time.time() - t0, 1), "s", file=sys.stderr)
np.save(WORK / f"emb-{name}.npy", e.astype(np.float16))
