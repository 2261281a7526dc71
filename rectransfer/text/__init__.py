"""Text to vectors: product and customer text, encoders (sentence-transformers, int8 ONNX, hashing),
the embedding cache, and the encoder's fine-tuning on product-text pairs."""
