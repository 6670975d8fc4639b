"""Transformer encoders: our own Keras implementations and what the stages need to know of them.

- `families`: where the embeddings, encoder blocks, pooler and attention
  projections are in our encoders (one uniform surface across families),
  and the depth group of each variable name.
- Our own encoders, which load Hugging Face checkpoints directly and are
  checked against transformers v5 PyTorch outputs (tests/backbones):
  shared pieces (`activations`, `initializers`, `embeddings`, `layers`),
  `transformer_encoder` (the BERT-style encoder), one module per family
  (`bert`, `distilbert`, `roberta`, `electra`, `deberta_v2` with its
  `deberta_v2_config`, `deberta_v2_attention` and `deberta_v2_layers`),
  `config` (config.json parsing), `registry` (model_type -> family),
  `weight_maps` (Keras variable -> PyTorch tensor name), `checkpoint_files`
  (reading safetensors / tf_model.h5), `tensor_layouts` (TF names and
  layouts -> PyTorch's), `checkpoint` (loading into an encoder, saving) and
  `encoder` (`build_encoder`, `load_encoder`).

Importing this package does not import TensorFlow, so config validation and
the CLI stay fast; the encoder modules import it when they are imported.
"""

from kerastune_nlp.backbones.families import is_own_encoder

__all__ = ["is_own_encoder"]
