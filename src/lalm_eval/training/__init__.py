"""Training LALMs: a frozen audio encoder's cached features, a trained connector, and a text
LLM (frozen or with LoRA). See ``docs/training.md`` for the contract between the modules.

Submodules (imported on demand, each pulls in torch/transformers):

* :mod:`~lalm_eval.training.connectors`: ``LinearProjector``, ``QFormerConnector``,
  ``build_connector``;
* :mod:`~lalm_eval.training.llm`: ``load_causal_lm`` (hub id, folder, GGUF de-quantised once
  and cached by sha256), ``apply_lora``, ``freeze``;
* :mod:`~lalm_eval.training.lalm`: ``Example``, ``PromptTemplate``, ``LALM``;
* :mod:`~lalm_eval.training.engine`: the training loop.
"""
