import numpy as np, torch
from pathlib import Path
from transformers import AutoModelForMaskedLM
for fam in ["bert", "distilbert", "roberta", "electra", "deberta-v2", "xlm-roberta", "modernbert"]:
    d = Path("/tmp/mlm_head_parity") / fam
    m, info = AutoModelForMaskedLM.from_pretrained(str(d), output_loading_info=True)
    m.eval()
    ids, mask = np.load(d / "ids.npy"), np.load(d / "mask.npy")
    with torch.no_grad():
        ref = m(input_ids=torch.tensor(ids, dtype=torch.long), attention_mask=torch.tensor(mask)).logits.numpy()
    ours = np.load(d / "logits.npy")
    real = mask.astype(bool)
    print(fam, type(m).__name__, "missing", info["missing_keys"], "unexpected", sorted(info["unexpected_keys"])[:3],
          "max diff (real tokens)", float(np.abs(ref[real] - ours[real]).max()), "scale", float(np.abs(ref).max()))
