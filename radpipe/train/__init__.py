"""Self-supervised image-report pretraining: data path, train loop, Ray Train adapter, and the run driver."""
