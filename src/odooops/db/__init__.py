from odooops.db.database import Actor, Database
from odooops.db.queries import load_queries, queries_beside

__all__ = ["Actor", "Database", "load_queries", "queries_beside"]
