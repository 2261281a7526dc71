"""Transfer: the broad model pretrained on many retailers, adaptation to one retailer, and the
negative-transfer guard that decides what ships."""
