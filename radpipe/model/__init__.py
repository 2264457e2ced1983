"""The image-report foundation model: encoders, contrastive objective, config, and its MLflow form."""
