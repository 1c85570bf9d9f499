"""Alerts sent out when statistical process control flags data: a webhook receives them."""
