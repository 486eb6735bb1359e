"""Everything about a trained model that training, serving and the benchmarks share.

- `labels`: class lists, label schemes, the card's split keys.
- `preprocess`: the one definition of face -> model input, test-time augmentation, ensemble voting.
- `card`: the model card, one schema: written by training (`write_card`), read and validated by the
  app (`load_card`, `parse_card`).
- `predictor`: `Predictor.from_card(...)` runs any card: ONNX Runtime, Keras, or an ensemble.

Only numpy, OpenCV and ONNX Runtime are imported here; Keras is imported only when a card without an
ONNX export is run. Nothing here imports `app/` or `training/`.
"""
