"""The ranker's inputs and the ranker: candidate generation, retailer-agnostic features, labelled
training rows, LightGBM training and compiled scoring."""
