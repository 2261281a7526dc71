"""What is derived from one retailer once and reused: catalogue vectors, customer text vectors,
behaviour statistics, text neighbours and the text path's blend."""
