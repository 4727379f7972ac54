"""What the vision evaluators (vpt.eval.evaluators: ade20k, nyuv2, imagenet_linear, revisitop)
share: reading and resizing the normalized tables, frozen-feature extraction (features), the
dense metrics (metrics) and the retrieval metrics (retrieval). The probes are vpt.vision.probes."""
