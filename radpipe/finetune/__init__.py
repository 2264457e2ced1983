"""Fine-tunes: a classification head for one finding on a registered foundation model's image encoder."""
