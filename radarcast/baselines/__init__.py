"""Classical forecasters: persistence and ROVER."""
