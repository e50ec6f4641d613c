"""The fleet: redeployment planning, site capacity and demand, and reports from the ledger."""
