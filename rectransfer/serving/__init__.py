"""Top-K lists: the routing rule (ranker, text, popular), batch and online recommendations with
business rules, chunked fan-out and the Parquet export."""
