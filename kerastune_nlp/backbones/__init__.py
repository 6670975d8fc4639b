"""Knowledge about Hugging Face backbones that does not need TensorFlow.

`families` says, per architecture family, where the embeddings, encoder
blocks, pooler and attention projections are. Importing this package does
not import TensorFlow, so config validation and the CLI stay fast.
"""

from kerastune_nlp.backbones.families import DEFAULT, FAMILIES, Family, family_of

__all__ = ["DEFAULT", "FAMILIES", "Family", "family_of"]
