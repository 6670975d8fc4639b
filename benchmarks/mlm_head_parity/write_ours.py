import os, sys, shutil
os.environ["TF_USE_LEGACY_KERAS"]="1"
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[2] / "tests"))
from pathlib import Path
import numpy as np
from conftest import make_tiny_backbone
from kerastune_nlp.models import backbones
from kerastune_nlp.pretraining.mlm_model import load_mlm_model, save_mlm_checkpoint
root = Path("/tmp/mlm_head_parity"); shutil.rmtree(root, ignore_errors=True)
ids = np.array([[2, 7, 9, 11, 13, 3], [2, 8, 10, 3, 0, 0]], np.int32)
mask = (np.arange(6)[None] < np.array([[6], [4]])).astype(np.int32)
for fam in ["bert", "distilbert", "roberta", "electra", "deberta-v2", "xlm-roberta", "modernbert"]:
    d = make_tiny_backbone(root / "src" / fam, fam, 3)
    l = load_mlm_model(backbones.resolve_backbone(str(d)), seed=5)
    # non-trivial head: perturb LayerNorm and bias so the check is not on zeros/ones
    rng = np.random.default_rng(1)
    for v in (l.model.head.layer_norm.gamma, l.model.head.layer_norm.beta, l.model.head.bias, l.model.head.dense.bias):
        if v is None:  # ModernBERT as released: no dense or norm bias
            continue
        v.assign(v.numpy() + rng.normal(0, 0.1, v.shape).astype(np.float32))
    inputs = {"input_ids": ids, "attention_mask": mask}
    if fam == "roberta" or fam == "xlm-roberta":
        inputs = {"input_ids": np.where(mask == 1, ids + 5, 1).astype(np.int32), "attention_mask": mask}
    out = save_mlm_checkpoint(l.model, root / fam)
    np.save(out / "logits.npy", l.model(inputs).numpy()); np.save(out / "ids.npy", inputs["input_ids"]); np.save(out / "mask.npy", mask)
