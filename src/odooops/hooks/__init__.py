"""Git host webhooks: authenticity as each host signs, and their events read
into one shape. The ledger and the endpoint build on this."""
