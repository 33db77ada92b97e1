"""One module per notification channel, each stating its service's limits and answering a typed `Delivery`."""
