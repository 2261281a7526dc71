"""The data contract: column names and schemas, validated retailer tables, histories, hold-outs."""
