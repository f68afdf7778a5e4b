"""The agent's HTTP service (aiohttp): REST KPI queries, health."""
