"""Transformer encoders: our own Keras implementations and what the stages need to know of them.

- `families`: per architecture family, where the embeddings, encoder blocks,
  pooler and attention projections are (today: of the transformers 4.x TF
  classes the training stages still build).
- Our own encoders, which load Hugging Face checkpoints directly and are
  checked against transformers v5 PyTorch outputs (tests/backbones): `layers`
  (shared pieces), `transformer_encoder` (the BERT-style encoder), one module
  per family (`bert`, `distilbert`, `roberta`, `electra`, `deberta_v2`),
  `config` (config.json parsing), `registry` (model_type -> family),
  `checkpoint` (safetensors / tf_model.h5 reading and writing) and `encoder`
  (`build_encoder`, `load_encoder`).

Importing this package does not import TensorFlow, so config validation and
the CLI stay fast; the encoder modules import it when they are imported.
"""

from kerastune_nlp.backbones.families import DEFAULT, FAMILIES, Family, family_of

__all__ = ["DEFAULT", "FAMILIES", "Family", "family_of"]
